import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { tokenSubject } from "../../client/sdk/token-subject.js";

describe("the user a token names", () => {
  const token = (claims: object) => `e30.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.sig`;

  it("is its sub claim, read without verifying it", () => {
    assert.equal(tokenSubject(token({ sub: "pat", exp: 1 })), "pat");
  });

  it("is unknown for a value that is not a JWT with a subject", () => {
    for (const value of ["", "abc", "a.!!!.c", token({}), token({ sub: 7 }), token({ sub: "" })]) {
      assert.equal(tokenSubject(value), undefined, value);
    }
  });
});
