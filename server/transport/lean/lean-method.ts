import type { DescMessage } from "@bufbuild/protobuf";
import type { HandlerContext, Interceptor, MethodImplSpec } from "@connectrpc/connect";
import { createMethodSerializationLookup, type MethodSerializationLookup, validateReadWriteMaxBytes } from "@connectrpc/connect/protocol";

/** The kinds of method the lean path serves: one request message each. */
export type LeanSpec = Extract<MethodImplSpec, { kind: "unary" | "server_streaming" }>;

/** Connect's request gate (UniversalHandlerOptions.requestGate), which runs before a call's body is read. */
export type RequestGate = (context: HandlerContext) => void | Promise<void>;

/** A method the lean path can serve: its implementation, interceptors and serializers. */
export interface LeanMethod {
  spec: LeanSpec;
  interceptors: Interceptor[];
  serialization: MethodSerializationLookup<DescMessage, DescMessage>;
  /** Connect's requestGate of the route: it runs before the request is decompressed or parsed. */
  requestGate: RequestGate | undefined;
}

/**
 * Prepares a method for the lean path, or returns undefined for the kinds
 * it does not serve (client and bidi streams).
 */
export function createLeanMethod(spec: MethodImplSpec, interceptors: Interceptor[], readMaxBytes: number, requestGate?: RequestGate): LeanMethod | undefined {
  if (spec.kind !== "unary" && spec.kind !== "server_streaming") return undefined;
  const limits = validateReadWriteMaxBytes(readMaxBytes, undefined, undefined);
  const serialization = createMethodSerializationLookup(spec.method, undefined, undefined, { readMaxBytes: limits.readMaxBytes, writeMaxBytes: 0xffffffff });
  return { spec, interceptors, serialization, requestGate };
}
