import { create, type DescFile, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import type { ReflectionIndex } from "./reflection-index.js";

// gRPC's own numbers for the codes an ErrorResponse carries.
const grpcNotFound = 5;
const grpcInvalidArgument = 3;

/**
 * Answers one reflection request. The set remembers which files this stream
 * has already sent, so that each file travels once per stream, as clients
 * such as grpcurl expect: a requested file comes with every import not sent
 * before.
 */
// Longer than 60 lines: one case per kind of reflection request, each short.
function answerReflection(
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

/** Both versions of gRPC server reflection, served from one index. */
export interface ReflectionServices {
  v1: ServiceImpl<typeof v1.ServerReflection>;
  v1alpha: ServiceImpl<typeof v1alpha.ServerReflection>;
}

/**
 * Creates gRPC server reflection, both grpc.reflection.v1 and the older
 * grpc.reflection.v1alpha that many tools still ask for first. The two are
 * identical on the wire, so v1alpha messages are re-read as v1 and the answer
 * is re-read back: one implementation serves both.
 */
export function createReflectionServices(index: ReflectionIndex): ReflectionServices {
  return {
    v1: {
      async *serverReflectionInfo(requests) {
        const sent = new Set<string>();
        for await (const req of requests) {
          yield answerReflection(index, req, sent);
        }
      },
    },
    v1alpha: {
      async *serverReflectionInfo(requests) {
        const sent = new Set<string>();
        for await (const alphaReq of requests) {
          const req = fromBinary(v1.ServerReflectionRequestSchema, toBinary(v1alpha.ServerReflectionRequestSchema, alphaReq));
          const answer = answerReflection(index, req, sent);
          const bytes = toBinary(v1.ServerReflectionResponseSchema, create(v1.ServerReflectionResponseSchema, answer));
          yield fromBinary(v1alpha.ServerReflectionResponseSchema, bytes);
        }
      },
    },
  };
}
