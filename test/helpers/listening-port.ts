/**
 * The port of the server's "server listening" log line; undefined for any
 * other line, JSON or not. The demo, the benchmark and the tests start the
 * server as a process on port 0 and learn its port from its log this way.
 */
export function listeningPort(line: string): number | undefined {
  let entry: unknown;
  try {
    entry = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof entry !== "object" || entry === null || !("msg" in entry) || !("port" in entry)) return undefined;
  return entry.msg === "server listening" && typeof entry.port === "number" ? entry.port : undefined;
}
