import { type ChildProcess, spawn } from "node:child_process";
import * as net from "node:net";
import { Redis } from "ioredis";

/** A redis-server of the test's own, on a free loopback port. */
export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** The process id of the running server. */
  readonly pid: number;
  /** Kills the server (SIGKILL): every connection drops at once. */
  kill(): Promise<void>;
  /** Freezes the server (SIGSTOP): connections stay open, nothing answers. */
  freeze(): void;
  /** Lets a frozen server run again (SIGCONT), its data intact. */
  thaw(): void;
  /** Starts it again on the same port, empty (nothing is persisted). */
  restart(): Promise<void>;
}

/** Whether nothing listens on this loopback port now. */
async function portIsFree(port: number): Promise<boolean> {
  const server = net.createServer();
  const listening = await new Promise<boolean>((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => resolve(true));
  });
  if (listening) await new Promise((resolve) => server.close(resolve));
  return listening;
}

/**
 * A loopback port that nothing listens on, chosen by the kernel. With
 * `alsoFree`, the port is also below 65536 - alsoFree and port + alsoFree is
 * free too: a cluster node's bus listens at its port + 10000.
 */
export async function freePort(alsoFree?: number): Promise<number> {
  for (;;) {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    // A listening TCP server's address is an AddressInfo, never a pipe's name.
    const { port } = server.address() as net.AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    if (alsoFree === undefined) return port;
    if (port + alsoFree < 65536 && (await portIsFree(port + alsoFree))) return port;
  }
}

/** A running redis-server, told about its own exit. */
export interface RedisProcess {
  readonly child: ChildProcess;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
  /** Kills it (SIGKILL) and waits for its exit; nothing if it has already exited. */
  kill(): Promise<void>;
}

/** Every redis-server still running that this process started. */
const running = new Set<ChildProcess>();

// A test process that ends without killing its servers (a failed assertion
// before the cleanup, a closed pipe) must not leave them behind: redis-server
// outlives its parent otherwise.
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/**
 * Starts redis-server on this loopback port with nothing persisted, the
 * given arguments added, and resolves once it accepts connections.
 */
export function launchRedis(port: number, extraArgs: readonly string[] = []): Promise<RedisProcess> {
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", ...extraArgs], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      running.delete(child);
      resolve();
    }),
  );
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGKILL");
    await exited;
  };
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes("Ready to accept connections")) resolve({ child, exited, kill });
    });
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`redis-server exited with ${code}: ${out}`)));
  });
}

/** Starts redis-server (from Debian's redis-server package, which .ci/run installs). */
export async function startRedis(): Promise<TestRedis> {
  const port = await freePort();
  let server = await launchRedis(port);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return server.child.pid!;
    },
    kill: () => server.kill(),
    freeze: () => server.child.kill("SIGSTOP"),
    thaw: () => server.child.kill("SIGCONT"),
    async restart() {
      await server.kill();
      server = await launchRedis(port);
    },
  };
}

/** Runs one command on the Redis on this loopback port over a connection of its own, which it closes. */
export async function askRedis<T>(port: number, run: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on("error", () => {});
  try {
    await redis.connect();
    return await run(redis);
  } finally {
    redis.disconnect();
  }
}
