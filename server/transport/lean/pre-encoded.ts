/** Where a message keeps its pre-encoded fields: a symbol, invisible to protobuf-es and to JSON. */
const wireFields = Symbol("pre-encoded wire fields");

/** A message that carries its own encoding. */
type Carrier = { [wireFields]?: readonly Uint8Array[] };

/**
 * Marks a message as carrying its complete binary encoding: fields, each
 * with its tag, whose concatenation is exactly what the message's schema
 * would serialize to. The lean path writes them as they are instead of
 * serializing the message, so that a group message encoded once for all its
 * recipients is not copied again into a serializer's buffer for each one.
 * The message itself stays complete, for every other reader (Connect's own
 * handler, interceptors, JSON).
 */
export function preEncoded<T extends object>(message: T, fields: readonly Uint8Array[]): T {
  // The symbol is this module's own: no other code can see or set it. Not
  // enumerable, so that a copy made by spreading (an interceptor that
  // changes a field) does not carry bytes that no longer match it; a message
  // changed in place would, so messages marked here must not be.
  Object.defineProperty(message, wireFields, { value: fields, enumerable: false });
  return message;
}

/** The fields a message was marked with by preEncoded, if any. */
export function preEncodedFields(message: unknown): readonly Uint8Array[] | undefined {
  return typeof message === "object" && message !== null ? (message as Carrier)[wireFields] : undefined;
}
