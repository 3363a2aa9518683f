/**
 * Reads the server's address as the user gives it: a base URL
 * (http://host:port) or just host:port, which means plain HTTP/2 as the
 * server serves it by default. Throws with a message that quotes the value
 * when it is neither.
 */
export function parseServerUrl(value: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new Error(`expected http://host:port or host:port, got ${JSON.stringify(value)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`expected an http:// or https:// address, got ${JSON.stringify(value)}`);
  }
  if (url.hostname === "" || (url.pathname !== "/" && url.pathname !== "") || url.search !== "" || url.hash !== "") {
    throw new Error(`expected http://host:port or host:port with nothing after the port, got ${JSON.stringify(value)}`);
  }
  return url.origin;
}
