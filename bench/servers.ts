import { type ChildProcess, execFile, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { listeningPort } from "../test/helpers/listening-port.js";

/**
 * Every server the benchmarks can run against. project-no-history is the
 * project's server with history off (`--history-messages 0`), so that a run
 * measures what history costs against the same server without it.
 */
export const serverKinds = ["project", "project-no-history", "limit", "grpc-go", "grpc-js"] as const;
export type ServerKind = (typeof serverKinds)[number];

/** The servers every scenario of `npm run bench:features` runs against. */
export const featureServerKinds = ["project", "limit", "grpc-js"] as const satisfies readonly ServerKind[];

const projectBundle = fileURLToPath(new URL("../dist/server/main.js", import.meta.url));
let built: Promise<void> | undefined;

/** Builds the server as `npm start` does (npm run build), once per benchmark process. */
function buildProject(): Promise<void> {
  built ??= new Promise<void>((resolve, reject) =>
    execFile("npm", ["run", "--silent", "build"], { cwd: fileURLToPath(new URL("..", import.meta.url)) }, (error, _stdout, stderr) =>
      error ? reject(new Error(`npm run build failed: ${stderr}`)) : resolve(),
    ),
  );
  return built;
}

const scripts: Record<Exclude<ServerKind, "grpc-go" | "project-no-history">, string[]> = {
  // What `npm start` runs, at its default log level: a line per session, none per message.
  project: ["--enable-source-maps", projectBundle, "--port", "0", "--web-port", "0"],
  limit: [fileURLToPath(new URL("./baselines/raw-http2-server.ts", import.meta.url))],
  "grpc-js": [fileURLToPath(new URL("./baselines/grpc-js-server.ts", import.meta.url))],
};

/** A server under test, in a process of its own. */
export interface BenchServer {
  readonly kind: ServerKind;
  readonly url: string;
  readonly process: ChildProcess;
  /** CPU time the process has used so far, in seconds. */
  cpuSeconds(): number;
  /** The process's resident set size, in bytes. */
  rssBytes(): number;
  stop(): Promise<void>;
}

const clockTicks = 100;

/** CPU time a process has used so far, in seconds, from /proc. */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/** The command that runs a server of the given kind, the project's with projectArgs after its own. */
function commandOf(kind: ServerKind, goBinary: string | undefined, projectArgs: readonly string[]): [string, string[]] {
  if (kind === "grpc-go") {
    if (goBinary === undefined) throw new Error("the grpc-go baseline needs its binary (bench/go-baseline.ts builds it)");
    return [goBinary, []];
  }
  if (kind !== "project" && kind !== "project-no-history") return [process.execPath, ["--import", "tsx", ...scripts[kind]]];
  // BENCH_PROFILE=dir profiles the project's server with --cpu-prof.
  const profile = process.env.BENCH_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  // BENCH_SERVER_ARGS="--no-lean-path" (say) passes flags to the project's server.
  const extra = (process.env.BENCH_SERVER_ARGS ?? "").split(" ").filter((arg) => arg !== "");
  // History is on by default; the comparison server turns it off and changes nothing else.
  const history = kind === "project-no-history" ? ["--history-messages", "0"] : [];
  // The bundle is JavaScript, which Node runs without tsx.
  // Given after the defaults, projectArgs override them (commander keeps a flag's last value).
  return [process.execPath, [...profile, ...scripts.project, ...history, ...extra, ...projectArgs]];
}

/**
 * Starts a server of the given kind on a free loopback port, with extra
 * environment (the project server reads its settings from there); grpc-go
 * runs the binary that bench/go-baseline.ts built, on one core. The
 * project's server takes projectArgs too, such as "--port 50051".
 */
export async function startServer(
  kind: ServerKind,
  env: Record<string, string> = {},
  goBinary?: string,
  projectArgs: readonly string[] = [],
): Promise<BenchServer> {
  if (kind === "project" || kind === "project-no-history") await buildProject();
  const [command, args] = commandOf(kind, goBinary, projectArgs);
  const child = spawn(command, args, {
    // One core for grpc-go, as Node's JavaScript runs on one.
    env: { ...process.env, ...env, ...(kind === "grpc-go" ? { GOMAXPROCS: "1" } : {}) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => {
      const port = listeningPort(line);
      if (port !== undefined) resolve(port);
    });
    child.once("exit", (code) => reject(new Error(`${kind} server exited with ${code} before listening`)));
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const pid = child.pid!;
  return {
    kind,
    url: `http://127.0.0.1:${port}`,
    process: child,
    cpuSeconds() {
      return processCpuSeconds(pid);
    },
    rssBytes() {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      const match = /VmRSS:\s+(\d+) kB/.exec(status);
      return match ? Number(match[1]) * 1024 : 0;
    },
    async stop() {
      // SIGTERM first, so that a profiled server writes its profile.
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
