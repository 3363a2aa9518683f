import { type CheckResult, checkNames } from "./check-history.js";
import type { HistoryEntry } from "./history.js";

/** One history line as the report shows it: time, who, what. */
export function describeEntry(e: HistoryEntry): string {
  const ms = (t: number) => `${(t / 1000).toFixed(3)}s`;
  switch (e.type) {
    case "call": {
      const via = e.node === undefined ? "" : ` via node ${e.node}`;
      const attempt = e.attempt === undefined || e.attempt === 1 ? "" : ` (attempt ${e.attempt})`;
      const answer =
        e.messageId !== undefined
          ? ` ${e.messageId}`
          : e.listed !== undefined
            ? ` ${e.listed.length} messages${e.complete === true ? "" : ", more before them"}`
            : "";
      return `${ms(e.start)}..${ms(e.end)} ${e.client} [${e.session}] ${e.op}${e.target === undefined ? "" : ` ${e.target}`}${e.text === undefined ? "" : ` "${e.text}"`}${attempt}${via} -> ${e.outcome}${answer}${e.detail === undefined ? "" : ` (${e.detail})`}`;
    }
    case "stream-open":
      return `${ms(e.t)} ${e.client} [${e.stream}] stream open on node ${e.node} as ${e.user}${e.resumed ? `, resumed (lost ${e.lostEvents})` : ""}`;
    case "event":
      return `${ms(e.t)} ${e.client} [${e.stream}] got ${e.kind} ${e.channel}${e.text === undefined ? "" : ` "${e.text}"`}${e.id === undefined ? "" : ` ${e.id}`}${e.username === undefined ? "" : ` ${e.username}`}${e.reason === undefined ? "" : ` ${e.reason}`}`;
    case "stream-end":
      return `${ms(e.t)} ${e.client} [${e.stream}] stream ended: ${e.how}${e.resuming ? " (will resume)" : ""}`;
    case "fault":
      return `${ms(e.start)}..${ms(e.end)} fault ${e.kind} on ${e.target}: ${e.detail ?? ""}`;
    case "phase":
      return `${ms(e.t)} phase ${e.name}`;
  }
}

/** How many violations of each check the report prints in full; the rest are counted. */
const shownPerCheck = 5;

/** The report of a run: what was done, what was injected, what was checked, and every violation with its proof. */
export function renderReport(history: readonly HistoryEntry[], result: CheckResult): string {
  const lines: string[] = [];
  const start = history.find((e) => e.type === "phase" && e.name === "start");
  const settings = start?.type === "phase" ? start.settings : undefined;
  lines.push(
    `chaos run: ${Object.entries(settings ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(" ")}`,
  );
  const ops = new Map<string, number>();
  for (const e of history) {
    if (e.type !== "call") continue;
    const key = `${e.op} ${e.outcome}`;
    ops.set(key, (ops.get(key) ?? 0) + 1);
  }
  const callCount = [...ops.values()].reduce((a, b) => a + b, 0);
  lines.push(`operations: ${callCount}`);
  for (const [key, count] of [...ops].sort()) lines.push(`  ${key.padEnd(40)} ${count}`);
  const faults = new Map<string, number>();
  for (const e of history) if (e.type === "fault") faults.set(e.kind, (faults.get(e.kind) ?? 0) + 1);
  lines.push(`faults injected: ${[...faults.values()].reduce((a, b) => a + b, 0)}`);
  for (const [kind, count] of [...faults].sort()) lines.push(`  ${kind.padEnd(40)} ${count}`);
  lines.push(`sessions: ${result.sessions}; deliveries checked: ${result.deliveries}`);
  const calls = history.filter((e) => e.type === "call");
  const retried = new Map<string, { nodes: Set<number | undefined>; ok: boolean }>();
  for (const e of calls) {
    if (e.op !== "send" || e.text === undefined || (e.attempt ?? 1) === 1) continue;
    const first = retried.get(e.text) ?? { nodes: new Set(), ok: false };
    retried.set(e.text, first);
    first.nodes.add(e.node);
    first.ok ||= e.outcome === "ok";
  }
  const firstNode = new Map(calls.flatMap((e) => (e.op === "send" && e.attempt === 1 && e.text !== undefined ? [[e.text, e.node] as const] : [])));
  const elsewhere = [...retried].filter(([text, r]) => [...r.nodes].some((n) => n !== firstNode.get(text))).length;
  const okLater = [...retried.values()].filter((r) => r.ok).length;
  lines.push(
    `sends retried with their request id: ${retried.size} (${okLater} acknowledged on a retry, ${elsewhere} retried through another node); let pass across a Redis restart: ${result.requestsExcused}`,
  );
  const reads = calls.filter((e) => e.op === "list" && e.outcome === "ok");
  lines.push(
    `history reads: ${reads.length} (${reads.filter((e) => e.complete === true).length} to the end), listing ${reads.reduce((n, e) => n + (e.listed?.length ?? 0), 0)} messages`,
  );
  const { excused } = result;
  lines.push(
    `let pass by the narrowed claim (a stream that ended with an error before anything later reached it): ${excused.pairs} deliveries, ${excused.missing} missing`,
  );
  if (excused.example !== undefined) {
    lines.push("  for example:");
    for (const e of excused.example) lines.push(`    ${describeEntry(e)}`);
  }
  lines.push("checks (facts examined, violations):");
  for (const name of checkNames) {
    const count = result.violations.filter((v) => v.check === name).length;
    lines.push(`  ${name.padEnd(40)} ${String(result.examined[name]).padStart(8)} ${count === 0 ? "ok" : `${count} VIOLATED`}`);
  }
  for (const name of checkNames) {
    const found = result.violations.filter((v) => v.check === name);
    for (const v of found.slice(0, shownPerCheck)) {
      lines.push("", `VIOLATION ${v.check}: ${v.message}`);
      for (const e of v.excerpt) lines.push(`    ${describeEntry(e)}`);
    }
    if (found.length > shownPerCheck) lines.push("", `... and ${found.length - shownPerCheck} more ${name} violations`);
  }
  lines.push("", result.violations.length === 0 ? "no violations" : `${result.violations.length} violations`);
  return lines.join("\n");
}
