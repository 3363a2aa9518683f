import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
const serverBundle = join(root, "dist", "server", "main.js");
let built = false;

/**
 * Starts the server in a process of its own, as `npm start` does: the bundle
 * that `npm run build` makes of server/main.ts, built afresh once per test
 * process (the build renames its output into place, so test processes
 * building at once never read half a file), with its JSON log lines parsed
 * as they come: for tests of the process itself (exit codes, signals,
 * stderr), and for measuring what the server holds apart from the test's own
 * clients.
 */
export function startServerProcess(args: string[], env: Record<string, string> = {}) {
  if (!built) {
    execFileSync("npm", ["run", "--silent", "build"], { cwd: root, stdio: "inherit" });
    built = true;
  }
  const child = spawn(process.execPath, ["--enable-source-maps", serverBundle, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const listening = new Promise<number>((resolve) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      logs.push(entry);
      if (entry.msg === "server listening") resolve(entry.port as number);
    });
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    logs,
    listening,
    exited,
    stderr: () => stderr,
    /** The process's resident set size, in bytes. */
    rssBytes(): number {
      const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
      return match ? Number(match[1]) * 1024 : 0;
    },
    async stop(): Promise<void> {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}
