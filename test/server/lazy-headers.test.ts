import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLazyHeaders } from "../../server/transport/lean/lazy-headers.js";

// A lean call's request headers are read from node's object until something
// needs a real copy; either way they must answer as fetch's Headers built
// from the same headers would.
const raw = {
  ":method": "POST",
  ":path": "/chat.v1.ChatService/SendMessage",
  authorization: "alice",
  "content-type": "application/grpc",
  "x-many": ["one", "two"],
};

function reference(): Headers {
  return new Headers([
    ["authorization", "alice"],
    ["content-type", "application/grpc"],
    ["x-many", "one"],
    ["x-many", "two"],
  ]);
}

describe("a lean call's headers", () => {
  it("say whether they were copied out of their record, which lookups do not do", () => {
    const headers = createLazyHeaders({ "content-type": "application/grpc+proto" });
    assert.equal(headers.get("content-type"), "application/grpc+proto");
    assert.equal(headers.has("grpc-encoding"), false);
    // Names a plain record inherits are not headers.
    assert.equal(headers.get("constructor"), null);
    assert.equal(headers.has("__proto__"), false);
    assert.equal(headers.copied, false);
    headers.set("x-set", "by a handler");
    assert.equal(headers.copied, true);
    assert.deepEqual(
      [...headers],
      [
        ["content-type", "application/grpc+proto"],
        ["x-set", "by a handler"],
      ],
    );
  });

  it("answer lookups as Headers does, without pseudo-headers", () => {
    const headers = createLazyHeaders({ ...raw });
    const expected = reference();
    for (const name of ["authorization", "Authorization", "x-many", "content-type", "missing"]) {
      assert.equal(headers.get(name), expected.get(name), name);
      assert.equal(headers.has(name), expected.has(name), name);
    }
    // Names Headers refuses, pseudo-headers among them, are refused alike.
    for (const name of ["not a name", ":path", ":method"]) {
      assert.throws(() => expected.get(name), TypeError);
      assert.throws(() => headers.get(name), TypeError, name);
    }
  });

  it("iterate and change as Headers does", () => {
    const headers = createLazyHeaders({ ...raw });
    assert.deepEqual([...headers], [...reference()]);
    headers.set("authorization", "bob");
    headers.append("x-many", "three");
    headers.delete("content-type");
    const expected = reference();
    expected.set("authorization", "bob");
    expected.append("x-many", "three");
    expected.delete("content-type");
    assert.deepEqual([...headers.entries()], [...expected.entries()]);
    assert.equal(headers.get("authorization"), "bob", "a lookup after a change reads the copy");
    assert.equal(new Headers(headers).get("x-many"), "one, two, three", "they initialize a Headers");
  });

  it("read a change made before any lookup", () => {
    const headers = createLazyHeaders({ ...raw });
    headers.delete("authorization");
    assert.equal(headers.get("authorization"), null);
  });
});
