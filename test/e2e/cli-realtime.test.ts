import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { formatMembership } from "../../client/chat-cli.js";
import { EventSchema, LeaveReason } from "../../gen/chat/v1/chat_pb.js";
import { type CliProcess, spawnCliProcess } from "../helpers/cli-process.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

// What a test started, ended after it even when it fails, so that a failure
// does not leave processes and sockets that keep the run from finishing.
const clients: CliProcess[] = [];
const proxies: TcpProxy[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) {
    if (client.process.exitCode === null && client.process.signalCode === null) client.process.kill();
  }
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
});

/** Starts a terminal client, to be ended after the test. */
function spawnClient(username: string, serverUrl: string): CliProcess {
  const client = spawnCliProcess(username, serverUrl);
  clients.push(client);
  return client;
}

/** Types a command and waits for the line that answers it, printed after it. */
async function say(client: CliProcess, command: string, answer: RegExp): Promise<string> {
  const after = client.lines.length;
  client.send(command);
  return client.waitFor(answer, { after });
}

/** The lines a client printed after the given count that match. */
const printed = (client: CliProcess, pattern: RegExp, after = 0) => client.lines.slice(after).filter((line) => pattern.test(line));

/** The lines a client printed after the given count, with the times of messages left out. */
const linesAfter = (client: CliProcess, after: number) => client.lines.slice(after).map((line) => line.replace(/^\d\d:\d\d:\d\d /, ""));

describe("the terminal client's membership lines and /who", { timeout: 30_000 }, () => {
  let t: TestServer;
  before(async () => {
    // Pages of two: /who must follow next_page_token to list three members.
    t = await startTestServer({ listPageSize: 2 });
  });
  after(() => t.stop());

  it("prints who joins and leaves a group it is in, and lists the members with /who", async () => {
    const [alice, bob, carol] = ["alice", "bob", "carol"].map((name) => spawnClient(name, t.baseUrl)) as [CliProcess, CliProcess, CliProcess];
    await Promise.all([alice, bob, carol].map((c) => c.waitFor(/^\* connected as /)));
    await say(alice, "/create team", /^\* created group #team$/);
    const marks = { alice: alice.lines.length, bob: bob.lines.length, carol: carol.lines.length };
    await say(bob, "/join team", /^\* joined #team$/);
    await alice.waitFor(/^\* bob joined #team$/, { after: marks.alice });
    await say(carol, "/join team", /^\* joined #team$/);
    await Promise.all([alice.waitFor(/^\* carol joined #team$/, { after: marks.alice }), bob.waitFor(/^\* carol joined #team$/, { after: marks.bob })]);

    await say(alice, "/who team", /^\* #team: alice, bob, carol$/);
    await say(bob, "/who nothing", /^! NOT_FOUND: /);
    await say(bob, "/who", /^! \/who needs an argument: \/who <group>$/);

    await say(bob, "/leave team", /^\* left #team$/);
    await Promise.all([alice.waitFor(/^\* bob left #team$/, { after: marks.alice }), carol.waitFor(/^\* bob left #team$/, { after: marks.carol })]);
    await say(bob, "/who team", /^! PERMISSION_DENIED: /);
    // A message after the leave comes after the leave line: the events are in order with the messages.
    await say(carol, "/send team still here", /^\* sent to team$/);
    await alice.waitFor(/#team <carol> still here$/, { after: marks.alice });
    assert.ok(
      alice.lines.findIndex((line) => /^\* bob left #team$/.test(line)) < alice.lines.findIndex((line) => /#team <carol> still here$/.test(line)),
      alice.lines.join("\n"),
    );

    carol.send("/quit");
    assert.equal(await carol.end(), 0);
    await alice.waitFor(/^\* carol left #team \(disconnected\)$/, { after: marks.alice });
    await say(alice, "/who team", /^\* #team: alice$/);

    // One's own joins and leaves are said by the commands that made them, once.
    assert.deepEqual(printed(alice, /alice (joined|left)/), []);
    assert.deepEqual(printed(bob, /bob (joined|left)/), []);
    assert.equal(printed(bob, /carol/, marks.bob).length, 1, bob.lines.join("\n"));
    await Promise.all([alice.end(), bob.end()]);
  });

  it("says why a member left, and when the user itself was removed", () => {
    const left = (username: string, reason: LeaveReason, detail = "") =>
      create(EventSchema, { kind: { case: "memberLeft", value: { group: "team", username, reason, detail } } });
    assert.equal(formatMembership(left("bob", LeaveReason.LEFT), "alice"), "* bob left #team");
    assert.equal(formatMembership(left("bob", LeaveReason.UNSPECIFIED), "alice"), "* bob left #team");
    assert.equal(formatMembership(left("bob", LeaveReason.DISCONNECTED), "alice"), "* bob left #team (disconnected)");
    assert.equal(
      formatMembership(left("bob", LeaveReason.CUT_OFF, "4096 events were waiting to be read"), "alice"),
      "* bob left #team (cut off: 4096 events were waiting to be read)",
    );
    assert.equal(formatMembership(left("alice", LeaveReason.GROUP_DELETED), "alice"), "* you are no longer in #team (the group was deleted)");
    assert.equal(formatMembership(left("alice", LeaveReason.LEFT), "alice"), undefined);
  });
});

describe("the terminal client's history", { timeout: 30_000 }, () => {
  let t: TestServer;
  before(async () => {
    // Pages of three: /join and /history must follow next_page_token.
    t = await startTestServer({ listPageSize: 3 });
  });
  after(() => t.stop());

  /** A history line: the day and time of the server, then the message as a live one prints. */
  const historyLine = /^ {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d /;
  const history = (client: CliProcess, after: number) => client.lines.slice(after).map((line) => line.replace(historyLine, "  "));

  it("prints a group's earlier messages on /join, and the current channel's with /history [n]", async () => {
    const [alice, bob] = ["alice", "bob"].map((name) => spawnClient(name, t.baseUrl)) as [CliProcess, CliProcess];
    await Promise.all([alice, bob].map((c) => c.waitFor(/^\* connected as /)));
    await say(alice, "/create team", /^\* created group #team$/);
    for (const n of [1, 2, 3, 4]) await say(alice, `/send team earlier ${n}`, new RegExp(`#team <alice> earlier ${n}$`));
    await say(alice, "/send bob just for you", /^\* sent to bob$/);
    await bob.waitFor(/@bob <alice> just for you$/);

    const joined = bob.lines.length;
    await say(bob, "/join team", /^ {2}.* #team <alice> earlier 4$/);
    assert.deepEqual(history(bob, joined), [
      "* joined #team",
      "* history of #team: the last 4 messages",
      "  #team <alice> earlier 1",
      "  #team <alice> earlier 2",
      "  #team <alice> earlier 3",
      "  #team <alice> earlier 4",
    ]);
    // The server's time of each, as the live lines show it.
    const live = alice.lines.find((line) => line.endsWith("#team <alice> earlier 4"));
    assert.ok(
      bob.lines.some((line) => live !== undefined && line.endsWith(live)),
      `${live} in\n${bob.lines.join("\n")}`,
    );

    await say(bob, "/history", /^! no current channel: pick one with \/to <channel>$/);
    await say(bob, "/to team", /^\* sending to team$/);
    await say(bob, "/history 0", /^! \/history takes a count of messages from 1 to 1000, got "0"$/);
    let mark = bob.lines.length;
    await say(bob, "/history 2", /^ {2}.* earlier 4$/);
    assert.deepEqual(history(bob, mark), [
      "* history of #team: the last 2 messages (more before: /history <n>)",
      "  #team <alice> earlier 3",
      "  #team <alice> earlier 4",
    ]);
    await say(bob, "from bob", /^\d\d:\d\d:\d\d #team <bob> from bob$/);
    mark = bob.lines.length;
    await say(bob, "/history 5", /^ {2}.* from bob$/);
    assert.deepEqual(history(bob, mark), [
      "* history of #team: the last 5 messages",
      "  #team <alice> earlier 1",
      "  #team <alice> earlier 2",
      "  #team <alice> earlier 3",
      "  #team <alice> earlier 4",
      "  #team <bob> from bob",
    ]);

    // Direct messages: both ways, the one the user sent too.
    await say(bob, "/send alice and back to you", /^\* sent to alice$/);
    await say(bob, "/to alice", /^\* sending to alice$/);
    mark = bob.lines.length;
    await say(bob, "/history", /^ {2}.* and back to you$/);
    assert.deepEqual(history(bob, mark), ["* history of @alice: the last 2 messages", "  @bob <alice> just for you", "  @alice <bob> and back to you"]);
    assert.deepEqual(await Promise.all([alice.end(), bob.end()]), [0, 0]);
  });
});

describe("the terminal client after a dropped connection", { timeout: 60_000 }, () => {
  let t: TestServer;
  let proxy: TcpProxy;
  before(async () => {
    t = await startTestServer({ resumeGraceMs: 5000 });
  });
  after(() => t.stop());

  /** Starts a client through a fresh proxy, and one straight to the server. */
  async function start(server: TestServer, names: [string, string]): Promise<[CliProcess, CliProcess]> {
    proxy = await startTcpProxy(server.port);
    proxies.push(proxy);
    const cut = spawnClient(names[0], `http://127.0.0.1:${proxy.port}`);
    const other = spawnClient(names[1], server.baseUrl);
    await Promise.all([cut.waitFor(/^\* connected as /), other.waitFor(/^\* connected as /)]);
    return [cut, other];
  }

  it("resumes its session and prints what it missed once", async () => {
    const [dana, eve] = await start(t, ["dana", "eve"]);
    await say(dana, "/create room", /^\* created group #room$/);
    await say(eve, "/join room", /^\* joined #room$/);
    await dana.waitFor(/^\* eve joined #room$/);
    await say(eve, "/send dana before the cut", /^\* sent to dana$/);
    await dana.waitFor(/@dana <eve> before the cut$/);

    const mark = dana.lines.length;
    proxy.cut();
    await dana.waitFor(/^\* connection lost; resuming…$/, { after: mark });
    await say(eve, "/send dana while you were away", /^\* sent to dana$/);
    await say(eve, "/send room to the room meanwhile", /^\* sent to room$/);
    proxy.restore();
    await dana.waitFor(/^\* resumed \(nothing lost\)$/, { after: mark });
    await dana.waitFor(/#room <eve> to the room meanwhile$/, { after: mark });

    // The resumed session takes calls again, on a connection the client made anew.
    await say(dana, "/who room", /^\* #room: dana, eve$/);
    await say(dana, "/send eve back", /^\* sent to eve$/);
    await eve.waitFor(/@eve <dana> back$/);
    await say(eve, "/send dana welcome back", /^\* sent to dana$/);
    await dana.waitFor(/@dana <eve> welcome back$/, { after: mark });

    // Each missed event once, after the resume line, and nothing received before the cut again.
    assert.deepEqual(linesAfter(dana, mark), [
      "* connection lost; resuming…",
      "* resumed (nothing lost)",
      "@dana <eve> while you were away",
      "#room <eve> to the room meanwhile",
      "* #room: dana, eve",
      "* sent to eve",
      "@dana <eve> welcome back",
    ]);
    // A goodbye ends the session at once: the name is free again, not held for the grace.
    dana.send("/quit");
    assert.deepEqual(await Promise.all([dana.end(), eve.end()]), [0, 0]);
    // The server hears of the goodbye a moment after the client exits (on a busy
    // machine, after a new connect may have come): free within half the grace, not after it.
    const quitAt = Date.now();
    for (;;) {
      const danaAgain = spawnClient("dana", t.baseUrl);
      try {
        await danaAgain.waitFor(/^\* connected as dana$/);
        assert.equal(await danaAgain.end(), 0);
        break;
      } catch (error) {
        if (Date.now() - quitAt > 2500) throw error;
      }
    }
  });

  it("says how many events the server could no longer replay, prints them from history, and counts them for the next resume", async () => {
    // The server keeps one delivered event for a resume.
    const forgetful = await startTestServer({ resumeGraceMs: 5000, resumeHistory: 1 });
    try {
      const [dana, eve] = await start(forgetful, ["dana", "eve"]);
      // A conversation dana has: the one whose history she reads after the resume.
      await say(eve, "/send dana hello first", /^\* sent to dana$/);
      await dana.waitFor(/@dana <eve> hello first$/);
      const mark = dana.lines.length;
      // Frozen, the connection takes what the server writes and delivers none of it.
      proxy.freeze();
      for (const n of [1, 2, 3]) await say(eve, `/send dana lost or kept ${n}`, /^\* sent to dana$/);
      await new Promise((resolve) => setTimeout(resolve, 300));
      proxy.cut();
      await dana.waitFor(/^\* connection lost; resuming…$/, { after: mark });
      proxy.restore();
      await dana.waitFor(/^\* resumed: 2 events were lost$/, { after: mark });
      await dana.waitFor(/@dana <eve> lost or kept 3$/, { after: mark });

      // A second drop: the count the client sends must include the lost events.
      const second = dana.lines.length;
      proxy.cut();
      await dana.waitFor(/^\* connection lost; resuming…$/, { after: second });
      await say(eve, "/send dana after the second cut", /^\* sent to dana$/);
      proxy.restore();
      await dana.waitFor(/@dana <eve> after the second cut$/, { after: second });
      // What the server could not replay comes from history, before what it did, each once.
      assert.deepEqual(linesAfter(dana, mark), [
        "* connection lost; resuming…",
        "* resumed: 2 events were lost",
        "* 2 missed messages, from history:",
        "@dana <eve> lost or kept 1",
        "@dana <eve> lost or kept 2",
        "@dana <eve> lost or kept 3",
        "* connection lost; resuming…",
        "* resumed (nothing lost)",
        "@dana <eve> after the second cut",
      ]);
      assert.deepEqual(await Promise.all([dana.end(), eve.end()]), [0, 0]);
    } finally {
      await forgetful.stop();
    }
  });

  it("reconnects as a new session when the server no longer holds its own", async () => {
    const first = await startTestServer({ resumeGraceMs: 5000 });
    let again: TestServer | undefined;
    try {
      const [dana, eve] = await start(first, ["dana", "eve"]);
      await say(dana, "/create room", /^\* created group #room$/);
      const mark = dana.lines.length;
      proxy.cut();
      await dana.waitFor(/^\* connection lost; resuming…$/, { after: mark });
      // A server started anew on the same port knows nothing of the session.
      await Promise.all([first.stop(), eve.end()]);
      again = await startTestServer({ resumeGraceMs: 5000, port: first.port });
      proxy.restore();
      await dana.waitFor(/^\* reconnected as a new session: your groups were left$/, { after: mark });
      await say(dana, "/who room", /^! NOT_FOUND: /);
      await say(dana, "/list", /^\* 1 channel: @dana$/);
      assert.equal(await dana.end(), 0);
    } finally {
      await Promise.all([first.stop(), again?.stop()]);
    }
  });

  it("gives up once the grace has passed, with exit code 1", async () => {
    const short = await startTestServer({ resumeGraceMs: 600 });
    try {
      const [dana, eve] = await start(short, ["dana", "eve"]);
      proxy.cut();
      await dana.waitFor(/^\* connection lost; resuming…$/);
      assert.match(await dana.waitFor(/^\* stream ended: /), /\(not resumed within 600 ms\)$/);
      assert.equal(await dana.end(), 1);
      assert.equal(await eve.end(), 0);
    } finally {
      await short.stop();
    }
  });

  it("ends as before when the server holds no dropped sessions", async () => {
    const plain = await startTestServer();
    try {
      const [dana, eve] = await start(plain, ["dana", "eve"]);
      proxy.cut();
      await dana.waitFor(/^\* stream ended: /);
      assert.equal(await dana.end(), 1);
      assert.deepEqual(printed(dana, /resum/), []);
      assert.equal(await eve.end(), 0);
    } finally {
      await plain.stop();
    }
  });
});
