import { pino, type DestinationStream, type Logger } from "pino";

/** The log levels the server accepts, from the most to the least verbose. */
export const logLevels = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;

/** One of {@link logLevels}. */
export type LogLevel = (typeof logLevels)[number];

/**
 * Creates the server's structured logger: one JSON object per line, with an
 * ISO timestamp. Writes go synchronously to the destination (stdout by
 * default) so that the last lines before an exit are never lost; the server
 * logs per session and per error, never per message, so this costs little.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ fd: 1, sync: true }),
  );
}
