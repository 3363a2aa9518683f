import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const protoDir = fileURLToPath(new URL("../../proto", import.meta.url));

/** The contract as first released, for clients written before anything was added to it. */
export const firstContractProtoDir = fileURLToPath(new URL("../fixtures/first-contract/proto", import.meta.url));

/**
 * Loads a service from the .proto files with @grpc/proto-loader, for clients
 * of @grpc/grpc-js: an implementation that shares no code with Connect.
 * includeDir chooses the version of the contract (the current one by default).
 */
export function loadGrpcJsService(file: string, servicePath: string, includeDir = protoDir): grpc.ServiceClientConstructor {
  const definition = protoLoader.loadSync(file, {
    includeDirs: [includeDir],
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  let node: unknown = grpc.loadPackageDefinition(definition);
  for (const part of servicePath.split(".")) {
    node = (node as Record<string, unknown>)[part];
  }
  return node as grpc.ServiceClientConstructor;
}

/**
 * A method of a grpc-js client by name. grpc-js adds one method per RPC at
 * run time, from the loaded .proto, which its types cannot express.
 */
function method<F>(client: grpc.Client, name: string): F {
  const fn = (client as unknown as Record<string, F | undefined>)[name];
  if (typeof fn !== "function") throw new Error(`the client has no method ${name}`);
  return fn.bind(client) as F;
}

/** Calls a unary method of a grpc-js client and resolves with its response. */
export function unary<T>(client: grpc.Client, name: string, request: object, metadata = new grpc.Metadata()): Promise<T> {
  return new Promise((resolve, reject) => {
    const fn = method<(req: object, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res: T) => void) => void>(client, name);
    fn(request, metadata, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

/** Opens a server-streaming call of a grpc-js client. */
export function serverStream<T>(
  client: grpc.Client,
  name: string,
  request: object,
  metadata = new grpc.Metadata(),
  options: grpc.CallOptions = {},
): grpc.ClientReadableStream<T> {
  return method<(req: object, md: grpc.Metadata, o: grpc.CallOptions) => grpc.ClientReadableStream<T>>(client, name)(request, metadata, options);
}

/** Opens a bidirectional call of a grpc-js client. */
export function duplexStream<Req, Res>(client: grpc.Client, name: string): grpc.ClientDuplexStream<Req, Res> {
  return method<() => grpc.ClientDuplexStream<Req, Res>>(client, name)();
}

/** Metadata naming the caller, as the chat server requires. */
export function as(username: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("authorization", username);
  return md;
}
