import assert from "node:assert/strict";
import * as net from "node:net";
import { describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { createChatClient } from "../../client/chat-client.js";
import { openStream } from "../helpers/chat-stream.js";
import { openStalledStream } from "../helpers/raw-grpc.js";
import { redisTopologies, startRedisTopology } from "../helpers/redis-topology.js";
import { startServerProcess } from "../helpers/server-process.js";
import { startTestServer } from "../helpers/test-server.js";

const startMain = startServerProcess;

describe("the server process", () => {
  it("shuts down on SIGTERM: streams end UNAVAILABLE, exit code 0", async () => {
    const main = startMain(["--port", "0", "--web-port", "0", "--shutdown-grace-ms", "3000"], { LOG_LEVEL: "info" });
    const port = await main.listening;
    const url = `http://127.0.0.1:${port}`;
    const alice = await openStream(createChatClient(url, "alice"), "alice");
    const bob = await openStream(createChatClient(url, "bob"), "bob");
    const started = Date.now();
    main.child.kill("SIGTERM");
    const [aliceEnd, bobEnd, exit] = await Promise.all([alice.ended, bob.ended, main.exited]);
    assert.equal(aliceEnd?.code, Code.Unavailable);
    assert.match(aliceEnd?.rawMessage ?? "", /shutting down/);
    assert.equal(bobEnd?.code, Code.Unavailable);
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(Date.now() - started < 3000, "took the whole grace period: streams did not end");
    const messages = main.logs.map((l) => l.msg);
    for (const expected of ["signal received", "server shutting down", "session closed", "server stopped"]) {
      assert.ok(messages.includes(expected), `no "${expected}" line in ${JSON.stringify(messages)}`);
    }
    assert.equal(main.stderr(), "");
  });

  it("refuses a bad configuration with a clear message and exit code 2", async () => {
    const bad = startMain([], { PORT: "http" });
    assert.deepEqual(await bad.exited, { code: 2, signal: null });
    assert.match(bad.stderr(), /environment variable PORT: expected a whole number from 0 to 65535, got "http"/);
    const flag = startMain(["--queue-limit", "-5"]);
    assert.deepEqual(await flag.exited, { code: 2, signal: null });
    assert.match(flag.stderr(), /--queue-limit/);
    const clash = startMain(["--port", "50070", "--web-port", "50070"]);
    assert.deepEqual(await clash.exited, { code: 2, signal: null });
    assert.equal(clash.stderr(), "chat-server: --port and --web-port are both 50070: each needs a port of its own\n");
    const host = startMain(["--host", "no-such-host.invalid", "--port", "0", "--no-web"]);
    assert.deepEqual(await host.exited, { code: 2, signal: null });
    assert.match(host.stderr(), /^chat-server: --host \(HOST\) no-such-host\.invalid: /);
  });

  it("says in one line which port is taken, and exits 2", async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      for (const [args, flag] of [
        [["--port", String(port), "--web-port", "0"], "--port"],
        [["--port", "0", "--web-port", String(port)], "--web-port"],
        [["--port", "0", "--no-web", "--metrics-port", String(port)], "--metrics-port"],
      ] as const) {
        const main = startMain([...args]);
        assert.deepEqual(await main.exited, { code: 2, signal: null }, flag);
        const variable = flag.slice(2).toUpperCase().replaceAll("-", "_");
        assert.equal(main.stderr(), `chat-server: ${flag} (${variable}) ${port}: 127.0.0.1:${port} is already in use\n`);
      }
    } finally {
      taken.close();
    }
  });

  it("says in one line that Redis cannot be reached, and exits 2", async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const main = startMain(["--port", "0", "--no-web", "--redis", `redis://:secret@127.0.0.1:${port}`]);
    assert.deepEqual(await main.exited, { code: 2, signal: null });
    assert.match(
      main.stderr(),
      new RegExp(`^chat-server: --redis \\(REDIS_URL\\) redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}: cannot reach Redis \\(.*ECONNREFUSED.*\\)\\n$`),
    );
    assert.doesNotMatch(main.stderr(), /secret/);
  });

  it("says in one line that no seed of a Redis Cluster can be reached, and exits 2", async () => {
    const seeds: string[] = [];
    for (let i = 0; i < 2; i++) {
      const closed = net.createServer();
      await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
      // A server listening on a TCP port has an AddressInfo, not a pipe name.
      seeds.push(`127.0.0.1:${(closed.address() as net.AddressInfo).port}`);
      await new Promise((resolve) => closed.close(resolve));
    }
    const expected = new RegExp(`^chat-server: --redis-cluster \\(REDIS_CLUSTER\\) ${seeds.join(",").replaceAll(".", "\\.")}: cannot reach Redis \\(.+\\)\\n$`);
    // The flag, and the environment variable alone, say the same.
    for (const [args, env] of [
      [["--redis-cluster", seeds.join(",")], {}],
      [[], { REDIS_CLUSTER: seeds.join(",") }],
    ] as const) {
      const main = startMain(["--port", "0", "--no-web", ...args], env);
      // One that started anyway (the variable unheard) must not outlive the test.
      const exit = await Promise.race([main.exited, new Promise((resolve) => setTimeout(resolve, 10_000, "still running"))]);
      main.child.kill("SIGKILL");
      assert.deepEqual(exit, { code: 2, signal: null });
      assert.match(main.stderr(), expected);
    }
  });

  for (const kind of redisTopologies) {
    it(`runs in cluster mode on ${kind} as its flags say, and stops on SIGTERM`, async () => {
      const topology = await startRedisTopology(kind);
      const main = startMain(["--port", "0", "--no-web", ...topology.args]);
      try {
        const port = await Promise.race([
          main.listening,
          main.exited.then((exit) => Promise.reject(new Error(`exited ${JSON.stringify(exit)}: ${main.stderr()}`))),
        ]);
        const alice = await openStream(createChatClient(`http://127.0.0.1:${port}`, "alice"), "alice");
        // The process is a node of the cluster: another node on the same store sees alice online.
        const other = await startTestServer(topology.settings);
        try {
          assert.equal(await other.server.backend.isOnline("alice"), true);
        } finally {
          await other.stop();
        }
        main.child.kill("SIGTERM");
        assert.equal((await alice.ended)?.code, Code.Unavailable);
        assert.deepEqual(await main.exited, { code: 0, signal: null });
      } finally {
        // Failed half-way, it must not outlive the test.
        main.child.kill("SIGKILL");
        await topology.kill();
      }
    });
  }

  it("still says where it listens when its log is silent", async () => {
    const main = startMain(["--port", "0", "--web-port", "0", "--log-level", "silent"]);
    await new Promise<void>((resolve) => main.child.stderr.once("data", () => resolve()));
    assert.match(main.stderr(), /^chat-server: listening on 127\.0\.0\.1:\d+, chat page at http:\/\/127\.0\.0\.1:\d+\/\n$/);
    assert.deepEqual(main.logs, []);
    main.child.kill("SIGTERM");
    assert.deepEqual(await main.exited, { code: 0, signal: null });
  });

  it("logs where it listens once, the page's address included", async () => {
    const main = startMain(["--port", "0", "--web-port", "0"]);
    await main.listening;
    main.child.kill("SIGTERM");
    await main.exited;
    const mentions = main.logs.filter((l) => JSON.stringify(l).includes("http://127.0.0.1:"));
    assert.equal(mentions.length, 1, JSON.stringify(mentions));
    assert.equal(main.stderr(), "");
  });
});

describe("graceful shutdown with a client that does not cooperate", () => {
  it("refuses new streams while draining, and destroys what is left after the grace period", async () => {
    const t = await startTestServer({ shutdownGraceMs: 800 });
    // A client whose stream stays open: it stops reading, so even the final
    // status cannot reach it.
    const { session } = await openStalledStream(t.baseUrl, "stuck");
    const client = createChatClient(t.baseUrl, "late");
    const late = await openStream(client, "late");
    // More than the client's flow-control window: the server's writes block.
    for (let i = 0; i < 40; i++) await t.server.backend.send("late", "stuck", "x".repeat(4000));
    // Let the server write until flow control stops it.
    await new Promise((resolve) => setTimeout(resolve, 200));

    const started = Date.now();
    const stopping = t.stop();
    assert.equal((await late.ended)?.code, Code.Unavailable);
    // The connection has been told GOAWAY: a new stream on it is refused.
    await assert.rejects(openStream(client, "late2"));
    await stopping;
    const took = Date.now() - started;
    assert.ok(took >= 700 && took < 3000, `shutdown took ${took} ms, not about the grace period of 800 ms`);
    assert.equal(t.server.connections, 0);
    // Including "stuck", whose handler may never resume from its last write.
    assert.equal((await t.server.backend.stats()).users, 0);
    assert.ok(t.logs.some((l) => l.msg === "session closed" && l.user === "stuck"));
    session.destroy();
  });
});
