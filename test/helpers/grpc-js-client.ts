import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const protoDir = fileURLToPath(new URL("../../proto", import.meta.url));

/**
 * Loads a service from the .proto files with @grpc/proto-loader, for clients
 * of @grpc/grpc-js: an implementation that shares no code with Connect.
 */
export function loadGrpcJsService(file: string, servicePath: string): grpc.ServiceClientConstructor {
  const definition = protoLoader.loadSync(file, {
    includeDirs: [protoDir],
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

/** Calls a unary method of a grpc-js client and resolves with its response. */
export function unary<T>(client: grpc.Client, method: string, request: object, metadata = new grpc.Metadata()): Promise<T> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, Function>)[method]!.bind(client);
    fn(request, metadata, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res)));
  });
}

/** Metadata naming the caller, as the chat server requires. */
export function as(username: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("authorization", username);
  return md;
}
