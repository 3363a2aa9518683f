import { writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { Command, InvalidArgumentError } from "commander";
import { type CostMeasurement, type CostScenario, renderCostReport, undisturbed } from "./cost-report.js";
import { type Mark, startGeneratorProcess } from "./generator-process.js";
import { buildGoBaseline } from "./go-baseline.js";
import { calibrationMs, machineBusySeconds } from "./machine-load.js";
import type { Scenario, ScenarioOutcome } from "./protocol.js";
import { type BenchServer, processCpuSeconds, type ServerKind, serverKinds, startServer } from "./servers.js";

const positive = (what: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${what} must be a positive number`);
  return n;
};
const program = new Command("bench")
  .option("--quick", "a short pass that checks every scenario completes with nothing lost or duplicated; writes no report")
  .option("--runs <n>", "runs of every scenario against every server (more if runs are discarded)", positive("--runs"), 5)
  .option("--seconds <s>", "the measured window of each scenario, in seconds", positive("--seconds"), 5)
  .option("--servers <list>", `comma-separated servers, of ${serverKinds.join(", ")}`, "project,project-no-history,limit,grpc-go")
  .option("--only <names>", "comma-separated scenario names")
  .option("--latency-rate <n>", "messages per second of the fixed-rate latency scenario (fan-out to 100)", positive("--latency-rate"), 100)
  .option("--max-other-load <cores>", "discard a measurement when other processes used more than this many cores during it", positive("--max-other-load"), 0.15)
  .option("--out <file>", "the report to write", "BENCHMARKS.md")
  .parse();
const opts = program.opts<{
  quick?: boolean;
  runs: number;
  seconds: number;
  servers: string;
  only?: string;
  latencyRate: number;
  maxOtherLoad: number;
  out: string;
}>();
const quick = opts.quick === true;
const runs = quick ? 1 : opts.runs;
const seconds = quick ? 0.5 : opts.seconds;
const requested = opts.servers.split(",").filter((s) => s !== "");
for (const s of requested) {
  if (!(serverKinds as readonly string[]).includes(s)) {
    console.error(`bench: --servers: unknown server ${s} (known: ${serverKinds.join(", ")})`);
    process.exit(2);
  }
}

const allScenarios: CostScenario[] = [
  {
    name: "streams",
    title: `${quick ? 300 : "10,000"} idle Connect streams: memory per stream, CPU per Connect`,
    scenario: { kind: "streams", count: quick ? 300 : 10_000 },
  },
  {
    name: "fanout-100",
    title: "Group fan-out, 100 members",
    scenario: { kind: "fanout", k: 100, seconds, inFlight: 32, textSize: 32, stalled: false },
  },
  {
    name: "fanout-1000",
    title: "Group fan-out, 1,000 members",
    scenario: { kind: "fanout", k: quick ? 300 : 1000, seconds, inFlight: 32, textSize: 32, stalled: false },
  },
  { name: "direct", title: "Direct messages, 50 pairs", scenario: { kind: "direct", pairs: 50, seconds, textSize: 32 } },
  {
    name: "latency",
    title: `Latency: fan-out to 100 at ${opts.latencyRate} messages/s`,
    scenario: { kind: "fanout", k: 100, rate: opts.latencyRate, n: Math.round(seconds * opts.latencyRate), inFlight: 32, textSize: 32, stalled: false },
  },
];
const scenarios = allScenarios.filter((s) => opts.only === undefined || opts.only.split(",").includes(s.name));

/** A short pass of every kind of scenario, so that the measured ones run on warm code. */
const warmUp: Scenario[] = [
  { kind: "fanout", k: 100, seconds: quick ? 0.2 : 0.5, inFlight: 32, textSize: 32, stalled: false },
  { kind: "direct", pairs: 50, seconds: quick ? 0.2 : 0.5, textSize: 32 },
];

/** What every process of the benchmark has used, sampled at one moment. */
interface Sample {
  at: number;
  server: number;
  generator: number;
  /** The orchestrator itself, which polls /proc. */
  self: number;
  machine: number;
  rss: number;
}

/** The load generator, one process for every scenario of a server's run. */
interface Generator {
  run(scenario: Scenario, prefix: string): Promise<{ outcome: ScenarioOutcome; samples: Map<string, Sample>; calibrationMs: number }>;
  kill(): void;
}

/** Waits until the server's CPU has gone quiet (teardown done), at most 5 s. */
async function settled(server: BenchServer): Promise<void> {
  let last = server.cpuSeconds();
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const now = server.cpuSeconds();
    if (now - last < 0.005) return;
    last = now;
  }
}

function startGenerator(server: BenchServer): Generator {
  const generator = startGeneratorProcess(server.kind);
  const sample = async (mark: Mark): Promise<Sample> => {
    if (mark.settle === true) await settled(server);
    return {
      at: performance.now() / 1000,
      server: server.cpuSeconds(),
      generator: processCpuSeconds(generator.pid),
      self: processCpuSeconds(process.pid),
      machine: machineBusySeconds(),
      rss: server.rssBytes(),
    };
  };
  return {
    async run(scenario, prefix) {
      // The last scenario's connections may still be closing on the server.
      await settled(server);
      const before = calibrationMs();
      const { outcome, samples } = await generator.run({ type: "run", urls: [server.url], scenario, prefix }, sample);
      return { outcome, samples, calibrationMs: (before + calibrationMs()) / 2 };
    },
    kill: () => generator.kill(),
  };
}

/** Turns a scenario's samples into its costs; other load is the machine's busy time that none of the benchmark's processes used. */
function costOf(name: string, server: ServerKind, run: number, measured: Awaited<ReturnType<Generator["run"]>>): CostMeasurement {
  const { outcome, samples } = measured;
  const first = samples.get("setup") ?? samples.get("idle-before")!;
  const last = samples.get("end") ?? samples.get("closed")!;
  const used = (from: Sample, to: Sample) => to.server - from.server;
  const wall = last.at - first.at;
  const ours = used(first, last) + (last.generator - first.generator) + (last.self - first.self);
  const before = samples.get("idle-before");
  const after = samples.get("idle-after");
  const opened = samples.get("opened");
  return {
    name,
    server,
    run,
    outcome,
    // Idle streams: opening them and closing them, not the second they sat idle.
    serverCpuSeconds: opened && after ? used(first, opened) + used(after, last) : used(first, last),
    windowCpuSeconds: samples.has("start") ? used(samples.get("start")!, last) : used(first, last),
    generatorCpuSeconds: last.generator - first.generator,
    wallSeconds: wall,
    otherLoadCores: Math.max(0, (last.machine - first.machine - ours) / wall),
    ...(before && after ? { bytesPerStream: (after.rss - before.rss) / outcome.expected } : {}),
    calibrationMs: measured.calibrationMs,
  };
}

function report(m: CostMeasurement): void {
  const o = m.outcome;
  const ok = o.lost === 0 && o.duplicated === 0;
  const perEvent = (m.serverCpuSeconds / Math.max(1, o.deliveries)) * 1e6;
  console.log(
    `${ok ? "ok  " : "FAIL"} run ${m.run + 1} ${m.name.padEnd(11)} ${m.server.padEnd(7)} ` +
      `${perEvent.toFixed(2).padStart(8)} µs/event  ${Math.round(o.rate).toString().padStart(7)}/s  ` +
      `events ${o.deliveries}/${o.expected}  lost ${o.lost}  dup ${o.duplicated}  ` +
      `server ${m.serverCpuSeconds.toFixed(2)} s  generator ${m.generatorCpuSeconds.toFixed(2)} s  wall ${m.wallSeconds.toFixed(1)} s  ` +
      `other load ${m.otherLoadCores.toFixed(2)}  calibration ${m.calibrationMs.toFixed(1)} ms CPU` +
      (typeof o.latency.p99 === "number" && Number.isFinite(o.latency.p99) ? `  p99 ${o.latency.p99.toFixed(1)} ms` : "") +
      (m.bytesPerStream === undefined ? "" : `  ${(m.bytesPerStream / 1000).toFixed(1)} KB/stream`),
  );
}

/** A server of a run with its load generator. */
interface Contender {
  kind: ServerKind;
  server: BenchServer;
  generator: Generator;
}

/**
 * One run: a fresh process of every server, each with its generator. Idle
 * streams first, on the freshly started servers; then a warm-up of each;
 * then every other scenario against each server in turn, so that the
 * measurements a ratio pairs are seconds apart, not minutes (the host's
 * speed drifts). A server that fails leaves the run; the others go on.
 */
async function runAll(order: readonly ServerKind[], run: number, goBinary: string | undefined): Promise<CostMeasurement[]> {
  const contenders: Contender[] = [];
  const measured: CostMeasurement[] = [];
  try {
    for (const kind of order) {
      const server = await startServer(kind, {}, goBinary);
      contenders.push({ kind, server, generator: startGenerator(server) });
    }
    const measure = async (spec: CostScenario) => {
      for (const c of [...contenders]) {
        try {
          const m = costOf(spec.name, c.kind, run, await c.generator.run(spec.scenario, `${spec.name}-`));
          report(m);
          measured.push(m);
        } catch (error) {
          failures++;
          console.log(`FAIL run ${run + 1} ${spec.name} ${c.kind}: ${error instanceof Error ? error.message : String(error)}`);
          contenders.splice(contenders.indexOf(c), 1);
          c.generator.kill();
          await c.server.stop();
        }
      }
    };
    for (const spec of scenarios.filter((s) => s.scenario.kind === "streams")) await measure(spec);
    for (const c of contenders) for (const [i, scenario] of warmUp.entries()) await c.generator.run(scenario, `w${i}-`);
    for (const spec of scenarios.filter((s) => s.scenario.kind !== "streams")) await measure(spec);
  } finally {
    for (const c of contenders) c.generator.kill();
    await Promise.all(contenders.map((c) => c.server.stop()));
  }
  return measured;
}

const go = requested.includes("grpc-go") ? await buildGoBaseline() : undefined;
const goNote = go !== undefined && "skipped" in go ? go.skipped : undefined;
if (goNote !== undefined) console.log(`grpc-go skipped: ${goNote}`);
const kinds = requested.filter((k) => k !== "grpc-go" || goNote === undefined) as ServerKind[];
const goBinary = go !== undefined && "binary" in go ? go.binary : undefined;

const results: CostMeasurement[] = [];
let failures = 0;
const started = Date.now();
const disturbance = { maxOtherLoad: opts.maxOtherLoad };
const clean = (m: CostMeasurement) => undisturbed(m, disturbance);
/** The servers whose ratios to the project are targets: the limit, and the project with history off. */
const comparedWith = (["limit", "project-no-history"] as const).filter((k) => kinds.includes(k));
/** Runs whose project measurement and those it is compared with were all undisturbed, for one scenario. */
const cleanRuns = (name: string) =>
  new Set(
    results
      .filter((m) => m.name === name && m.server === "project" && clean(m))
      // A run counts when what it is compared with was undisturbed too (if that runs at all).
      .filter((m) => comparedWith.every((other) => results.some((l) => l.name === name && l.server === other && l.run === m.run && clean(l))))
      .map((m) => m.run),
  ).size;
const maxExtraRuns = quick ? 0 : 2;
// An extra run only while it would end within the ten minutes a full run may take.
const roomForAnotherRun = (run: number) => ((Date.now() - started) / 1000) * ((run + 1) / run) < 600;
for (let run = 0; run < runs || (run < runs + maxExtraRuns && scenarios.some((s) => cleanRuns(s.name) < runs) && roomForAnotherRun(run)); run++) {
  // Rotate the order so that no server always runs first (or last).
  const order = kinds.map((_, i) => kinds[(i + run) % kinds.length]!);
  try {
    results.push(...(await runAll(order, run, goBinary)));
  } catch (error) {
    failures++;
    console.log(`FAIL run ${run + 1}: ${error instanceof Error ? error.message : String(error)}`);
  }
}
failures += results.filter((m) => m.outcome.lost > 0 || m.outcome.duplicated > 0).length;
const elapsed = (Date.now() - started) / 1000;
console.log(`${failures === 0 ? "every scenario completed with nothing lost or duplicated" : `${failures} scenario runs failed`} in ${elapsed.toFixed(0)} s`);

if (!quick) {
  const machine = `${cpus().length} cores (${cpus()[0]?.model ?? "unknown"}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node.js ${process.version}`;
  writeFileSync(
    opts.out,
    renderCostReport({
      scenarios,
      servers: kinds,
      results,
      runs,
      seconds,
      latencyRate: opts.latencyRate,
      disturbance,
      machine,
      elapsed,
      command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
      ...(goNote === undefined ? {} : { goNote }),
    }),
  );
  console.log(`wrote ${opts.out}`);
}
process.exit(failures === 0 ? 0 : 1);
