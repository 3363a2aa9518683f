import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { readHistory, readHistoryPage, readMissed } from "../../client/sdk/read-history.js";
import { type ListMessagesRequest, ListMessagesResponseSchema } from "../../gen/chat/v1/chat_pb.js";

/** A listMessages over messages "m1" (oldest) to "m<count>", newest first, in pages of at most maxPage, the token the index to go on from. */
function fakeHistory(count: number, maxPage: number) {
  const requests: Partial<ListMessagesRequest>[] = [];
  return {
    requests,
    client: {
      async listMessages(request: Partial<ListMessagesRequest>) {
        requests.push({ ...request });
        const from = request.pageToken === undefined || request.pageToken === "" ? count : Number(request.pageToken);
        const size = Math.min(request.pageSize || maxPage, maxPage);
        const ids = Array.from({ length: Math.min(size, from) }, (_, i) => `m${from - i}`);
        const next = from - ids.length;
        return create(ListMessagesResponseSchema, { messages: ids.map((id) => ({ id })), nextPageToken: next > 0 ? String(next) : "" });
      },
    },
  };
}

const ids = (messages: { id: string }[]) => messages.map((m) => m.id);

describe("reading history", () => {
  it("reads the latest messages, oldest first, following pages as far as it takes", async () => {
    const history = fakeHistory(7, 3);
    const page = await readHistory(history.client, "team", 5);
    assert.deepEqual(ids(page.messages), ["m3", "m4", "m5", "m6", "m7"]);
    assert.equal(page.olderToken, "2");
    assert.deepEqual(
      history.requests.map((r) => [r.channel, r.pageSize, r.pageToken]),
      [
        ["team", 5, ""],
        ["team", 2, "4"],
      ],
    );
    assert.deepEqual(ids((await readHistory(history.client, "team", 5, page.olderToken)).messages), ["m1", "m2"]);
  });

  it("reads one page at a time for the page", async () => {
    const history = fakeHistory(7, 3);
    const page = await readHistoryPage(history.client, "team", 50);
    assert.deepEqual([ids(page.messages), page.olderToken], [["m5", "m6", "m7"], "4"]);
    assert.equal(history.requests.length, 1);
  });

  it("reads what was missed back to the newest message it had", async () => {
    const history = fakeHistory(12, 100);
    // Had m2 to m4 (m1 came before it was there).
    const had = new Set(["m2", "m3", "m4"]);
    assert.deepEqual(ids(await readMissed(history.client, "team", (id) => had.has(id), "me")), ["m5", "m6", "m7", "m8", "m9", "m10", "m11", "m12"]);
  });

  it("reads past the caller's own direct messages, which it knows from sending them, to the one it had from the stream", async () => {
    const lost = {
      async listMessages() {
        // Newest first: its own send while the stream was down, a message lost, one it had.
        return create(ListMessagesResponseSchema, {
          messages: [
            { id: "a1", sender: "me" },
            { id: "b1", sender: "bob" },
            { id: "b0", sender: "bob" },
          ],
        });
      },
    };
    const had = new Set(["a1", "b0"]);
    assert.deepEqual(ids(await readMissed(lost, "bob", (id) => had.has(id), "me")), ["b1"]);
  });

  it("stops at the page that holds one it had, or at the limit", async () => {
    const paged = fakeHistory(12, 3);
    assert.deepEqual(ids(await readMissed(paged.client, "team", (id) => id === "m8", "me")), ["m9", "m10", "m11", "m12"]);
    assert.equal(paged.requests.length, 2, "the second page held m8: no third");
    const none = fakeHistory(300, 100);
    assert.equal((await readMissed(none.client, "team", () => false, "me", 150)).length, 150);
  });
});
