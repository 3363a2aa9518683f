/**
 * A cluster node in a process of its own, for test/cluster/busy-node.test.ts:
 * it connects one user, says "ready", and on the line "block" keeps its main
 * thread busy for the given milliseconds (as a long garbage collection or a
 * saturated core would), then says whether the user's session survived.
 * Arguments: the Redis URL, the lease in ms, the time to block in ms.
 */
import { createInterface } from "node:readline";
import { createRedisBackend } from "../../server/cluster/redis-backend.js";
import { createLogger } from "../../server/ops/logger.js";
import { smallLimits } from "./small-limits.js";

const [url = "", leaseMs = "1000", blockMs = "3000"] = process.argv.slice(2);
const backend = createRedisBackend({
  target: { url },
  ...smallLimits,
  presenceIntervalMs: 0,
  leaseMs: Number(leaseMs),
  sweepMs: 200,
  logger: createLogger("silent"),
});
await backend.start();
const session = await backend.connect("busy-user");
process.stdout.write("ready\n");
createInterface({ input: process.stdin }).on("line", async (line) => {
  if (line !== "block") return;
  const until = Date.now() + Number(blockMs);
  while (Date.now() < until) {
    // Busy on purpose: nothing else runs on this thread meanwhile.
  }
  // Let the timers that fired late run, as they would after a pause.
  await new Promise((resolve) => setTimeout(resolve, 500));
  process.stdout.write(session.signal.aborted ? "ended\n" : "alive\n");
  await backend.close();
  process.exit(0);
});
