import { Redis } from "ioredis";
import { createChatClient } from "../../client/chat-client.js";
import type { TopologyKind } from "../redis-topology.js";
import type { ChaosCluster } from "./chaos-cluster.js";
import type { HistoryRecorder } from "./history.js";
import type { SeededRandom } from "./seeded-random.js";
import type { WorkloadClient } from "./workload-client.js";
import { describeEvent, endOf, outcomeOf } from "./workload-client.js";

/** Every kind of fault the nemesis knows, in the order the report lists them. */
export const faultKinds = ["pause", "kill", "redis-restart", "pubsub-kill", "redis-delay", "redis-cut", "client-cut", "slow-reader", "connect-flood"] as const;

/** One kind of fault. */
export type FaultKind = (typeof faultKinds)[number];

/**
 * The kinds of fault a topology can take. On a Redis Cluster, `redis-delay`
 * and `redis-cut` have no place to act: they work through a proxy on a
 * node's one path to Redis, and a node's Redis Cluster client connects to
 * the addresses the masters announce (CLUSTER SLOTS), not to one it was
 * given, so that no proxy of a node's own stands in its way.
 */
export function faultKindsOn(topology: TopologyKind): readonly FaultKind[] {
  return topology === "redis" ? faultKinds : faultKinds.filter((kind) => kind !== "redis-delay" && kind !== "redis-cut");
}

/** What the nemesis needs. */
export interface NemesisOptions {
  cluster: ChaosCluster;
  clients: readonly WorkloadClient[];
  history: HistoryRecorder;
  random: SeededRandom;
  kinds: readonly FaultKind[];
  /** Faults under way at once, at most. */
  lanes: number;
  leaseMs: number;
  sweepMs: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Injects faults, several at a time, chosen from the seed, until the
 * signal aborts; then heals whatever is still broken. Each lane injects one
 * fault at a time; the first faults go through every kind once, in a
 * shuffled order, so that a short run sees each kind. Two faults never
 * hold one node, or one Redis master, at once, so that each ends as it
 * meant to. On a Redis Cluster the faults on Redis act on one master.
 */
export async function runNemesis(options: NemesisOptions, signal: AbortSignal): Promise<void> {
  const { cluster, history, random } = options;
  const queue = random.shuffle(options.kinds);
  /** The kinds not injected yet: each goes back in the queue until it has been. */
  const pending = new Set<FaultKind>(options.kinds);
  const busy = new Set<string>();
  let flood = 0;

  /** A target no other fault holds, or undefined. */
  const claim = (candidates: string[]): string | undefined => {
    const free = candidates.filter((c) => !busy.has(c));
    if (free.length === 0) return undefined;
    const target = random.pick(free);
    busy.add(target);
    return target;
  };
  const nodeTargets = () => cluster.nodes.map((n) => `node-${n.index}`);
  const nodeOf = (target: string) => cluster.nodes[Number(target.slice("node-".length))]!; // Targets are made from the nodes' indices.
  // One Redis keeps the name it had before there were clusters, so that old histories read the same.
  const redisTargets = () => (cluster.redis.kind === "redis" ? ["redis"] : cluster.redis.masters.map((_, i) => `redis-${i}`));
  const masterOf = (target: string) => (target === "redis" ? 0 : Number(target.slice("redis-".length))); // Made by redisTargets().

  async function inject(kind: FaultKind): Promise<boolean> {
    const start = history.now();
    let target: string | undefined;
    let detail = "";
    // A pause proves most on a node that holds sessions: one of them must end, and its name is taken meanwhile.
    const withUsers = nodeTargets().filter((t) => options.clients.some((c) => `node-${c.liveNode()}` === t));
    const targetOf =
      kind === "redis-restart" || kind === "pubsub-kill"
        ? redisTargets()
        : kind === "connect-flood" || kind === "slow-reader"
          ? ["clients"]
          : kind === "pause" && withUsers.length > 0
            ? withUsers
            : nodeTargets();
    target = claim(targetOf);
    if (target === undefined) return false;
    try {
      switch (kind) {
        case "pause": {
          const node = nodeOf(target);
          const ms = options.leaseMs + options.sweepMs + random.int(500, 1500);
          detail = `SIGSTOP for ${ms} ms (lease ${options.leaseMs} ms)`;
          node.pause();
          // Once the paused node's users are swept, another client takes one of their names, from another node,
          // and holds it past the wake: the paused session must not go on as that user.
          const victim = random.shuffle(options.clients).find((c) => c.liveNode() === node.index);
          let usurper: Promise<boolean> | undefined;
          const takeAfter = options.leaseMs + options.sweepMs + 300;
          if (victim !== undefined && cluster.nodes.length > 1) {
            await sleep(takeAfter);
            const other = random.pick(cluster.nodes.filter((n) => n !== node)).index;
            detail += `; ${victim.name}'s name taken on node ${other} while paused`;
            usurper = floodOne(++flood, { name: victim.name, node: other, holdMs: ms - takeAfter + 1500 });
          }
          await sleep(victim === undefined ? ms : ms - takeAfter);
          node.resume();
          await usurper;
          break;
        }
        case "kill": {
          const node = nodeOf(target);
          const ms = random.int(200, 1500);
          detail = `SIGKILL, started again after ${ms} ms`;
          await node.kill();
          await sleep(ms);
          await node.start();
          break;
        }
        case "redis-restart": {
          const master = masterOf(target);
          if (cluster.redis.kind === "redis") {
            detail = "redis-server killed and started again, empty";
            await cluster.redis.killMaster(master);
            await cluster.redis.startMaster(master);
            break;
          }
          // Down past the masters' node timeout, the master is marked failed and the whole cluster refuses commands.
          const ms = random.int(200, 3000);
          detail = `the master killed, started again after ${ms} ms, empty, as the same cluster node with its slots (its nodes.conf kept)`;
          await cluster.redis.killMaster(master);
          await sleep(ms);
          await cluster.redis.startMaster(master);
          break;
        }
        case "pubsub-kill": {
          const port = cluster.redis.masters[masterOf(target)]!.port; // masterOf() names one of the masters.
          const admin = new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 1, lazyConnect: true });
          try {
            await admin.connect();
            detail = `CLIENT KILL TYPE pubsub: ${await admin.client("KILL", "TYPE", "pubsub")} killed`;
          } finally {
            admin.disconnect();
          }
          break;
        }
        case "redis-delay": {
          const node = nodeOf(target);
          if (node.redisProxy === undefined) throw new Error("redis-delay needs a proxy between the node and Redis: not on a Redis Cluster");
          const delay = random.int(100, 600);
          const ms = random.int(1500, 4000);
          detail = `${delay} ms each way between the node and Redis, for ${ms} ms`;
          node.redisProxy.setDelay(delay);
          await sleep(ms);
          node.redisProxy.setDelay(0);
          break;
        }
        case "redis-cut": {
          const node = nodeOf(target);
          if (node.redisProxy === undefined) throw new Error("redis-cut needs a proxy between the node and Redis: not on a Redis Cluster");
          const ms = random.int(500, 2500);
          detail = `the node's Redis connections reset and refused for ${ms} ms`;
          node.redisProxy.cut();
          await sleep(ms);
          node.redisProxy.restore();
          break;
        }
        case "client-cut": {
          const node = nodeOf(target);
          detail = "every client connection to the node reset";
          node.clientProxy.drop();
          break;
        }
        case "slow-reader": {
          const ms = random.int(2000, 5000);
          const client = random.shuffle(options.clients).find((c) => c.stall(ms));
          if (client === undefined) return false;
          target = `clients:${client.name}`;
          detail = `${client.name} reads nothing for ${ms} ms`;
          await sleep(ms);
          break;
        }
        case "connect-flood": {
          const count = random.int(10, 20);
          detail = `${count} connects at once, some with names in use`;
          await Promise.all(Array.from({ length: count }, async () => floodOne(++flood)));
          break;
        }
      }
    } finally {
      busy.delete(target.startsWith("clients") ? "clients" : target);
    }
    history.record({ type: "fault", kind, target, start, end: history.now(), detail });
    return true;
  }

  /** One connect of a flood: a fresh name or one in use, held briefly, its stream recorded like any other. */
  async function floodOne(k: number, chosen?: { name: string; node: number; holdMs: number }): Promise<boolean> {
    const name = chosen?.name ?? (random.next() < 0.5 && options.clients.length > 0 ? random.pick(options.clients).name : `flood${k}`);
    const client = `flood${k}`;
    const node = chosen?.node ?? random.int(0, cluster.nodes.length - 1);
    const session = `${client}/1`;
    const stream = `${session}.1`;
    const ac = new AbortController();
    const holdMs = chosen?.holdMs ?? random.int(300, 1500);
    const timer = setTimeout(() => ac.abort(), 3000);
    const start = history.now();
    let connected = false;
    try {
      for await (const res of createChatClient(cluster.nodes[node]!.url, name).connect({ username: name, membershipEvents: true }, { signal: ac.signal })) {
        for (const event of res.events) {
          if (event.kind.case === "connected") {
            connected = true;
            clearTimeout(timer);
            history.record({ type: "call", client, session, op: "connect", target: name, start, end: history.now(), outcome: "ok" });
            history.record({ type: "stream-open", client, user: name, session, stream, node, t: history.now(), resumed: false, lostEvents: 0 });
            setTimeout(() => ac.abort(), holdMs);
            continue;
          }
          history.record({ type: "event", client, session, stream, t: history.now(), ...describeEvent(event) });
        }
      }
      if (connected) history.record({ type: "stream-end", client, session, stream, t: history.now(), how: "completed", resuming: false });
    } catch (error) {
      if (connected) history.record({ type: "stream-end", client, session, stream, t: history.now(), how: endOf(error, ac.signal), resuming: false });
      else
        history.record({
          type: "call",
          client,
          session,
          op: "connect",
          target: name,
          start,
          end: history.now(),
          outcome: ac.signal.aborted ? "unknown" : outcomeOf(error),
        });
    } finally {
      clearTimeout(timer);
    }
    return connected;
  }

  async function lane(): Promise<void> {
    while (!signal.aborted) {
      const kind = queue.shift() ?? random.pick(options.kinds);
      if (!(await inject(kind))) {
        // Its target was taken (or no client could stall): try it again later.
        if (pending.has(kind)) queue.push(kind);
        await sleep(200);
        continue;
      }
      pending.delete(kind);
      await sleep(random.int(300, 1500));
    }
  }

  // The clients connect first: a fault before any session proves little.
  await sleep(2000);
  if (options.kinds.length === 0) {
    // No faults: a run of the workload alone, as long as asked.
    await new Promise((resolve) => signal.addEventListener("abort", resolve));
    return;
  }
  await Promise.all(Array.from({ length: options.lanes }, () => lane()));
}
