import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { addressKey } from "../../server/transport/address-key.js";

describe("the address a client's limits count under", () => {
  it("is the IPv4 address, mapped or not, and the /64 of an IPv6 one", () => {
    assert.equal(addressKey("192.0.2.7"), "192.0.2.7");
    assert.equal(addressKey("::ffff:192.0.2.7"), "192.0.2.7");
    assert.equal(addressKey("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
    assert.equal(addressKey("2001:db8:1:2::9"), "2001:db8:1:2::/64");
    assert.equal(addressKey("2001:db8::1"), "2001:db8:0:0::/64");
    assert.equal(addressKey(undefined), "");
  });
});
