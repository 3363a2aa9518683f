import { readFileSync } from "node:fs";
import * as tls from "node:tls";
import { describeReason } from "../core/chat-error.js";
import { ConfigError } from "../ops/config-error.js";
import { settingLabel } from "../ops/server-settings.js";

/** A certificate chain and its key, as PEM. */
export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/**
 * Reads the certificate and key files and checks that they make a usable
 * pair. A file that cannot be read, or a pair that does not match, throws a
 * ConfigError naming the flag and the file, never the key's content.
 */
export function readTlsFiles(certFile: string, keyFile: string): TlsFiles {
  const read = (file: string, label: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new ConfigError(`${label} ${file}: cannot read it (${describeReason(error)})`);
    }
  };
  const files = { cert: read(certFile, settingLabel("tlsCert")), key: read(keyFile, settingLabel("tlsKey")) };
  try {
    tls.createSecureContext(files);
  } catch (error) {
    // OpenSSL's reason names what is wrong (no PEM, a key that does not match) without quoting the key.
    throw new ConfigError(
      `${settingLabel("tlsCert")} ${certFile} and ${settingLabel("tlsKey")} ${keyFile}: not a usable certificate and key (${describeReason(error)})`,
    );
  }
  return files;
}
