import type * as http2 from "node:http2";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { ConnectError, type ContextValues, type HandlerContext, type MethodImplSpec } from "@connectrpc/connect";
import { invokeUnaryImplementation } from "@connectrpc/connect/protocol";
import type { ServiceRegistration } from "./routes.js";

/** A unary method the lean path can serve, with its interceptors. */
interface UnaryMethod {
  spec: MethodImplSpec & { kind: "unary" };
  interceptors: ServiceRegistration["interceptors"];
}

/** Called when the lean path hands a request back to Connect, with the body bytes it already read. */
export type Fallback = (consumed: Buffer[]) => void;

/**
 * Serves one request on the lean path, or hands it to the fallback.
 * Returns false, without touching the request, when the path does not apply.
 */
export type GrpcUnaryPath = (
  req: http2.Http2ServerRequest,
  res: http2.Http2ServerResponse,
  values: ContextValues,
  fallback: Fallback,
) => boolean;

const contentTypes = new Set(["application/grpc", "application/grpc+proto"]);

/**
 * Creates the lean path for unary gRPC calls.
 *
 * Connect's protocol handler runs every call through a pipeline of async
 * iterables and abort signals; profiled here, that machinery is most of the
 * cost of a unary call (about 650 µs of CPU a call on this machine, a third
 * of grpc-js's throughput). This path serves the common case directly: an
 * HTTP/2 gRPC call, uncompressed, with no deadline, whose body is exactly one
 * message within readMaxBytes that decodes. It runs the very same method
 * implementation behind the very same interceptors, through Connect's own
 * invokeUnaryImplementation, and writes the response as Connect would.
 * Anything else (compression, a deadline, a malformed or oversized body) goes
 * to Connect's handler with the bytes read so far, so that every edge keeps
 * Connect's behaviour.
 *
 * Unlike Connect, the handler's signal is the server's shutdown signal, not
 * one per call that also aborts when the client cancels: no unary handler of
 * this server reads it, as each runs to completion synchronously.
 */
export function createGrpcUnaryPath(
  services: readonly ServiceRegistration[],
  readMaxBytes: number,
  shutdownSignal: AbortSignal,
): GrpcUnaryPath {
  const methods = new Map<string, UnaryMethod>();
  for (const { spec, interceptors } of services) {
    for (const method of Object.values(spec.methods)) {
      if (method.kind === "unary") {
        methods.set(`/${spec.service.typeName}/${method.method.name}`, { spec: method, interceptors });
      }
    }
  }

  return (req, res, values, fallback) => {
    const method = methods.get(req.url);
    const headers = req.headers;
    if (
      method === undefined ||
      req.method !== "POST" ||
      !contentTypes.has(String(headers["content-type"])) ||
      (headers["grpc-encoding"] !== undefined && headers["grpc-encoding"] !== "identity") ||
      headers["grpc-timeout"] !== undefined
    ) {
      return false;
    }
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
      if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) {
        fallback(chunks);
        return;
      }
      let input;
      try {
        input = fromBinary(method.spec.method.input, body.subarray(5));
      } catch {
        fallback(chunks);
        return;
      }
      const ctx = handlerContext(method, req, values, shutdownSignal);
      invokeUnaryImplementation(method.spec, ctx, input, method.interceptors).then(
        (output) => {
          const bytes = toBinary(method.spec.method.output, output);
          const frame = Buffer.allocUnsafe(5 + bytes.length);
          frame[0] = 0;
          frame.writeUInt32BE(bytes.length, 1);
          frame.set(bytes, 5);
          res.writeHead(200, { ...Object.fromEntries(ctx.responseHeader), "content-type": "application/grpc+proto" });
          res.addTrailers({ ...Object.fromEntries(ctx.responseTrailer), "grpc-status": "0" });
          res.end(frame);
        },
        (error: unknown) => {
          const err = ConnectError.from(error);
          // Headers, then the status in trailers, as Connect sends it. (The
          // compat API cannot send a trailers-only response: it would end the
          // stream with an empty DATA frame, which grpc-js rejects.)
          res.writeHead(200, { ...Object.fromEntries(ctx.responseHeader), "content-type": "application/grpc+proto" });
          res.addTrailers({
            ...Object.fromEntries(err.metadata),
            "grpc-status": String(err.code),
            "grpc-message": encodeURIComponent(err.rawMessage),
          });
          res.end();
        },
      );
    };
    req.on("data", onData);
    req.on("end", onEnd);
    return true;
  };
}

function handlerContext(method: UnaryMethod, req: http2.Http2ServerRequest, values: ContextValues, signal: AbortSignal): HandlerContext {
  const requestHeader = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith(":") || value === undefined) continue;
    requestHeader.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  return {
    method: method.spec.method,
    service: method.spec.method.parent,
    requestMethod: "POST",
    protocolName: "grpc",
    url: `http://${req.authority}${req.url}`,
    signal,
    timeoutMs: () => undefined,
    requestHeader,
    responseHeader: new Headers(),
    responseTrailer: new Headers(),
    values,
  };
}
