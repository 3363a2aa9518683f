/**
 * The string codes (ECONNRESET, ERR_HTTP2_STREAM_CANCEL,
 * UNABLE_TO_VERIFY_LEAF_SIGNATURE…) of an error and of its causes, outermost
 * first: connect-node wraps the socket's or the TLS layer's error as the
 * cause of the call's, so the reason a call failed is found down the chain.
 */
export function causeCodes(error: unknown): string[] {
  const codes: string[] = [];
  let current = error;
  // A few levels are enough; the bound guards against a cycle of causes.
  for (let depth = 0; depth < 8 && current instanceof Error; depth++) {
    const code: unknown = "code" in current ? current.code : undefined;
    if (typeof code === "string") codes.push(code);
    current = current.cause;
  }
  return codes;
}
