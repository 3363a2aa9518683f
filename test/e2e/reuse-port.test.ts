import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createChatClient } from "../../client/chat-client.js";
import { type OpenStream, openStream } from "../helpers/chat-stream.js";
import { eventually } from "../helpers/eventually.js";
import { startServerProcess } from "../helpers/server-process.js";

type ServerProcess = ReturnType<typeof startServerProcess>;

/** The port a process logged for a line of its log ("metrics listening", say), once it has. */
function loggedPort(server: ServerProcess, msg: string): number {
  const entry = server.logs.find((l) => l.msg === msg);
  assert.ok(entry !== undefined, `no "${msg}" line in ${JSON.stringify(server.logs)}`);
  return entry.port as number; // The server logs its ports as numbers.
}

/** The port a process listens on, or a failure with what it said if it exits first. */
async function listeningOrExit(server: ServerProcess): Promise<number> {
  const exit = server.exited.then((how) => assert.fail(`exited ${JSON.stringify(how)} before listening: ${server.stderr()}`));
  return Promise.race([server.listening, exit]);
}

/** How a process exits, or a failure if it listens instead. */
async function exitOrListening(server: ServerProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const listens = server.listening.then((port) => assert.fail(`listened on ${port}, where it should have been refused`));
  return Promise.race([server.exited, listens]);
}

/** The users whose sessions a process logged as opened. */
function sessionsOf(server: ServerProcess): unknown[] {
  return server.logs.filter((l) => l.msg === "session opened").map((l) => l.user);
}

describe("--reuse-port", () => {
  it("lets two processes listen on one gRPC port and one web port, spreads connections over both, and shares no metrics port", {
    timeout: 60_000,
  }, async () => {
    const started: ServerProcess[] = [];
    const start = (args: string[]) => {
      const server = startServerProcess(args);
      started.push(server);
      return server;
    };
    const streams: OpenStream[] = [];
    try {
      const first = start(["--port", "0", "--web-port", "0", "--metrics-port", "0", "--reuse-port"]);
      const port = await listeningOrExit(first);
      const web = new URL(String(first.logs.find((l) => l.msg === "server listening")?.web)).port;
      const metrics = loggedPort(first, "metrics listening");
      const second = start(["--port", String(port), "--web-port", web, "--metrics-port", "0", "--reuse-port"]);
      assert.equal(await listeningOrExit(second), port);
      assert.equal(new URL(String(second.logs.find((l) => l.msg === "server listening")?.web)).port, web);
      // In memory, each process holds users of its own, and says so.
      for (const server of [first, second])
        assert.ok(server.logs.some((l) => l.msg === "--reuse-port without --redis: the processes sharing this port share no state"));

      // Each client is a connection of its own, from a port of its own: the
      // kernel hashes each to one of the two, so that sixteen all on one
      // process would happen once in 32,768 runs.
      const users = Array.from({ length: 16 }, (_, i) => `user${i}`);
      for (const user of users) streams.push(await openStream(createChatClient(`http://127.0.0.1:${port}`, user), user));
      await eventually(
        () => sessionsOf(first).length + sessionsOf(second).length === users.length,
        () => `sessions logged: ${JSON.stringify([sessionsOf(first), sessionsOf(second)])}`,
      );
      assert.deepEqual([...sessionsOf(first), ...sessionsOf(second)].toSorted(), users.toSorted());
      assert.ok(sessionsOf(first).length > 0 && sessionsOf(second).length > 0, JSON.stringify([sessionsOf(first), sessionsOf(second)]));

      // A process that does not ask to share is refused, and says which port in one line.
      const grpcTaken = start(["--port", String(port), "--no-web"]);
      assert.deepEqual(await exitOrListening(grpcTaken), { code: 2, signal: null });
      assert.equal(grpcTaken.stderr(), `chat-server: --port (PORT) ${port}: 127.0.0.1:${port} is already in use\n`);
      const webTaken = start(["--port", "0", "--web-port", web]);
      assert.deepEqual(await exitOrListening(webTaken), { code: 2, signal: null });
      assert.equal(webTaken.stderr(), `chat-server: --web-port (WEB_PORT) ${web}: 127.0.0.1:${web} is already in use\n`);
      // The metrics port is never shared, --reuse-port or not: a scrape reaches one known process.
      const metricsTaken = start(["--port", String(port), "--web-port", web, "--metrics-port", String(metrics), "--reuse-port"]);
      assert.deepEqual(await exitOrListening(metricsTaken), { code: 2, signal: null });
      assert.equal(metricsTaken.stderr(), `chat-server: --metrics-port (METRICS_PORT) ${metrics}: 127.0.0.1:${metrics} is already in use\n`);
      // The two sharing processes still listen.
      assert.deepEqual([first.child.exitCode, second.child.exitCode], [null, null]);
    } finally {
      for (const stream of streams) stream.cancel();
      await Promise.all(started.map((server) => server.stop()));
    }
  });
});
