import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { startRedis } from "../test/helpers/redis-server.js";

/** The shapes of shared state the cluster benchmark runs the nodes against. */
export const topologyKinds = ["redis", "redis-cluster"] as const;
export type TopologyKind = (typeof topologyKinds)[number];

/** One Redis master the benchmark watches: where it listens and which process to read /proc of. */
export interface RedisMaster {
  readonly port: number;
  /** The running process's id: a restarted master has a new one. */
  readonly pid: number;
}

/** Redis as the nodes see it: one server, or the masters of a Redis Cluster. */
export interface RedisTopology {
  readonly kind: TopologyKind;
  /** Every master, in port order; one for a single Redis. */
  readonly masters: readonly RedisMaster[];
  /** The flags that point a chat node at it. */
  readonly serverArgs: readonly string[];
  /** Kills one master (SIGKILL): its connections drop at once; it stays down until startMaster(). */
  killMaster(index: number): Promise<void>;
  /**
   * Starts a killed master again on its port, empty (nothing is persisted).
   * A cluster master keeps its nodes.conf, so it comes back as the same node
   * with the same slots; this resolves once every master says the cluster
   * is up again (at most 10 s).
   */
  startMaster(index: number): Promise<void>;
  stop(): Promise<void>;
}

/** Masters of the local Redis Cluster: three, as issue 22 and the cluster tests have it. */
const clusterMasters = 3;

/**
 * Starts a Redis of the given kind on free loopback ports, empty and with
 * nothing persisted: one redis-server (test/helpers/redis-server.ts), or a
 * Redis Cluster of three masters and no replicas made the way the cluster
 * tests make theirs (`redis-cli --cluster create`).
 */
export function startRedisTopology(kind: TopologyKind, options: TopologyOptions = {}): Promise<RedisTopology> {
  return kind === "redis" ? startSingle() : startCluster(options);
}

/** Settings of {@link startRedisTopology} that a Redis Cluster takes. */
export interface TopologyOptions {
  /**
   * The masters' cluster-node-timeout: how long a master may not answer
   * before the others mark it failed and, with no replica to take its slots
   * (cluster-require-full-coverage), the cluster refuses every command.
   * Redis's default, 15 s, when not given.
   */
  clusterNodeTimeoutMs?: number;
}

async function startSingle(): Promise<RedisTopology> {
  const redis = await startRedis();
  return {
    kind: "redis",
    masters: [
      {
        port: redis.port,
        get pid() {
          return redis.pid;
        },
      },
    ],
    serverArgs: ["--redis", redis.url],
    killMaster: () => redis.kill(),
    // restart() starts the server again on its port, once it is down.
    startMaster: () => redis.restart(),
    stop: () => redis.kill(),
  };
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  // A TCP server listening on a port has an AddressInfo, not a pipe's name.
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The ports of one cluster master: its clients', and its cluster bus's. */
interface MasterPorts {
  port: number;
  busPort: number;
}

/**
 * Starts one cluster-enabled redis-server; its bus port is chosen too, as
 * port + 10000 may not exist. Given the ports of a master started before,
 * it starts that master again, from the nodes.conf it left in dir.
 */
async function launchClusterMaster(dir: string, options: TopologyOptions, ports?: MasterPorts): Promise<MasterPorts & { child: ChildProcess }> {
  const { port, busPort } = ports ?? { port: await freePort(), busPort: await freePort() };
  const child = spawn(
    "redis-server",
    [
      ...["--port", String(port), "--cluster-port", String(busPort), "--bind", "127.0.0.1"],
      ...["--save", "", "--appendonly", "no", "--dir", dir],
      ...["--cluster-enabled", "yes", "--cluster-config-file", `nodes-${port}.conf`],
      ...(options.clusterNodeTimeoutMs === undefined ? [] : ["--cluster-node-timeout", String(options.clusterNodeTimeoutMs)]),
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  await new Promise<void>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes("Ready to accept connections")) resolve();
    });
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`redis-server --cluster-enabled exited with ${code}: ${out}`)));
  });
  return { port, busPort, child };
}

/**
 * Waits until every master says the cluster is up (all slots served), at
 * most 10 s. A master that does not answer yet (another one restarting at
 * the same time) is asked again until then.
 */
async function clusterReady(ports: readonly number[]): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (const port of ports) {
    for (let last = ""; !/cluster_state:ok/.test(last); await new Promise((r) => setTimeout(r, 100))) {
      if (Date.now() > deadline) throw new Error(`the Redis Cluster on port ${port} is not up after 10 s: ${last.split("\n")[0]}`);
      const client = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      // A refused connection is an answer here (not up yet), not an error of the process.
      client.on("error", () => undefined);
      try {
        await client.connect();
        last = await client.cluster("INFO");
      } catch (error) {
        last = String(error);
      } finally {
        client.disconnect();
      }
    }
  }
}

async function startCluster(options: TopologyOptions): Promise<RedisTopology> {
  const dir = mkdtempSync(join(tmpdir(), "bench-redis-cluster-"));
  /** Each master's ports and its running process, in launch order. */
  const launched: (MasterPorts & { child: ChildProcess })[] = [];
  const kill = async (child: ChildProcess) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  };
  const stop = async () => {
    await Promise.all(launched.map(({ child }) => kill(child)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const masters: RedisMaster[] = [];
    for (let i = 0; i < clusterMasters; i++) {
      const master = await launchClusterMaster(dir, options);
      launched.push(master);
      masters.push({
        port: master.port,
        get pid() {
          return master.child.pid!;
        },
      });
    }
    const addresses = masters.map((m) => `127.0.0.1:${m.port}`);
    await new Promise<void>((resolve, reject) =>
      execFile("redis-cli", ["--cluster", "create", ...addresses, "--cluster-replicas", "0", "--cluster-yes"], (error, stdout, stderr) =>
        error ? reject(new Error(`redis-cli --cluster create failed: ${stdout}${stderr}`)) : resolve(),
      ),
    );
    await clusterReady(masters.map((m) => m.port));
    // The caller names one of the masters listed.
    const killMaster = (index: number) => kill(launched[index]!.child);
    const startMaster = async (index: number) => {
      const master = launched[index]!;
      master.child = (await launchClusterMaster(dir, options, master)).child;
      await clusterReady(masters.map((m) => m.port));
    };
    return { kind: "redis-cluster", masters, serverArgs: ["--redis-cluster", addresses.join(",")], killMaster, startMaster, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
