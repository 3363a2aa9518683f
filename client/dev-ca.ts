import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** A certificate authority and a server certificate it signed, as files in one directory. */
export interface DevCa {
  readonly dir: string;
  /** The CA's certificate, for clients to trust. */
  readonly caFile: string;
  /** The server's certificate (for 127.0.0.1 and localhost) and key. */
  readonly certFile: string;
  readonly keyFile: string;
  /** Signs a new server certificate and key into the same files, as a renewal would. */
  renew(): void;
}

/**
 * Creates a throwaway CA and a server certificate for 127.0.0.1 and localhost
 * in dir, with openssl (EC P-256 keys, valid for the given days): for trying
 * TLS on one machine, and for the tests. Never for production, where the
 * certificate comes from a real CA.
 */
export function createDevCa(dir: string, days = 1): DevCa {
  mkdirSync(dir, { recursive: true });
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", String(days), "-subj", "/CN=chat dev CA");
  writeFileSync(join(dir, "ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  const issue = () => {
    openssl("req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost");
    openssl(
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
      String(days),
      "-extfile",
      "ext.cnf",
    );
  };
  issue();
  return { dir, caFile: join(dir, "ca.pem"), certFile: join(dir, "server.pem"), keyFile: join(dir, "server.key"), renew: issue };
}
