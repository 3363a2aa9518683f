import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A throwaway certificate authority and a server certificate it signed, in a temporary directory. */
export interface TestCa {
  readonly dir: string;
  /** The CA's certificate, for clients to trust. */
  readonly caFile: string;
  readonly ca: Buffer;
  /** The server's certificate (for 127.0.0.1 and localhost) and key. */
  readonly certFile: string;
  readonly keyFile: string;
  /** Signs a new server certificate and key into the same files, as a renewal would. */
  renew(): void;
  remove(): void;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

/**
 * Creates a CA and a server certificate with Debian's openssl, at run time:
 * no private key is ever committed. EC P-256 keys, valid for a day.
 */
export function createTestCa(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), "chat-tls-"));
  openssl(
    dir,
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "1",
    "-subj",
    "/CN=chat test CA",
  );
  const issue = () => {
    openssl(
      dir,
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      "server.key",
      "-out",
      "server.csr",
      "-subj",
      "/CN=localhost",
    );
    openssl(
      dir,
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "server.pem",
      "-days",
      "1",
      "-extfile",
      "ext.cnf",
    );
  };
  execFileSync("sh", ["-c", "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' > ext.cnf"], { cwd: dir });
  issue();
  return {
    dir,
    caFile: join(dir, "ca.pem"),
    ca: readFileSync(join(dir, "ca.pem")),
    certFile: join(dir, "server.pem"),
    keyFile: join(dir, "server.key"),
    renew: issue,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
