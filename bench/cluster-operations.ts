/**
 * The chat operations the cluster benchmark measures, each with its users
 * spread over the nodes it is given (the i-th user on node i mod n), so
 * that with two nodes half of every group, and every direct message's
 * recipient, is on the other node. An operation is set up once, then
 * driven window after window as fast as it completes with many calls in
 * flight; every message is checked by sender and sequence number.
 */
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ChatService } from "../gen/chat/v1/chat_pb.js";
import { connectUser, type LoadUser, nameRequest, sendMessageRequest, timedText } from "./load-client.js";

/** What one window of an operation did. */
export interface Driven {
  /** Operations completed. */
  operations: number;
  /** From the first operation's start to the last one's end: the rate's time. */
  busySeconds: number;
  /** Messages that arrived on the users' streams. */
  deliveries: number;
}

/** An operation's users, connected and ready to run it window after window. */
export interface OperationLoad {
  /**
   * Runs the operation as fast as it completes for seconds, then stops
   * starting new ones and waits for those in flight and for every message
   * to arrive (at most 30 s), so that everything the window's operations
   * caused happened in the window.
   */
  drive(seconds: number): Promise<Driven>;
  /** Messages lost and duplicated over every window so far. */
  check(): { lost: number; duplicated: number };
  close(): void;
}

/** One operation of the benchmark's table. */
export interface Operation {
  /** The name --only selects it by. */
  readonly name: string;
  /** Its row in the table. */
  readonly title: string;
  /** Whether it delivers messages, so that CPU per delivered message applies. */
  readonly delivers: boolean;
  /** Connects its users (names starting with prefix) to the nodes at urls, and makes its groups. */
  setup(urls: readonly string[], prefix: string): Promise<OperationLoad>;
}

const textSize = 32;

/** Runs fn over items, width at a time. */
async function inBatches<T>(items: readonly T[], width: number, fn: (item: T, index: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

/** Connects users by name, the i-th to urls[i mod n], each on its own HTTP/2 connection. */
async function connectSpread(urls: readonly string[], names: readonly string[]): Promise<LoadUser[]> {
  const users: LoadUser[] = new Array(names.length);
  await inBatches(names, 200, async (name, i) => {
    const user = connectUser(urls[i % urls.length]!, name, undefined);
    users[i] = user;
    await user.ready;
  });
  return users;
}

/** Makes a group: its first member creates it, the others join. */
async function makeGroup(name: string, members: readonly LoadUser[]): Promise<void> {
  await members[0]!.call("CreateGroupChat", nameRequest(name));
  await inBatches(members.slice(1), 100, (u) => u.call("JoinGroupChat", nameRequest(name)));
}

/** One stream of messages: a sender, its channel, who must receive them, and its number in their texts. */
interface Flow {
  readonly sender: LoadUser;
  readonly id: number;
  readonly channel: string;
  readonly receivers: readonly LoadUser[];
  readonly inFlight: number;
  sent: number;
}

async function allArrived(receivers: readonly LoadUser[], expected: number): Promise<number> {
  const deadline = performance.now() + 30_000;
  let arrived = 0;
  for (;;) {
    arrived = 0;
    for (const u of receivers) arrived += u.received;
    if (arrived >= expected || performance.now() > deadline) return arrived;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Drives message flows: each sends inFlight messages at a time, and each message is one operation. */
function messageLoad(flows: readonly Flow[], users: readonly LoadUser[]): OperationLoad {
  const receivers = [...new Set(flows.flatMap((f) => f.receivers))];
  const expectedTotal = () => flows.reduce((sum, f) => sum + f.sent * f.receivers.length, 0);
  return {
    async drive(seconds) {
      const before = await allArrived(receivers, expectedTotal());
      const started = performance.now();
      const deadline = started + seconds * 1000;
      let operations = 0;
      await Promise.all(
        flows.flatMap((f) =>
          Array.from({ length: f.inFlight }, async () => {
            while (performance.now() < deadline) {
              await f.sender.call("SendMessage", sendMessageRequest(f.channel, timedText(textSize, f.id, f.sent++)));
              operations++;
            }
          }),
        ),
      );
      const busySeconds = (performance.now() - started) / 1000;
      return { operations, busySeconds, deliveries: (await allArrived(receivers, expectedTotal())) - before };
    },
    check() {
      let lost = 0;
      let duplicated = 0;
      for (const user of receivers) {
        const sent = new Map(flows.filter((f) => f.receivers.includes(user)).map((f) => [f.id, f.sent]));
        const found = user.heard.check(sent);
        lost += found.lost;
        duplicated += found.duplicated;
      }
      return { lost, duplicated };
    },
    close() {
      for (const u of users) u.close();
    },
  };
}

const names = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}${i}`);

/** Direct messages, each to a user on another node: pairs senders with inFlight messages each in flight. */
export function directMessages(p: { pairs: number; inFlight: number }): Operation {
  return {
    name: "direct",
    title: "direct message to a user on the other node",
    delivers: true,
    async setup(urls, prefix) {
      // s<i> on node i mod n, r<i> on node (i + 1) mod n.
      const senders = await connectSpread(urls, names(`${prefix}s`, p.pairs));
      const receivers = await connectSpread([...urls.slice(1), urls[0]!], names(`${prefix}r`, p.pairs));
      const flows = senders.map((sender, i) => ({ sender, id: i, channel: receivers[i]!.username, receivers: [receivers[i]!], inFlight: p.inFlight, sent: 0 }));
      return messageLoad(flows, [...senders, ...receivers]);
    },
  };
}

/** Messages to one group of size members spread over the nodes, from its first few members. */
export function groupMessages(p: { size: number; senders: number; inFlight: number }): Operation {
  return {
    name: `group-${p.size}`,
    title: `message to a group of ${p.size.toLocaleString("en-US")} over both nodes`,
    delivers: true,
    async setup(urls, prefix) {
      const members = await connectSpread(urls, names(`${prefix}m`, p.size));
      const group = `${prefix}g`;
      await makeGroup(group, members);
      const flows = members
        .slice(0, Math.min(p.senders, p.size))
        .map((sender, i) => ({ sender, id: i, channel: group, receivers: members, inFlight: p.inFlight, sent: 0 }));
      return messageLoad(flows, members);
    },
  };
}

/**
 * Many groups of size members over a pool of users (each in several
 * groups), one message in flight to each group at a time: on a Redis
 * Cluster, their cost should spread over the masters.
 */
export function manyGroups(p: { groups: number; size: number; users: number }): Operation {
  return {
    name: "many-groups",
    title: `messages spread over ${p.groups} groups of ${p.size}`,
    delivers: true,
    async setup(urls, prefix) {
      const users = await connectSpread(urls, names(`${prefix}u`, p.users));
      // Consecutive users, so that each group's members alternate between the nodes.
      const membersOf = (g: number) => Array.from({ length: p.size }, (_, j) => users[(g * p.size + j) % p.users]!);
      await inBatches(names(`${prefix}g`, p.groups), 20, (group, g) => makeGroup(group, membersOf(g)));
      const flows = Array.from({ length: p.groups }, (_, g) => {
        const members = membersOf(g);
        // The sender alternates between the nodes too.
        return { sender: members[g % p.size]!, id: g, channel: `${prefix}g${g}`, receivers: members, inFlight: 1, sent: 0 };
      });
      return messageLoad(flows, users);
    },
  };
}

/** Joins and leaves: joiners users, each joining and leaving its own group of size (with itself) over and over. */
export function joinLeave(p: { joiners: number; size: number }): Operation {
  return {
    name: "join-leave",
    title: `join + leave a group of ${p.size}`,
    delivers: false,
    async setup(urls, prefix) {
      // size - 1 members stay in every group; joiners alternate between the nodes.
      const staying = await connectSpread(urls, names(`${prefix}p`, p.size - 1));
      const joiners = await connectSpread(urls, names(`${prefix}j`, p.joiners));
      const groups = names(`${prefix}g`, p.joiners);
      await inBatches(groups, 20, (group) => makeGroup(group, staying));
      return {
        async drive(seconds) {
          const started = performance.now();
          const deadline = started + seconds * 1000;
          let operations = 0;
          await Promise.all(
            joiners.map(async (joiner, i) => {
              while (performance.now() < deadline) {
                await joiner.call("JoinGroupChat", nameRequest(groups[i]!));
                await joiner.call("LeaveGroupChat", nameRequest(groups[i]!));
                operations++;
              }
            }),
          );
          return { operations, busySeconds: (performance.now() - started) / 1000, deliveries: 0 };
        },
        check: () => ({ lost: 0, duplicated: 0 }),
        close() {
          for (const u of [...staying, ...joiners]) u.close();
        },
      };
    },
  };
}

/**
 * Connects and disconnects: loops callers, each opening a Connect stream
 * under a new name, waiting for Connected, and cancelling it, over a few
 * HTTP/2 connections per node as real clients share theirs.
 */
export function connectDisconnect(p: { loops: number }): Operation {
  return {
    name: "connect-disconnect",
    title: "connect + disconnect",
    delivers: false,
    async setup(urls, prefix) {
      const clients: Client<typeof ChatService>[] = urls.flatMap((baseUrl) =>
        Array.from({ length: 4 }, () => createClient(ChatService, createGrpcTransport({ baseUrl }))),
      );
      let next = 0;
      const once = async (client: Client<typeof ChatService>) => {
        for await (const res of client.connect({ username: `${prefix}c${next++}` })) {
          // Leaving the loop cancels the call: the server disconnects the session.
          if (res.events.some((e) => e.kind.case === "connected")) return;
        }
        throw new Error("the Connect stream ended before Connected");
      };
      return {
        async drive(seconds) {
          const started = performance.now();
          const deadline = started + seconds * 1000;
          let operations = 0;
          await Promise.all(
            Array.from({ length: p.loops }, async (_, i) => {
              while (performance.now() < deadline) {
                await once(clients[i % clients.length]!);
                operations++;
              }
            }),
          );
          const busySeconds = (performance.now() - started) / 1000;
          // The server disconnects once the cancel arrives: give the last ones time to reach Redis.
          await new Promise((r) => setTimeout(r, 300));
          return { operations, busySeconds, deliveries: 0 };
        },
        check: () => ({ lost: 0, duplicated: 0 }),
        close() {},
      };
    },
  };
}
