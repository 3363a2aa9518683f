/** The forms an address may take, for the messages. */
const forms = "http://host:port, https://host:port (a server with TLS) or host:port";

/**
 * Reads the server's address as the user gives it: a base URL
 * (http://host:port, or https://host:port for a server that serves TLS) or
 * just host:port, which means plain HTTP/2 as the server serves it by
 * default. Throws with a message that quotes the value when it is none of
 * these.
 */
export function parseServerUrl(value: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new Error(`expected ${forms}, got ${JSON.stringify(value)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`expected ${forms}, got ${JSON.stringify(value)}`);
  }
  if (url.hostname === "" || (url.pathname !== "/" && url.pathname !== "") || url.search !== "" || url.hash !== "") {
    throw new Error(`expected ${forms} with nothing after the port, got ${JSON.stringify(value)}`);
  }
  return url.origin;
}
