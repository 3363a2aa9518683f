/**
 * Mints a signed token for a server with signed identities, for tests and
 * trials: `JWT_SECRET=... npm run --silent token -- alice` prints a token for
 * alice, valid for an hour. A real deployment gets its tokens from its
 * identity provider instead.
 */
import { createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { Command, InvalidArgumentError, Option } from "commander";
import { SignJWT } from "jose";

const program = new Command("mint-token")
  .description("Prints a signed token (JWT) naming the user, for a server started with --jwt-secret or --jwt-public-key.")
  .argument("<username>", "the user the token names (its sub claim)")
  .addOption(new Option("--secret <secret>", "the HMAC secret the server has (HS256)").env("JWT_SECRET"))
  .addOption(new Option("--private-key <file>", "a PEM private key whose public key the server has (RS256, ES256 or EdDSA)"))
  .option("--issuer <iss>", "the iss claim")
  .option("--audience <aud>", "the aud claim")
  .addOption(
    new Option("--ttl <seconds>", "how long the token is valid").default(3600).argParser((value) => {
      const n = Number(value);
      if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`expected a whole number of seconds, got ${JSON.stringify(value)}`);
      return n;
    }),
  )
  .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, "mint-token: ")) })
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2))
  .parse();

const opts = program.opts<{ secret?: string; privateKey?: string; issuer?: string; audience?: string; ttl: number }>();
const [username] = program.processedArgs as [string];
let jwt = new SignJWT({}).setSubject(username).setIssuedAt().setExpirationTime(`${opts.ttl}s`);
if (opts.issuer !== undefined) jwt = jwt.setIssuer(opts.issuer);
if (opts.audience !== undefined) jwt = jwt.setAudience(opts.audience);
if (opts.privateKey !== undefined) {
  const key = createPrivateKey(readFileSync(opts.privateKey));
  const alg = key.asymmetricKeyType === "rsa" ? "RS256" : key.asymmetricKeyType === "ec" ? "ES256" : "EdDSA";
  process.stdout.write(`${await jwt.setProtectedHeader({ alg }).sign(key)}\n`);
} else if (opts.secret !== undefined) {
  process.stdout.write(`${await jwt.setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(opts.secret))}\n`);
} else {
  process.stderr.write("mint-token: give --secret (or JWT_SECRET) or --private-key\n");
  process.exit(2);
}
