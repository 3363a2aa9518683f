/**
 * The connection-specific headers HTTP/2 forbids (RFC 9113, section 8.2.2),
 * as node's http2 lists them. Node's stream throws for them, in the headers
 * and in the trailers (where the throw comes from node's own event, and
 * would end the process); its compatibility layer drops them from headers
 * with a warning. "te" is allowed only as "trailers".
 */
export function isConnectionSpecific(name: string, value: string): boolean {
  return connectionSpecific.has(name) || (name === "te" && value !== "trailers");
}

const connectionSpecific = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "http2-settings"]);
