import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { type ChatClient, createChatClient } from "../../client/chat-client.js";
import { type Event, LeaveReason } from "../../gen/chat/v1/chat_pb.js";
import { eventually } from "../helpers/eventually.js";
import { redisTopologies } from "../helpers/redis-topology.js";
import { startTestCluster, type TestCluster } from "../helpers/test-cluster.js";

/** The ConnectRequest fields these tests set besides the username. */
interface ConnectOptIns {
  membershipEvents?: boolean;
  resumeToken?: string;
  receivedEvents?: bigint;
}

/** A stream read in the background: every event after Connected, and how it ended. */
interface Stream {
  readonly events: Event["kind"][];
  readonly connected: Promise<Extract<Event["kind"], { case: "connected" }>["value"]>;
  /** Resolves when the stream ends: undefined for OK, else its error. */
  readonly ended: Promise<ConnectError | undefined>;
  /** Resolves once an event matches. */
  waitFor(match: (event: Event["kind"]) => boolean): Promise<void>;
  cancel(): void;
}

function openStream(client: ChatClient, username: string, request: ConnectOptIns): Stream {
  const abort = new AbortController();
  const events: Event["kind"][] = [];
  let onConnected!: (value: Extract<Event["kind"], { case: "connected" }>["value"]) => void;
  const connected = new Promise<Extract<Event["kind"], { case: "connected" }>["value"]>((resolve) => (onConnected = resolve));
  const ended = (async () => {
    try {
      for await (const res of client.connect({ username, ...request }, { signal: abort.signal })) {
        for (const event of res.events) {
          if (event.kind.case === "connected") onConnected(event.kind.value);
          else events.push(event.kind);
        }
      }
      return undefined;
    } catch (error) {
      return ConnectError.from(error);
    }
  })();
  return {
    events,
    connected: Promise.race([connected, ended.then((e) => Promise.reject(e ?? new Error("ended before Connected")))]),
    ended,
    waitFor: (match) =>
      eventually(
        () => events.some(match),
        () => `no such event; got ${JSON.stringify(events.map((e) => e.case))}`,
      ),
    cancel: () => abort.abort(),
  };
}

const isText = (text: string) => (event: Event["kind"]) => event.case === "message" && event.value.text === text;

describe("cluster mode over gRPC: a resume token presented to another node", () => {
  for (const kind of redisTopologies) {
    // A time limit per topology, so that one run does not eat into the other's.
    describe(kind, { timeout: 60_000 }, () => {
      let cluster: TestCluster;
      const streams: Stream[] = [];
      const on = (node: number, user: string) => createChatClient(cluster.nodes[node]!.baseUrl, user);
      const open = (node: number, user: string, request: ConnectOptIns = {}) => {
        const stream = openStream(on(node, user), user, request);
        streams.push(stream);
        return stream;
      };

      before(async () => {
        cluster = await startTestCluster(kind, 2, { resumeGraceMs: 10_000, leaseMs: 1000, sweepMs: 200 });
      });
      after(async () => {
        for (const s of streams) s.cancel();
        await cluster.stop();
      });

      it("opens a fresh session there (resumed false), ends the old stream, and delivers what follows once", async () => {
        const first = open(0, "alice", { membershipEvents: true });
        const { resumeToken } = await first.connected;
        assert.ok(resumeToken.length >= 32);
        const bob = open(1, "bob", { membershipEvents: true });
        await bob.connected;
        await on(0, "alice").createGroupChat({ name: "team" });
        await on(1, "bob").joinGroupChat({ name: "team" });
        await on(1, "bob").sendMessage({ channel: "team", text: "before" });
        await first.waitFor(isText("before"));
        await on(1, "bob").sendMessage({ channel: "alice", text: "private" });
        await on(0, "alice").sendMessage({ channel: "bob", text: "reply" });
        await first.waitFor(isText("private"));
        await bob.waitFor(isText("reply"));
        // The client believes its connection dropped and comes back on node 2, with its token.
        const second = open(1, "alice", { resumeToken, receivedEvents: BigInt(first.events.length), membershipEvents: true });
        const connected = await second.connected;
        assert.equal(connected.resumed, false);
        assert.notEqual(connected.resumeToken, resumeToken);
        assert.equal((await first.ended)?.code, Code.Aborted);
        // Its groups are gone, as the fresh session says: bob saw it leave.
        await bob.waitFor((e) => e.case === "memberLeft" && e.value.username === "alice");
        const left = bob.events.find((e) => e.case === "memberLeft");
        assert.equal(left?.case === "memberLeft" && left.value.reason, LeaveReason.DISCONNECTED);
        await on(0, "bob").sendMessage({ channel: "alice", text: "after" });
        await on(0, "bob").sendMessage({ channel: "alice", text: "marker" });
        await second.waitFor(isText("marker"));
        assert.deepEqual(
          second.events.map((e) => (e.case === "message" ? e.value.text : e.case)),
          ["after", "marker"],
        );
        assert.equal(first.events.filter(isText("after")).length, 0);
        // The same person on another node: its conversation with bob is still its own, from either node.
        for (const node of [0, 1]) {
          assert.deepEqual(
            (await on(node, "alice").listMessages({ channel: "bob" })).messages.map((m) => m.text),
            ["marker", "after", "reply", "private"],
          );
        }
      });
    });
  }
});
