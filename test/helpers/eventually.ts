/**
 * Polls a condition until it holds, for state that changes asynchronously
 * (a server noticing a closed connection, a delivery crossing Redis). The
 * condition is checked at once, then every 10 ms; after timeoutMs the call
 * throws `timed out: <message>`. A message given as a function is worked out
 * only then, so that it can say what the state was when time ran out. A
 * condition that throws fails the wait with its own error.
 *
 * It imports nothing from the server, so that tests of the domain core can
 * use it too.
 */
export async function eventually(condition: () => boolean | Promise<boolean>, message: string | (() => string), timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out: ${typeof message === "string" ? message : message()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
