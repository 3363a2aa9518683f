import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const clientMain = fileURLToPath(new URL("../../client/main.ts", import.meta.url));

/**
 * A terminal client running in a process of its own, driven line by line
 * through its stdin, as the demo and the end-to-end tests use it.
 */
export interface CliProcess {
  readonly username: string;
  /** Every line the client has printed so far. */
  readonly lines: readonly string[];
  /** Types one command. */
  send(line: string): void;
  /**
   * Resolves with the first line, printed after the given count of lines,
   * that matches; rejects after timeoutMs or when the client exits first.
   */
  waitFor(pattern: RegExp, options?: { after?: number; timeoutMs?: number }): Promise<string>;
  /** Ends input (the client then disconnects) and resolves with the exit code. */
  end(): Promise<number | null>;
  readonly process: ChildProcessWithoutNullStreams;
}

/**
 * Starts the terminal client as `node --import tsx client/main.ts --script`
 * for one user. Each printed line is passed to onLine as well.
 */
export function spawnCliProcess(username: string, serverUrl: string, onLine?: (line: string) => void, extraArgs: string[] = []): CliProcess {
  const child = spawn(process.execPath, ["--import", "tsx", clientMain, "--script", "--user", username, "--server", serverUrl, ...extraArgs], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
    for (const wake of [...waiters]) wake();
  });
  const collect = (line: string) => {
    lines.push(line);
    onLine?.(line);
    for (const wake of [...waiters]) wake();
  };
  createInterface({ input: child.stdout }).on("line", collect);
  createInterface({ input: child.stderr }).on("line", (line) => collect(`stderr: ${line}`));

  return {
    username,
    lines,
    process: child,
    send(line) {
      child.stdin.write(`${line}\n`);
    },
    waitFor(pattern, { after = 0, timeoutMs = 10_000 } = {}) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.slice(after).find((line) => pattern.test(line));
          if (found !== undefined) {
            done();
            resolve(found);
          } else if (hasExited) {
            done();
            reject(new Error(`${username} exited before printing ${pattern}; it printed:\n${lines.join("\n")}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${username} printed no line matching ${pattern} in ${timeoutMs} ms; it printed:\n${lines.join("\n")}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    end() {
      child.stdin.end();
      return exited;
    },
  };
}
