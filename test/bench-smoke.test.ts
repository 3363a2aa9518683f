import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { it } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

// A smoke test only: a few scenarios, one of each kind (fan-out, direct
// messages, cluster mode, TLS and tokens), run against every server, and every delivery
// arrives. The full quick pass (`npm run bench -- --quick`, about a minute)
// and the measurements themselves belong to `npm run bench`; timings are the
// benchmark's business, not the tests'.
const only = ["fanout-100", "direct", "cluster-2", "security"];

it("the benchmark completes a scenario of each kind with every delivery", { timeout: 60_000 }, async () => {
  const output = await new Promise<string>((resolve, reject) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "bench/run.ts", "--quick", "--only", only.join(",")],
      { cwd: root, maxBuffer: 1 << 24 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${error.message}\n${stdout}\n${stderr}`));
        else resolve(stdout);
      },
    );
  });
  for (const scenario of ["fanout-100", "direct"]) {
    for (const server of ["project", "limit", "grpc-js"]) {
      assert.match(output, new RegExp(`^ok {3}run 1/1 ${scenario} +${server} `, "m"), `${scenario} on ${server} did not pass:\n${output}`);
    }
  }
  assert.match(output, /^ok {3}run 1\/1 cluster-2 +project /m, `cluster-2 did not pass:\n${output}`);
  for (const variant of ["plain", "tls", "tokens", "tokens, a new one per call", "tls \\+ tokens"]) {
    assert.match(output, new RegExp(`^ok {3}run 1/1 security/${variant} +project `, "m"), `security/${variant} did not pass:\n${output}`);
  }
  assert.equal(output.match(/^ok /gm)?.length, 12, output);
  assert.doesNotMatch(output, /^FAIL/m);
  assert.match(output, /all scenarios completed with every delivery/);
});
