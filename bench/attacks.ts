/**
 * `npx node --import tsx bench/attacks.ts [--main server/main.ts]`: runs the
 * memory attacks of issue 9 against a server in a process of its own, each
 * on a fresh server with default settings, and prints what each costs the
 * server (growth of its resident set, at the peak and a few seconds after)
 * and whether another user could still chat meanwhile. --main points at
 * another checkout's server/main.ts to measure it the same way (the numbers
 * in the README's "Bounds" section compare this one with the code before).
 * Every request goes to loopback, bounded in count.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { create, toBinary } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { Command } from "commander";
import { createChatClient } from "../client/chat-client.js";
import { ConnectRequestSchema } from "../gen/chat/v1/chat_pb.js";
import { listeningPort } from "../test/helpers/listening-port.js";
import { grpcFrame } from "../test/helpers/raw-grpc.js";
import { connectRawH2, grpcHeaders, type RawH2Client, Setting } from "../test/helpers/raw-h2-client.js";

const opts = new Command("attacks")
  .option("--main <file>", "the server's main.ts", fileURLToPath(new URL("../server/main.ts", import.meta.url)))
  .option("--readers <n>", "readers with a shut window", "50")
  .option("--server-args <args>", "flags for the server, space-separated (such as --max-connections-per-ip 4)", "")
  .option("--only <attack>", "run one attack: readers, settings or resets")
  .parse()
  .opts<{ main: string; readers: string; serverArgs: string; only?: string }>();
const MiB = 2 ** 20;
const connectPath = "/chat.v1.ChatService/Connect";
const connectBody = (username: string) => grpcFrame(toBinary(ConnectRequestSchema, create(ConnectRequestSchema, { username })));

async function startServer() {
  const extra = opts.serverArgs.split(" ").filter((arg) => arg !== "");
  const child = spawn(process.execPath, ["--import", "tsx", opts.main, "--port", "0", "--no-web", ...extra], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      const port = listeningPort(line);
      if (port !== undefined) resolve(port);
    });
    child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
  const rss = () => {
    try {
      return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1] ?? 0) * 1024;
    } catch {
      return 0;
    }
  };
  return { child, port, url: `http://127.0.0.1:${port}`, rss, stop: () => child.kill("SIGKILL") };
}

async function chatWorks(url: string, tag: string): Promise<string> {
  const started = performance.now();
  try {
    const a = createChatClient(url, `a-${tag}`);
    const b = createChatClient(url, `b-${tag}`);
    const bStream = b.connect({ username: `b-${tag}` }, { signal: AbortSignal.timeout(10_000) })[Symbol.asyncIterator]();
    await bStream.next();
    const aStream = a.connect({ username: `a-${tag}` }, { signal: AbortSignal.timeout(10_000) })[Symbol.asyncIterator]();
    await aStream.next();
    await a.sendMessage({ channel: `b-${tag}`, text: "hi" }, { signal: AbortSignal.timeout(10_000) });
    await bStream.next();
    return `yes (a message in ${(performance.now() - started).toFixed(0)} ms)`;
  } catch (error) {
    return `no (${String(error).slice(0, 80)})`;
  }
}

async function measure(name: string, attack: (server: Awaited<ReturnType<typeof startServer>>) => Promise<void>): Promise<void> {
  const server = await startServer();
  const before = server.rss();
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, server.rss())), 50);
  let failure = "";
  const attacking = attack(server).catch((error: unknown) => (failure = String(error).slice(0, 80)));
  const chat = await chatWorks(server.url, "during");
  await attacking;
  await new Promise((resolve) => setTimeout(resolve, 3000));
  clearInterval(sampler);
  const alive = server.child.exitCode === null && server.child.signalCode === null;
  console.log(
    `${name}: peak +${((peak - before) / MiB).toFixed(0)} MiB, 3 s after +${((server.rss() - before) / MiB).toFixed(0)} MiB, ` +
      `server ${alive ? "up" : "DIED"}, another user chats: ${chat}${failure ? `, attack: ${failure}` : ""}`,
  );
  server.stop();
}

const held: RawH2Client[] = [];

const run = (name: string) => opts.only === undefined || opts.only === name;

if (run("readers"))
  await measure(`${opts.readers} readers with a shut window, each sent 4,000 × 4 KiB`, async (server) => {
    const readers = Number(opts.readers);
    for (let i = 0; i < readers; i++) {
      const c = await connectRawH2(server.port, { settings: [[Setting.INITIAL_WINDOW_SIZE, 0]] });
      c.request(1, grpcHeaders(connectPath), connectBody(`shut-${i}`));
      held.push(c);
    }
    const sender = createChatClient(server.url, "flooder");
    const it = sender.connect({ username: "flooder" })[Symbol.asyncIterator]();
    await it.next();
    const text = "x".repeat(4096);
    await Promise.all(
      Array.from({ length: readers }, async (_, i) => {
        for (let n = 0; n < 4000; n++) {
          if (
            !(await sender.sendMessage({ channel: `shut-${i}`, text }).then(
              () => true,
              () => false,
            ))
          )
            return;
        }
      }),
    );
  });

if (run("settings"))
  await measure("100 connections never acknowledging SETTINGS, 100 streams of 128 KB headers each", async (server) => {
    const big: [string, string][] = Array.from({ length: 16 }, (_, k) => [`x-pad-${k}`, "p".repeat(8000)]);
    for (let i = 0; i < 100; i++) {
      const c = await connectRawH2(server.port, { ackSettings: false });
      for (let s = 0; s < 100; s++) c.request(1 + 2 * s, grpcHeaders(connectPath, big), undefined, false);
      held.push(c);
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  });

/**
 * The longest a user on another address waited for its own message while the
 * attack ran: a stalled event loop shows here, whatever else it does.
 */
async function longestWait(url: string, during: Promise<void>): Promise<string> {
  const started = performance.now();
  try {
    return `${(await measureWaits(url, during)).toFixed(0)} ms`;
  } catch (error) {
    return `none arrived: after ${((performance.now() - started) / 1000).toFixed(1)} s its call failed (${ConnectError.from(error).rawMessage})`;
  }
}

async function measureWaits(url: string, during: Promise<void>): Promise<number> {
  const a = createChatClient(url, "probe-a");
  const stream = a.connect({ username: "probe-a" })[Symbol.asyncIterator]();
  await stream.next();
  let longest = 0;
  let done = false;
  void during.finally(() => (done = true));
  while (!done) {
    const started = performance.now();
    await a.sendMessage({ channel: "probe-a", text: "tick" });
    await stream.next();
    longest = Math.max(longest, performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await stream.return?.();
  return longest;
}

if (run("resets")) {
  // HTTP/2 rapid reset (CVE-2023-44487), from another loopback address (see
  // rapid-reset.ts) for five seconds; a user on 127.0.0.1 chats meanwhile.
  const server = await startServer();
  const attacker = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("rapid-reset.ts", import.meta.url)), String(server.port), "5"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const attack = new Promise<{ connected: number; open: number }>((resolve) => {
    createInterface({ input: attacker.stdout }).once("line", (line) => resolve(JSON.parse(line) as { connected: number; open: number }));
  });
  // Let the attack start before the probe does.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const wait = await longestWait(
    server.url,
    attack.then(() => undefined),
  );
  const { connected, open } = await attack;
  const alive = server.child.exitCode === null && server.child.signalCode === null;
  console.log(
    `rapid reset from 50 connections for 5 s (${opts.serverArgs || "defaults"}): ${connected} connected, ${open} still open at the end, ` +
      `server ${alive ? "up" : "DIED"}, another user's longest wait for its message: ${wait}`,
  );
  server.stop();
}

for (const c of held) c.destroy();
process.exit(0);
