import * as http2 from "node:http2";
import type { Logger } from "pino";

/** The limits {@link guardConnection} applies to one HTTP/2 connection. */
export interface ConnectionLimits {
  /** Close the connection when it has had no open stream this long. */
  idleTimeoutMs: number;
  /** Close the connection when it has not acknowledged the server's SETTINGS by then. */
  settingsTimeoutMs: number;
  /** Request header bytes its open streams may hold before it acknowledges SETTINGS. */
  unackedHeaderBytes: number;
}

/**
 * Bounds what one HTTP/2 connection may hold and for how long, beyond what
 * node:http2 does by itself:
 *
 * - Until a client acknowledges the server's SETTINGS, nghttp2 does not apply
 *   them: no limit on header list size or concurrent streams. A client that
 *   never acknowledges could open streams with huge header lists and hold
 *   them for as long as it likes. So a connection gets settingsTimeoutMs to
 *   acknowledge, and until it does, its open streams may hold at most
 *   unackedHeaderBytes of headers (counted as HPACK does: name, value and 32
 *   bytes each); past either, it is destroyed.
 * - A connection with no open stream for idleTimeoutMs is closed with a
 *   GOAWAY: idle connections that answer PINGs would otherwise live forever,
 *   each holding a file descriptor and about 13 KB.
 *
 * Returns a function that stops the timers.
 */
export function guardConnection(session: http2.ServerHttp2Session, limits: ConnectionLimits, logger: Logger): () => void {
  let openStreams = 0;
  let unackedHeaderBytes = 0;
  let idleTimer: NodeJS.Timeout | undefined;
  const startIdleTimer = () => {
    idleTimer = setTimeout(() => {
      logger.debug({ idleTimeoutMs: limits.idleTimeoutMs }, "connection closed: idle");
      session.close();
    }, limits.idleTimeoutMs);
    idleTimer.unref();
  };
  let settingsTimer: NodeJS.Timeout | undefined = setTimeout(() => {
    if (session.pendingSettingsAck && !session.destroyed) {
      logger.info({ settingsTimeoutMs: limits.settingsTimeoutMs }, "connection dropped: SETTINGS not acknowledged in time");
      session.destroy(undefined, http2.constants.NGHTTP2_SETTINGS_TIMEOUT);
    }
  }, limits.settingsTimeoutMs);
  settingsTimer.unref();
  session.once("localSettings", () => {
    clearTimeout(settingsTimer);
    settingsTimer = undefined;
  });

  session.on("stream", (stream, _headers, _flags, rawHeaders: string[]) => {
    openStreams++;
    clearTimeout(idleTimer);
    let bytes = 0;
    if (session.pendingSettingsAck) {
      for (const field of rawHeaders) bytes += field.length + 16;
      unackedHeaderBytes += bytes;
      if (unackedHeaderBytes > limits.unackedHeaderBytes) {
        logger.info({ bytes: unackedHeaderBytes, limit: limits.unackedHeaderBytes }, "connection dropped: too many header bytes before acknowledging SETTINGS");
        session.destroy(undefined, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
        return;
      }
    }
    // A stream opened after the SETTINGS were acknowledged (all but the
    // first few) holds no header bytes here, and shares one listener.
    if (bytes === 0) stream.on("close", onStreamClose);
    else
      stream.on("close", () => {
        unackedHeaderBytes -= bytes;
        onStreamClose();
      });
  });
  function onStreamClose(): void {
    if (--openStreams === 0 && !session.closed && !session.destroyed) startIdleTimer();
  }
  startIdleTimer();
  return () => {
    clearTimeout(idleTimer);
    clearTimeout(settingsTimer);
  };
}
