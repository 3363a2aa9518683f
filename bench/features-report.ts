import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { Scenario, ScenarioOutcome } from "./protocol.js";
import { featureServerKinds, type ServerKind } from "./servers.js";

/** A named scenario of the benchmark. */
export interface ScenarioSpec {
  name: string;
  title: string;
  scenario: Scenario;
  /** For a paced run: the scenario whose peak rate it runs at half of. */
  pacedFrom?: string;
}

/** Fan-out over several project nodes in cluster mode. */
export interface ClusterSpec {
  name: string;
  title: string;
  nodes: number;
  scenario: Scenario;
}

/** One scenario run against one server (or, in cluster mode, its nodes together). */
export interface Measurement {
  server: ServerKind;
  outcome: ScenarioOutcome;
  /** All nodes' CPU together, in cluster mode. */
  serverCpuSeconds: number;
  /** Redis's CPU, in cluster mode. */
  redisCpuSeconds?: number;
  peakRssBytes: number;
  bytesPerStream?: number;
  pacedRate?: number;
}

/** One scenario against the project's server with and without TLS and signed tokens. */
export interface SecuritySpec {
  name: string;
  title: string;
  scenario: Scenario;
  /** The variants, plain first: each one's runs. */
  variants: { name: string; runs: Measurement[] }[];
}

interface ReportInput {
  specs: ScenarioSpec[];
  clusterSpecs: ClusterSpec[];
  security?: SecuritySpec;
  /** Per scenario, one row per run, each with a measurement per server. */
  results: Map<string, Measurement[][]>;
  runs: number;
  machine: string;
  seconds: number;
  command: string;
  /** Where the charts are, relative to the report. */
  chartsHref: string;
}

const median = (values: number[]): number => {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
};
const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "–");

function pick(rows: Measurement[][], server: ServerKind, f: (m: Measurement) => number | undefined): number[] {
  return rows.map((row) => row.find((m) => m.server === server)).flatMap((m) => (m === undefined ? [] : [f(m) ?? NaN]));
}

/** Median over runs of the project's figure divided by the other server's, both from the same run. */
function ratio(rows: Measurement[][], other: ServerKind, f: (m: Measurement) => number): number {
  return median(
    rows.flatMap((row) => {
      const mine = row.find((m) => m.server === "project");
      const theirs = row.find((m) => m.server === other);
      return mine && theirs ? [f(mine) / f(theirs)] : [];
    }),
  );
}

async function svg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  return view.toSVG();
}

/** Renders BENCHMARKS.md and its charts from the measurements. */
export async function renderReport(input: ReportInput): Promise<{ markdown: string; charts: Map<string, string> }> {
  const { specs, results } = input;
  const lines: string[] = [];
  const rows = (name: string) => results.get(name) ?? [];
  const med = (name: string, server: ServerKind, f: (m: Measurement) => number | undefined) => median(pick(rows(name), server, f));

  lines.push("# Benchmarks", "");
  lines.push(
    `Machine: ${input.machine}. Written by \`${input.command}\` in ${fmt(input.seconds)} s: ${input.runs} runs of every scenario against every server, the servers' order rotating between runs.`,
    "",
  );
  lines.push(
    "Servers: **project** is this repository's server (`npm start`, default settings); **limit** is `bench/baselines/raw-http2-server.ts`, a bare node:http2 server that writes each message's pre-encoded frame straight to the streams and does nothing else; **grpc-js** is `bench/baselines/grpc-js-server.ts`, the same minimal behaviour on `@grpc/grpc-js`. The load generator (`bench/load-generator.ts`) is a separate process of raw node:http2 clients, one connection per user, that counts events without decoding them into objects. Figures are medians over the runs; ratios are the median of the ratios taken within each run. CPU is seconds of user + system time over the measured phase, for the server and for the generator: the two share 2 cores, so whichever nears 1 core per second of wall time is the bottleneck.",
    "",
  );

  // Targets.
  const checks: [string, string, boolean][] = [];
  for (const k of ["100", "1000"]) {
    const name = `fanout-${k}`;
    if (!results.has(name)) continue;
    const vsLimit = ratio(rows(name), "limit", (m) => m.outcome.rate);
    const vsGrpc = ratio(rows(name), "grpc-js", (m) => m.outcome.rate);
    checks.push([`Fan-out K = ${k}: deliveries/s ≥ 0.5 × limit`, fmt(vsLimit, 2), vsLimit >= 0.5]);
    checks.push([`Fan-out K = ${k}: deliveries/s ≥ 2 × grpc-js`, fmt(vsGrpc, 2), vsGrpc >= 2]);
  }
  if (results.has("direct")) {
    const vsGrpc = ratio(rows("direct"), "grpc-js", (m) => m.outcome.rate);
    checks.push(["Direct messages/s ≥ 1 × grpc-js", fmt(vsGrpc, 2), vsGrpc >= 1]);
  }
  if (results.has("paced-100")) {
    const p99 = med("paced-100", "project", (m) => m.outcome.latency.p99);
    checks.push(["Latency p99 < 50 ms at half the peak fan-out rate (K = 100)", `${fmt(p99, 1)} ms`, p99 < 50]);
  }
  if (results.has("connections")) {
    const perStream = med("connections", "project", (m) => m.bytesPerStream);
    checks.push(["Memory per idle stream at 10,000 streams ≤ 40 KB", `${fmt(perStream / 1000, 1)} KB`, perStream <= 40_000]);
  }
  if (results.has("slow-member") && results.has("fanout-100")) {
    const base = rows("fanout-100");
    const slow = rows("slow-member");
    const rate = median(
      slow.map(
        (row, i) => (row.find((m) => m.server === "project")?.outcome.rate ?? NaN) / (base[i]?.find((m) => m.server === "project")?.outcome.rate ?? NaN),
      ),
    );
    const p99 = median(
      slow.map(
        (row, i) =>
          (row.find((m) => m.server === "project")?.outcome.latency.p99 ?? NaN) / (base[i]?.find((m) => m.server === "project")?.outcome.latency.p99 ?? NaN),
      ),
    );
    checks.push(["A slow member: others' throughput within 10% of fan-out K = 100", fmt(rate, 2), rate >= 0.9]);
    checks.push(["A slow member: others' p99 latency within 10% of fan-out K = 100", fmt(p99, 2), p99 <= 1.1]);
  }
  const all = [...results.values()].flat(2);
  const lost = all.filter((m) => m.outcome.lost > 0 || m.outcome.duplicated > 0).length;
  checks.push(["No scenario loses or duplicates a delivery", `${lost} of ${all.length} runs with a message lost or duplicated`, lost === 0]);
  lines.push("## Targets", "", "| target | project | met |", "| --- | --- | --- |");
  for (const [what, value, met] of checks) lines.push(`| ${what} | ${value} | ${met ? "yes" : "**no**"} |`);
  lines.push("");

  // One table per scenario.
  for (const spec of specs) {
    if (!results.has(spec.name)) continue;
    lines.push(`## ${spec.title}`, "", "```json", JSON.stringify(spec.scenario), "```", "");
    const conn = spec.scenario.kind === "connections";
    lines.push(
      `| server | ${spec.scenario.kind === "direct" ? "messages/s" : "deliveries/s"} | p50 ms | p99 ms | max ms | server CPU s | generator CPU s | wall s | server peak RSS MiB |${conn ? " open s | KB per idle stream |" : ""}${spec.pacedFrom ? " paced at msg/s |" : ""}`,
      `| --- | --- | --- | --- | --- | --- | --- | --- | --- |${conn ? " --- | --- |" : ""}${spec.pacedFrom ? " --- |" : ""}`,
    );
    for (const server of featureServerKinds) {
      const m = (f: (x: Measurement) => number | undefined, d = 0) => fmt(med(spec.name, server, f), d);
      lines.push(
        `| ${server} | ${m((x) => x.outcome.rate)} | ${m((x) => x.outcome.latency.p50, 1)} | ${m((x) => x.outcome.latency.p99, 1)} | ${m((x) => x.outcome.latency.max, 1)} | ${m((x) => x.serverCpuSeconds, 2)} | ${m((x) => x.outcome.generatorCpuSeconds, 2)} | ${m((x) => x.outcome.seconds, 2)} | ${m((x) => x.peakRssBytes / 2 ** 20)} |` +
          (conn ? ` ${m((x) => x.outcome.notes.openSeconds, 1)} | ${m((x) => (x.bytesPerStream ?? NaN) / 1000, 1)} |` : "") +
          (spec.pacedFrom ? ` ${m((x) => x.pacedRate)} |` : ""),
      );
    }
    const r = (other: ServerKind, f: (m: Measurement) => number) => fmt(ratio(rows(spec.name), other, f), 2);
    lines.push(
      "",
      `Project ÷ limit: rate ${r("limit", (m) => m.outcome.rate)}, p99 ${r("limit", (m) => m.outcome.latency.p99)}. ` +
        `Project ÷ grpc-js: rate ${r("grpc-js", (m) => m.outcome.rate)}, p99 ${r("grpc-js", (m) => m.outcome.latency.p99)}.`,
      "",
    );
  }

  // Cluster mode.
  const clusterRows = input.clusterSpecs.filter((c) => results.has(c.name));
  if (clusterRows.length > 0) {
    const single = med("fanout-100", "project", (m) => m.outcome.rate);
    lines.push(
      "## Cluster mode: group fan-out over several nodes",
      "",
      "The project's server in cluster mode (`--redis`), each node a process of its own and one redis-server beside them, the group's members spread evenly over the nodes (the sender on the first). Compared with one node in memory (fan-out K = 100 above). Every process shares the same 2 cores, so more nodes add coordination, not capacity, here.",
      "",
      "```json",
      JSON.stringify(clusterRows[0]!.scenario),
      "```",
      "",
      "| nodes | deliveries/s | ÷ one node in memory | p50 ms | p99 ms | nodes' CPU s | Redis CPU s | generator CPU s |",
      "| --- | --- | --- | --- | --- | --- | --- | --- |",
    );
    for (const c of clusterRows) {
      const m = (f: (x: Measurement) => number | undefined, d = 0) => fmt(med(c.name, "project", f), d);
      lines.push(
        `| ${c.nodes} | ${m((x) => x.outcome.rate)} | ${fmt(med(c.name, "project", (x) => x.outcome.rate) / single, 2)} | ${m((x) => x.outcome.latency.p50, 1)} | ${m((x) => x.outcome.latency.p99, 1)} | ${m((x) => x.serverCpuSeconds, 2)} | ${m((x) => x.redisCpuSeconds, 2)} | ${m((x) => x.outcome.generatorCpuSeconds, 2)} |`,
      );
    }
    lines.push("");
  }

  if (input.security !== undefined) lines.push(...securitySection(input.security));

  // Charts.
  const charts = new Map<string, string>();
  const fanout = specs.filter((s) => s.scenario.kind === "fanout" && !s.scenario.stalled && !s.pacedFrom && results.has(s.name));
  if (fanout.length > 0) {
    const values = fanout.flatMap((s) =>
      featureServerKinds.map((server) => ({ K: (s.scenario as { k: number }).k, server, rate: med(s.name, server, (m) => m.outcome.rate) })),
    );
    charts.set(
      "fanout-throughput",
      await svg({
        $schema: "https://vega.github.io/schema/vega-lite/v5.json",
        title: "Group fan-out: deliveries per second against group size",
        width: 480,
        height: 280,
        data: { values },
        mark: { type: "line", point: true },
        encoding: {
          x: { field: "K", type: "quantitative", scale: { type: "log" }, title: "members (K)" },
          y: { field: "rate", type: "quantitative", title: "deliveries/s" },
          color: { field: "server", type: "nominal" },
        },
      }),
    );
  }
  const latencyValues = specs
    .filter((s) => results.has(s.name))
    .flatMap((s) =>
      featureServerKinds.flatMap((server) => [
        { scenario: s.name, server, percentile: "p50", ms: med(s.name, server, (m) => m.outcome.latency.p50) },
        { scenario: s.name, server, percentile: "p99", ms: med(s.name, server, (m) => m.outcome.latency.p99) },
      ]),
    )
    .filter((v) => Number.isFinite(v.ms) && v.ms > 0);
  charts.set(
    "latency",
    await svg({
      $schema: "https://vega.github.io/schema/vega-lite/v5.json",
      title: "Send-to-receive latency (ms, log scale)",
      data: { values: latencyValues },
      mark: "bar",
      width: 90,
      height: 240,
      encoding: {
        column: { field: "scenario", type: "nominal", title: null },
        x: { field: "server", type: "nominal", title: null },
        xOffset: { field: "percentile" },
        y: { field: "ms", type: "quantitative", scale: { type: "log" }, title: "ms" },
        color: { field: "percentile", type: "nominal" },
      },
    }),
  );
  lines.push("## Charts", "");
  for (const name of charts.keys()) lines.push(`![${name}](${input.chartsHref}/${name}.svg)`, "");
  return { markdown: `${lines.join("\n")}\n`, charts };
}

/** What TLS and token checks cost per message: server CPU per message delivered, against the plain server in the same run. */
function securitySection(spec: SecuritySpec): string[] {
  const perMessage = (m: Measurement) => (m.serverCpuSeconds / Math.max(1, m.outcome.deliveries)) * 1e6;
  const plain = spec.variants[0]!.runs;
  const lines = [
    `## ${spec.title}`,
    "",
    "The project's server alone, started plain, with TLS (`--tls-cert`, `--tls-key`: a P-256 certificate from a throwaway CA), with signed identities (`JWT_SECRET`: every call carries an HS256 token, checked by the request gate), and with both; each unary call is a SendMessage, each delivery a message on the recipient's stream. Server CPU per message is the server's CPU over the measured phase divided by the messages delivered; the ratio is taken against the plain server within each run (the variants' order rotates between runs), then the median. Connection set-up (and the TLS handshakes) happen before the measured phase.",
    "",
    "```json",
    JSON.stringify(spec.scenario),
    "```",
    "",
    "| server | server CPU per message, µs (min–max) | × plain | messages/s | p50 ms | p99 ms |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const variant of spec.variants) {
    const values = variant.runs.map(perMessage);
    const ratios = variant.runs.map((m, i) => (plain[i] === undefined ? NaN : perMessage(m) / perMessage(plain[i]!)));
    const range = values.filter(Number.isFinite).sort((a, b) => a - b);
    lines.push(
      `| ${variant.name} | ${fmt(median(values), 1)} (${fmt(range[0] ?? NaN, 1)}–${fmt(range[range.length - 1] ?? NaN, 1)}) | ${fmt(median(ratios), 2)} | ${fmt(median(variant.runs.map((m) => m.outcome.rate)))} | ${fmt(median(variant.runs.map((m) => m.outcome.latency.p50)), 1)} | ${fmt(median(variant.runs.map((m) => m.outcome.latency.p99)), 1)} |`,
    );
  }
  lines.push("");
  return lines;
}
