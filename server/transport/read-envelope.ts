import type * as http2 from "node:http2";

/**
 * Reads a request body that must be exactly one gRPC envelope of at most
 * readMaxBytes, and passes its flags and data on; any other body goes to the
 * fallback with the chunks read.
 */
export function readEnvelope(
  req: http2.Http2ServerRequest,
  readMaxBytes: number,
  fallback: (consumed: Buffer[]) => void,
  onEnvelope: (flags: number, data: Uint8Array, chunks: Buffer[]) => void,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  const stop = () => {
    req.off("data", onData);
    req.off("end", onEnd);
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
  req.on("data", onData);
  req.on("end", onEnd);
}
