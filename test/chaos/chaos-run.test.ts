import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { buildServer } from "../../bench/chaos/chaos-cluster.js";
import { checkHistory } from "../../bench/chaos/check-history.js";
import { faultKinds } from "../../bench/chaos/nemesis.js";
import { renderReport } from "../../bench/chaos/render-report.js";
import { defaultChaosOptions, runChaos } from "../../bench/chaos/run-chaos.js";

/**
 * The short chaos run of docs/chaos.md: Redis and three real nodes, a few
 * clients, every kind of fault at least once, from a fixed seed; the
 * checker must find no violation in the history. (Its ability to fail is
 * shown in docs/chaos.md with planted bugs.)
 */
it("keeps every cluster guarantee through a short run of every kind of fault", { timeout: 240_000 }, async () => {
  const outDir = mkdtempSync(join(tmpdir(), "chaos-"));
  try {
    buildServer();
    const history = await runChaos({ ...defaultChaosOptions, seed: 20, durationMs: 30_000, clients: 5, faults: faultKinds, outDir });
    const result = checkHistory(history);
    const report = renderReport(history, result);
    const injected = new Set(history.flatMap((e) => (e.type === "fault" ? [e.kind] : [])));
    assert.deepEqual(
      faultKinds.filter((kind) => !injected.has(kind)),
      [],
      `every kind of fault is injected at least once\n${report}`,
    );
    assert.ok(result.deliveries > 100, `the clients exchanged messages\n${report}`);
    assert.deepEqual(result.violations, [], report);
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
});
