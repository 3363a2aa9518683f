import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { fileURLToPath } from "node:url";
import { checkHistory } from "../../bench/chaos/check-history.js";
import type { HistoryEntry } from "../../bench/chaos/history.js";
import { faultKinds } from "../../bench/chaos/nemesis.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

/**
 * The short chaos run of docs/chaos.md: Redis and three real nodes, a few
 * clients, every kind of fault at least once, from a fixed seed; the
 * checker must find no violation in the history, sends retried with their
 * request ids and histories read included. It runs `npm run chaos`'s
 * program as a process of its own, as a user would, so that nothing the
 * run leaves behind (its clients' connections) can hold this test open.
 * (The checker's ability to fail: check-history.test.ts, and the planted
 * bugs in docs/chaos.md.)
 */
it("keeps every cluster guarantee through a short run of every kind of fault", { timeout: 240_000 }, () => {
  const outDir = mkdtempSync(join(tmpdir(), "chaos-"));
  try {
    const run = spawnSync(process.execPath, ["--import", "tsx", "bench/chaos/main.ts", "--duration", "30", "--clients", "5", "--seed", "20", "--out", outDir], {
      cwd: root,
      encoding: "utf8",
      timeout: 200_000,
    });
    const report = `${run.stdout}\n${run.stderr}`;
    const history = readFileSync(join(outDir, "history.jsonl"), "utf8")
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as HistoryEntry); // Lines the harness wrote.
    const injected = new Set(history.flatMap((e) => (e.type === "fault" ? [e.kind] : [])));
    assert.deepEqual(
      faultKinds.filter((kind) => !injected.has(kind)),
      [],
      `every kind of fault is injected at least once\n${report}`,
    );
    const result = checkHistory(history);
    assert.ok(result.deliveries > 100, `the clients exchanged messages\n${report}`);
    assert.ok(result.examined["request-once"] > 0 && result.examined["history-order"] > 0, `sends were answered and histories read\n${report}`);
    assert.ok(result.examined["history-complete"] > 0, `a member read its group's history once the cluster was quiet\n${report}`);
    assert.deepEqual(result.violations, [], report);
    assert.equal(run.status, 0, report);
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
});
