import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { retryDelayMs } from "../../client/sdk/resumable-session.js";

describe("the resumable session's one backoff", () => {
  it("doubles from 100 ms, up to 2 s while the server may hold the session", () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7].map((attempt) => retryDelayMs(attempt, true)),
      [100, 200, 400, 800, 1600, 2000, 2000],
    );
  });

  it("goes on up to 30 s once it may not", () => {
    assert.deepEqual(
      [1, 5, 6, 9, 10, 20].map((attempt) => retryDelayMs(attempt, false)),
      [100, 1600, 3200, 25_600, 30_000, 30_000],
    );
  });
});
