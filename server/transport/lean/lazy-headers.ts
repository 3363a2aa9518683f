/** A header name as HTTP defines it (a token); pseudo-headers are not. */
const headerName = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Headers as fetch has them, read from a record until they are needed as a copy. */
export interface LazyHeaders extends Headers {
  /** Whether the headers were copied out of their record: changed, or iterated. */
  readonly copied: boolean;
}

/**
 * fetch's Headers over a record of headers (node's form of a request's, or
 * the plain record a response starts from), copied into a Headers only when
 * first needed: a lookup by name reads the record, and anything else
 * (iterating, changing) copies every header in first and then behaves as
 * Headers does. Building Headers costs about 3 µs for a request's headers
 * (undici validates and normalizes each one), and most calls read one
 * header, their caller's name, and change none of the response's; an
 * untouched response's headers can then be written from a record built once
 * for all calls. Pseudo-headers are left out.
 */
export function createLazyHeaders(record: Readonly<Record<string, string | string[] | undefined>>): LazyHeaders {
  return new RecordHeaders(record);
}

/**
 * Headers in behaviour (a class of its own, since node's typings declare
 * Headers' methods as properties, which a subclass cannot override): reads by
 * name go to the record until anything else needs the copy.
 */
class RecordHeaders implements LazyHeaders {
  /** The record, until it is copied in. */
  #raw: Readonly<Record<string, string | string[] | undefined>> | undefined;
  #copy: Headers | undefined;

  constructor(raw: Readonly<Record<string, string | string[] | undefined>>) {
    this.#raw = raw;
  }

  get copied(): boolean {
    return this.#copy !== undefined;
  }

  /**
   * The value the record holds for a name as Headers would give it, null for
   * a valid name it does not hold, or undefined when only Headers can tell
   * (a name it refuses, which it throws for).
   */
  #lookup(name: string): string | null | undefined {
    const raw = this.#raw;
    if (raw === undefined || !headerName.test(name)) return undefined;
    const key = name.toLowerCase();
    // Own names only: a plain record inherits "constructor" and the like.
    const value = Object.hasOwn(raw, key) ? raw[key] : undefined;
    if (value === undefined) return null;
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
    for (const name of Object.keys(raw)) {
      const value = raw[name];
      if (name.startsWith(":") || value === undefined) continue;
      if (typeof value === "string") copy.append(name, value);
      else for (const v of value) copy.append(name, v);
    }
    this.#copy = copy;
    return copy;
  }

  get(name: string): string | null {
    const value = this.#lookup(name);
    return value !== undefined ? value : this.#headers().get(name);
  }

  has(name: string): boolean {
    const value = this.#lookup(name);
    return value !== undefined ? value !== null : this.#headers().has(name);
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
