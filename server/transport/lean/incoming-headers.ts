import type * as http2 from "node:http2";

/**
 * fetch's Headers over the headers of an HTTP/2 request, as node gives them,
 * copied into a Headers only when first needed: a lookup by name reads node's object
 * directly, and anything else (iterating, changing) copies every header in
 * first and then behaves as Headers does. Building Headers from a request's
 * headers costs about 3 µs (undici validates and normalizes each one), and
 * most calls read one header, their caller's name.
 */
export function createIncomingHeaders(raw: http2.IncomingHttpHeaders): Headers {
  return new IncomingHeaders(raw);
}

/**
 * Headers in behaviour (a class of its own, since node's typings declare
 * Headers' methods as properties, which a subclass cannot override): reads by
 * name go to node's object until anything else needs the copy.
 */
class IncomingHeaders implements Headers {
  /** Node's headers, until they are copied in. */
  #raw: http2.IncomingHttpHeaders | undefined;
  #copy: Headers | undefined;

  constructor(raw: http2.IncomingHttpHeaders) {
    this.#raw = raw;
  }

  /** The value node holds for a name, as Headers would give it; undefined when only Headers can tell. */
  #lookup(name: string): string | undefined {
    const raw = this.#raw;
    if (raw === undefined) return undefined;
    const key = name.toLowerCase();
    if (key.startsWith(":")) return undefined;
    const value = raw[key];
    // An absent name may be one Headers refuses as invalid: it answers that.
    if (value === undefined) return undefined;
    const joined = typeof value === "string" ? value : value.join(", ");
    // Headers strips surrounding whitespace; HTTP/2 forbids it, but a value
    // that has some is left to Headers.
    return joined.trim() === joined ? joined : undefined;
  }

  /** The request's headers as fetch's Headers, copied from node's object on first use. */
  #headers(): Headers {
    if (this.#copy !== undefined) return this.#copy;
    const copy = new Headers();
    const raw = this.#raw ?? {};
    this.#raw = undefined;
    for (const name in raw) {
      const value = raw[name];
      if (name.startsWith(":") || value === undefined) continue;
      if (typeof value === "string") copy.append(name, value);
      else for (const v of value) copy.append(name, v);
    }
    this.#copy = copy;
    return copy;
  }

  get(name: string): string | null {
    return this.#lookup(name) ?? this.#headers().get(name);
  }

  has(name: string): boolean {
    return this.#lookup(name) !== undefined || this.#headers().has(name);
  }

  append(name: string, value: string): void {
    this.#headers().append(name, value);
  }

  set(name: string, value: string): void {
    this.#headers().set(name, value);
  }

  delete(name: string): void {
    this.#headers().delete(name);
  }

  getSetCookie(): string[] {
    return this.#headers().getSetCookie();
  }

  forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void {
    this.#headers().forEach(callback, thisArg);
  }

  keys(): ReturnType<Headers["keys"]> {
    return this.#headers().keys();
  }

  values(): ReturnType<Headers["values"]> {
    return this.#headers().values();
  }

  entries(): ReturnType<Headers["entries"]> {
    return this.#headers().entries();
  }

  [Symbol.iterator](): ReturnType<Headers["entries"]> {
    return this.#headers().entries();
  }
}
