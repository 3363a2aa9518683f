import type { Driven } from "./cluster-operations.js";
import { type CommandCost, commandOf, type MasterWindow, type RedisWindow } from "./redis-probe.js";
import type { TopologyKind } from "./redis-topology.js";

/** A window of the cluster: what Redis did, and the CPU the chat nodes used together. */
export interface ClusterWindow {
  readonly driven: Driven;
  readonly redis: RedisWindow;
  readonly nodesCpuSeconds: number;
}

/** A window of the same operation on one node in memory. */
export interface MemoryWindow {
  readonly driven: Driven;
  readonly cpuSeconds: number;
  /** What the node uses on its own over a window this long, from its run's idle window. */
  readonly backgroundCpuSeconds: number;
}

/**
 * One run of one operation: a traced window, then an untraced one, then
 * the same on one node in memory (measured in the first topology's runs,
 * and shared by the others').
 */
export interface OperationRun {
  readonly traced: ClusterWindow;
  readonly cost: ClusterWindow;
  readonly memory: MemoryWindow;
}

/** A window in which nothing was driven: what the nodes and Redis do on their own (leases, sweeps). */
export interface IdleWindow {
  readonly redis: RedisWindow;
  readonly nodesCpuSeconds: number;
  readonly memoryCpuSeconds: number;
}

/** Everything measured on one topology; failure says why it stopped, if it did. */
export interface TopologyResult {
  readonly kind: TopologyKind;
  readonly ports: number[];
  /** The nice value the masters ran at. */
  redisNice: number;
  /** The idle window of each run, subtracted from that run's windows. */
  readonly idle: IdleWindow[];
  /** By operation name, one entry per run. */
  readonly runs: Map<string, OperationRun[]>;
  failure?: string;
}

/** What the report says about an operation besides its figures. */
export interface OperationInfo {
  readonly name: string;
  readonly title: string;
  readonly delivers: boolean;
}

/** What the report needs besides the results. */
export interface ReportInput {
  readonly operations: readonly OperationInfo[];
  readonly topologies: readonly TopologyResult[];
  readonly runs: number;
  readonly seconds: number;
  /** The I/O a round trip costs Redis in the execution-based ceiling, in µs. */
  readonly ioMicros: number;
  readonly machine: string;
  readonly command: string;
}

const sumCosts = (costs: Iterable<CommandCost>) => {
  const total = { count: 0, micros: 0 };
  for (const c of costs) {
    total.count += c.count;
    total.micros += c.micros;
  }
  return total;
};

/** One run's figures for one operation; per-master arrays are in port order. */
interface Figures {
  executionByMaster: number[];
  roundTripsByMaster: number[];
  cpuByMaster: number[];
  /** From commandstats in the untraced window (see untracedMicros). */
  execution: number;
  /** The sum of the durations SLOWLOG gave the commands the nodes sent, in the traced window. */
  traced: number;
  roundTrips: number;
  cpu: number;
  rate: number;
  corePercent: number;
  executionCeiling: number;
  cpuCeiling: number;
  nodesCpuPerDelivery: number;
  memoryCpuPerDelivery: number;
  nodesCpuPerOperation: number;
  memoryCpuPerOperation: number;
  deliveriesPerOperation: number;
  memoryRate: number;
}

/**
 * Background per second of each master in an idle window: logged commands,
 * their µs, and CPU seconds.
 */
function backgroundOf(idle: IdleWindow): { count: number; micros: number; cpu: number }[] {
  const s = idle.redis.seconds;
  return idle.redis.masters.map((m) => {
    const total = sumCosts(m.logged.values());
    return { count: total.count / s, micros: total.micros / s, cpu: m.cpuSeconds / s };
  });
}

const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);

/** A master's commands by Redis's command name, the scripts' SHAs merged. */
function byCommand(costs: ReadonlyMap<string, CommandCost>): Map<string, CommandCost> {
  const merged = new Map<string, CommandCost>();
  for (const [label, cost] of costs) {
    const command = commandOf(label);
    const total = merged.get(command) ?? { count: 0, micros: 0 };
    total.count += cost.count;
    total.micros += cost.micros;
    merged.set(command, total);
  }
  return merged;
}

/**
 * Execution on one master over the untraced window, in µs: for each command
 * the nodes sent in the traced window, its time in commandstats times the
 * share of its calls that the nodes sent (the rest ran inside scripts, whose
 * time includes theirs), background subtracted.
 */
function untracedMicros(traced: MasterWindow, cost: MasterWindow, idle: MasterWindow, idleSeconds: number, costSeconds: number): number {
  const inner = byCommand(traced.inner);
  let micros = 0;
  for (const [command, sent] of byCommand(traced.logged)) {
    const stats = cost.stats.get(command);
    if (stats === undefined) continue;
    const background = ((idle.stats.get(command)?.micros ?? 0) / idleSeconds) * costSeconds;
    micros += Math.max(0, stats.micros - background) * (sent.count / (sent.count + (inner.get(command)?.count ?? 0)));
  }
  return micros;
}

function figuresOf(run: OperationRun, idle: IdleWindow, ioMicros: number): Figures {
  const background = backgroundOf(idle);
  const traced = run.traced;
  const cost = run.cost;
  const ops = Math.max(1, traced.driven.operations);
  const costOps = Math.max(1, cost.driven.operations);
  const executionByMaster = cost.redis.masters.map(
    (m, i) => untracedMicros(traced.redis.masters[i]!, m, idle.redis.masters[i]!, idle.redis.seconds, cost.redis.seconds) / costOps,
  );
  const tracedByMaster = traced.redis.masters.map(
    (m, i) => Math.max(0, sumCosts(m.logged.values()).micros - background[i]!.micros * traced.redis.seconds) / ops,
  );
  const roundTripsByMaster = traced.redis.masters.map(
    (m, i) => Math.max(0, sumCosts(m.logged.values()).count - background[i]!.count * traced.redis.seconds) / ops,
  );
  const cpuByMaster = cost.redis.masters.map((m, i) => (Math.max(0, m.cpuSeconds - background[i]!.cpu * cost.redis.seconds) * 1e6) / costOps);
  const nodesCpu = Math.max(0, cost.nodesCpuSeconds - (idle.nodesCpuSeconds / idle.redis.seconds) * cost.redis.seconds);
  const memoryCpu = Math.max(0, run.memory.cpuSeconds - run.memory.backgroundCpuSeconds);
  // The busiest master saturates first: with one master, the whole cost.
  const busiest = Math.max(...executionByMaster.map((e, i) => e + ioMicros * roundTripsByMaster[i]!));
  const cpu = sum(cpuByMaster);
  return {
    executionByMaster,
    roundTripsByMaster,
    cpuByMaster,
    execution: sum(executionByMaster),
    traced: sum(tracedByMaster),
    roundTrips: sum(roundTripsByMaster),
    cpu,
    rate: cost.driven.operations / cost.driven.busySeconds,
    corePercent: (cpu * costOps) / cost.redis.seconds / 1e4,
    executionCeiling: 1e6 / busiest,
    cpuCeiling: 1e6 / Math.max(...cpuByMaster),
    nodesCpuPerDelivery: (nodesCpu * 1e6) / Math.max(1, cost.driven.deliveries),
    memoryCpuPerDelivery: (memoryCpu * 1e6) / Math.max(1, run.memory.driven.deliveries),
    nodesCpuPerOperation: (nodesCpu * 1e6) / costOps,
    memoryCpuPerOperation: (memoryCpu * 1e6) / Math.max(1, run.memory.driven.operations),
    deliveriesPerOperation: cost.driven.deliveries / costOps,
    memoryRate: run.memory.driven.operations / run.memory.driven.busySeconds,
  };
}

/** Formats a number with digits decimals (fewer for large ones) and thousands separators. */
function num(value: number, digits = 1): string {
  if (!Number.isFinite(value)) return "–";
  const d = Math.abs(value) >= 1000 ? 0 : Math.abs(value) >= 100 ? Math.min(digits, 1) : digits;
  return value.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
}

/** The median (min–max) over runs, or the one value. */
function spread(values: readonly number[], digits = 1): string {
  if (values.length === 0) return "–";
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted.length % 2 === 1 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  const [low, high] = [num(sorted[0]!, digits), num(sorted.at(-1)!, digits)];
  return low === high ? num(median, digits) : `${num(median, digits)} (${low}–${high})`;
}

const medianOf = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};

/** Busiest ÷ mean of per-master values. */
const imbalance = (values: readonly number[]) => (sum(values) === 0 ? Number.NaN : Math.max(...values) / (sum(values) / values.length));

const topologyTitles: Record<TopologyKind, string> = {
  redis: "One Redis (`--redis`)",
  "redis-cluster": "Redis Cluster, 3 masters (`--redis-cluster`)",
};

type Row = { info: OperationInfo; figures: Figures[]; runs: OperationRun[] };

/** A markdown table row. */
const row = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;

function redisTable(rows: readonly Row[], clustered: boolean, ioMicros: number): string[] {
  const busiest = clustered ? ", busiest master" : "";
  const lines = [
    row([
      "operation",
      "Redis execution per operation, µs",
      "round trips",
      "Redis CPU per operation, µs",
      "at operations/s",
      `Redis CPU, % of a core${clustered ? " (all masters)" : ""}`,
      `ceiling, 1 s ÷ (execution + ${ioMicros} µs × round trips)${busiest}`,
      `ceiling from CPU${busiest}`,
      "execution as traced (SLOWLOG), µs",
    ]),
    row(Array(9).fill("---")),
  ];
  for (const { info, figures: f } of rows) {
    const of = (pick: (x: Figures) => number, digits?: number) => spread(f.map(pick), digits);
    lines.push(
      row([
        info.title,
        of((x) => x.execution),
        of((x) => x.roundTrips, 2),
        of((x) => x.cpu),
        of((x) => x.rate, 0),
        of((x) => x.corePercent, 0),
        of((x) => x.executionCeiling, 0),
        of((x) => x.cpuCeiling, 0),
        of((x) => x.traced),
      ]),
    );
  }
  return lines;
}

function shardTable(rows: readonly Row[], ports: readonly number[]): string[] {
  const lines = [
    `Per master (ports ${ports.join(", ")}), medians; busiest ÷ mean over the masters, median (min–max) over the runs (the target for many groups: at most 1.5):`,
    "",
    row([
      "operation",
      "execution per operation on each master, µs",
      "CPU per operation on each master, µs",
      "busiest ÷ mean, execution",
      "busiest ÷ mean, CPU",
    ]),
    row(Array(5).fill("---")),
  ];
  for (const { info, figures: f } of rows) {
    const perMaster = (pick: (x: Figures) => number[]) => ports.map((_, i) => num(medianOf(f.map((x) => pick(x)[i]!)))).join(" / ");
    lines.push(
      row([
        info.title,
        perMaster((x) => x.executionByMaster),
        perMaster((x) => x.cpuByMaster),
        spread(
          f.map((x) => imbalance(x.executionByMaster)),
          2,
        ),
        spread(
          f.map((x) => imbalance(x.cpuByMaster)),
          2,
        ),
      ]),
    );
  }
  return lines;
}

function nodesTable(rows: readonly Row[]): string[] {
  const lines = [
    row([
      "operation",
      "messages delivered per operation",
      "nodes' CPU per delivered message, µs",
      "one node in memory, µs",
      "cluster ÷ memory",
      "nodes' CPU per operation, µs",
      "one node in memory, µs",
      "cluster ÷ memory",
      "operations/s: cluster, in memory",
    ]),
    row(Array(9).fill("---")),
  ];
  for (const { info, figures: f } of rows) {
    const of = (pick: (x: Figures) => number, digits?: number) => spread(f.map(pick), digits);
    const perDelivery = info.delivers
      ? [of((x) => x.nodesCpuPerDelivery), of((x) => x.memoryCpuPerDelivery), of((x) => x.nodesCpuPerDelivery / x.memoryCpuPerDelivery, 2)]
      : ["–", "–", "–"];
    lines.push(
      row([
        info.title,
        of((x) => x.deliveriesPerOperation, 0),
        ...perDelivery,
        of((x) => x.nodesCpuPerOperation),
        of((x) => x.memoryCpuPerOperation),
        of((x) => x.nodesCpuPerOperation / x.memoryCpuPerOperation, 2),
        `${of((x) => x.rate, 0)}; ${of((x) => x.memoryRate, 0)}`,
      ]),
    );
  }
  return lines;
}

/** Adds up, over every run and master, the commands of the traced windows that pick chooses, by label. */
function tallyOf(runs: readonly OperationRun[], pick: (m: RedisWindow["masters"][number]) => ReadonlyMap<string, CommandCost>): string {
  const mix = new Map<string, CommandCost>();
  let ops = 0;
  for (const run of runs) {
    ops += run.traced.driven.operations;
    for (const m of run.traced.redis.masters) {
      for (const [label, cost] of pick(m)) {
        const total = mix.get(label) ?? { count: 0, micros: 0 };
        total.count += cost.count;
        total.micros += cost.micros;
        mix.set(label, total);
      }
    }
  }
  const parts = [...mix]
    .filter(([, c]) => c.count / Math.max(1, ops) >= 0.005)
    .sort((a, b) => b[1].micros - a[1].micros)
    .map(([label, c]) => `\`${label}\` ${num(c.count / Math.max(1, ops), 2)} (${num(c.micros / c.count)})`);
  return parts.join(", ") || "–";
}

/** What Redis ran for each operation over all runs: the commands the nodes sent, and those their scripts ran. */
function mixTable(rows: readonly Row[]): string[] {
  const lines = [
    "| operation | commands the nodes sent, per operation (µs per call) | commands their scripts ran, per operation (µs per call) |",
    "| --- | --- | --- |",
  ];
  for (const { info, runs } of rows) lines.push(`| ${info.title} | ${tallyOf(runs, (m) => m.logged)} | ${tallyOf(runs, (m) => m.inner)} |`);
  return lines;
}

/** One of issue 22's targets: a figure and its upper bound. */
interface Target {
  readonly what: string;
  readonly limit: number;
  readonly unit: string;
  /** The figure in each run, from the operations' figures by name; undefined when its operations were not run. */
  values(by: (name: string) => Figures[] | undefined): number[] | undefined;
}

/** The largest group operation the benchmark ran (--big-group), by its name. */
const bigGroupOf = (names: readonly string[]) =>
  names
    .filter((n) => /^group-\d+$/.test(n))
    .sort((a, b) => Number(a.slice(6)) - Number(b.slice(6)))
    .at(-1);

/** A bound on one figure of one operation. */
const figure = (what: string, name: string, pick: (x: Figures) => number, limit: number, unit = " µs"): Target => ({
  what,
  limit,
  unit,
  values: (by) => by(name)?.map(pick),
});

function targetsOf(names: readonly string[], clustered: boolean): Target[] {
  const big = bigGroupOf(names);
  const targets = [
    figure("direct message: execution", "direct", (x) => x.execution, 10),
    // To a tenth: what background leaves over in a short window is not a round trip.
    figure("direct message: round trips", "direct", (x) => Math.round(x.roundTrips * 10) / 10, 2, ""),
    figure("group of 10: execution", "group-10", (x) => x.execution, 15),
    figure("group of 100: execution", "group-100", (x) => x.execution, 15),
    figure("join + leave: execution (join ≤ 20, leave ≤ 20)", "join-leave", (x) => x.execution, 40),
    figure("connect + disconnect: execution", "connect-disconnect", (x) => x.execution, 40),
  ];
  if (big !== undefined && big !== "group-10") {
    targets.push({
      what: `group of ${Number(big.slice(6)).toLocaleString("en-US")} ÷ group of 10: execution, run by run`,
      limit: 1.25,
      unit: "",
      values(by) {
        const [large, small] = [by(big), by("group-10")];
        return large && small && large.map((x, i) => x.execution / (small[i]?.execution ?? Number.NaN));
      },
    });
  }
  if (clustered) targets.push(figure("many groups: busiest master ÷ mean, execution", "many-groups", (x) => imbalance(x.executionByMaster), 1.5, ""));
  return targets;
}

/** Issue 22's targets against this topology's figures: met when the median is within the bound. */
function targetsTable(rows: readonly Row[], clustered: boolean): string[] {
  const by = (name: string) => rows.find((r) => r.info.name === name)?.figures;
  const lines = [row(["target", "bound", "measured", "met (median)", "runs within"]), row(Array(5).fill("---"))];
  for (const target of targetsOf(
    rows.map((r) => r.info.name),
    clustered,
  )) {
    const values = target.values(by);
    if (values === undefined) continue;
    const within = values.filter((v) => v <= target.limit).length;
    lines.push(
      row([
        target.what,
        `≤ ${target.limit}${target.unit}`,
        spread(values, 2),
        medianOf(values) <= target.limit ? "yes" : "**no**",
        `${within} of ${values.length}`,
      ]),
    );
  }
  return lines.length > 2 ? lines : [];
}

function topologySection(result: TopologyResult, input: ReportInput): string[] {
  const lines = [`## ${topologyTitles[result.kind]}`, ""];
  if (result.ports.length > 0)
    lines.push(`Redis ran at nice ${result.redisNice}${result.redisNice === 0 ? " (durations include the time the scheduler preempted it)" : ""}.`, "");
  if (result.failure !== undefined) lines.push(`**Failed:** ${result.failure}`, "");
  const rows: Row[] = [];
  for (const info of input.operations) {
    const runs = result.runs.get(info.name) ?? [];
    if (runs.length > 0) rows.push({ info, runs, figures: runs.map((run, i) => figuresOf(run, result.idle[i]!, input.ioMicros)) });
  }
  if (rows.length === 0) return lines;
  const clustered = result.ports.length > 1;
  lines.push("### Redis per operation", "", ...redisTable(rows, clustered, input.ioMicros), "");
  const targets = targetsTable(rows, clustered);
  if (targets.length > 0) lines.push("### Issue 22's targets", "", ...targets, "");
  if (clustered) lines.push("### Spread over the masters", "", ...shardTable(rows, result.ports), "");
  lines.push("### The nodes' CPU, against one node in memory", "", ...nodesTable(rows), "");
  lines.push(
    "### What Redis ran",
    "",
    "Over all runs, background included (under 0.005 per operation left out); a script's time includes the commands it ran.",
    "",
    ...mixTable(rows),
    "",
  );
  const background = result.idle.map((idle) => backgroundOf(idle));
  lines.push(
    `Background, from the idle windows: ${spread(
      background.map((b) => sum(b.map((m) => m.count))),
      1,
    )} commands/s taking ${spread(
      background.map((b) => sum(b.map((m) => m.micros))),
      1,
    )} µs/s, Redis CPU ${spread(
      background.map((b) => sum(b.map((m) => m.cpu)) * 100),
      2,
    )}% of a core.`,
    "",
  );
  return lines;
}

/** Renders the benchmark's markdown: a section per topology, then how it was measured. */
export function renderClusterReport(input: ReportInput): string {
  const lines = [
    "# Cluster mode: what each operation costs Redis and the nodes",
    "",
    `Machine: ${input.machine}. \`${input.command}\`: two nodes, the users of every operation spread over both; ${input.runs} run${
      input.runs > 1 ? "s" : ""
    } of ${input.seconds} s windows; figures are the median (min–max) over the runs.`,
    "",
  ];
  for (const topology of input.topologies) lines.push(...topologySection(topology, input));
  lines.push(
    "## How it is measured",
    "",
    "- **Round trips and what Redis ran**: SLOWLOG at threshold 0 (on every master) around a traced window of N operations. It lists the commands the nodes sent, a script once, and on Redis 7 also each command a script ran (from the client `?:0`), which are told apart: round trips are the commands the nodes sent ÷ N (in a MULTI … EXEC, each command counts, EXEC itself is not logged). The window starts with nothing in flight and ends once every operation started in it has completed and every message has arrived, so all that the N operations caused is in it.",
    "- **Execution**: logging a command costs Redis about a microsecond or two, and a script's logged duration includes the logging of every command it ran (a send to a group of 1,000 runs a thousand `HGET`s), so the traced durations (last column) overstate scripts. The execution column comes from a second, untraced window of the same operation right after: INFO commandstats µs of each command the nodes sent, times the share of its calls the nodes sent rather than scripts (from the traced window), ÷ N. A script's time includes the commands it ran.",
    "- **Durations are wall time** inside Redis: a master preempted mid-script (the nodes, the load and Redis share the cores) would count the wait (long scripts suffer most: up to four times the CPU they used, here). So the masters run at a lower nice value (`--redis-nice`, -10 by default), as a Redis with a core of its own would.",
    "- **Background** (lease refreshes, sweeps, anything the nodes do on their own): measured in an idle window of the same length at the start of each run, and subtracted at its rate per second, per master, from every figure; what it was is said under each topology's tables. The probe's own commands are left out.",
    "- **Redis CPU** (user + system time of each master's process, from /proc) is measured in the untraced window, at the rate the operation reached with many calls in flight (direct messages: 4 per sender, groups: several senders with many each, join + leave and connect + disconnect: many callers at once).",
    `- **Ceilings**: operations per second one Redis core sustains, from execution (1 s ÷ (execution + ${input.ioMicros} µs of I/O per round trip)) and from the CPU measured at the rate reached; on a cluster, of the busiest master, which saturates first.`,
    "- **Nodes' CPU**: both nodes' CPU over the untraced window ÷ messages delivered to the users' streams, against one node in memory (the same users and operation, all on it) measured right after, in the first topology's runs (later topologies are compared with the same measurements).",
    "- Every message carries its sender and sequence number, and every receiver's set is checked at the end of each topology: nothing lost or duplicated.",
    "",
  );
  return lines.join("\n");
}
