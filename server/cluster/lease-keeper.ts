import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import type { RedisTarget } from "./redis-link.js";

/** Settings of {@link createLeaseKeeper}. */
export interface LeaseKeeperOptions {
  target: RedisTarget;
  /** The lease's key. */
  key: string;
  /** How long the lease lives without a refresh; it is refreshed four times as often. */
  leaseMs: number;
  /**
   * How long the main thread may go without a heartbeat before the keeper
   * lets the lease run out: a node that is busy keeps its lease, a node
   * whose JavaScript is stuck for good loses it.
   */
  hangMs: number;
  /** The lease was gone when the keeper came to refresh it (it ran out, or Redis lost it). */
  onLost(): void;
}

/** Keeps a node's lease alive from a thread of its own. */
export interface LeaseKeeper {
  start(): void;
  stop(): Promise<void>;
}

/**
 * Creates a keeper that refreshes the lease from a worker thread, with a
 * Redis connection of its own. The main thread's event loop may stall (a
 * long garbage collection, a saturated core, a burst of work): timers on it
 * fire late, and a lease refreshed from there could run out while the node
 * is alive, so that the others sweep its users away (a false death). The
 * worker has its own event loop and heap, so it refreshes on time; it stops
 * only when the main thread has not beaten for hangMs, or the process dies.
 */
export function createLeaseKeeper(options: LeaseKeeperOptions): LeaseKeeper {
  return new WorkerLeaseKeeper(options);
}

// The worker's program: CommonJS, as eval'd workers run, with ioredis
// loaded from the path the main thread resolved (a bundled server has no
// file of its own for the worker).
const workerSource = `
const { parentPort, workerData } = require("node:worker_threads");
const { Redis, Cluster } = require(workerData.ioredis);
const { target, key, leaseMs, hangMs, heartbeat } = workerData;
const options = { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: Math.max(100, Math.floor(leaseMs / 4)), retryStrategy: (n) => Math.min(100 * n, 1000) };
const client = target.url !== undefined
  ? new Redis(target.url, options)
  : new Cluster(target.clusterNodes.map((seed) => { const at = seed.lastIndexOf(":"); return { host: seed.slice(0, at).replace(/^\\[|\\]$/g, ""), port: Number(seed.slice(at + 1)) }; }), { enableOfflineQueue: false, natMap: target.natMap, redisOptions: options });
client.on("error", () => {});
const beat = new Float64Array(heartbeat);
const timer = setInterval(async () => {
  if (Date.now() - beat[0] > hangMs) return;
  try {
    if ((await client.set(key, "1", "PX", leaseMs, "XX")) === null) parentPort.postMessage("lost");
  } catch {
    // Redis away: the main thread sees it on its own connections.
  }
}, Math.max(100, Math.floor(leaseMs / 4)));
parentPort.on("message", () => { clearInterval(timer); client.disconnect(); parentPort.close(); });
`;

class WorkerLeaseKeeper implements LeaseKeeper {
  private worker: Worker | undefined;
  private beating: NodeJS.Timeout | undefined;

  constructor(private readonly options: LeaseKeeperOptions) {}

  start(): void {
    const { target, key, leaseMs, hangMs, onLost } = this.options;
    const heartbeat = new SharedArrayBuffer(8);
    const beat = new Float64Array(heartbeat);
    beat[0] = Date.now();
    this.beating = setInterval(() => {
      beat[0] = Date.now();
    }, 250);
    this.beating.unref();
    const ioredis = createRequire(import.meta.url).resolve("ioredis");
    this.worker = new Worker(workerSource, { eval: true, workerData: { target, key, leaseMs, hangMs, heartbeat, ioredis } });
    this.worker.unref();
    this.worker.on("message", (message) => {
      if (message === "lost") onLost();
    });
  }

  async stop(): Promise<void> {
    clearInterval(this.beating);
    const worker = this.worker;
    this.worker = undefined;
    if (worker === undefined) return;
    const exited = new Promise((resolve) => worker.once("exit", resolve));
    worker.postMessage("stop");
    // A worker whose Redis hangs is ended rather than waited for.
    const timer = setTimeout(() => void worker.terminate(), 1000);
    await exited;
    clearTimeout(timer);
  }
}
