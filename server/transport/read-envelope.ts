import type * as http2 from "node:http2";

/**
 * Reads a request body that must be exactly one gRPC envelope of at most
 * readMaxBytes, and passes its flags and data on; any other body goes to the
 * fallback with the chunks read.
 *
 * It reads the HTTP/2 stream itself, not the compatibility layer's request:
 * that request is a second Readable that the stream's chunks are pushed
 * through, and Node attaches it to the stream only once it is read. Handed
 * to Connect, the request still works: it has seen the stream's end, and a
 * body too large for this path is paused through the request, which resumes
 * the stream when Connect reads it.
 */
export function readEnvelope(
  req: http2.Http2ServerRequest,
  readMaxBytes: number,
  fallback: (consumed: Buffer[]) => void,
  onEnvelope: (flags: number, data: Uint8Array, chunks: Buffer[]) => void,
): void {
  const stream = req.stream;
  const chunks: Buffer[] = [];
  let size = 0;
  const stop = () => {
    stream.off("data", onData);
    stream.off("end", onEnd);
  };
  const onData = (chunk: Buffer) => {
    chunks.push(chunk);
    size += chunk.length;
    if (size > readMaxBytes + 5) {
      // Too large for this path: Connect reads the rest and says why.
      stop();
      req.pause();
      fallback(chunks);
    }
  };
  const onEnd = () => {
    stop();
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    if (body.length < 5 || (body[0]! & ~1) !== 0 || body.readUInt32BE(1) !== body.length - 5) {
      fallback(chunks);
      return;
    }
    onEnvelope(body[0]!, body.subarray(5), chunks);
  };
  stream.on("data", onData);
  stream.on("end", onEnd);
}
