/**
 * `npm run bench:reuse-port`: direct messages through one node in cluster
 * mode, then through two nodes sharing one port with --reuse-port, over a
 * local Redis, each user on an HTTP/2 connection of its own so that the
 * kernel spreads them over the nodes. Reports delivered messages per second,
 * min/median/max over the runs, and the CPU each process used, since every
 * process here (the nodes, Redis, the load generator) shares the same cores.
 */
import { cpus } from "node:os";
import { Command, InvalidArgumentError } from "commander";
import { startRedis } from "../test/helpers/redis-server.js";
import { startGeneratorProcess } from "./generator-process.js";
import { machineBusySeconds } from "./machine-load.js";
import type { Scenario, ScenarioOutcome } from "./protocol.js";
import { type BenchServer, processCpuSeconds, startServer } from "./servers.js";

const positive = (what: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${what} must be a positive number`);
  return n;
};
const given = new Command("bench:reuse-port")
  .option("--quick", "a short pass for smoke tests: one run of each, with few users, that checks every message is delivered")
  .option("--runs <n>", "runs of each configuration (1 node, 2 nodes)", positive("--runs"), 5)
  .option("--seconds <s>", "the measured window of each run, in seconds", positive("--seconds"), 5)
  .option("--warm-up <s>", "direct messages sent before the window, in seconds, on the same nodes", positive("--warm-up"), 2)
  .option("--pairs <n>", "sender-receiver pairs, each user on a connection of its own", positive("--pairs"), 100)
  .parse()
  .opts<{ quick?: boolean; runs: number; seconds: number; warmUp: number; pairs: number }>();
const opts = given.quick === true ? { runs: 1, seconds: 0.5, warmUp: 0.2, pairs: 10 } : given;

/** CPU seconds of every process of a run at one moment, and the machine's. */
interface Sample {
  at: number;
  nodes: number[];
  redis: number;
  generator: number;
  machine: number;
}

/** What one run of one configuration measured. */
interface Measurement {
  nodes: number;
  outcome: ScenarioOutcome;
  /** Cores each process used over the window: each node's, Redis's, the generator's, and the rest of the machine's. */
  cores: { nodes: number[]; redis: number; generator: number; other: number };
}

/**
 * Starts a Redis, then the nodes on one port with --reuse-port (the first
 * on a free port, the others on the one it got), warms them up with direct
 * messages, and measures direct messages over the window.
 */
async function measure(nodeCount: number): Promise<Measurement> {
  const redis = await startRedis();
  const env = { REDIS_URL: redis.url };
  const nodes: BenchServer[] = [];
  const generator = startGeneratorProcess(`${nodeCount} node(s)`);
  try {
    nodes.push(await startServer("project", env, undefined, ["--reuse-port", "--no-web"]));
    const port = new URL(nodes[0]!.url).port;
    for (let i = 1; i < nodeCount; i++) nodes.push(await startServer("project", env, undefined, ["--reuse-port", "--no-web", "--port", port]));
    // Every user dials the one address; the kernel picks a node for each connection.
    const urls = [nodes[0]!.url];
    const sample = (): Sample => ({
      at: performance.now() / 1000,
      nodes: nodes.map((n) => n.cpuSeconds()),
      redis: processCpuSeconds(redis.pid),
      generator: processCpuSeconds(generator.pid),
      machine: machineBusySeconds(),
    });
    const direct = (seconds: number): Scenario => ({ kind: "direct", pairs: opts.pairs, seconds, textSize: 32 });
    await generator.run({ type: "run", urls, scenario: direct(opts.warmUp), prefix: "warm-" }, sample);
    const { outcome, samples } = await generator.run({ type: "run", urls, scenario: direct(opts.seconds), prefix: "measured-" }, sample);
    const start = samples.get("start")!;
    const end = samples.get("end")!;
    const wall = end.at - start.at;
    const nodeCores = end.nodes.map((cpu, i) => (cpu - start.nodes[i]!) / wall);
    const redisCores = (end.redis - start.redis) / wall;
    const generatorCores = (end.generator - start.generator) / wall;
    const ours = nodeCores.reduce((a, b) => a + b, 0) + redisCores + generatorCores;
    // This process polls /proc at the marks only: its share is too small to count apart.
    const other = Math.max(0, (end.machine - start.machine) / wall - ours);
    return { nodes: nodeCount, outcome, cores: { nodes: nodeCores, redis: redisCores, generator: generatorCores, other } };
  } finally {
    generator.kill();
    await Promise.all(nodes.map((n) => n.stop()));
    await redis.kill();
  }
}

function report(run: number, m: Measurement): boolean {
  const o = m.outcome;
  const ok = o.lost === 0 && o.duplicated === 0 && o.deliveries === o.expected;
  const c = m.cores;
  console.log(
    `${ok ? "ok  " : "FAIL"} run ${run + 1}/${opts.runs} ${m.nodes} node${m.nodes > 1 ? "s" : " "} ` +
      `${Math.round(o.rate).toString().padStart(6)} messages/s  p50 ${o.latency.p50.toFixed(1)} ms  p99 ${o.latency.p99.toFixed(1)} ms  ` +
      `delivered ${o.deliveries}/${o.expected}  lost ${o.lost}  dup ${o.duplicated}  node CPU ${nodeMicros(m).toFixed(0)} µs/message  ` +
      `cores: node${m.nodes > 1 ? "s" : ""} ${c.nodes.map((n) => n.toFixed(2)).join(" + ")}, redis ${c.redis.toFixed(2)}, ` +
      `generator ${c.generator.toFixed(2)}, other ${c.other.toFixed(2)}`,
  );
  return ok;
}

/** The nodes' CPU time per delivered message, all nodes together, in microseconds. */
function nodeMicros(m: Measurement): number {
  return (m.cores.nodes.reduce((a, b) => a + b, 0) / m.outcome.rate) * 1e6;
}

const median = (values: readonly number[]) => {
  const sorted = values.toSorted((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const started = Date.now();
const results = new Map<number, Measurement[]>([
  [1, []],
  [2, []],
]);
let failures = 0;
for (let run = 0; run < opts.runs; run++) {
  // Alternate which goes first, so that neither always meets the machine in the same state.
  for (const nodeCount of run % 2 === 0 ? [1, 2] : [2, 1]) {
    try {
      const m = await measure(nodeCount);
      if (report(run, m)) results.get(nodeCount)!.push(m);
      else failures++;
    } catch (error) {
      failures++;
      console.log(`FAIL run ${run + 1}/${opts.runs} ${nodeCount} node(s): ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

const elapsed = (Date.now() - started) / 1000;
const date = new Date().toISOString().slice(0, 10);
console.log(
  `\nDirect messages, ${opts.pairs} pairs (${opts.pairs * 2} connections), ${opts.seconds} s windows after ${opts.warmUp} s of warm-up, ` +
    `cluster mode over one local Redis; ${cpus().length} cores (${cpus()[0]?.model ?? "unknown"}), Node.js ${process.version}, ${date}, ${elapsed.toFixed(0)} s:\n`,
);
console.log(
  "| nodes on one port | runs | delivered messages/s: min / median / max | p99 latency, median | nodes' CPU per message, median | cores used, median: nodes, Redis, generator, other |",
);
console.log("| --- | --- | --- | --- | --- | --- |");
const medianRate = new Map<number, number>();
for (const [nodeCount, ms] of results) {
  if (ms.length === 0) continue;
  const rates = ms.map((m) => m.outcome.rate);
  medianRate.set(nodeCount, median(rates));
  const cores = (f: (m: Measurement) => number) => median(ms.map(f)).toFixed(2);
  const nodeCores = Array.from({ length: nodeCount }, (_, i) => cores((m) => m.cores.nodes[i]!)).join(" + ");
  console.log(
    `| ${nodeCount} | ${ms.length} | ${Math.round(Math.min(...rates))} / ${Math.round(median(rates))} / ${Math.round(Math.max(...rates))} ` +
      `| ${median(ms.map((m) => m.outcome.latency.p99)).toFixed(1)} ms | ${median(ms.map(nodeMicros)).toFixed(0)} µs | ${nodeCores}, ${cores((m) => m.cores.redis)}, ${cores((m) => m.cores.generator)}, ${cores((m) => m.cores.other)} |`,
  );
}
const [one, two] = [medianRate.get(1), medianRate.get(2)];
if (one !== undefined && two !== undefined) console.log(`\n2 nodes ÷ 1 node, medians: ${(two / one).toFixed(2)}×`);
console.log(failures === 0 ? "every run delivered every message, none lost or duplicated" : `${failures} runs failed`);
process.exit(failures === 0 ? 0 : 1);
