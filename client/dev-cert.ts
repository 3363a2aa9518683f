/**
 * `npm run --silent dev-cert [dir]`: writes a throwaway CA (ca.pem) and a
 * server certificate and key for 127.0.0.1 and localhost (server.pem,
 * server.key) into dir (dev-tls by default), valid for 30 days, to try TLS
 * on one machine. Needs openssl.
 */
import { createDevCa } from "./dev-ca.js";

const dir = process.argv[2] ?? "dev-tls";
try {
  const ca = createDevCa(dir, 30);
  process.stdout.write(`wrote ${ca.caFile}, ${ca.certFile} and ${ca.keyFile}\n`);
} catch (error) {
  process.stderr.write(`dev-cert: cannot create the certificates with openssl (${error instanceof Error ? error.message.split("\n")[0] : String(error)})\n`);
  process.exit(1);
}
