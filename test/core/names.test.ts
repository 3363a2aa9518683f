import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { measureText } from "../../server/core/measure-text.js";
import { isValidName } from "../../server/core/names.js";

describe("names and texts", () => {
  it("accepts 1 to 32 ASCII letters, digits, _, - and .", () => {
    for (const ok of ["a", "Z", "0", "_", "-", ".", "a.b-c_D9", "x".repeat(32)]) {
      assert.equal(isValidName(ok), true, ok);
    }
    for (const bad of ["", "x".repeat(33), "a b", "a/b", "é", "a\n", "a\u0000", "日本", "a:b", "a@b"]) {
      assert.equal(isValidName(bad), false, JSON.stringify(bad));
    }
  });

  it("measures text in bytes of UTF-8", () => {
    assert.equal(measureText("abc"), 3);
    assert.equal(measureText("€"), 3);
    assert.equal(measureText("😀"), 4);
    assert.equal(measureText("😀".repeat(1024)), 4096);
    assert.throws(() => measureText(`${"😀".repeat(1024)}a`), /4097 bytes/);
    assert.throws(() => measureText(""), /empty/);
  });
});
