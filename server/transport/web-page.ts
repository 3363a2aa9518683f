import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import type { NodeHandler } from "./node-handler.js";

const webDir = fileURLToPath(new URL("../../web/", import.meta.url));

/**
 * Headers on every file of the page: it runs only its own script and style,
 * talks only to the origin it came from, and cannot be framed.
 */
const securityHeaders = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
};

/** The chat page: its files, ready to serve. */
export interface WebPage {
  /** Serves GET / and the page's assets; returns false for any other request. */
  serve(req: Parameters<NodeHandler>[0], res: Parameters<NodeHandler>[1]): boolean;
}

/** A request listener that serves the chat page before the routes, once the page is built. */
export interface SiteHandler {
  readonly handle: NodeHandler;
  setPage(page: WebPage): void;
}

/** Creates a {@link SiteHandler} in front of the routes' handler. */
export function createSiteHandler(handler: NodeHandler): SiteHandler {
  let page: WebPage | undefined;
  return {
    handle: (req, res) => {
      if (page?.serve(req, res)) return;
      handler(req, res);
    },
    setPage(value) {
      page = value;
    },
  };
}

/**
 * Builds the chat page from web/ with esbuild, in memory: the page's
 * TypeScript (which uses the same gen/ code as the server) becomes one
 * JavaScript bundle. Building at start takes a fraction of a second and
 * leaves no build output to go stale.
 */
export async function createWebPage(): Promise<WebPage> {
  const [html, css, icon, bundle] = await Promise.all([
    readFile(new URL("index.html", `file://${webDir}`), "utf8"),
    readFile(new URL("style.css", `file://${webDir}`), "utf8"),
    readFile(new URL("favicon.svg", `file://${webDir}`), "utf8"),
    build({
      entryPoints: [`${webDir}main.ts`],
      bundle: true,
      write: false,
      format: "esm",
      target: "es2022",
      minify: true,
      sourcemap: false,
      logLevel: "silent",
    }),
  ]);
  const files = new Map<string, { type: string; body: string }>([
    ["/", { type: "text/html; charset=utf-8", body: html }],
    ["/style.css", { type: "text/css; charset=utf-8", body: css }],
    // The tab's icon, which index.html links: without one a browser asks for /favicon.ico, and logs its 404.
    ["/favicon.svg", { type: "image/svg+xml; charset=utf-8", body: icon }],
    ["/app.js", { type: "text/javascript; charset=utf-8", body: bundle.outputFiles[0]!.text }],
  ]);
  return {
    serve(req, res) {
      const file = files.get((req.url ?? "/").split("?")[0]!);
      if (file === undefined || (req.method !== "GET" && req.method !== "HEAD")) {
        return false;
      }
      res.statusCode = 200;
      for (const [name, value] of Object.entries({
        ...securityHeaders,
        "content-type": file.type,
        "content-length": Buffer.byteLength(file.body),
        "cache-control": "no-cache",
      })) {
        res.setHeader(name, value);
      }
      if (req.method === "HEAD") res.end();
      else res.end(file.body);
      return true;
    },
  };
}
