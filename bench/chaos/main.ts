import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { type TopologyKind, topologyKinds } from "../redis-topology.js";
import { buildServer } from "./chaos-cluster.js";
import { checkHistory } from "./check-history.js";
import type { HistoryEntry } from "./history.js";
import { type FaultKind, faultKinds, faultKindsOn } from "./nemesis.js";
import { renderReport } from "./render-report.js";
import { defaultChaosOptions, runChaos } from "./run-chaos.js";

const integer = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("not a whole number");
  return n;
};
const topology = (value: string): TopologyKind => {
  // Widened to look up any string: includes() on the literal list takes only its own kinds.
  if (!(topologyKinds as readonly string[]).includes(value)) throw new InvalidArgumentError(`one of ${topologyKinds.join(", ")}`);
  return value as TopologyKind; // Just checked against the list.
};
/** The kinds named; "all" is resolved against the topology once both options are read. */
const kinds = (value: string): FaultKind[] | "all" => {
  if (value === "all") return "all";
  const list = value === "none" ? [] : value.split(",");
  // Widened to look up any string: includes() on the literal list takes only its own kinds.
  for (const kind of list)
    if (!(faultKinds as readonly string[]).includes(kind)) throw new InvalidArgumentError(`no fault "${kind}"; one of ${faultKinds.join(", ")}`);
  return list as FaultKind[]; // Each was just checked against the list of kinds.
};

const program = new Command("chaos")
  .description("Runs Redis and real nodes in cluster mode under faults, records what every client saw, and checks the history (docs/chaos.md).")
  .option("--duration <s>", "seconds of faults (the run takes about 15 s more)", integer, defaultChaosOptions.durationMs / 1000)
  .option("--nodes <n>", "node processes", integer, defaultChaosOptions.nodes)
  .option("--clients <n>", "simulated users (one in three resumes)", integer, defaultChaosOptions.clients)
  .option("--seed <n>", "seed of every random choice", integer, defaultChaosOptions.seed)
  .option("--topology <kind>", `the Redis the nodes share: ${topologyKinds.join(" or ")}`, topology, defaultChaosOptions.topology)
  .option("--faults <list>", `faults to inject, comma-separated, or all (those the topology can take), or none: ${faultKinds.join(", ")}`, kinds, "all")
  .option("--lanes <n>", "faults under way at once, at most", integer, defaultChaosOptions.lanes)
  .option("--out <dir>", "where the history and the nodes' logs go", "chaos-out")
  .option("--replay <dir>", "rerun the seed and options recorded in <dir>/history.jsonl")
  .option("--check <file>", "only check a recorded history (JSON Lines) and print the report")
  .action(
    async (opts: {
      duration: number;
      nodes: number;
      clients: number;
      seed: number;
      topology: TopologyKind;
      faults: FaultKind[] | "all";
      lanes: number;
      out: string;
      replay?: string;
      check?: string;
    }) => {
      let history: readonly HistoryEntry[];
      if (opts.check !== undefined) {
        history = readHistory(opts.check);
      } else {
        if (opts.replay !== undefined) {
          const start = readHistory(join(opts.replay, "history.jsonl")).find((e) => e.type === "phase" && e.name === "start");
          const settings = start?.type === "phase" ? start.settings : undefined;
          if (settings === undefined) throw new Error(`${opts.replay}/history.jsonl has no start line`);
          opts.seed = Number(settings.seed);
          opts.duration = Number(settings.durationMs) / 1000;
          opts.nodes = Number(settings.nodes);
          opts.clients = Number(settings.clients);
          opts.faults = kinds(String(settings.faults) || "none");
          opts.lanes = Number(settings.lanes ?? opts.lanes);
          // A history from before there was a choice ran on one Redis.
          opts.topology = topology(String(settings.topology ?? "redis"));
        }
        const possible = faultKindsOn(opts.topology);
        const faults = opts.faults === "all" ? [...possible] : opts.faults;
        const impossible = faults.filter((kind) => !possible.includes(kind));
        if (impossible.length > 0) program.error(`error: ${impossible.join(", ")} cannot act on --topology ${opts.topology} (docs/chaos.md)`);
        buildServer();
        history = await runChaos({ ...defaultChaosOptions, ...opts, faults, durationMs: opts.duration * 1000, outDir: opts.out });
      }
      const result = checkHistory(history);
      const report = renderReport(history, result);
      if (opts.check === undefined) writeFileSync(join(opts.out, "report.txt"), `${report}\n`);
      console.log(report);
      // The clients' HTTP/2 sessions would keep the process alive: the run is over.
      process.exit(result.violations.length === 0 ? 0 : 1);
    },
  );

function readHistory(file: string): HistoryEntry[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as HistoryEntry); // Lines this harness wrote.
}

await program.parseAsync();
