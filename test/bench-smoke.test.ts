import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { it } from "node:test";

const root = fileURLToPath(new URL("..", import.meta.url));

// A smoke test only: every scenario runs against every server and every
// delivery arrives. Timings are the benchmark's business, not the tests'.
it("the quick benchmark completes every scenario with every delivery", { timeout: 180_000 }, async () => {
  const output = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ["--import", "tsx", "bench/run.ts", "--quick"], { cwd: root, maxBuffer: 1 << 24 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
  const scenarios = ["fanout-10", "fanout-100", "fanout-1000", "paced-100", "direct", "slow-member", "connections"];
  for (const scenario of scenarios) {
    for (const server of ["project", "limit", "grpc-js"]) {
      assert.match(output, new RegExp(`^ok {3}run 1/1 ${scenario} +${server} `, "m"), `${scenario} on ${server} did not pass:\n${output}`);
    }
  }
  for (const scenario of ["cluster-1", "cluster-2", "cluster-3"]) {
    assert.match(output, new RegExp(`^ok {3}run 1/1 ${scenario} +project `, "m"), `${scenario} did not pass:\n${output}`);
  }
  assert.doesNotMatch(output, /^FAIL/m);
  assert.match(output, /all scenarios completed with every delivery/);
});
