import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { it } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

// Smoke tests only: a few scenarios of each benchmark run against the
// servers and nothing is lost or duplicated. The full quick passes
// (`npm run bench -- --quick`, `npm run bench:features -- --quick`) and the
// measurements themselves belong to the benchmarks; timings are their
// business, not the tests'. grpc-go is left out: the tests do not need Go.

function run(script: string, args: string[]): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ["--import", "tsx", script, "--quick", ...args], { cwd: root, maxBuffer: 1 << 24 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

it("the cost benchmark completes its scenarios with nothing lost or duplicated", { timeout: 60_000 }, async () => {
  const only = ["streams", "fanout-100", "direct"];
  // project-no-history: the project's server with history off, which the report compares it with.
  const servers = ["project", "project-no-history", "limit"];
  const output = await run("bench/run.ts", ["--servers", servers.join(","), "--only", only.join(",")]);
  for (const scenario of only) {
    for (const server of servers) {
      assert.match(output, new RegExp(`^ok {3}run 1 ${scenario} +${server} `, "m"), `${scenario} on ${server} did not pass:\n${output}`);
    }
  }
  assert.equal(output.match(/^ok /gm)?.length, 9, output);
  assert.doesNotMatch(output, /^FAIL/m);
  assert.match(output, /every scenario completed with nothing lost or duplicated/);
});

it("the features benchmark completes cluster mode, TLS and tokens with every delivery", { timeout: 60_000 }, async () => {
  const output = await run("bench/features.ts", ["--only", "cluster-2,security"]);
  assert.match(output, /^ok {3}run 1\/1 cluster-2 +project /m, `cluster-2 did not pass:\n${output}`);
  for (const variant of ["plain", "tls", "tokens", "tokens, a new one per call", "tls \\+ tokens"]) {
    assert.match(output, new RegExp(`^ok {3}run 1/1 security/${variant} +project `, "m"), `security/${variant} did not pass:\n${output}`);
  }
  assert.equal(output.match(/^ok /gm)?.length, 6, output);
  assert.doesNotMatch(output, /^FAIL/m);
  assert.match(output, /all scenarios completed with every delivery/);
});

it("the cluster benchmark measures each kind of operation on one Redis with nothing lost or duplicated", { timeout: 60_000 }, async () => {
  // A Redis Cluster is left out: the smoke test must stay short.
  const only = ["direct", "many-groups", "join-leave", "connect-disconnect"];
  const output = await run("bench/cluster.ts", ["--topology", "redis", "--only", only.join(",")]);
  for (const operation of only) {
    assert.match(output, new RegExp(`^ok {3}run 1/1 redis +${operation} `, "m"), `${operation} did not pass:\n${output}`);
  }
  assert.equal(output.match(/^ok /gm)?.length, 4, output);
  assert.doesNotMatch(output, /^FAIL/m);
  assert.match(output, /every operation completed with nothing lost or duplicated/);
  // The table has figures: Redis's execution and round trips per direct message.
  assert.match(output, /^\| direct message to a user on the other node \| [\d.,]+ \| [\d.]+ \|/m, output);
});

it("the --reuse-port benchmark delivers every message through one node and through two on one port", { timeout: 60_000 }, async () => {
  const output = await run("bench/reuse-port.ts", []);
  assert.match(output, /^ok {3}run 1\/1 1 node /m, output);
  assert.match(output, /^ok {3}run 1\/1 2 nodes /m, output);
  assert.doesNotMatch(output, /^FAIL/m);
  assert.match(output, /every run delivered every message, none lost or duplicated/);
});
