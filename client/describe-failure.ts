import { Code, ConnectError } from "@connectrpc/connect";
import { causeCodes } from "./sdk/cause-codes.js";
import { describeError } from "./sdk/describe-error.js";

/** How the terminal client was told to reach the server: what a failure's fix depends on. */
export interface ConnectionSettings {
  /** The server's base URL, http:// or https://. */
  serverUrl: string;
  /** Whether a token was given (--token or CHAT_TOKEN). */
  token: boolean;
  /** Whether a CA was given (--ca or CHAT_CA). */
  ca: boolean;
}

/** The codes Node.js gives a TLS certificate that no trusted CA signed. */
const untrustedCertificate = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
]);

/**
 * Formats a failure to reach the server or to be let in as one line, as
 * describeError does, followed by the fix in this client's own terms: the
 * option to pass, or the scheme to use. Node.js's own advice on an
 * untrusted certificate (to run Node.js with --use-system-ca) is dropped:
 * the client's answer is --ca.
 */
export function describeFailure(error: unknown, settings: ConnectionSettings): string {
  const err = ConnectError.from(error);
  if (err.isWireError && err.code === Code.Unauthenticated && !settings.token && /token/.test(err.rawMessage)) {
    // The server's words are about a token it could not read, which was the username: none was given.
    return "UNAUTHENTICATED: this server asks for a signed token, and none was given (pass it with --token <jwt> or set CHAT_TOKEN)";
  }
  const line = describeError(err).replace(/; if the root CA is installed locally, try running Node\.js with --use-system-ca$/, "");
  const fix = fixFor(err, settings);
  return fix === undefined ? line : `${line.trimEnd()} (${fix})`;
}

function fixFor(err: ConnectError, { serverUrl, token, ca }: ConnectionSettings): string | undefined {
  const url = new URL(serverUrl);
  if (err.isWireError) {
    // A server without signed identities says so itself.
    if (err.code !== Code.Unauthenticated || /signed identities/.test(err.rawMessage)) return undefined;
    return token
      ? "check the token given with --token or CHAT_TOKEN: it must be signed with the server's key, name the user and be unexpired"
      : "this server asks for a signed token: pass it with --token <jwt> or set CHAT_TOKEN";
  }
  const cause = causeCodes(err)[0];
  if (cause !== undefined && untrustedCertificate.has(cause)) {
    return ca
      ? "the server's certificate was not signed by the CA given with --ca or CHAT_CA: pass the CA that signed it"
      : "the server's certificate is not signed by a CA this client trusts: pass the CA's certificate with --ca FILE or set CHAT_CA";
  }
  if (cause === "ERR_SSL_WRONG_VERSION_NUMBER" && url.protocol === "https:") {
    return `the server does not serve TLS on this port: use http://${url.host}`;
  }
  if (cause === "ECONNREFUSED") return `nothing accepts connections at ${url.host}: is the server running, on this port?`;
  // An HTTP/1.1 server answers the HTTP/2 preface with an error of its own.
  if (cause === "ERR_HTTP2_ERROR" && url.protocol === "http:") {
    return `${url.host} does not speak gRPC: if it is the server's web port (the page's, 8080 by default), use its gRPC port (--port, 50051 by default)`;
  }
  // A TLS port closes a plain HTTP/2 connection at its first bytes.
  const closed = cause === undefined || cause === "ECONNRESET" || cause.startsWith("ERR_HTTP2_");
  if (url.protocol === "http:" && closed) return `if the server serves TLS, use https://${url.host}`;
  return undefined;
}
