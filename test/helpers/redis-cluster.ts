import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { askRedis, freePort, launchRedis, type RedisProcess, type TestRedis } from "./redis-server.js";

/** One master of a {@link TestRedisCluster}; restart() brings it back into the cluster, its slots kept, its data gone. */
export interface ClusterMaster extends TestRedis {
  /** "127.0.0.1:port", as the cluster and its clients name it. */
  readonly address: string;
  /**
   * Starts it again on the same port with the nodes.conf it wrote: it rejoins
   * with its node id and its slots, empty (nothing is persisted), and this
   * resolves once every master says cluster_state:ok again (about 2 s on
   * Redis 7.0, which keeps a restarted master unwritable that long).
   */
  restart(): Promise<void>;
  /** The same after a kill(): starts it again, and resolves once the cluster is ok. */
  start(): Promise<void>;
}

/** A local Redis Cluster of three masters and no replicas, each a redis-server of the test's own. */
export interface TestRedisCluster {
  readonly masters: readonly [ClusterMaster, ClusterMaster, ClusterMaster];
  /** The masters' addresses, "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3", as --redis-cluster and REDIS_CLUSTER take them. */
  readonly seeds: string;
  /** The same addresses as a list. */
  readonly seedList: readonly string[];
  /** The master that owns this key's slot (CLUSTER KEYSLOT, then CLUSTER SLOTS, asked of a live master). */
  masterOf(key: string): Promise<ClusterMaster>;
  /** Resolves once every live master says cluster_state:ok and all of them map the 16384 slots alike. */
  waitUntilOk(timeoutMs?: number): Promise<void>;
  /** Empties every master. */
  flushall(): Promise<void>;
  /** Kills every master and removes their directory. */
  kill(): Promise<void>;
}

/** Settings of {@link startRedisCluster}. */
export interface RedisClusterOptions {
  /**
   * The masters' cluster-node-timeout: a master down longer is marked failed
   * and the whole cluster refuses commands. Default Redis's 15 s.
   */
  nodeTimeoutMs?: number;
}

/** Cluster nodes talk to each other on their port plus this. */
const busOffset = 10_000;
const slotCount = 16_384;

/** Runs one command on one master over a connection of its own, which it closes. */
const ask = askRedis;

/** The port of the master owning each slot range, as one master sees the cluster: "start-end:port" in slot order. */
async function slotMapOf(port: number): Promise<string[]> {
  const ranges = await ask(port, (r) => r.cluster("SLOTS"));
  return ranges.sort((x, y) => x[0] - y[0]).map(([start, end, master]) => `${start}-${end}:${master?.[1]}`);
}

/** Whether these ranges, in slot order, cover every slot once. */
function coversAll(map: readonly string[]): boolean {
  let next = 0;
  for (const entry of map) {
    const [start, end] = entry.split(":")[0]!.split("-").map(Number);
    if (start !== next) return false;
    next = end! + 1;
  }
  return next === slotCount;
}

/** The directories of the clusters still running in this process. */
const directories = new Set<string>();

// As redis-server.ts kills the servers of a test process that ends without
// cleaning up, their nodes.conf files go with them.
process.once("exit", () => {
  for (const dir of directories) rmSync(dir, { recursive: true, force: true });
});

/** Runs redis-cli with these arguments; rejects with its output when it fails. */
function redisCli(args: readonly string[]): Promise<string> {
  const child = spawn("redis-cli", args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`redis-cli ${args.join(" ")} exited with ${code}: ${out}`))));
  });
}

/**
 * Starts three redis-server processes in cluster mode (Debian's
 * redis-server and redis-tools, which .ci/run installs), joins them with
 * `redis-cli --cluster create --cluster-replicas 0`, and resolves once the
 * cluster is ok on all three: about 3 s, most of it redis-cli's own
 * one-second waits for the nodes to meet. By default the node timeout is
 * Redis's 15 s: a master killed and restarted within it is never marked
 * failed, so the others keep serving their slots meanwhile.
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<TestRedisCluster> {
  const dir = await mkdtemp(path.join(tmpdir(), "redis-cluster-"));
  directories.add(dir);
  const launched: RedisProcess[] = [];
  const timeout = options.nodeTimeoutMs === undefined ? [] : ["--cluster-node-timeout", String(options.nodeTimeoutMs)];
  const launch = (port: number) =>
    launchRedis(port, ["--cluster-enabled", "yes", "--cluster-config-file", path.join(dir, `nodes-${port}.conf`), "--dir", dir, ...timeout]);
  const masters: ClusterMaster[] = [];
  const killAll = async () => {
    await Promise.all(masters.map((m) => m.kill()));
    await Promise.all(launched.map((p) => p.kill()));
    await rm(dir, { recursive: true, force: true });
    directories.delete(dir);
  };
  const waitUntilOk = async (timeoutMs = 40_000) => {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    for (;;) {
      try {
        const states = await Promise.all(masters.map((m) => ask(m.port, (r) => r.cluster("INFO"))));
        const maps = await Promise.all(masters.map((m) => slotMapOf(m.port)));
        const ok = states.every((s) => String(s).includes("cluster_state:ok"));
        if (ok && coversAll(maps[0]!) && maps.every((m) => m.join() === maps[0]!.join())) return;
        last = `states ${states.map((s) => /cluster_state:(\w+)/.exec(String(s))?.[1]).join(",")}; slots ${maps.map((m) => m.join(" ")).join(" | ")}`;
      } catch (error) {
        last = String(error);
      }
      if (Date.now() > deadline) throw new Error(`the Redis Cluster is not ok after ${timeoutMs} ms: ${last}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  try {
    const ports: number[] = [];
    while (ports.length < 3) {
      const port = await freePort(busOffset);
      // Three kernel picks may collide on a bus port: each must stay clear of the others' pairs.
      if (!ports.some((p) => p === port || p + busOffset === port || p === port + busOffset)) ports.push(port);
    }
    for (const port of ports) {
      let server = await launch(port);
      launched.push(server);
      masters.push({
        port,
        address: `127.0.0.1:${port}`,
        url: `redis://127.0.0.1:${port}`,
        get pid() {
          return server.child.pid!;
        },
        kill: () => server.kill(),
        freeze: () => server.child.kill("SIGSTOP"),
        thaw: () => server.child.kill("SIGCONT"),
        async restart() {
          await server.kill();
          await this.start();
        },
        async start() {
          server = await launch(port);
          launched.push(server);
          await waitUntilOk();
        },
      });
    }
    await redisCli(["--cluster", "create", ...masters.map((m) => m.address), "--cluster-replicas", "0", "--cluster-yes"]);
    await waitUntilOk();
  } catch (error) {
    await killAll();
    throw error;
  }
  const live = async (): Promise<ClusterMaster> => {
    for (const m of masters) {
      if (await ask(m.port, (r) => r.ping()).catch(() => undefined)) return m;
    }
    throw new Error("no master of the Redis Cluster answers");
  };
  const seedList = masters.map((m) => m.address);
  return {
    // Three were pushed above, or the start threw.
    masters: masters as [ClusterMaster, ClusterMaster, ClusterMaster],
    seeds: seedList.join(","),
    seedList,
    async masterOf(key) {
      const asked = await live();
      const slot = await ask(asked.port, (r) => r.cluster("KEYSLOT", key));
      for (const entry of await slotMapOf(asked.port)) {
        const [range, owner] = entry.split(":");
        const [start, end] = range!.split("-").map(Number);
        if (slot >= start! && slot <= end!) return masters.find((m) => m.port === Number(owner))!;
      }
      throw new Error(`no master owns slot ${slot} of ${JSON.stringify(key)}`);
    },
    waitUntilOk,
    async flushall() {
      await Promise.all(masters.map((m) => ask(m.port, (r) => r.flushall())));
    },
    kill: killAll,
  };
}
