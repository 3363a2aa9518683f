import assert from "node:assert/strict";
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { loadGrpcJsService, serverStream, unary } from "../helpers/grpc-js-client.js";
import { startTestServer } from "../helpers/test-server.js";

// The README's recipes, run as they are written there: a recipe that fails
// as typed fails here first.

const root = fileURLToPath(new URL("../..", import.meta.url));
const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

/** The first ```sh block after a heading. */
function shBlock(heading: string): string[] {
  const section = readme.slice(readme.indexOf(`\n## ${heading}`));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block !== undefined, `no sh block under "${heading}"`);
  return block.split("\n").filter((line) => line.trim() !== "" && !line.trimStart().startsWith("#"));
}

/** Splits a command line the way the shell does for the quoting these recipes use. */
function words(line: string): string[] {
  return [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

interface GrpcurlCall {
  headers: [string, string][];
  data: unknown;
  address: string;
  service: string;
  method: string;
}

/** Reads the flags of a grpcurl line that makes a call. */
function parseGrpcurl(line: string): GrpcurlCall {
  const args = words(line);
  assert.equal(args[0], "grpcurl");
  const call: Partial<GrpcurlCall> & { headers: [string, string][] } = { headers: [] };
  const positional: string[] = [];
  for (let i = 1; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "-plaintext") continue;
    if (arg === "-H") {
      const [name = "", ...value] = args[++i]!.split(":");
      call.headers.push([name.trim(), value.join(":").trim()]);
    } else if (arg === "-d") {
      call.data = JSON.parse(args[++i]!);
    } else {
      positional.push(arg);
    }
  }
  const [address = "", path = ""] = positional;
  const [service = "", method = ""] = path.split("/");
  return { ...call, address, service, method } as GrpcurlCall;
}

describe("the README's recipes, as typed", { timeout: 90_000 }, () => {
  it("the grpcurl session", async () => {
    const t = await startTestServer();
    const ChatService = loadGrpcJsService("chat/v1/chat.proto", "chat.v1.ChatService");
    const clients: grpc.Client[] = [];
    const streams: { events: unknown[]; call: grpc.ClientReadableStream<{ events: unknown[] }> }[] = [];
    try {
      const session = shBlock("grpcurl").filter((line) => line.includes(" -d "));
      assert.ok(session.length >= 8, `the session has ${session.length} calls`);
      for (const line of session) {
        const call = parseGrpcurl(line);
        assert.equal(call.address, "localhost:50051", line);
        assert.equal(call.service, "chat.v1.ChatService", line);
        // The README's address, on this test's port.
        const client = new ChatService(`localhost:${t.port}`, grpc.credentials.createInsecure());
        clients.push(client);
        const metadata = new grpc.Metadata();
        for (const [name, value] of call.headers) metadata.set(name, value);
        const rpc = call.method.charAt(0).toLowerCase() + call.method.slice(1);
        if (call.method === "Connect") {
          const stream = serverStream<{ events: unknown[] }>(client, rpc, call.data as object, metadata);
          const entry = { events: [] as unknown[], call: stream };
          stream.on("data", (res: { events: unknown[] }) => entry.events.push(...res.events));
          stream.on("error", () => {});
          streams.push(entry);
          await new Promise<void>((resolve, reject) => {
            stream.once("data", () => resolve());
            stream.once("error", reject);
          });
        } else {
          await assert.doesNotReject(unary(client, rpc, call.data as object, metadata), line);
        }
      }
      const texts = (i: number) => JSON.stringify(streams[i]?.events);
      const deadline = Date.now() + 5000;
      const expected: [number, RegExp][] = [
        [0, /"text":"hello"/],
        [0, /"text":"hi alice"/],
        [1, /"text":"hello"/],
      ];
      for (const [i, text] of expected) {
        while (!text.test(texts(i))) {
          assert.ok(Date.now() < deadline, `stream ${i} got no ${text}: ${texts(i)}`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    } finally {
      for (const s of streams) s.call.cancel();
      for (const c of clients) c.close();
      await t.stop();
    }
  });

  describe("the cluster", () => {
    let cluster: ChildProcessWithoutNullStreams | undefined;
    let clusterOutput = "";
    after(async () => {
      if (cluster?.exitCode === null) {
        const exited = new Promise((resolve) => cluster!.once("exit", resolve));
        process.kill(-cluster.pid!, "SIGTERM");
        await exited;
      }
    });

    it("starts Redis and three nodes, and three clients chat across them", async () => {
      const lines = shBlock("Cluster mode: several nodes over Redis");
      const background = lines.filter((line) => /&\s*(#.*)?$/.test(line));
      const clients = lines.filter((line) => line.startsWith("npm run client"));
      assert.equal(background.length, 4);
      assert.equal(clients.length, 3);
      // One shell runs the background lines, as a user's terminal would, in
      // a process group of its own so that everything it started can be stopped.
      cluster = spawn("bash", ["-c", `${background.join("\n")}\nwait`], { cwd: root, detached: true, stdio: ["pipe", "pipe", "pipe"] });
      cluster.stdout.on("data", (c: Buffer) => (clusterOutput += c.toString()));
      cluster.stderr.on("data", (c: Buffer) => (clusterOutput += c.toString()));
      const ports = background.flatMap((line) => [...(/--port (5\d+)/.exec(line) ?? [])].slice(1));
      assert.deepEqual(ports, ["50051", "50052", "50053"]);
      for (const port of ports) {
        const health = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
        const deadline = Date.now() + 30_000;
        for (;;) {
          assert.equal(cluster.exitCode, null, `the recipe's shell exited:\n${clusterOutput}`);
          const status = await health.check({}).then(
            (r) => r.status,
            () => undefined,
          );
          if (status === HealthCheckResponse_ServingStatus.SERVING) break;
          assert.ok(Date.now() < deadline, `node on ${port} did not start:\n${clusterOutput}`);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
      // The recipe's own processes answered: its Redis and each node say so
      // in their output (a server already on one of these ports would not).
      assert.match(clusterOutput, /Ready to accept connections/);
      for (const port of ports)
        assert.match(clusterOutput, new RegExp(`"port":${port},.*"msg":"server listening"`), `node ${port} did not log that it listens`);
      assert.doesNotMatch(clusterOutput, /already in use|EADDRINUSE/);
      const [aliceLine, bobLine, carolLine] = clients as [string, string, string];
      const bob = runLine(bobLine);
      const carol = runLine(carolLine);
      await Promise.all([bob.waitFor(/^\* connected as bob$/), carol.waitFor(/^\* connected as carol$/)]);
      const alice = runLine(aliceLine);
      await alice.waitFor(/^\* connected as alice$/);
      alice.child.stdin.write("/send bob hi bob, from node 1\n/send carol hi carol, from node 1\n");
      await bob.waitFor(/<alice> hi bob, from node 1$/);
      await carol.waitFor(/<alice> hi carol, from node 1$/);
      bob.child.stdin.write("/send alice hi alice, from node 2\n");
      await alice.waitFor(/<bob> hi alice, from node 2$/);
      for (const client of [alice, bob, carol]) client.child.stdin.end();
      assert.deepEqual(await Promise.all([alice.exited, bob.exited, carol.exited]), [0, 0, 0]);
    });
  });
});

/** Runs one line of a recipe in bash, with a pipe for its stdin and its output kept. */
function runLine(line: string) {
  const child = spawn("bash", ["-c", line], { cwd: root, stdio: ["pipe", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr.on("data", (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    child,
    exited,
    output: () => output,
    async waitFor(pattern: RegExp, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!output.split("\n").some((l) => pattern.test(l))) {
        assert.ok(Date.now() < deadline, `no line matching ${pattern} from \`${line}\`:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
  };
}
