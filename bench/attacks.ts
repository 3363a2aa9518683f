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
import { Command } from "commander";
import { createChatClient } from "../client/chat-client.js";
import { listeningPort } from "../client/listening-port.js";
import { ConnectRequestSchema } from "../gen/chat/v1/chat_pb.js";
import { grpcFrame } from "../test/helpers/raw-grpc.js";
import { connectRawH2, grpcHeaders, type RawH2Client, Setting } from "../test/helpers/raw-h2-client.js";

const opts = new Command("attacks")
  .option("--main <file>", "the server's main.ts", fileURLToPath(new URL("../server/main.ts", import.meta.url)))
  .option("--readers <n>", "readers with a shut window", "50")
  .parse()
  .opts<{ main: string; readers: string }>();
const MiB = 2 ** 20;
const connectPath = "/chat.v1.ChatService/Connect";
const connectBody = (username: string) => grpcFrame(toBinary(ConnectRequestSchema, create(ConnectRequestSchema, { username })));

async function startServer() {
  const child = spawn(process.execPath, ["--import", "tsx", opts.main, "--port", "0", "--no-web"], { stdio: ["ignore", "pipe", "inherit"] });
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

await measure("100 connections never acknowledging SETTINGS, 100 streams of 128 KB headers each", async (server) => {
  const big: [string, string][] = Array.from({ length: 16 }, (_, k) => [`x-pad-${k}`, "p".repeat(8000)]);
  for (let i = 0; i < 100; i++) {
    const c = await connectRawH2(server.port, { ackSettings: false });
    for (let s = 0; s < 100; s++) c.request(1 + 2 * s, grpcHeaders(connectPath, big), undefined, false);
    held.push(c);
  }
  await new Promise((resolve) => setTimeout(resolve, 2000));
});

for (const c of held) c.destroy();
process.exit(0);
