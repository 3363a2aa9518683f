import {
  create,
  fromBinary,
  toBinary,
  type DescEnum,
  type DescExtension,
  type DescFile,
  type DescMessage,
  type DescService,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImplSpec } from "@connectrpc/connect";
import { serviceSpec } from "./service-spec.js";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

// gRPC's own numbers for the codes an ErrorResponse carries.
const grpcNotFound = 5;
const grpcInvalidArgument = 3;

/**
 * What reflection knows: the services it lists and every file they need,
 * indexed by file name, by symbol and by extension.
 */
export interface ReflectionIndex {
  readonly serviceNames: readonly string[];
  fileByName(name: string): DescFile | undefined;
  fileBySymbol(symbol: string): DescFile | undefined;
  fileByExtension(extendee: string, number: number): DescFile | undefined;
  extensionNumbers(extendee: string): number[] | undefined;
  /** The serialized FileDescriptorProto of a file. */
  bytesOf(file: DescFile): Uint8Array;
}

/**
 * Indexes the given services and, transitively, the files they are declared
 * in and those files' imports.
 */
export function createReflectionIndex(services: readonly DescService[]): ReflectionIndex {
  const files = new Map<string, DescFile>();
  const symbols = new Map<string, DescFile>();
  const extensions = new Map<string, Map<number, DescFile>>();
  const bytes = new Map<DescFile, Uint8Array>();

  const addExtensions = (list: readonly DescExtension[], file: DescFile) => {
    for (const ext of list) {
      symbols.set(ext.typeName, file);
      const byNumber = extensions.get(ext.extendee.typeName) ?? new Map<number, DescFile>();
      byNumber.set(ext.number, file);
      extensions.set(ext.extendee.typeName, byNumber);
    }
  };
  const addEnums = (list: readonly DescEnum[], file: DescFile) => {
    for (const e of list) symbols.set(e.typeName, file);
  };
  const addMessages = (list: readonly DescMessage[], file: DescFile) => {
    for (const m of list) {
      symbols.set(m.typeName, file);
      addMessages(m.nestedMessages, file);
      addEnums(m.nestedEnums, file);
      addExtensions(m.nestedExtensions, file);
    }
  };
  const addFile = (file: DescFile) => {
    const name = file.proto.name;
    if (files.has(name)) return;
    files.set(name, file);
    addMessages(file.messages, file);
    addEnums(file.enums, file);
    addExtensions(file.extensions, file);
    for (const service of file.services) {
      symbols.set(service.typeName, file);
      for (const method of service.methods) {
        symbols.set(`${service.typeName}.${method.name}`, file);
      }
    }
    file.dependencies.forEach(addFile);
  };
  for (const service of services) addFile(service.file);

  return {
    serviceNames: services.map((s) => s.typeName).sort(),
    fileByName: (name) => files.get(name),
    fileBySymbol: (symbol) => symbols.get(symbol.startsWith(".") ? symbol.slice(1) : symbol),
    fileByExtension: (extendee, number) => extensions.get(extendee)?.get(number),
    extensionNumbers: (extendee) => {
      if (!symbols.has(extendee)) return undefined;
      return [...(extensions.get(extendee)?.keys() ?? [])].sort((a, b) => a - b);
    },
    bytesOf(file) {
      let encoded = bytes.get(file);
      if (encoded === undefined) {
        encoded = toBinary(FileDescriptorProtoSchema, file.proto);
        bytes.set(file, encoded);
      }
      return encoded;
    },
  };
}

/**
 * Answers one reflection request. The set remembers which files this stream
 * has already sent, so that each file travels once per stream, as clients
 * such as grpcurl expect: a requested file comes with every import not sent
 * before.
 */
export function answerReflection(
  index: ReflectionIndex,
  req: v1.ServerReflectionRequest,
  sent: Set<string>,
): MessageInitShape<typeof v1.ServerReflectionResponseSchema> {
  const base = { validHost: req.host, originalRequest: req };
  const files = (file: DescFile | undefined, what: string) => {
    if (file === undefined) {
      return {
        ...base,
        messageResponse: {
          case: "errorResponse" as const,
          value: { errorCode: grpcNotFound, errorMessage: `${what} not found` },
        },
      };
    }
    const fileDescriptorProto: Uint8Array[] = [];
    const visit = (f: DescFile) => {
      if (sent.has(f.proto.name)) return;
      sent.add(f.proto.name);
      fileDescriptorProto.push(index.bytesOf(f));
      f.dependencies.forEach(visit);
    };
    // The requested file always comes back, even when it was sent before.
    sent.delete(file.proto.name);
    visit(file);
    return { ...base, messageResponse: { case: "fileDescriptorResponse" as const, value: { fileDescriptorProto } } };
  };

  const request = req.messageRequest;
  switch (request.case) {
    case "listServices":
      return {
        ...base,
        messageResponse: {
          case: "listServicesResponse",
          value: { service: index.serviceNames.map((name) => ({ name })) },
        },
      };
    case "fileByFilename":
      return files(index.fileByName(request.value), `file ${JSON.stringify(request.value)}`);
    case "fileContainingSymbol":
      return files(index.fileBySymbol(request.value), `symbol ${JSON.stringify(request.value)}`);
    case "fileContainingExtension":
      return files(
        index.fileByExtension(request.value.containingType, request.value.extensionNumber),
        `extension ${request.value.extensionNumber} of ${JSON.stringify(request.value.containingType)}`,
      );
    case "allExtensionNumbersOfType": {
      const numbers = index.extensionNumbers(request.value);
      if (numbers === undefined) {
        return files(undefined, `type ${JSON.stringify(request.value)}`);
      }
      return {
        ...base,
        messageResponse: {
          case: "allExtensionNumbersResponse",
          value: { baseTypeName: request.value, extensionNumber: numbers },
        },
      };
    }
    default:
      return {
        ...base,
        messageResponse: {
          case: "errorResponse",
          value: { errorCode: grpcInvalidArgument, errorMessage: "the request names no known reflection call" },
        },
      };
  }
}

/**
 * Creates gRPC server reflection, both grpc.reflection.v1 and the older
 * grpc.reflection.v1alpha that many tools still ask for first. The two are
 * identical on the wire, so v1alpha messages are re-read as v1 and the answer
 * is re-read back: one implementation serves both.
 */
export function createReflectionServices(index: ReflectionIndex): ServiceImplSpec[] {
  return [
    serviceSpec(v1.ServerReflection, {
      async *serverReflectionInfo(requests) {
        const sent = new Set<string>();
        for await (const req of requests) {
          yield answerReflection(index, req, sent);
        }
      },
    }),
    serviceSpec(v1alpha.ServerReflection, {
      async *serverReflectionInfo(requests) {
        const sent = new Set<string>();
        for await (const alphaReq of requests) {
          const req = fromBinary(v1.ServerReflectionRequestSchema, toBinary(v1alpha.ServerReflectionRequestSchema, alphaReq));
          const answer = answerReflection(index, req, sent);
          const bytes = toBinary(v1.ServerReflectionResponseSchema, create(v1.ServerReflectionResponseSchema, answer));
          yield fromBinary(v1alpha.ServerReflectionResponseSchema, bytes);
        }
      },
    }),
  ];
}
