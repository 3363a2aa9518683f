import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { listeningPort } from "../../test/helpers/listening-port.js";
import { startTcpProxy, type TcpProxy } from "../../test/helpers/tcp-proxy.js";
import { type RedisTopology, startRedisTopology, type TopologyKind } from "../redis-topology.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const serverBundle = join(root, "dist", "server", "main.js");

/** The settings every node of the run starts with. */
export interface NodeSettings {
  leaseMs: number;
  sweepMs: number;
  resumeGraceMs: number;
  queueLimit: number;
  /** --history-messages. */
  historyMessages: number;
  /** --history-bytes. */
  historyBytes: number;
}

/** One node process, its proxy to Redis, and the proxy its clients reach it through. */
export interface ChaosNode {
  readonly index: number;
  /** The URL clients use: the client-side proxy, which outlives restarts of the node. */
  readonly url: string;
  /**
   * The proxy between this node and Redis; none on a Redis Cluster, whose
   * client connects to the addresses the masters announce, not to one it
   * was given.
   */
  readonly redisProxy: TcpProxy | undefined;
  /** The proxy between this node and its clients. */
  readonly clientProxy: TcpProxy;
  /** The running process's id. */
  pid(): number;
  pause(): void;
  resume(): void;
  /** SIGKILL, and wait for the process to go. */
  kill(): Promise<void>;
  /** Starts the node again on its port (after kill()). */
  start(): Promise<void>;
}

/** Redis and the nodes of one run. */
export interface ChaosCluster {
  readonly redis: RedisTopology;
  readonly nodes: ChaosNode[];
  stop(): Promise<void>;
}

/** Builds dist/server/main.js, as `npm start` does: the nodes are the real server processes. */
export function buildServer(): void {
  execFileSync("npm", ["run", "--silent", "build"], { cwd: root, stdio: "inherit" });
}

/**
 * The masters' cluster-node-timeout on a Redis Cluster: a master killed for
 * longer (up to 3 s, by the nemesis) is marked failed, and the cluster
 * refuses every command until it is back, as it would in production after
 * Redis's default of 15 s; a shorter timeout brings that within a fault.
 */
const clusterNodeTimeoutMs = 1000;

/**
 * Starts Redis (one redis-server, or a Redis Cluster of three masters, as
 * bench/redis-topology.ts makes them) and that many real node processes in
 * cluster mode, reached by their clients through a fault proxy each; on one
 * Redis each node reaches it through a fault proxy too. Each node's log
 * goes to node-<i>.log in logDir.
 */
export async function startChaosCluster(topology: TopologyKind, count: number, settings: NodeSettings, logDir: string): Promise<ChaosCluster> {
  const redis = await startRedisTopology(topology, { clusterNodeTimeoutMs });
  process.once("exit", () => {
    for (const master of redis.masters) {
      try {
        process.kill(master.pid, "SIGKILL");
      } catch {
        // Already gone: stopped with the cluster.
      }
    }
  });
  const nodes: ChaosNode[] = [];
  const logs: WriteStream[] = [];
  for (let index = 0; index < count; index++) {
    const redisProxy = redis.kind === "redis" ? await startTcpProxy(redis.masters[0]!.port) : undefined;
    const log = createWriteStream(join(logDir, `node-${index}.log`));
    logs.push(log);
    let child: ChildProcess | undefined;
    let port = 0;
    const startOnce = async () => {
      const args = [
        "--enable-source-maps",
        serverBundle,
        ...(redisProxy === undefined ? redis.serverArgs : ["--redis", `redis://127.0.0.1:${redisProxy.port}`]),
        "--port",
        String(port),
        "--no-web",
        "--lease-ms",
        String(settings.leaseMs),
        "--sweep-ms",
        String(settings.sweepMs),
        "--resume-grace-ms",
        String(settings.resumeGraceMs),
        "--queue-limit",
        String(settings.queueLimit),
        "--history-messages",
        String(settings.historyMessages),
        "--history-bytes",
        String(settings.historyBytes),
        "--log-level",
        "info",
      ];
      const started = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
      child = started;
      // A harness that crashes must not leave nodes behind (nor paused ones).
      const reap = () => started.kill("SIGKILL");
      process.once("exit", reap);
      started.once("exit", () => process.removeListener("exit", reap));
      started.stderr!.pipe(log, { end: false });
      port = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => {
          started.kill("SIGKILL");
          reject(new Error(`node ${index} did not listen within 20 s`));
        }, 20_000);
        createInterface({ input: started.stdout! }).on("line", (line) => {
          log.write(`${line}\n`);
          const heard = listeningPort(line);
          if (heard !== undefined) {
            clearTimeout(timer);
            resolve(heard);
          }
        });
        started.once("exit", (code, signal) => {
          clearTimeout(timer);
          reject(new Error(`node ${index} exited (${code ?? signal}) before it listened`));
        });
      });
    };
    /**
     * Starts the node as a supervisor would: a node that cannot reach Redis
     * at startup exits (status 2), as it may while Redis restarts or the
     * node's link is cut, so it is started again until it listens.
     */
    const start = async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          await startOnce();
          return;
        } catch (error) {
          if (attempt >= 40) throw error;
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
    };
    await start();
    const clientProxy = await startTcpProxy(port);
    const current = () => child!; // Set by the first start() above.
    nodes.push({
      index,
      url: `http://127.0.0.1:${clientProxy.port}`,
      redisProxy,
      clientProxy,
      pid: () => current().pid!,
      pause: () => current().kill("SIGSTOP"),
      resume: () => current().kill("SIGCONT"),
      async kill() {
        const running = current();
        if (running.exitCode !== null || running.signalCode !== null) return;
        const exited = new Promise((resolve) => running.once("exit", resolve));
        running.kill("SIGKILL");
        await exited;
      },
      start,
    });
  }
  return {
    redis,
    nodes,
    async stop() {
      for (const node of nodes) {
        node.resume();
        await node.kill();
        await node.redisProxy?.close();
        await node.clientProxy.close();
      }
      await redis.stop();
      for (const log of logs) log.end();
    },
  };
}
