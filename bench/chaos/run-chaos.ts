import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createChatClient } from "../../client/chat-client.js";
import type { TopologyKind } from "../redis-topology.js";
import { startChaosCluster } from "./chaos-cluster.js";
import { createHistoryRecorder, type HistoryEntry, type HistoryRecorder, type Outcome } from "./history.js";
import { type FaultKind, runNemesis } from "./nemesis.js";
import { createSeededRandom } from "./seeded-random.js";
import { createWorkloadClient, outcomeOf } from "./workload-client.js";

/** What one run does. */
export interface ChaosOptions {
  seed: number;
  /** One Redis, or a Redis Cluster of three masters. */
  topology: TopologyKind;
  /** How long the nemesis injects faults. */
  durationMs: number;
  nodes: number;
  clients: number;
  faults: readonly FaultKind[];
  /** Faults under way at once, at most. */
  lanes: number;
  /** Where the history and the nodes' logs go. */
  outDir: string;
  leaseMs: number;
  sweepMs: number;
  resumeGraceMs: number;
  /** The time a delivery may take once faults are over: the checker's bound for streams that stay open. */
  deliveryMs: number;
  /** The time every node has, once faults are over, to serve a new session. */
  livenessMs: number;
  /** The nodes' --history-messages: large, so that the checker may expect a message in its history. */
  historyMessages: number;
  /** The nodes' --history-bytes. */
  historyBytes: number;
  /** How many times a send whose outcome is unknown is tried, at most, with the same request id. */
  sendAttempts: number;
}

/** The defaults of `npm run chaos`: about two minutes. */
export const defaultChaosOptions = {
  seed: 1,
  topology: "redis",
  durationMs: 90_000,
  nodes: 3,
  clients: 12,
  lanes: 2,
  leaseMs: 2000,
  sweepMs: 500,
  resumeGraceMs: 3000,
  deliveryMs: 3000,
  livenessMs: 15_000,
  historyMessages: 1_000_000,
  historyBytes: 1 << 30,
  sendAttempts: 4,
} satisfies Partial<ChaosOptions>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs the cluster, the clients and the nemesis, and returns the history:
 * faults for durationMs; then the heal (every node must serve a new
 * session within livenessMs, probed); then the clients stop sending,
 * deliveryMs later read the histories of their groups and of some pairs,
 * and stop.
 */
export async function runChaos(options: ChaosOptions): Promise<readonly HistoryEntry[]> {
  mkdirSync(options.outDir, { recursive: true });
  const history = createHistoryRecorder(join(options.outDir, "history.jsonl"));
  const random = createSeededRandom(options.seed);
  const cluster = await startChaosCluster(
    options.topology,
    options.nodes,
    {
      leaseMs: options.leaseMs,
      sweepMs: options.sweepMs,
      resumeGraceMs: options.resumeGraceMs,
      queueLimit: 64,
      historyMessages: options.historyMessages,
      historyBytes: options.historyBytes,
    },
    options.outDir,
  );
  try {
    const urls = cluster.nodes.map((n) => n.url);
    const names = Array.from({ length: options.clients }, (_, i) => `c${i}`);
    const groups = ["g0", "g1", "g2"];
    const clients = names.map((name, i) =>
      createWorkloadClient({
        name,
        // One in three resumes, on its home node; the others start afresh anywhere.
        resumable: i % 3 === 0,
        urls,
        home: i % options.nodes,
        groups,
        peers: names.filter((n) => n !== name),
        random: random.fork(name),
        history,
        pauseMs: [100, 400],
        callTimeoutMs: 3000,
        sendAttempts: options.sendAttempts,
      }),
    );
    history.record({
      type: "phase",
      name: "start",
      t: history.now(),
      settings: {
        seed: options.seed,
        topology: options.topology,
        durationMs: options.durationMs,
        nodes: options.nodes,
        clients: options.clients,
        faults: options.faults.join(","),
        lanes: options.lanes,
        leaseMs: options.leaseMs,
        sweepMs: options.sweepMs,
        resumeGraceMs: options.resumeGraceMs,
        deliveryMs: options.deliveryMs,
        livenessMs: options.livenessMs,
        historyMessages: options.historyMessages,
        historyBytes: options.historyBytes,
        sendAttempts: options.sendAttempts,
      },
    });
    const runs = clients.map((c) => c.run());
    const stopFaults = AbortSignal.timeout(options.durationMs);
    await runNemesis(
      {
        cluster,
        clients,
        history,
        random: random.fork("nemesis"),
        kinds: options.faults,
        lanes: options.lanes,
        leaseMs: options.leaseMs,
        sweepMs: options.sweepMs,
      },
      stopFaults,
    );
    history.record({ type: "phase", name: "faults-over", t: history.now() });
    await Promise.all(cluster.nodes.map((node) => probe(history, node.url, node.index, options.livenessMs)));
    // The clients go on for a while on the healed cluster: what they send now must all arrive.
    await sleep(options.deliveryMs);
    for (const client of clients) client.stopSending();
    history.record({ type: "phase", name: "quiet", t: history.now() });
    await sleep(options.deliveryMs);
    // The healed, quiet cluster: every history read now must hold what its reader received.
    history.record({ type: "phase", name: "reads", t: history.now() });
    await Promise.all(clients.map((c) => c.readHistories()));
    for (const client of clients) client.stop();
    await Promise.all(runs);
    history.record({ type: "phase", name: "end", t: history.now() });
    return history.entries();
  } finally {
    await cluster.stop();
  }
}

/**
 * Tries, until it works or the bound passes, to open a fresh session on one
 * node and hear a message sent to itself: the node serves again.
 */
async function probe(history: HistoryRecorder, url: string, node: number, boundMs: number): Promise<void> {
  const start = history.now();
  const name = `probe${node}`;
  const client = createChatClient(url, name);
  /** The last try's outcome: why the node did not serve, if it never does. */
  let last: Outcome = "unknown";
  while (history.now() - start < boundMs) {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 2000);
    try {
      for await (const res of client.connect({ username: name }, { signal: ac.signal })) {
        if (res.events.some((e) => e.kind.case === "connected")) await client.sendMessage({ channel: name, text: "probe" }, { signal: ac.signal });
        if (res.events.some((e) => e.kind.case === "message")) {
          history.record({ type: "call", client: name, session: `${name}/1`, op: "probe", target: `node-${node}`, start, end: history.now(), outcome: "ok" });
          ac.abort();
          return;
        }
      }
    } catch (error) {
      last = ac.signal.aborted ? "unknown" : outcomeOf(error);
    } finally {
      clearTimeout(timer);
      ac.abort();
    }
    await sleep(250);
  }
  history.record({
    type: "call",
    client: name,
    session: `${name}/1`,
    op: "probe",
    target: `node-${node}`,
    start,
    end: history.now(),
    outcome: last,
  });
}
