import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create, createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { duplexStream, loadGrpcJsService, serverStream, unary } from "../helpers/grpc-js-client.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

interface ReflectionResponse {
  validHost: string;
  messageResponse: string;
  fileDescriptorResponse?: { fileDescriptorProto: Buffer[] };
  listServicesResponse?: { service: { name: string }[] };
  errorResponse?: { errorCode: number; errorMessage: string };
  allExtensionNumbersResponse?: { baseTypeName: string; extensionNumber: number[] };
}

/** One reflection stream, asked one question at a time, as grpcurl does. */
function reflectionSession(client: grpc.Client) {
  const call = duplexStream<object, ReflectionResponse>(client, "serverReflectionInfo");
  const pending: ((res: ReflectionResponse) => void)[] = [];
  call.on("data", (res: ReflectionResponse) => pending.shift()?.(res));
  call.on("error", () => {});
  return {
    ask(request: object): Promise<ReflectionResponse> {
      return new Promise((resolve) => {
        pending.push(resolve);
        call.write({ host: "localhost", ...request });
      });
    },
    end: () => call.end(),
  };
}

describe("operations: health and server reflection, from @grpc/grpc-js", () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.stop());

  for (const version of ["v1", "v1alpha"] as const) {
    it(`answers reflection ${version} well enough to describe every service`, async () => {
      const Reflection = loadGrpcJsService(`grpc/reflection/${version}/reflection.proto`, `grpc.reflection.${version}.ServerReflection`);
      const client = new Reflection(`127.0.0.1:${t.port}`, grpc.credentials.createInsecure());
      const session = reflectionSession(client);

      const list = await session.ask({ listServices: "" });
      assert.equal(list.validHost, "localhost");
      assert.deepEqual(
        list.listServicesResponse?.service.map((s) => s.name),
        ["chat.v1.ChatService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"],
      );

      // What `grpcurl describe chat.v1.ChatService` asks: the file with the
      // symbol, and its imports; they must form a complete, valid set.
      const bySymbol = await session.ask({ fileContainingSymbol: "chat.v1.ChatService" });
      const files = bySymbol.fileDescriptorResponse!.fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes));
      assert.deepEqual(files.map((f) => f.name).sort(), ["chat/v1/chat.proto", "google/protobuf/duration.proto", "google/protobuf/timestamp.proto"]);
      // Like grpc-go, the server sends the file first and its imports after;
      // protobuf-es wants imports first.
      const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: [...files].reverse() }));
      const service = registry.getService("chat.v1.ChatService");
      assert.deepEqual(
        service?.methods.map((m) => m.name),
        ["Connect", "CreateGroupChat", "JoinGroupChat", "LeaveGroupChat", "SendMessage", "ListChannels", "ListGroupMembers", "ListMessages"],
      );
      assert.equal(service?.methods[0]?.methodKind, "server_streaming");
      assert.deepEqual(
        registry.getMessage("chat.v1.ChatMessage")?.fields.map((f) => f.name),
        ["id", "sender", "channel", "text", "sent_at"],
      );

      // A file already sent on this stream is not sent again as an import.
      const method = await session.ask({ fileContainingSymbol: "chat.v1.ChatService.SendMessage" });
      assert.equal(method.fileDescriptorResponse?.fileDescriptorProto.length, 1);
      const message = await session.ask({ fileContainingSymbol: "chat.v1.Event" });
      assert.equal(fromBinary(FileDescriptorProtoSchema, message.fileDescriptorResponse!.fileDescriptorProto[0]!).name, "chat/v1/chat.proto");
      const byName = await session.ask({ fileByFilename: "grpc/health/v1/health.proto" });
      assert.equal(fromBinary(FileDescriptorProtoSchema, byName.fileDescriptorResponse!.fileDescriptorProto[0]!).package, "grpc.health.v1");

      const missing = await session.ask({ fileContainingSymbol: "chat.v1.Nope" });
      assert.equal(missing.errorResponse?.errorCode, grpc.status.NOT_FOUND);
      assert.match(missing.errorResponse?.errorMessage ?? "", /chat\.v1\.Nope/);
      const noFile = await session.ask({ fileByFilename: "nope.proto" });
      assert.equal(noFile.errorResponse?.errorCode, grpc.status.NOT_FOUND);
      const numbers = await session.ask({ allExtensionNumbersOfType: "chat.v1.ChatMessage" });
      assert.deepEqual(numbers.allExtensionNumbersResponse, { baseTypeName: "chat.v1.ChatMessage", extensionNumber: [] });
      const noExtension = await session.ask({ fileContainingExtension: { containingType: "chat.v1.ChatMessage", extensionNumber: 100 } });
      assert.equal(noExtension.errorResponse?.errorCode, grpc.status.NOT_FOUND);
      session.end();
      client.close();
    });
  }

  it("reports health, and NOT_SERVING to watchers before shutting down", async () => {
    const Health = loadGrpcJsService("grpc/health/v1/health.proto", "grpc.health.v1.Health");
    const client = new Health(`127.0.0.1:${t.port}`, grpc.credentials.createInsecure());
    assert.deepEqual(await unary(client, "check", { service: "" }), { status: "SERVING" });
    assert.deepEqual(await unary(client, "check", { service: "chat.v1.ChatService" }), { status: "SERVING" });
    await assert.rejects(unary(client, "check", { service: "nope" }), (err: grpc.ServiceError) => err.code === grpc.status.NOT_FOUND);

    const watch = serverStream<{ status: string }>(client, "watch", { service: "" });
    const seen: string[] = [];
    const first = new Promise<void>((resolve) =>
      watch.on("data", (res: { status: string }) => {
        seen.push(res.status);
        resolve();
      }),
    );
    watch.on("error", () => {});
    const status = new Promise<grpc.StatusObject>((resolve) => watch.on("status", resolve));
    await first;
    await t.stop();
    assert.deepEqual(seen, ["SERVING", "NOT_SERVING"]);
    assert.equal((await status).code, grpc.status.UNAVAILABLE);
    client.close();
  });
});
