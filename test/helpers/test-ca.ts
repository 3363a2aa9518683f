import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDevCa, type DevCa } from "../../client/dev-ca.js";

/** A throwaway CA and server certificate in a temporary directory. */
export interface TestCa extends DevCa {
  /** The CA's certificate, for clients to trust. */
  readonly ca: Buffer;
  remove(): void;
}

/** Creates a CA and a server certificate with Debian's openssl, at run time: no private key is ever committed. */
export function createTestCa(): TestCa {
  const dev = createDevCa(mkdtempSync(join(tmpdir(), "chat-tls-")));
  return { ...dev, ca: readFileSync(dev.caFile), remove: () => rmSync(dev.dir, { recursive: true, force: true }) };
}
