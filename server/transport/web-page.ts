import { readFile } from "node:fs/promises";
import type * as http from "node:http";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const webDir = fileURLToPath(new URL("../../web/", import.meta.url));

/** The chat page: its files, ready to serve. */
export interface WebPage {
  /** Serves GET / and the page's assets; returns false for any other request. */
  serve(req: http.IncomingMessage, res: http.ServerResponse): boolean;
}

/**
 * Builds the chat page from web/ with esbuild, in memory: the page's
 * TypeScript (which uses the same gen/ code as the server) becomes one
 * JavaScript bundle. Building at start takes a fraction of a second and
 * leaves no build output to go stale.
 */
export async function createWebPage(): Promise<WebPage> {
  const [html, css, bundle] = await Promise.all([
    readFile(new URL("index.html", `file://${webDir}`), "utf8"),
    readFile(new URL("style.css", `file://${webDir}`), "utf8"),
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
    ["/app.js", { type: "text/javascript; charset=utf-8", body: bundle.outputFiles[0]!.text }],
  ]);
  return {
    serve(req, res) {
      const file = files.get((req.url ?? "/").split("?")[0]!);
      if (file === undefined || (req.method !== "GET" && req.method !== "HEAD")) {
        return false;
      }
      res.writeHead(200, {
        "content-type": file.type,
        "content-length": Buffer.byteLength(file.body),
        "cache-control": "no-cache",
        "x-content-type-options": "nosniff",
      });
      res.end(req.method === "HEAD" ? undefined : file.body);
      return true;
    },
  };
}
