import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { after, before, it } from "node:test";
import { fileURLToPath } from "node:url";
import { createRedisBackend } from "../../server/cluster/redis-backend.js";
import { createLogger } from "../../server/ops/logger.js";
import { startRedis, type TestRedis } from "../helpers/redis-server.js";
import { smallLimits } from "../helpers/small-limits.js";

const busyNode = fileURLToPath(new URL("../helpers/busy-node-process.ts", import.meta.url));

let redis: TestRedis;
before(async () => {
  redis = await startRedis();
});
after(() => redis.kill());

/**
 * Issue 22: a dead node's users go within lease + sweep, and a node that is
 * only busy must not be taken for dead. The busy node's main thread is
 * stuck three times as long as its lease; the lease is kept from a thread
 * of its own (server/cluster/lease-keeper.ts), so the other node never
 * sweeps its user, and its session lives on.
 */
it("keeps the lease of a node whose main thread is busy past its lease: no false death", { timeout: 30_000 }, async () => {
  const watcher = createRedisBackend({
    target: { url: redis.url },
    ...smallLimits,
    presenceIntervalMs: 0,
    leaseMs: 1000,
    sweepMs: 200,
    logger: createLogger("silent"),
  });
  await watcher.start();
  const child = spawn(process.execPath, ["--import", "tsx", busyNode, redis.url, "1000", "3000"], { stdio: ["pipe", "pipe", "inherit"] });
  try {
    const lines = createInterface({ input: child.stdout! });
    const next = () => new Promise<string>((resolve) => lines.once("line", resolve));
    assert.equal(await next(), "ready");
    assert.equal(await watcher.isOnline("busy-user"), true);
    const verdict = next();
    child.stdin!.write("block\n");
    // Sweeps run every 200 ms on the watcher meanwhile; a lease left to run out would be swept within 1.2 s.
    let sawOffline = false;
    const started = Date.now();
    while (Date.now() - started < 3200) {
      if (!(await watcher.isOnline("busy-user"))) sawOffline = true;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(sawOffline, false, "the busy node's user was swept as if its node had died");
    assert.equal(await verdict, "alive");
  } finally {
    child.kill();
    await watcher.close();
  }
});
