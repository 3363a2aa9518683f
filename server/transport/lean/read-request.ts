import type * as http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import type { BodyWatch } from "../request-body-guard.js";

/** One gRPC envelope of a request: its flags and its (possibly compressed) message. */
export interface Envelope {
  flags: number;
  data: Uint8Array;
}

/**
 * What a request body came to: its envelopes (none, one, or the first two
 * when there were more), or the error Connect's gRPC handler raises for the
 * same bytes before any message is parsed.
 */
export type RequestBody = Envelope[] | ConnectError;

const empty = Buffer.alloc(0);

/**
 * Reads the body of a unary or server-streaming request from its stream, and
 * calls done once: with its envelopes when the body ends or a second envelope
 * is complete (which is already one too many: Connect answers as soon as it
 * has parsed it), or at once with Connect's error for an envelope larger than
 * readMaxBytes or a body ending inside an envelope. No more than two
 * envelopes are ever held. After done, the rest of the body is read and
 * dropped while the guard still counts and times it, until the stream is
 * reset once its answer is out (grpc-response.ts), so that a client cannot
 * keep a stream open with an unfinished body once it has been answered. When
 * the stream is reset or closes first, done is not called: the call's own
 * close handling ends it.
 */
export function readRequest(stream: http2.ServerHttp2Stream, readMaxBytes: number, watch: BodyWatch | undefined, done: (body: RequestBody) => void): void {
  const chunks: Buffer[] = [];
  let buffered = 0;
  // The flags and length of the envelope being read; length -1 before its header.
  let flags = 0;
  let length = -1;
  const envelopes: Envelope[] = [];
  let answered = false;
  const answer = (body: RequestBody) => {
    answered = true;
    chunks.length = 0;
    done(body);
  };
  const take = (n: number): Buffer => {
    if (n === 0) return empty;
    buffered -= n;
    const first = chunks[0]!;
    if (first.length === n) return chunks.shift()!;
    if (first.length > n) {
      chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const joined = Buffer.concat(chunks, buffered + n);
    chunks.length = 0;
    if (joined.length > n) chunks.push(joined.subarray(n));
    return joined.subarray(0, n);
  };
  const onData = (chunk: Buffer) => {
    watch?.received(chunk.length);
    // The guard may have reset the stream for this very chunk.
    if (answered || wasReset(stream)) return;
    chunks.push(chunk);
    buffered += chunk.length;
    for (;;) {
      if (length < 0) {
        if (buffered < 5) return;
        const header = take(5);
        flags = header[0]!;
        length = header.readUInt32BE(1);
        if (length > readMaxBytes) {
          answer(new ConnectError(`message size ${length} is larger than configured readMaxBytes ${readMaxBytes}`, Code.ResourceExhausted));
          return;
        }
      }
      if (buffered < length) return;
      envelopes.push({ flags, data: take(length) });
      length = -1;
      if (envelopes.length === 2) {
        answer(envelopes);
        return;
      }
    }
  };
  const onEnd = () => {
    finish();
    // Node ends the readable side of a stream that was reset too (by the
    // body guard, or by a client that sent its message and then cancelled):
    // that is no request to serve, as Connect's handler never sees one.
    if (answered || wasReset(stream)) return;
    answer(length >= 0 || buffered > 0 ? new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument) : envelopes);
  };
  const finish = () => {
    watch?.done();
    stream.off("data", onData);
    stream.off("end", onEnd);
    stream.off("close", finish);
  };
  stream.on("data", onData);
  stream.once("end", onEnd);
  stream.once("close", finish);
}

/**
 * Whether the stream was reset, by either side, or destroyed. (Its rstCode
 * is no help: node sets it to NO_ERROR from the start.) A client's ordinary
 * END_STREAM closes only the request side: the stream is not closed then.
 */
function wasReset(stream: http2.ServerHttp2Stream): boolean {
  return stream.closed || stream.destroyed;
}
