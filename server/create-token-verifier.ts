import { createPublicKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { describeReason } from "./core/chat-error.js";
import { ConfigError } from "./ops/config-error.js";
import { type ServerConfig, settingLabel } from "./ops/server-settings.js";
import { algorithmsOf, createTokenVerifier, type TokenKeys, type TokenVerifier } from "./rpc/token-verifier.js";

/**
 * Creates the verifier of signed identities that the configuration asks for
 * (--jwt-secret, --jwt-public-key or --jwks-url), or undefined when it asks
 * for none: the default, where the authorization header names the caller.
 * A key file that cannot be read or used throws a ConfigError naming the
 * flag and the file.
 */
export function createTokenVerifierFromConfig(config: ServerConfig): TokenVerifier | undefined {
  let keys: TokenKeys;
  if (config.jwtSecret !== undefined) keys = { secret: config.jwtSecret };
  else if (config.jwksUrl !== undefined) keys = { jwksUrl: config.jwksUrl };
  else if (config.jwtPublicKey !== undefined) keys = { publicKey: readPublicKey(config.jwtPublicKey) };
  else return undefined;
  return createTokenVerifier({
    keys,
    usernameClaim: config.jwtUsernameClaim,
    ...(config.jwtIssuer === undefined ? {} : { issuer: config.jwtIssuer }),
    ...(config.jwtAudience === undefined ? {} : { audience: config.jwtAudience }),
  });
}

function readPublicKey(file: string): KeyObject {
  const label = settingLabel("jwtPublicKey");
  let pem: string;
  try {
    pem = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError(`${label} ${file}: cannot read it (${describeReason(error)})`);
  }
  try {
    const key = createPublicKey(pem);
    algorithmsOf(key);
    return key;
  } catch (error) {
    throw new ConfigError(`${label} ${file}: not a usable public key (${describeReason(error)})`);
  }
}
