import assert from "node:assert/strict";
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { constants } from "node:os";
import { dirname, join, relative } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { decodeJwt } from "jose";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { ServerReflection, type ServerReflectionRequest } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { parseConfig } from "../../server/ops/parse-config.js";
import { eventually } from "../helpers/eventually.js";
import { loadGrpcJsService, serverStream, unary } from "../helpers/grpc-js-client.js";
import { startTestServer } from "../helpers/test-server.js";

// The recipes of README.md and of every page in docs/, run as they are
// written there: a recipe that fails as typed fails here first. Every fenced
// code block of those files is a recipe: a test below runs it (it claims the
// block with runnable()), or the line above its opening fence says why it is
// not run, as `<!-- not run: why -->`. A block that is neither fails the
// first test, so no recipe can be added without one or the other.

const root = fileURLToPath(new URL("../..", import.meta.url));
// docs/benchmarks-features.md is a report that `npm run bench:features`
// writes, as BENCHMARKS.md is `npm run bench`'s: its blocks are the
// scenarios' parameters, not recipes, and it is rewritten rather than edited.
const reports = new Set(["docs/benchmarks-features.md"]);
const docFiles = [
  "README.md",
  ...readdirSync(join(root, "docs"))
    .filter((name) => name.endsWith(".md"))
    .map((name) => `docs/${name}`)
    .filter((file) => !reports.has(file)),
];

/** One fenced code block of a doc. */
interface Block {
  file: string;
  /** The text of the nearest heading above it. */
  heading: string;
  /** The fence's language: sh, ts, yaml… */
  lang: string;
  /** Why it is not run, from the comment above its fence; undefined for a recipe a test must run. */
  notRun: string | undefined;
  /** Its first line's number in the file, for messages. */
  line: number;
  lines: string[];
}

/** Every fenced code block of a markdown file, in order. */
function blocksOf(file: string): Block[] {
  const lines = readFileSync(join(root, file), "utf8").split("\n");
  const blocks: Block[] = [];
  let heading = "";
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const fence = /^```(\S*)/.exec(line);
    if (fence === null) {
      if (line.startsWith("#")) heading = line.replace(/^#+\s*/, "");
      continue;
    }
    const end = lines.indexOf("```", i + 1);
    assert.ok(end > i, `${file}:${i + 1}: a code block that is never closed`);
    const above = i > 0 ? /^<!-- not run: (.+) -->$/.exec(lines[i - 1]!) : null;
    blocks.push({ file, heading, lang: fence[1] ?? "", notRun: above?.[1], line: i + 1, lines: lines.slice(i + 1, end) });
    i = end;
  }
  return blocks;
}

const blocks = docFiles.flatMap(blocksOf);
const claimed = new Set<Block>();

/**
 * The index-th block in lang under a heading that starts with the given
 * text, which a test here runs. Called when the file loads, so that the
 * check that every block is run or marked knows them all.
 */
function runnable(file: string, heading: string, lang: string, index = 0): Block {
  const block = blocks.filter((b) => b.file === file && b.heading.startsWith(heading) && b.lang === lang)[index];
  assert.ok(block !== undefined, `no ${lang} block ${index} under "${heading}" in ${file}`);
  assert.equal(block.notRun, undefined, `${file}:${block.line} is marked not run, but a test runs it`);
  claimed.add(block);
  return block;
}

/** A block marked not run, which a test reads without running it. */
function notRun(file: string, heading: string, lang: string): Block {
  const block = blocks.find((b) => b.file === file && b.heading.startsWith(heading) && b.lang === lang);
  assert.ok(block?.notRun !== undefined, `no ${lang} block marked not run under "${heading}" in ${file}`);
  return block;
}

/** A block's command lines: blank lines and comments left out. */
function commands(block: Block): string[] {
  return block.lines.filter((line) => line.trim() !== "" && !line.trimStart().startsWith("#"));
}

/** Splits a command line the way the shell does for the quoting these recipes use. */
function words(line: string): string[] {
  return [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

interface GrpcurlCall {
  headers: [string, string][];
  data: unknown;
  address: string;
  /** The method's full name, or what list and describe are given. */
  path: string;
  verb: "call" | "list" | "describe";
}

/** Reads the flags of a grpcurl line: a call, list or describe. */
function parseGrpcurl(line: string): GrpcurlCall {
  const args = words(line);
  assert.equal(args[0], "grpcurl");
  const call: GrpcurlCall = { headers: [], data: {}, address: "", path: "", verb: "call" };
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
  const [address = "", verbOrPath = "", rest = ""] = positional;
  if (verbOrPath === "list" || verbOrPath === "describe") return { ...call, address, verb: verbOrPath, path: rest };
  return { ...call, address, path: verbOrPath };
}

/** The recipe test claims these at load, so the first test knows them. */
const recipes = {
  quickStart: runnable("README.md", "Quick start", "sh"),
  tourClients: runnable("README.md", "A five-minute tour", "sh", 0),
  tourTyped: runnable("README.md", "A five-minute tour", "text"),
  grpcurl: runnable("README.md", "A five-minute tour", "sh", 1),
  token: runnable("docs/security.md", "Signed identities", "sh"),
  secured: runnable("docs/security.md", "A secured server and a client", "sh"),
  cluster: runnable("docs/cluster.md", "Three nodes on one machine", "sh"),
  sharedPort: runnable("docs/cluster.md", "Several nodes on one machine", "sh"),
  staleWrite: runnable("docs/upstream.md", "1. Node.js 20", "ts"),
  staleWriteBare: runnable("docs/upstream.md", "1. Node.js 20", "js"),
  longDeadline: runnable("docs/upstream.md", "4. Connect: a deadline longer", "js"),
  listeners: runnable("docs/upstream.md", "6. Node.js and Connect", "js"),
  resetLimit: runnable("docs/upstream.md", "7. Node.js (nghttp2)", "js"),
  compatForEveryStream: runnable("docs/upstream.md", '8. Node.js: a "stream" listener', "js"),
  handedConnections: runnable("docs/upstream.md", "9. Node.js: an HTTP/1.1 server", "js"),
  handshakeTimeout: runnable("docs/upstream.md", "10. Node.js: a TLS handshake", "js"),
};

describe("the docs' recipes, as typed", { timeout: 240_000 }, () => {
  it("runs every code block of README.md and docs/*.md, or says above it why not", () => {
    const unaccounted = blocks.filter((b) => !claimed.has(b) && b.notRun === undefined).map((b) => `${b.file}:${b.line} (${b.lang}, "${b.heading}")`);
    assert.deepEqual(unaccounted, [], "blocks neither run here nor marked <!-- not run: why -->");
    assert.ok(docFiles.includes("docs/operations.md") && claimed.size === Object.keys(recipes).length);
  });

  it("names only npm scripts that exist", () => {
    const scripts = Object.keys((JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts);
    const named = new Set(
      docFiles.flatMap((file) => [...readFileSync(join(root, file), "utf8").matchAll(/npm run (?:--silent )?([a-z][\w:-]*)/g)].map((m) => m[1]!)),
    );
    assert.ok(named.size > 5);
    assert.deepEqual([...named].filter((name) => !scripts.includes(name)).sort(), [], "npm scripts the docs name that package.json lacks");
  });

  it("names only files that exist, and links only to headings that exist", () => {
    const missing: string[] = [];
    for (const file of docFiles) {
      const text = readFileSync(join(root, file), "utf8");
      // Repository paths in backticks, relative to the root; build output and generated certificates are not in it.
      for (const [, path] of text.matchAll(/`((?:server|client|web|test|bench|proto|gen|docs|\.ci)\/[\w./-]*)`/g)) {
        if (!existsSync(join(root, path!))) missing.push(`${file}: \`${path}\``);
      }
      // Relative links, with their anchors.
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        const [path = "", anchor] = target!.split("#");
        const resolved = path === "" ? file : relative(root, join(root, dirname(file), path));
        if (!existsSync(join(root, resolved))) missing.push(`${file}: link to ${target}`);
        else if (anchor !== undefined && resolved.endsWith(".md") && !anchorsOf(resolved).has(anchor))
          missing.push(`${file}: link to ${target} (no such heading)`);
      }
    }
    assert.deepEqual(missing, []);
  });

  it("the quick start's server, with the tour's two terminal clients, the page and the grpcurl session on it", async () => {
    const [install, test] = commands(recipes.quickStart).map((line) => line.replace(/\s+#.*$/, ""));
    assert.equal(install, "npm ci && npm start");
    assert.equal(test, "npm test");
    // npm ci and npm test are CI's own steps; what a user then has is npm start.
    assert.match(readFileSync(join(root, ".ci/run"), "utf8"), /^npm ci\b[^\n]*\nnpm test$/m);
    const server = startGroup("npm start");
    try {
      const listening = await server.waitFor(/"msg":"server listening"/);
      const readme = readFileSync(join(root, "README.md"), "utf8");
      const page = (JSON.parse(listening) as { web: string }).web;
      assert.equal(page, "http://127.0.0.1:8080/");
      assert.ok(readme.includes(`\`${page}\``), "the README names the page the server prints");
      assert.match(listening, /"host":"127\.0\.0\.1","port":50051,/);
      const answer = await fetch(page);
      assert.equal(answer.status, 200);
      assert.match(await answer.text(), /<html/i);
      await tour();
      await grpcurlSession();
      // Ctrl-C signals npm's whole process group: the server stops cleanly,
      // and the shell's $? is 130, as the README says (npm either exits 130
      // or dies of the signal, which a shell reports as 128 + 2).
      const end = await server.stop("SIGINT");
      assert.equal(end.code ?? 128 + constants.signals[end.signal!], 130, JSON.stringify(end));
      assert.match(server.output(), /"msg":"server stopped"/);
    } finally {
      await server.stop("SIGKILL");
    }
  });

  it("the token, and the secured server and client of docs/security.md", async () => {
    const [tokenLine = ""] = commands(recipes.token);
    const token = runLine(tokenLine);
    assert.equal(await token.exited, 0);
    assert.equal(decodeJwt(token.output().trim()).sub, "alice");

    const [devCert = "", serverLine = "", clientLine = ""] = commands(recipes.secured);
    assert.equal(await runLine(devCert).exited, 0);
    const server = startGroup(serverLine);
    try {
      const listening = await server.waitFor(/"msg":"server listening"/);
      assert.match(listening, /"port":50051,"pid":\d+,"tls":true,"web":"https:\/\/127\.0\.0\.1:50051\/","cleartextWeb":"http:\/\/127\.0\.0\.1:8080\/"/);
      const alice = runLine(clientLine);
      await alice.waitFor(/^\* connected as alice$/);
      alice.child.stdin.write("/send alice over TLS, with a token\n");
      await alice.waitFor(/@alice <alice> over TLS, with a token$/);
      alice.child.stdin.end();
      assert.equal(await alice.exited, 0);
    } finally {
      await server.stop("SIGTERM");
    }
  });

  describe("the cluster", () => {
    let cluster: ChildProcessWithoutNullStreams | undefined;
    let clusterOutput = "";
    /** Stops the three nodes' recipe, its Redis and nodes with it, if it still runs. */
    const stopCluster = async () => {
      // A shell that a signal ended has a signalCode, and still no exitCode.
      if (cluster !== undefined && cluster.exitCode === null && cluster.signalCode === null) {
        const exited = new Promise((resolve) => cluster!.once("exit", resolve));
        process.kill(-cluster.pid!, "SIGTERM");
        await exited;
      }
    };
    after(stopCluster);

    it("starts Redis and three nodes, and three clients chat across them", async () => {
      const lines = commands(recipes.cluster);
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
        await eventually(
          async () => {
            assert.equal(cluster?.exitCode, null, `the recipe's shell exited:\n${clusterOutput}`);
            const status = await health.check({}).then(
              (r) => r.status,
              () => undefined,
            );
            return status === HealthCheckResponse_ServingStatus.SERVING;
          },
          () => `node on ${port} did not start:\n${clusterOutput}`,
          30_000,
        );
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

    it("starts Redis and two nodes on one port with --reuse-port, each with its own metrics port, and two clients chat through it", async () => {
      const lines = commands(recipes.sharedPort);
      const background = lines.filter((line) => /&\s*(#.*)?$/.test(line));
      const clients = lines.filter((line) => line.startsWith("npm run client"));
      assert.equal(background.length, 3);
      assert.equal(clients.length, 2);
      const metricsPorts = background.flatMap((line) => [...(/--metrics-port (\d+)/.exec(line) ?? [])].slice(1).map(Number));
      assert.deepEqual(metricsPorts, [9101, 9102]);
      // The three nodes' recipe holds Redis's port and the defaults until its processes are gone.
      await stopCluster();
      for (const port of [6379, 50051, 8080, ...metricsPorts]) await eventually(() => refused(port), `port ${port} is still taken`, 15_000);
      const shared = startGroup(`${background.join("\n")}\nwait`);
      try {
        // Each node answers on its own metrics port, ready once it listens.
        for (const port of metricsPorts) {
          await eventually(
            async () => {
              assert.equal(shared.child.exitCode, null, `the recipe's shell exited:\n${shared.output()}`);
              return (
                (await fetch(`http://127.0.0.1:${port}/readyz`).then(
                  (r) => r.status,
                  () => 0,
                )) === 200
              );
            },
            () => `the node with metrics on ${port} did not become ready:\n${shared.output()}`,
            30_000,
          );
        }
        // Two processes of the recipe listen on the one port and the one page.
        const listening = (shared.output().match(/^\{.*"msg":"server listening".*\}$/gm) ?? []).map((line) => JSON.parse(line) as Record<string, unknown>);
        assert.deepEqual(
          listening.map(({ port, web }) => [port, web]),
          [
            [50051, "http://127.0.0.1:8080/"],
            [50051, "http://127.0.0.1:8080/"],
          ],
        );
        assert.equal(new Set(listening.map((entry) => entry.pid)).size, 2);
        assert.match(shared.output(), /Ready to accept connections/);
        assert.doesNotMatch(shared.output(), /already in use|EADDRINUSE/);
        // Whichever node each client's connection reaches, they chat: the nodes share Redis.
        const [aliceLine, bobLine] = clients as [string, string];
        const bob = runLine(bobLine);
        await bob.waitFor(/^\* connected as bob$/);
        const alice = runLine(aliceLine);
        await alice.waitFor(/^\* connected as alice$/);
        alice.child.stdin.write("/send bob hi bob, on one port\n");
        await bob.waitFor(/<alice> hi bob, on one port$/);
        bob.child.stdin.write("/send alice hi alice\n");
        await alice.waitFor(/<bob> hi alice$/);
        for (const client of [alice, bob]) client.child.stdin.end();
        assert.deepEqual(await Promise.all([alice.exited, bob.exited]), [0, 0]);
      } finally {
        await shared.stop("SIGTERM");
      }
    });
  });

  it("the reproductions of docs/upstream.md, each as its text says to run it", async () => {
    // Each is a file at the repository's root (the first imports ./gen/…),
    // run with this Node, which is the npm scripts' Node 26.10: there the
    // stale write of report 1 is back, as its table says.
    const cases: [Block, string, RegExp][] = [
      [recipes.staleWrite, "mts", /^handler's finally ran: false\n$/],
      [recipes.staleWriteBare, "mjs", /^the pending write's callback: called without an error\n$/],
      [recipes.longDeadline, "mjs", /^aborted after 50 ms: true ConnectError: \[deadline_exceeded\] the operation timed out\n$/],
      [recipes.listeners, "mjs", /^(?:\d[\d_,]* listeners: \d+\.\d\d µs to add and remove each\n){3}$/],
      // About 6 s: 1,000 ÷ (the ~180 cancellations a second the interval manages − 33).
      [recipes.resetLimit, "mjs", /^GOAWAY 2 after \d+\.\d s\n$/],
      [recipes.compatForEveryStream, "mjs", /^the compatibility layer built a request too: \/x\n$/],
      [recipes.handedConnections, "mjs", /^still open after 2 s: true\n$/],
      [recipes.handshakeTimeout, "mjs", /^ERR_TLS_HANDSHAKE_TIMEOUT\nopen after 1\.5 s: true\n$/],
    ];
    for (const [block, ext, expected] of cases) {
      const file = join(root, `repro-${process.pid}.${ext}`);
      writeFileSync(file, block.lines.join("\n"));
      try {
        const args = ext === "mts" ? ["--import", "tsx", file] : [file];
        const run = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        run.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
        const code = await new Promise((resolve) => run.on("exit", resolve));
        assert.equal(code, 0, `${block.file}:${block.line}`);
        assert.match(stdout, expected, `${block.file}:${block.line}`);
      } finally {
        rmSync(file, { force: true });
      }
    }
  });

  it("the probes of docs/operations.md: its manifest's flags parse, and the metrics port answers its paths", async () => {
    const manifest = notRun("docs/operations.md", "Liveness and readiness probes", "yaml").lines.join("\n");
    const command = JSON.parse(/command: (\[.*\])/.exec(manifest)?.[1] ?? "[]") as string[];
    const args = command.slice(command.indexOf("dist/server/main.js") + 1);
    assert.ok(command.includes("dist/server/main.js") && args.length > 0, manifest);
    const config = parseConfig(args, {});
    assert.match(manifest, new RegExp(`name: metrics, containerPort: ${config.metricsPort} `));
    assert.match(manifest, new RegExp(`name: grpc, containerPort: ${config.port} `));
    const paths = [...manifest.matchAll(/httpGet: \{ path: (\S+), port: metrics \}/g)].map((m) => m[1]);
    assert.deepEqual(paths, ["/healthz", "/readyz"]);
    const t = await startTestServer({ metricsPort: 0 });
    try {
      for (const path of paths) assert.equal((await fetch(`http://127.0.0.1:${t.server.metricsAddress?.port}${path}`)).status, 200, path);
    } finally {
      await t.stop();
    }
  });
});

/** The anchors GitHub gives a markdown file's headings. */
function anchorsOf(file: string): Set<string> {
  const anchors = new Set<string>();
  for (const [, heading] of readFileSync(join(root, file), "utf8").matchAll(/^#+ (.+)$/gm)) {
    // GitHub's slugs: lower case, punctuation dropped, spaces as hyphens.
    anchors.add(
      heading!
        .toLowerCase()
        .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "")
        .replace(/ /g, "-"),
    );
  }
  return anchors;
}

/** The tour's two terminal clients, typing what the README says, in its order. */
async function tour(): Promise<void> {
  const clients = new Map(
    commands(recipes.tourClients).map((line) => {
      const user = /--user (\w+)$/.exec(line)?.[1];
      assert.ok(user !== undefined, line);
      return [user, runLine(line)] as const;
    }),
  );
  assert.deepEqual([...clients.keys()], ["alice", "bob"]);
  for (const [user, client] of clients) await client.waitFor(new RegExp(`^\\* connected as ${user}$`));
  for (const typed of recipes.tourTyped.lines) {
    const [, user = "", text = ""] = /^(\w+)> (.*)$/.exec(typed) ?? [];
    const client = clients.get(user);
    assert.ok(client !== undefined, typed);
    // Each command answers with one line: what it did, or why it failed.
    const answered = client.count(answer);
    client.child.stdin.write(`${text}\n`);
    await client.waitFor(answer, 30_000, answered + 1);
  }
  for (const client of clients.values()) await client.waitFor(/#team <alice> hello, team$/);
  await clients.get("alice")!.waitFor(/@alice <bob> hi alice$/);
  for (const client of clients.values()) {
    assert.doesNotMatch(client.output(), /^! /m);
    client.child.stdin.end();
    assert.equal(await client.exited, 0);
  }
}

/** The answer of a terminal client's command: a line about what it did, or an error. */
const answer = /^(\* (created group|joined|left|sending to|sent to) |! )/;

/** The README's grpcurl lines, through @grpc/grpc-js, on the address they name. */
async function grpcurlSession(): Promise<void> {
  const lines = commands(recipes.grpcurl).map(parseGrpcurl);
  assert.ok(lines.length >= 11, `the session has ${lines.length} lines`);
  const ChatService = loadGrpcJsService("chat/v1/chat.proto", "chat.v1.ChatService");
  const reflection = createClient(ServerReflection, createGrpcTransport({ baseUrl: "http://localhost:50051" }));
  const ask = async (request: ServerReflectionRequest["messageRequest"]) => {
    async function* one() {
      yield { messageRequest: request };
    }
    for await (const res of reflection.serverReflectionInfo(one())) return res.messageResponse;
    assert.fail("no reflection answer");
  };
  const clients: grpc.Client[] = [];
  const streams: { events: unknown[]; call: grpc.ClientReadableStream<{ events: unknown[] }> }[] = [];
  const answers: [GrpcurlCall, unknown][] = [];
  try {
    for (const call of lines) {
      assert.equal(call.address, "localhost:50051");
      if (call.verb === "list") {
        const answer = await ask({ case: "listServices", value: "" });
        assert.ok(answer.case === "listServicesResponse" && answer.value.service.some((s) => s.name === "chat.v1.ChatService"));
        continue;
      }
      if (call.verb === "describe") {
        const answer = await ask({ case: "fileContainingSymbol", value: call.path });
        assert.ok(answer.case === "fileDescriptorResponse" && answer.value.fileDescriptorProto.length > 0, call.path);
        continue;
      }
      const [service = "", method = ""] = call.path.split("/");
      const rpc = method.charAt(0).toLowerCase() + method.slice(1);
      const metadata = new grpc.Metadata();
      for (const [name, value] of call.headers) metadata.set(name, value);
      if (service === "grpc.health.v1.Health") {
        const Health = loadGrpcJsService("grpc/health/v1/health.proto", service);
        const client = new Health(call.address, grpc.credentials.createInsecure());
        clients.push(client);
        assert.deepEqual(await unary(client, rpc, call.data as object, metadata), { status: "SERVING" });
        continue;
      }
      assert.equal(service, "chat.v1.ChatService");
      const client = new ChatService(call.address, grpc.credentials.createInsecure());
      clients.push(client);
      if (method === "Connect") {
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
        answers.push([call, await unary(client, rpc, call.data as object, metadata)]);
      }
    }
    // The retried send answered the same message both times, and the history lists it once, newest first.
    const sends = answers.filter(([call]) => call.path.endsWith("/SendMessage") && JSON.stringify(call.data).includes("requestId")).map(([, answer]) => answer);
    assert.equal(sends.length, 2);
    assert.deepEqual(sends[1], sends[0]);
    const history = answers.find(([call]) => call.path.endsWith("/ListMessages"))?.[1] as { messages: { text: string }[] } | undefined; // grpc-js answers plain objects
    assert.deepEqual(
      history?.messages.map((m) => m.text),
      ["once", "hello"],
    );
    const texts = (i: number) => JSON.stringify(streams[i]?.events);
    const expected: [number, RegExp][] = [
      [0, /"text":"hello"/],
      [0, /"text":"hi carol"/],
      [1, /"text":"hello"/],
      [1, /"text":"once"/],
    ];
    const missing = () => expected.filter(([i, text]) => !text.test(texts(i)));
    await eventually(
      () => missing().length === 0,
      () =>
        missing()
          .map(([i, text]) => `stream ${i} got no ${text}: ${texts(i)}`)
          .join("\n"),
    );
    assert.equal(texts(1).split('"text":"once"').length - 1, 1, "the retried send reached dave once");
  } finally {
    for (const s of streams) s.call.cancel();
    for (const c of clients) c.close();
  }
}

/** Runs one line of a recipe in bash, with a pipe for its stdin and its output kept. */
function runLine(line: string, options: { detached?: boolean } = {}) {
  const child = spawn("bash", ["-c", line], { cwd: root, stdio: ["pipe", "pipe", "pipe"], detached: options.detached ?? false });
  let output = "";
  child.stdout.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr.on("data", (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const lines = () => output.split("\n");
  return {
    child,
    exited,
    output: () => output,
    /** How many lines of its output match. */
    count: (pattern: RegExp) => lines().filter((l) => pattern.test(l)).length,
    /** Resolves with the atLeast-th line that matches, once it has been written. */
    async waitFor(pattern: RegExp, timeoutMs = 30_000, atLeast = 1): Promise<string> {
      const matching = () => lines().filter((l) => pattern.test(l));
      await eventually(
        () => matching().length >= atLeast,
        () => `no line matching ${pattern} from \`${line}\`:\n${output}`,
        timeoutMs,
      );
      return matching()[atLeast - 1]!;
    },
  };
}

/** Whether nothing listens on a loopback port: a connection to it is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code === "ECONNREFUSED"));
  });
}

/**
 * Runs a line that starts a server, in a process group of its own as a
 * terminal's foreground job is, so that a signal reaches npm and the server
 * under it together, as Ctrl-C does.
 */
function startGroup(line: string) {
  const run = runLine(line, { detached: true });
  type End = { code: number | null; signal: NodeJS.Signals | null };
  let result: End | undefined;
  const ended = new Promise<End>((resolve) =>
    run.child.on("exit", (code, signal) => {
      result = { code, signal };
      resolve(result);
    }),
  );
  return {
    ...run,
    /** Signals the whole group, unless it has ended, and resolves with how its shell ended. */
    async stop(signal: NodeJS.Signals) {
      if (result === undefined) process.kill(-run.child.pid!, signal);
      return ended;
    },
  };
}
