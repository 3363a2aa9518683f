import { InvalidArgumentError } from "commander";

// Each parser reads the text of a flag or an environment variable and throws
// an InvalidArgumentError that says what was expected and quotes what came:
// commander puts the flag in front of its message, parseConfig the variable.

/** A parser of whole numbers from min to max, inclusive. */
export function integer(min: number, max: number): (value: string) => number {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
    }
    return n;
  };
}

/**
 * The parser of an on/off variable: true or 1 turns it on, false or 0 off.
 * Any other word is refused rather than read as either, so that a REUSE_PORT=yes
 * does not quietly mean off.
 */
export function onOff(value: string): boolean {
  if (value === "true" || value === "1") return true;
  if (value === "false" || value === "0") return false;
  throw new InvalidArgumentError(`expected true, false, 1 or 0, got ${JSON.stringify(value)}`);
}

/** The parser of text taken as it is: a host, a file name, a secret. */
export function text(value: string): string {
  return value;
}

/**
 * A parser of one of the given words, with the words themselves, which
 * commander lists in --help and checks on the command line with a message of
 * its own ("Allowed choices are …"); the parser checks the variable.
 */
export function oneOf<const T extends string>(choices: readonly T[]): { parse: (value: string) => T; choices: readonly T[] } {
  const parse = (value: string): T => {
    const choice = choices.find((c) => c === value);
    if (choice === undefined) throw new InvalidArgumentError(`expected one of ${choices.join(", ")}, got ${JSON.stringify(value)}`);
    return choice;
  };
  return { parse, choices };
}

/** A parser of URLs with one of the given schemes, such as "http" and "https". */
function urlWith(...schemes: string[]): (value: string) => string {
  const expected = schemes.map((scheme) => `${scheme}://`).join(" or ");
  return (value: string): string => {
    let protocol: string;
    try {
      protocol = new URL(value).protocol;
    } catch {
      throw new InvalidArgumentError(`expected a ${schemes[0]}:// URL, got ${JSON.stringify(value)}`);
    }
    if (!schemes.includes(protocol.slice(0, -1))) {
      throw new InvalidArgumentError(`expected a ${expected} URL, got ${JSON.stringify(value)}`);
    }
    return value;
  };
}

const httpUrl = urlWith("http", "https");

/** A parser of redis:// and rediss:// URLs. */
export const redisUrl = urlWith("redis", "rediss");

/** A host:port, such as a Redis Cluster's seed node (an IPv6 address in brackets). */
export function hostPort(value: string): string {
  const match = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+):(\d{1,5})$/i.exec(value);
  if (match === null || Number(match[2]) < 1 || Number(match[2]) > 65535) {
    throw new InvalidArgumentError(`expected host:port such as 10.0.0.5:6379, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** An https:// URL, or http:// on loopback: keys fetched in the clear could be swapped on the way. */
export function jwksUrl(value: string): string {
  const url = new URL(httpUrl(value));
  if (url.protocol === "http:" && !["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) {
    throw new InvalidArgumentError(`expected an https:// URL (http:// only on loopback), got ${JSON.stringify(value)}`);
  }
  return value;
}

/** A parser of a comma-separated list, each item read by parse; empty items are dropped. */
export function list(parse: (value: string) => string): (value: string) => string[] {
  return (value: string): string[] =>
    value
      .split(",")
      .map((item) => item.trim())
      .filter((item) => item !== "")
      .map(parse);
}

/** An origin such as https://chat.example.com: a scheme, a host and maybe a port, nothing more. */
export function origin(value: string): string {
  const url = new URL(httpUrl(value));
  if (url.origin !== value.replace(/\/$/, ""))
    throw new InvalidArgumentError(`expected an origin such as https://chat.example.com, got ${JSON.stringify(value)}`);
  return url.origin;
}

/** A DNS host name, in lower case. */
export function hostName(value: string): string {
  if (!/^[a-z0-9.-]+$/i.test(value)) throw new InvalidArgumentError(`expected a host name such as chat.example.com, got ${JSON.stringify(value)}`);
  return value.toLowerCase();
}

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A parser of a duration with its unit (ms, s, m, h or d: "10m", "24h"), into ms, from min to max ms. */
export function duration(minMs: number, maxMs: number): (value: string) => number {
  return (value: string): number => {
    const match = /^\s*(\d+)\s*(ms|s|m|h|d)\s*$/.exec(value);
    const ms = match === null ? Number.NaN : Number(match[1]) * (durationUnits[match[2] ?? ""] ?? Number.NaN);
    if (!Number.isSafeInteger(ms) || ms < minMs || ms > maxMs) {
      throw new InvalidArgumentError(
        `expected a duration such as 90s, 10m or 24h from ${minMs} ms to ${maxMs / 86_400_000} days, got ${JSON.stringify(value)}`,
      );
    }
    return ms;
  };
}
