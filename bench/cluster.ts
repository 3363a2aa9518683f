/**
 * `npm run bench:cluster [-- --topology redis|redis-cluster|both --runs N --seconds S --quick]`:
 * what each chat operation costs in cluster mode. Two nodes share one
 * Redis, or a 3-master Redis Cluster; for each operation (a direct
 * message, messages to groups of 10, 100 and 1,000, messages spread over
 * many groups, join + leave, connect + disconnect), driven as fast as it
 * completes, it reports the round trips (SLOWLOG) and Redis's execution
 * time (INFO commandstats) and CPU per operation, the ceilings that follow,
 * the spread over a cluster's masters, issue 22's targets, and the nodes'
 * CPU per delivered message against one node in memory. Markdown on
 * stdout; the method is in the report and in docs/performance.md.
 */
import { cpus, setPriority, totalmem } from "node:os";
import { Command, InvalidArgumentError, Option } from "commander";
import { connectDisconnect, directMessages, groupMessages, joinLeave, manyGroups, type Operation, type OperationLoad } from "./cluster-operations.js";
import { type ClusterWindow, type IdleWindow, type MemoryWindow, type OperationRun, renderClusterReport, type TopologyResult } from "./cluster-report.js";
import { createRedisProbe, type RedisProbe } from "./redis-probe.js";
import { type RedisMaster, startRedisTopology, type TopologyKind, topologyKinds } from "./redis-topology.js";
import { type BenchServer, startServer } from "./servers.js";

const integer = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < -20 || n > 19) throw new InvalidArgumentError("--redis-nice must be an integer from -20 to 19");
  return n;
};
const positive = (what: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${what} must be a positive number`);
  return n;
};
const program = new Command("bench:cluster")
  .addOption(new Option("--topology <kind>", "where the nodes share state").choices([...topologyKinds, "both"]).default("both"))
  .option("--quick", "a smoke pass: small groups, one run of short windows")
  .option("--runs <n>", "runs of every operation", positive("--runs"), 3)
  .option("--seconds <s>", "each measured window, in seconds", positive("--seconds"), 2)
  .option("--warm-up <s>", "operations driven before each operation's windows, in seconds", positive("--warm-up"), 0.3)
  .option("--only <names>", "comma-separated operations: direct, group-10, group-100, group-<big group>, many-groups, join-leave, connect-disconnect")
  .option("--pairs <n>", "direct messages: sender-recipient pairs", positive("--pairs"), 64)
  .option("--big-group <n>", "the largest group", positive("--big-group"), 1000)
  .option("--groups <n>", "many groups: how many groups of 10", positive("--groups"), 200)
  .option("--in-flight <n>", "calls in flight per sender of a group", positive("--in-flight"), 16)
  .option("--loops <n>", "join + leave and connect + disconnect: callers at once", positive("--loops"), 64)
  .option("--io-micros <n>", "what a round trip costs Redis in I/O, for the execution-based ceiling", positive("--io-micros"), 15)
  .option("--redis-nice <n>", "the Redis processes' nice value: preempted less by the nodes and the load (needs the right to)", integer, -10)
  .option("--history-messages <n>", "the nodes' --history-messages: 0 to measure the operations without history (default: the server's)")
  .parse();
const opts = program.opts<{
  topology: TopologyKind | "both";
  quick?: boolean;
  runs: number;
  seconds: number;
  warmUp: number;
  only?: string;
  pairs: number;
  bigGroup: number;
  groups: number;
  inFlight: number;
  loops: number;
  ioMicros: number;
  redisNice: number;
  historyMessages?: string;
}>();
/** What the cluster's nodes are started with besides their Redis. */
const nodeArgs = opts.historyMessages === undefined ? [] : ["--history-messages", opts.historyMessages];
const quick = opts.quick === true;
const runs = quick ? 1 : opts.runs;
const seconds = quick ? 0.3 : opts.seconds;
const warmUp = quick ? 0.1 : opts.warmUp;
const size = (full: number, small: number) => (quick ? Math.min(full, small) : full);

const allOperations: Operation[] = [
  directMessages({ pairs: size(opts.pairs, 8), inFlight: 4 }),
  groupMessages({ size: 10, senders: 4, inFlight: size(opts.inFlight, 4) }),
  groupMessages({ size: size(100, 50), senders: 4, inFlight: size(opts.inFlight, 4) }),
  groupMessages({ size: size(opts.bigGroup, 100), senders: 4, inFlight: size(opts.inFlight, 4) }),
  manyGroups({ groups: size(opts.groups, 20), size: 10, users: size(Math.max(10, Math.ceil((opts.groups * 10) / 4)), 50) }),
  joinLeave({ joiners: size(opts.loops, 8), size: 10 }),
  connectDisconnect({ loops: size(opts.loops, 8) }),
];
const only = opts.only?.split(",");
const operations = allOperations.filter((op) => only === undefined || only.includes(op.name));
if (operations.length === 0) {
  console.error(`bench:cluster: --only matches no operation (known: ${allOperations.map((op) => op.name).join(", ")})`);
  process.exit(2);
}
const topologies: TopologyKind[] = opts.topology === "both" ? [...topologyKinds] : [opts.topology];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cpuOf = (servers: readonly BenchServer[]) => servers.reduce((total, s) => total + s.cpuSeconds(), 0);

/** One window on the cluster: the probe around it, the nodes' CPU sampled just inside the probe's. */
async function clusterWindow(
  probe: RedisProbe,
  nodes: readonly BenchServer[],
  traced: boolean,
  drive: () => ReturnType<OperationLoad["drive"]>,
): Promise<ClusterWindow> {
  await probe.begin(traced);
  const before = cpuOf(nodes);
  const driven = await drive();
  const nodesCpuSeconds = cpuOf(nodes) - before;
  return { driven, nodesCpuSeconds, redis: await probe.end() };
}

/** The two loads of an operation: on the cluster's nodes, and on the node in memory. */
interface Loads {
  readonly operation: Operation;
  readonly cluster: OperationLoad;
  readonly memory: OperationLoad;
}

/** The node in memory's windows, by operation and run: measured with the first topology, shared by the others. */
const memoryWindows = new Map<string, MemoryWindow[]>();

async function runOperation(
  run: number,
  loads: Loads,
  probe: RedisProbe,
  nodes: readonly BenchServer[],
  memory: MemoryNode,
  idle: IdleWindow,
): Promise<OperationRun> {
  await loads.cluster.drive(warmUp);
  const traced = await clusterWindow(probe, nodes, true, () => loads.cluster.drive(seconds));
  const cost = await clusterWindow(probe, nodes, false, () => loads.cluster.drive(seconds));
  const measured = memoryWindows.get(loads.operation.name) ?? [];
  memoryWindows.set(loads.operation.name, measured);
  if (measured[run] === undefined) {
    await loads.memory.drive(warmUp);
    const before = memory.server.cpuSeconds();
    const started = performance.now();
    const driven = await loads.memory.drive(seconds);
    const windowSeconds = (performance.now() - started) / 1000;
    measured[run] = {
      driven,
      cpuSeconds: memory.server.cpuSeconds() - before,
      backgroundCpuSeconds: (idle.memoryCpuSeconds / idle.redis.seconds) * windowSeconds,
    };
  }
  return { traced, cost, memory: measured[run] };
}

async function idleWindow(probe: RedisProbe, nodes: readonly BenchServer[], memory: BenchServer): Promise<IdleWindow> {
  await probe.begin(true);
  const [nodesBefore, memoryBefore] = [cpuOf(nodes), memory.cpuSeconds()];
  await sleep(seconds * 1000);
  const [nodesCpuSeconds, memoryCpuSeconds] = [cpuOf(nodes) - nodesBefore, memory.cpuSeconds() - memoryBefore];
  return { redis: await probe.end(), nodesCpuSeconds, memoryCpuSeconds };
}

function progress(kind: TopologyKind, run: number, operation: Operation, r: OperationRun): void {
  const exec =
    r.traced.redis.masters.reduce((t, m) => t + [...m.logged.values()].reduce((a, c) => a + c.micros, 0), 0) / Math.max(1, r.traced.driven.operations);
  const redisCpu = r.cost.redis.masters.reduce((t, m) => t + m.cpuSeconds, 0);
  console.log(
    `ok   run ${run + 1}/${runs} ${kind.padEnd(13)} ${operation.name.padEnd(18)} ` +
      `${Math.round(r.cost.driven.operations / r.cost.driven.busySeconds)
        .toString()
        .padStart(6)} ops/s  traced execution ${exec.toFixed(1)} µs/op  ` +
      `redis cpu ${((redisCpu * 1e6) / Math.max(1, r.cost.driven.operations)).toFixed(1)} µs/op  ` +
      `deliveries ${r.cost.driven.deliveries}  in memory ${Math.round(r.memory.driven.operations / r.memory.driven.busySeconds)} ops/s`,
  );
}

/** The node in memory every topology is compared with, and each operation's load on it. */
interface MemoryNode {
  readonly server: BenchServer;
  readonly loads: ReadonlyMap<string, OperationLoad>;
}

async function startMemoryNode(): Promise<MemoryNode> {
  const server = await startServer("project");
  const loads = new Map<string, OperationLoad>();
  try {
    for (const operation of operations) loads.set(operation.name, await operation.setup([server.url], `${operation.name}.`));
  } catch (error) {
    await server.stop();
    throw error;
  }
  return { server, loads };
}

/** Fails if a load lost or duplicated a message. */
function checkLoad(name: string, load: OperationLoad): void {
  const { lost, duplicated } = load.check();
  if (lost > 0 || duplicated > 0) throw new Error(`${name}: ${lost} messages lost, ${duplicated} duplicated`);
}

/**
 * Lowers the masters' nice value to --redis-nice: Redis's durations are
 * wall time, and a master the scheduler preempts mid-script (the nodes and
 * the load share its cores) reports the wait as execution. Without the
 * right to, it runs on at 0, and the report says so.
 */
function reniceRedis(masters: readonly RedisMaster[], result: TopologyResult): void {
  try {
    for (const m of masters) setPriority(m.pid, opts.redisNice);
    result.redisNice = opts.redisNice;
  } catch (error) {
    console.log(`note: Redis runs at nice 0, not ${opts.redisNice}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Starts the topology and two nodes on it, and measures every operation runs times. */
async function measureTopology(kind: TopologyKind, result: TopologyResult, memory: MemoryNode): Promise<void> {
  const topology = await startRedisTopology(kind);
  result.ports.push(...topology.masters.map((m) => m.port));
  const nodes: BenchServer[] = [];
  const loads: Loads[] = [];
  let probe: RedisProbe | undefined;
  try {
    reniceRedis(topology.masters, result);
    const started = await Promise.allSettled([0, 1].map(() => startServer("project", {}, undefined, [...topology.serverArgs, ...nodeArgs])));
    // Kept before failing, so that a node that did start is stopped below.
    for (const s of started) if (s.status === "fulfilled") nodes.push(s.value);
    for (const s of started) if (s.status === "rejected") throw s.reason;
    probe = await createRedisProbe(topology.masters);
    for (const operation of operations) {
      const cluster = await operation.setup([nodes[0]!.url, nodes[1]!.url], `${operation.name}.`);
      loads.push({ operation, cluster, memory: memory.loads.get(operation.name)! });
    }
    for (let run = 0; run < runs; run++) {
      const idle = await idleWindow(probe, nodes, memory.server);
      result.idle.push(idle);
      // Rotate the order, so that no operation always runs first (or last).
      for (let i = 0; i < loads.length; i++) {
        const l = loads[(i + run) % loads.length]!;
        const r = await runOperation(run, l, probe, nodes, memory, idle);
        result.runs.set(l.operation.name, [...(result.runs.get(l.operation.name) ?? []), r]);
        progress(kind, run, l.operation, r);
      }
    }
    for (const l of loads) checkLoad(`${l.operation.name} on ${kind}`, l.cluster);
  } finally {
    for (const l of loads) l.cluster.close();
    probe?.close();
    await Promise.all(nodes.map((s) => s.stop()));
    await topology.stop();
  }
}

const begun = Date.now();
const results: TopologyResult[] = [];
let failures = 0;
const memory = await startMemoryNode();
for (const kind of topologies) {
  const result: TopologyResult = { kind, ports: [], redisNice: 0, idle: [], runs: new Map() };
  results.push(result);
  try {
    await measureTopology(kind, result, memory);
  } catch (error) {
    failures++;
    result.failure = error instanceof Error ? error.message : String(error);
    console.log(`FAIL ${kind}: ${result.failure}`);
  }
}
for (const [name, load] of memory.loads) {
  try {
    checkLoad(`${name} in memory`, load);
  } catch (error) {
    failures++;
    console.log(`FAIL ${error instanceof Error ? error.message : String(error)}`);
  }
  load.close();
}
await memory.server.stop();
const elapsed = (Date.now() - begun) / 1000;
console.log(`${failures === 0 ? "every operation completed with nothing lost or duplicated" : `${failures} failures`} in ${elapsed.toFixed(0)} s\n`);
console.log(
  renderClusterReport({
    operations,
    topologies: results,
    runs,
    seconds,
    ioMicros: opts.ioMicros,
    machine: `${cpus().length} cores (${cpus()[0]?.model ?? "unknown"}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node.js ${process.version}`,
    command: `npm run bench:cluster -- ${process.argv.slice(2).join(" ")}`.replace(/ -- $/, ""),
  }),
);
process.exit(failures === 0 ? 0 : 1);
