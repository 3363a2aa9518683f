import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { type ChatClient, createChatClient } from "../../client/chat-client.js";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { directoryKeys, nameKeys } from "../../server/cluster/redis-keys.js";
import { type OpenStream, openStream } from "../helpers/chat-stream.js";
import { eventually } from "../helpers/eventually.js";
import { listeningPort } from "../helpers/listening-port.js";
import { type RedisTopology, redisTopologies, startRedisTopology } from "../helpers/redis-topology.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

const serverMain = fileURLToPath(new URL("../../server/main.ts", import.meta.url));

async function rejectsWith(promise: Promise<unknown>, code: Code, part?: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    const err = ConnectError.from(error);
    assert.equal(err.code, code, `expected ${Code[code]}, got ${Code[err.code]}: ${err.rawMessage}`);
    if (part !== undefined) assert.ok(err.rawMessage.includes(part), err.rawMessage);
    return true;
  });
}

/** How long these tests wait for the cluster to settle (a dead node swept, a node back on Redis): longer than the helper's default. */
const clusterWaitMs = 8000;

describe("cluster mode: three nodes sharing one Redis or one Redis Cluster", () => {
  for (const kind of redisTopologies) {
    // A time limit per topology, so that one run does not eat into the other's.
    describe(kind, { timeout: 90_000 }, () => {
      let topology: RedisTopology;
      let nodes: TestServer[] = [];
      const open: OpenStream[] = [];
      /** Set once the suite is over, so that a background sender left by a failed test stops and the file can end. */
      let finished = false;
      const on = (node: number, user: string): ChatClient => createChatClient(nodes[node]!.baseUrl, user);
      const connect = async (node: number, user: string) => {
        const stream = await openStream(on(node, user), user);
        open.push(stream);
        return stream;
      };
      const names = async (node = 0) => (await nodes[node]!.server.backend.listChannels()).map((c) => `${c.type === "group" ? "#" : "@"}${c.name}`);

      before(async () => {
        topology = await startRedisTopology(kind);
        const started = await Promise.allSettled([0, 1, 2].map(() => startTestServer({ ...topology.settings, leaseMs: 1000, sweepMs: 200, metricsPort: 0 })));
        // Those that did start are stopped after, even when another did not.
        nodes = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
        for (const r of started) if (r.status === "rejected") throw r.reason;
      });
      after(async () => {
        finished = true;
        for (const s of open) s.cancel();
        await Promise.all(nodes.map((n) => n.stop()));
        await topology?.kill();
      });

      it("carries a chat between users on different nodes", async () => {
        const alice = await connect(0, "alice");
        const bob = await connect(1, "bob");
        const carol = await connect(2, "carol");
        await on(0, "alice").createGroupChat({ name: "room" });
        // Unary calls may reach any node, not only the one holding the stream.
        await on(2, "bob").joinGroupChat({ name: "room" });
        await on(1, "carol").joinGroupChat({ name: "room" });
        await on(1, "bob").sendMessage({ channel: "room", text: "hi from node 2" });
        await on(0, "alice").sendMessage({ channel: "carol", text: "direct, node 1 to node 3" });
        for (const s of [alice, bob, carol]) {
          const [first] = await s.waitForMessages(1);
          assert.deepEqual([first?.sender, first?.channel?.name, first?.text], ["bob", "room", "hi from node 2"]);
        }
        const [, direct] = await carol.waitForMessages(2);
        assert.deepEqual([direct?.sender, direct?.channel?.name, direct?.text], ["alice", "carol", "direct, node 1 to node 3"]);
        assert.deepEqual(await names(1), ["@alice", "@bob", "@carol", "#room"]);
        assert.deepEqual(
          (await on(2, "carol").listChannels({})).channels.map((c) => c.name),
          ["alice", "bob", "carol", "room"],
        );
      });

      it("keeps names unique and answers with the same status codes cluster-wide", async () => {
        await connect(0, "unique");
        await rejectsWith(openStream(on(1, "unique"), "unique"), Code.AlreadyExists, '"unique" is already online');
        await rejectsWith(openStream(on(2, "room"), "room"), Code.AlreadyExists, "group");
        await rejectsWith(on(1, "unique").createGroupChat({ name: "room" }), Code.AlreadyExists, "already exists");
        await rejectsWith(on(1, "unique").createGroupChat({ name: "alice" }), Code.AlreadyExists, "online user");
        await rejectsWith(on(2, "unique").joinGroupChat({ name: "nope" }), Code.NotFound, '"nope"');
        await rejectsWith(on(2, "unique").leaveGroupChat({ name: "room" }), Code.FailedPrecondition, "not a member");
        await rejectsWith(on(0, "unique").sendMessage({ channel: "room", text: "x" }), Code.PermissionDenied, "must join");
        await rejectsWith(on(1, "unique").sendMessage({ channel: "ghost", text: "x" }), Code.NotFound, '"ghost"');
        await rejectsWith(on(1, "nobody").listChannels({}), Code.Unauthenticated, '"nobody"');
        await rejectsWith(on(1, "unique").joinGroupChat({ name: "bad name" }), Code.InvalidArgument, '"bad name"');
        await rejectsWith(on(1, "unique").sendMessage({ channel: "alice", text: "" }), Code.InvalidArgument, "empty");
      });

      it("delivers one group's messages in one order to all members, senders on every node", async () => {
        const members = await Promise.all([0, 1, 2].map((n) => connect(n, `ord${n}`)));
        await on(0, "ord0").createGroupChat({ name: "ordered" });
        await on(1, "ord1").joinGroupChat({ name: "ordered" });
        await on(2, "ord2").joinGroupChat({ name: "ordered" });
        const per = 30;
        await Promise.all(
          [0, 1, 2].map(async (n) => {
            for (let i = 0; i < per; i++) await on(n, `ord${n}`).sendMessage({ channel: "ordered", text: `${n}:${i}` });
          }),
        );
        const orders = await Promise.all(members.map(async (m) => (await m.waitForMessages(3 * per)).map((x) => x.text)));
        for (const order of orders) assert.deepEqual(order, orders[0]);
        for (const n of [0, 1, 2]) {
          assert.deepEqual(
            orders[0]!.filter((t) => t.startsWith(`${n}:`)),
            Array.from({ length: per }, (_, i) => `${n}:${i}`),
          );
        }
        assert.equal(new Set(members.flatMap((m) => m.messages.map((x) => x.id))).size, 3 * per);
      });

      it("keeps history in Redis, the same from every node, and delivers a send retried through another node once", async () => {
        const writer = await connect(0, "hwriter");
        const reader = await connect(1, "hreader");
        await on(2, "hwriter").createGroupChat({ name: "hroom" });
        await on(0, "hreader").joinGroupChat({ name: "hroom" });
        const sent = [];
        for (let i = 0; i < 4; i++) sent.push((await on(i % 3, i % 2 === 0 ? "hwriter" : "hreader").sendMessage({ channel: "hroom", text: `h${i}` })).message);
        const first = (await on(0, "hwriter").sendMessage({ channel: "hreader", text: "once", requestId: "retry-1" })).message;
        // The retry reaches another node: the first call's message, nothing delivered again.
        const retry = (await on(2, "hwriter").sendMessage({ channel: "hreader", text: "once", requestId: "retry-1" })).message;
        assert.deepEqual(retry, first);
        await rejectsWith(on(1, "hwriter").sendMessage({ channel: "hroom", text: "once", requestId: "retry-1" }), Code.InvalidArgument, "already used");
        const delivered = await reader.waitForMessages(5);
        // Per channel: a Redis Cluster keeps no order across channels.
        assert.deepEqual(
          delivered.filter((m) => m.channel?.name === "hroom"),
          sent,
        );
        assert.deepEqual(
          delivered.filter((m) => m.channel?.name === "hreader"),
          [first],
        );
        await writer.waitForMessages(4);
        for (const node of [0, 1, 2]) {
          const group = await on(node, "hreader").listMessages({ channel: "hroom" });
          assert.deepEqual(group.messages, [...sent].reverse(), `the group's history from node ${node}`);
          const pair = await on(node, "hwriter").listMessages({ channel: "hreader", pageSize: 1 });
          assert.deepEqual(pair.messages, [first], `the pair's history from node ${node}`);
          assert.equal(pair.nextPageToken, "");
        }
        // Nothing arrived twice.
        await on(0, "hwriter").sendMessage({ channel: "hreader", text: "last" });
        assert.deepEqual(
          (await reader.waitForMessages(6)).filter((m) => m.channel?.name === "hreader").map((m) => m.text),
          ["once", "last"],
        );
        assert.equal(reader.messages.length, 6);
      });

      it("lets exactly one of racing CreateGroupChat calls on different nodes win", async () => {
        const racers = Array.from({ length: 9 }, (_, i) => `racer${i}`);
        await Promise.all(racers.map((u, i) => connect(i % 3, u)));
        const results = await Promise.allSettled(racers.map((u, i) => on(i % 3, u).createGroupChat({ name: "contested" })));
        assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
        for (const r of results) if (r.status === "rejected") assert.equal(ConnectError.from(r.reason).code, Code.AlreadyExists);
      });

      it("keeps a group whole when its last member leaves as another joins", async () => {
        await connect(0, "leaver");
        await connect(1, "joiner");
        for (let round = 0; round < 20; round++) {
          const group = `flip${round}`;
          await on(0, "leaver").createGroupChat({ name: group });
          const [left, joined] = await Promise.allSettled([on(0, "leaver").leaveGroupChat({ name: group }), on(1, "joiner").joinGroupChat({ name: group })]);
          assert.equal(left.status, "fulfilled");
          const listed = (await names(2)).includes(`#${group}`);
          if (joined.status === "fulfilled") {
            // Kept, with the joiner as its member: it can send there.
            assert.equal(listed, true, `${group} vanished under its new member`);
            await on(2, "joiner").sendMessage({ channel: group, text: "still here" });
            await on(1, "joiner").leaveGroupChat({ name: group });
          } else {
            assert.equal(ConnectError.from(joined.reason).code, Code.NotFound);
            assert.equal(listed, false, `${group} outlived its last member`);
          }
        }
      });

      it("forgets the users of a node killed without a goodbye", async () => {
        const child = spawn(
          process.execPath,
          ["--import", "tsx", serverMain, "--port", "0", "--web-port", "0", ...topology.args, "--lease-ms", "1000", "--sweep-ms", "200"],
          {
            stdio: ["ignore", "pipe", "inherit"],
          },
        );
        const port = await new Promise<number>((resolve, reject) => {
          createInterface({ input: child.stdout! }).on("line", (line) => {
            const port = listeningPort(line);
            if (port !== undefined) resolve(port);
          });
          // A node that cannot start (flags it does not know, a store it cannot reach) fails the test at once.
          child.once("exit", (code) => reject(new Error(`the node exited with ${code} before it listened`)));
        });
        const victim = createChatClient(`http://127.0.0.1:${port}`, "victim");
        const stream = await openStream(victim, "victim");
        await victim.createGroupChat({ name: "victims-room" });
        assert.ok((await names(0)).includes("@victim"));
        const killedAt = Date.now();
        child.kill("SIGKILL");
        await eventually(async () => !(await names(0)).some((n) => n === "@victim" || n === "#victims-room"), "the dead node's user lingers", clusterWaitMs);
        // Lease 1 s plus a sweep every 0.2 s: well within the bound.
        assert.ok(Date.now() - killedAt < 5000);
        // Nothing of the dead node lingers in Redis.
        const admin = topology.admin();
        const live = new Set(nodes.map((n) => (n.server.backend as { nodeId?: string }).nodeId));
        await eventually(async () => (await admin.scard(directoryKeys.nodes)) === 3, "the dead node is still registered", clusterWaitMs);
        assert.deepEqual(new Set(await admin.smembers(directoryKeys.nodes)), live);
        const keys = await topology.keys("chat:*");
        assert.deepEqual(
          keys.filter((k) => k.includes("victim")),
          [],
        );
        assert.ok(!(await admin.hkeys(directoryKeys.users)).includes("victim"));
        for (const key of keys.filter((k) => k.startsWith(directoryKeys.nodeUsers("")) || k.startsWith(directoryKeys.lease("")))) {
          assert.ok(live.has(key.split(":").at(-1)), `${key} belongs to no live node`);
        }
        admin.disconnect();
        stream.cancel();
        await connect(1, "victim");
      });

      it("ignores what is not a delivery on a node's channel", async () => {
        const recv = await connect(1, "garbled");
        for (const junk of ["not a publication", "m", "m1|x", "l1|x|garbled|no-such-reason|", "j"]) {
          await topology.publish({ channel: nameKeys.inbox("garbled"), sharded: true }, junk);
        }
        await on(0, "garbled").sendMessage({ channel: "garbled", text: "after the junk" });
        assert.equal((await recv.waitForMessages(1))[0]?.text, "after the junk");
        assert.ok(nodes[1]!.logs.some((l) => l.msg === "ignored a malformed publication"));
        assert.equal(nodes[1]!.server.health.get(""), HealthCheckResponse_ServingStatus.SERVING);
      });

      it("ends its streams when Redis drops a node's subscriber, and serves again once resubscribed", async () => {
        const sender = on(0, "pubsend");
        await connect(0, "pubsend");
        const recv = await connect(1, "pubrecv");
        let acked = 0;
        let sending = true;
        const sends = (async () => {
          while (sending && !finished && acked < 5000) {
            try {
              await sender.sendMessage({ channel: "pubrecv", text: String(acked + 1) });
              acked++;
            } catch {
              await new Promise((r) => setTimeout(r, 20));
            }
          }
        })();
        await recv.waitForMessages(20);
        // What Redis does to a subscriber over client-output-buffer-limit pubsub: on a cluster, every master does it.
        await topology.killSubscribers();
        // Not a silent loss: the stream ends and says why...
        assert.equal((await recv.ended)?.code, Code.Unavailable);
        sending = false;
        await sends;
        // ...and what it did receive has no gap: every message in order, up to where it ended.
        const got = recv.messages.map((m) => Number(m.text));
        assert.deepEqual(
          got,
          got.map((_, i) => i + 1),
        );
        assert.ok(got.length <= acked);
        for (const node of [0, 1, 2]) {
          await eventually(
            async () => nodes[node]!.server.health.get("") === HealthCheckResponse_ServingStatus.SERVING,
            `node ${node} not back`,
            clusterWaitMs,
          );
        }
        // Every node lost its subscriber: both users connect again.
        await connect(0, "pubsend");
        const again = await connect(1, "pubrecv");
        await on(2, "pubsend").sendMessage({ channel: "pubrecv", text: "resubscribed" });
        assert.equal((await again.waitForMessages(1))[0]?.text, "resubscribed");
      });

      it("loses nothing silently when a Redis dies, whichever it is: a stream it affects ends UNAVAILABLE, or it goes on whole", async () => {
        // One Redis, or each master of a cluster in turn: every shard, whatever its keys and channels are.
        for (const [round, server] of topology.servers.entries()) {
          const sender = on(0, `dsend${round}`);
          await connect(0, `dsend${round}`);
          const recv = await connect(1, `drecv${round}`);
          const end: { error?: ConnectError; ended: boolean } = { ended: false };
          void recv.ended.then((error) => Object.assign(end, { error, ended: true }));
          // Each attempt has a number of its own, so that one that failed after Redis ran it cannot come twice.
          const acked: number[] = [];
          let attempt = 0;
          let sending = true;
          const sends = (async () => {
            while (sending && !finished) {
              const n = ++attempt;
              try {
                await sender.sendMessage({ channel: `drecv${round}`, text: String(n) });
                acked.push(n);
              } catch {
                await new Promise((r) => setTimeout(r, 20));
              }
            }
          })();
          await recv.waitForMessages(10);
          await server.kill();
          await new Promise((r) => setTimeout(r, 500));
          await server.restart();
          for (const node of [0, 1, 2]) {
            await eventually(async () => nodes[node]!.server.health.get("") === HealthCheckResponse_ServingStatus.SERVING, `node ${node} not back`, 15_000);
          }
          sending = false;
          await sends;
          if (!end.ended) {
            // Survived: it still receives (a marker, "0", after everything sent), and missed nothing acknowledged.
            await connect(2, `dmark${round}`);
            await on(2, `dmark${round}`).sendMessage({ channel: `drecv${round}`, text: "0" });
            await eventually(() => recv.messages.some((m) => m.text === "0"), `round ${round}: the surviving stream receives nothing more`, 15_000);
          }
          const got = recv.messages.map((m) => Number(m.text)).filter((n) => n !== 0);
          // In order and once each.
          for (let i = 1; i < got.length; i++) assert.ok(got[i]! > got[i - 1]!, `round ${round}: ${got[i - 1]} then ${got[i]}`);
          if (!end.ended) {
            const missing = acked.filter((n) => !got.includes(n));
            assert.deepEqual(missing, [], `round ${round}: the stream went on without acknowledged messages`);
          } else {
            // Ended, and said so; no gap before its end.
            assert.equal(end.error?.code, Code.Unavailable, `round ${round}: ${end.error?.rawMessage}`);
            const last = got.at(-1) ?? 0;
            const missing = acked.filter((n) => n < last && !got.includes(n));
            assert.deepEqual(missing, [], `round ${round}: acknowledged messages missing before the stream ended`);
          }
        }
      });

      it("stops serving while Redis hangs, and comes back with nothing stale", async () => {
        const before = await Promise.all([0, 1, 2].map((n) => connect(n, `hang${n}`)));
        await on(0, "hang0").createGroupChat({ name: "hang-room" });
        // The whole store hangs: on a cluster, every master (one master's fault is the test before).
        for (const server of topology.servers) server.freeze();
        // A refresh every lease / 3, failing after the 2 s command timeout.
        for (const s of before) assert.equal((await s.ended)?.code, Code.Unavailable);
        for (const node of [0, 1, 2]) {
          await eventually(
            async () => nodes[node]!.server.health.get("") === HealthCheckResponse_ServingStatus.NOT_SERVING,
            `node ${node} still serving`,
            clusterWaitMs,
          );
        }
        for (const server of topology.servers) server.thaw();
        for (const node of [0, 1, 2]) {
          await eventually(async () => nodes[node]!.server.health.get("") === HealthCheckResponse_ServingStatus.SERVING, `node ${node} not back`, 15_000);
        }
        // Redis kept its data through the freeze; the nodes released what they held.
        const listed = await names(1);
        for (const gone of ["@hang0", "@hang1", "@hang2", "#hang-room"]) assert.ok(!listed.includes(gone), `${gone} is stale`);
        // Every stream from before the freeze has ended; open the one the next test uses.
        open.length = 0;
        assert.equal(await nodes[0]!.server.backend.isOnline("alice"), false);
        open.push(await openStream(on(0, "alice"), "alice"));
      });

      it("stops serving while Redis is away, and comes back clean", async () => {
        const alice = open.find((s) => s.username === "alice")!;
        const health = createClient(Health, createGrpcTransport({ baseUrl: nodes[1]!.baseUrl }));
        // The whole store is away: on a cluster, every master.
        await Promise.all(topology.servers.map((s) => s.kill()));
        assert.equal((await alice.ended)?.code, Code.Unavailable);
        await eventually(
          async () => (await health.check({ service: "" })).status === HealthCheckResponse_ServingStatus.NOT_SERVING,
          "health still SERVING",
          clusterWaitMs,
        );
        // The HTTP probes say the same, for orchestrators.
        const readyz = `http://127.0.0.1:${nodes[1]!.server.metricsAddress!.port}/readyz`;
        const away = await fetch(readyz);
        assert.equal(away.status, 503);
        assert.equal(await away.text(), "not ready: the shared state (Redis) is unreachable\n");
        await rejectsWith(openStream(on(1, "newcomer"), "newcomer"), Code.Unavailable);
        // Together: a cluster's master waits for the others before it says ok.
        await Promise.all(topology.servers.map((s) => s.restart()));
        await eventually(async () => (await health.check({ service: "" })).status === HealthCheckResponse_ServingStatus.SERVING, "health not back", 15_000);
        assert.equal((await fetch(readyz)).status, 200);
        for (const node of [0, 1, 2]) {
          await eventually(async () => nodes[node]!.server.health.get("") === HealthCheckResponse_ServingStatus.SERVING, `node ${node} not back`, 15_000);
        }
        // Nothing stale: every earlier user's stream ended, and none is listed.
        assert.deepEqual(await names(2), []);
        await connect(2, "alice");
        await connect(0, "newcomer");
        await on(1, "alice").sendMessage({ channel: "newcomer", text: "after the outage" });
        const newcomer = open.find((s) => s.username === "newcomer")!;
        assert.equal((await newcomer.waitForMessages(1))[0]?.text, "after the outage");
      });
    });
  }
});
