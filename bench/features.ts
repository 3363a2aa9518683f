import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { createDevCa, type DevCa } from "../client/dev-ca.js";
import { startRedis } from "../test/helpers/redis-server.js";
import { type ClusterSpec, type Measurement, renderReport, type ScenarioSpec, type SecuritySpec } from "./features-report.js";
import { startGeneratorProcess } from "./generator-process.js";
import type { Scenario } from "./protocol.js";
import { featureServerKinds, processCpuSeconds, type ServerKind, startServer } from "./servers.js";

const program = new Command("bench:features")
  .option("--quick", "a small pass for smoke tests: checks deliveries, writes no report")
  .option("--runs <n>", "runs of every scenario against every server", "3")
  .option("--only <names>", "comma-separated scenario names")
  .option("--out <file>", "the report to write", "docs/benchmarks-features.md")
  .parse();
const opts = program.opts<{ quick?: boolean; runs: string; only?: string; out: string }>();
const quick = opts.quick === true;
const runs = quick ? 1 : Number(opts.runs);

const full: ScenarioSpec[] = [
  { name: "fanout-10", title: "Group fan-out, K = 10", scenario: { kind: "fanout", k: 10, n: 20000, inFlight: 32, textSize: 32, stalled: false } },
  { name: "fanout-100", title: "Group fan-out, K = 100", scenario: { kind: "fanout", k: 100, n: 2000, inFlight: 32, textSize: 32, stalled: false } },
  { name: "fanout-1000", title: "Group fan-out, K = 1000", scenario: { kind: "fanout", k: 1000, n: 200, inFlight: 32, textSize: 32, stalled: false } },
  {
    name: "paced-100",
    title: "Group fan-out, K = 100, at half the peak rate",
    scenario: { kind: "fanout", k: 100, n: 1000, inFlight: 32, textSize: 32, stalled: false },
    pacedFrom: "fanout-100",
  },
  { name: "direct", title: "Direct messages, P = 100 pairs", scenario: { kind: "direct", pairs: 100, perSender: 200, textSize: 32 } },
  {
    name: "slow-member",
    title: "Group fan-out, K = 100, plus one member that never reads",
    scenario: { kind: "fanout", k: 100, n: 2000, inFlight: 32, textSize: 32, stalled: true },
  },
  { name: "connections", title: "10,000 concurrent streams", scenario: { kind: "connections", count: 10000, messages: 5, textSize: 32 } },
];
const small: Record<string, Partial<Scenario>> = {
  "fanout-10": { n: 300 },
  "fanout-100": { n: 30 },
  "fanout-1000": { n: 3 },
  "paced-100": { n: 20 },
  direct: { pairs: 20, perSender: 20 },
  "slow-member": { k: 20, n: 100 },
  connections: { count: 300, messages: 2 },
};
const specs = full
  .filter((s) => opts.only === undefined || opts.only.split(",").includes(s.name))
  .map((s) => (quick ? { ...s, scenario: { ...s.scenario, ...small[s.name] } as Scenario } : s));

/**
 * Runs one scenario against one server kind, in fresh processes; with
 * clusterNodes, against that many project nodes sharing a Redis of their own,
 * the users spread over the nodes.
 */
async function measure(kind: ServerKind, scenario: Scenario, clusterNodes = 0, secure: Secure = {}): Promise<Measurement> {
  const redis = clusterNodes > 0 ? await startRedis() : undefined;
  const env = {
    ...(redis ? { REDIS_URL: redis.url } : {}),
    ...(secure.tls ? { TLS_CERT: secure.tls.certFile, TLS_KEY: secure.tls.keyFile } : {}),
    ...(secure.jwtSecret === undefined ? {} : { JWT_SECRET: secure.jwtSecret }),
  };
  const servers = await Promise.all(Array.from({ length: Math.max(1, clusterNodes) }, () => startServer(kind, env)));
  const urls = servers.map((s) => (secure.tls ? s.url.replace(/^http:/, "https:") : s.url));
  const access = {
    ...(secure.tls ? { ca: readFileSync(secure.tls.caFile, "utf8") } : {}),
    ...(secure.jwtSecret === undefined ? {} : { jwtSecret: secure.jwtSecret, freshTokens: secure.freshTokens === true }),
  };
  const generator = startGeneratorProcess(kind);
  const rss = () => servers.reduce((sum, s) => sum + s.rssBytes(), 0);
  let peakRss = rss();
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, rss())), 100);
  try {
    const { outcome, samples } = await generator.run({ type: "run", urls, scenario, access }, () => ({
      cpu: servers.reduce((sum, s) => sum + s.cpuSeconds(), 0),
      redisCpu: redis ? processCpuSeconds(redis.pid) : 0,
      rss: rss(),
    }));
    const start = samples.get("start")!;
    const end = samples.get("end")!;
    const before = samples.get("idle-before");
    const after = samples.get("idle-after");
    return {
      server: kind,
      outcome,
      serverCpuSeconds: end.cpu - start.cpu,
      redisCpuSeconds: redis ? end.redisCpu - start.redisCpu : undefined,
      peakRssBytes: peakRss,
      bytesPerStream: before && after && scenario.kind === "connections" ? (after.rss - before.rss) / scenario.count : undefined,
    };
  } finally {
    clearInterval(sampler);
    generator.kill();
    await Promise.all(servers.map((s) => s.stop()));
    await redis?.kill();
  }
}

/** Fan-out with the members spread over cluster nodes, compared with one in-memory node. */
const clusterSpecs: ClusterSpec[] = [1, 2, 3].map((nodes) => ({
  name: `cluster-${nodes}`,
  title: `Group fan-out, K = 100, over ${nodes} node${nodes > 1 ? "s" : ""} in cluster mode`,
  nodes,
  scenario: quick
    ? { kind: "fanout", k: 20, n: 30, inFlight: 32, textSize: 32, stalled: false }
    : { kind: "fanout", k: 100, n: 2000, inFlight: 32, textSize: 32, stalled: false },
}));
const selectedClusterSpecs = clusterSpecs.filter((c) => opts.only === undefined || opts.only.split(",").includes(c.name));

/** How the project's server is secured for one variant of the security comparison. */
interface Secure {
  tls?: DevCa;
  jwtSecret?: string;
  freshTokens?: boolean;
}

/** Direct messages against the project's server plain, over TLS, with tokens, and with both. */
const security: SecuritySpec | undefined =
  opts.only === undefined || opts.only.split(",").includes("security")
    ? {
        name: "security",
        title: "What TLS and token checks cost: direct messages",
        scenario: quick ? { kind: "direct", pairs: 10, perSender: 10, textSize: 32 } : { kind: "direct", pairs: 100, perSender: 200, textSize: 32 },
        variants: ["plain", "tls", "tokens", "tokens, a new one per call", "tls + tokens"].map((name) => ({ name, runs: [] })),
      }
    : undefined;
const securityCa = security === undefined ? undefined : createDevCa(mkdtempSync(join(tmpdir(), "bench-tls-")));
const secureOf = (variant: string): Secure => ({
  ...(variant.includes("tls") && securityCa !== undefined ? { tls: securityCa } : {}),
  ...(variant.includes("tokens") ? { jwtSecret: "bench-secret-that-is-32-bytes-long!", freshTokens: variant.includes("new one") } : {}),
});

function report(name: string, run: number, kind: string, m: Measurement): void {
  const o = m.outcome;
  const ok = o.lost === 0 && o.duplicated === 0 && o.deliveries === o.expected;
  if (!ok) failures++;
  console.log(
    `${ok ? "ok  " : "FAIL"} run ${run + 1}/${runs} ${name.padEnd(12)} ${kind.padEnd(8)} ` +
      `${Math.round(o.rate).toString().padStart(8)}/s  p50 ${o.latency.p50.toFixed(1)} ms  p99 ${o.latency.p99.toFixed(1)} ms  ` +
      `deliveries ${o.deliveries}/${o.expected}  lost ${o.lost}  dup ${o.duplicated}  server cpu ${m.serverCpuSeconds.toFixed(2)} s  ` +
      `generator cpu ${o.generatorCpuSeconds.toFixed(2)} s  ${(o.notes.eventsPerResponse ?? NaN).toFixed(1)} events/response` +
      `${m.bytesPerStream !== undefined ? `  ${(m.bytesPerStream / 1024).toFixed(1)} KiB/stream` : ""}` +
      `${m.redisCpuSeconds !== undefined ? `  redis cpu ${m.redisCpuSeconds.toFixed(2)} s` : ""}`,
  );
}

const results = new Map<string, Measurement[][]>();
let failures = 0;
const started = Date.now();
for (let run = 0; run < runs; run++) {
  for (const spec of specs) {
    // Rotate the order so that no server always runs first (or last).
    const order = featureServerKinds.map((_, i) => featureServerKinds[(i + run) % featureServerKinds.length]!);
    const row: Measurement[] = [];
    for (const kind of order) {
      let scenario = spec.scenario;
      if (spec.pacedFrom !== undefined && scenario.kind === "fanout") {
        // Half the peak message rate this server reached in its own fan-out run.
        const peak = results.get(spec.pacedFrom)?.[run]?.find((m) => m.server === kind);
        // Deliveries per second over the group size is messages per second.
        const peakMessages = peak ? peak.outcome.rate / scenario.k : 1000;
        scenario = { ...scenario, rate: Math.max(1, peakMessages / 2) };
      }
      try {
        const m = await measure(kind, scenario);
        m.pacedRate = scenario.kind === "fanout" ? scenario.rate : undefined;
        row.push(m);
        report(spec.name, run, kind, m);
      } catch (error) {
        failures++;
        console.log(`FAIL run ${run + 1}/${runs} ${spec.name} ${kind}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    results.set(spec.name, [...(results.get(spec.name) ?? []), row]);
  }
  if (security !== undefined) {
    const order = security.variants.map((_, i) => security.variants[(i + run) % security.variants.length]!);
    for (const variant of order) {
      try {
        const m = await measure("project", security.scenario, 0, secureOf(variant.name));
        report(`security/${variant.name}`, run, "project", m);
        variant.runs[run] = m;
      } catch (error) {
        failures++;
        console.log(`FAIL run ${run + 1}/${runs} security ${variant.name}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
  for (const spec of selectedClusterSpecs) {
    try {
      const m = await measure("project", spec.scenario, spec.nodes);
      report(spec.name, run, "project", m);
      results.set(spec.name, [...(results.get(spec.name) ?? []), [m]]);
    } catch (error) {
      failures++;
      console.log(`FAIL run ${run + 1}/${runs} ${spec.name} project: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}
const seconds = (Date.now() - started) / 1000;
console.log(`${failures === 0 ? "all scenarios completed with every delivery" : `${failures} scenario runs failed`} in ${seconds.toFixed(0)} s`);

if (!quick) {
  const machine = `${cpus().length} cores (${cpus()[0]?.model ?? "unknown"}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node.js ${process.version}`;
  // The charts live in bench/charts/, linked relative to wherever the report goes.
  const chartsDir = fileURLToPath(new URL("./charts", import.meta.url));
  const rendered = await renderReport({
    specs,
    clusterSpecs: selectedClusterSpecs,
    ...(security === undefined ? {} : { security }),
    results,
    runs,
    machine,
    seconds,
    chartsHref: relative(dirname(resolve(opts.out)), chartsDir),
    command: `npm run bench:features${opts.runs !== "3" ? ` -- --runs ${opts.runs}` : ""}`,
  });
  mkdirSync(chartsDir, { recursive: true });
  for (const [name, svg] of rendered.charts) writeFileSync(join(chartsDir, `${name}.svg`), svg);
  writeFileSync(opts.out, rendered.markdown);
  console.log(`wrote ${opts.out} and ${rendered.charts.size} charts in ${chartsDir}/`);
}
process.exit(failures === 0 ? 0 : 1);
