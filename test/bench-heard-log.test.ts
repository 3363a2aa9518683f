import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HeardLog } from "../bench/load-client.js";

// The benchmark's loss and duplicate check: by sender and sequence number,
// so that a loss and a duplicate cannot cancel out as they do in a count.
describe("the benchmark's HeardLog", () => {
  it("finds nothing wrong when each number arrived once, in any order", () => {
    const log = new HeardLog();
    for (const seq of [3, 0, 2, 1]) log.record(7, seq);
    assert.deepEqual(log.check(new Map([[7, 4]])), { lost: 0, duplicated: 0 });
  });

  it("sees a loss and a duplicate that leave the count right", () => {
    const log = new HeardLog();
    for (const seq of [0, 1, 1, 3]) log.record(7, seq);
    assert.deepEqual(log.check(new Map([[7, 4]])), { lost: 1, duplicated: 1 });
  });

  it("counts what was never sent as duplicated, and a silent sender's messages as lost", () => {
    const log = new HeardLog();
    log.record(7, 0);
    log.record(7, 5000);
    log.record(9, 0);
    assert.deepEqual(
      log.check(
        new Map([
          [7, 1],
          [8, 2],
        ]),
      ),
      { lost: 2, duplicated: 2 },
    );
  });
});
