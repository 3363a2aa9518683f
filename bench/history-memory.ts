/**
 * `npm run bench:history`: what a message kept in history costs the server's
 * memory, and what a remembered request_id costs. Each case starts the
 * server (the bundle `npm start` runs) in a process of its own with the
 * inspector on, fills it, and reads its memory after forced garbage
 * collections (the inspector's HeapProfiler.collectGarbage) before and after:
 *
 * - history, small and large texts: one user creates many groups (it is
 *   their only member, so every message is delivered and encoded as in
 *   production) and sends N messages spread over them; the growth of V8's
 *   heap, of memory outside it (the encoded messages' buffers) and of the
 *   resident set, divided by N, beside what the server counts for each in
 *   its budget (queuedEventBytes);
 * - request ids: history off, N messages each with a request_id of 36
 *   characters, remembered for the deduplication window.
 *
 * Before each baseline a warm-up group gets messages and is then deleted,
 * with its history, so that compiled code and lazily made structures are in
 * the baseline. The server's history gauge (chat_history_messages) confirms
 * that all N were kept. Prints a Markdown table: median (min–max) over the runs.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Command, InvalidArgumentError } from "commander";
import { spread } from "./cost-report.js";
import { encodeFields } from "./grpc-wire.js";
import { connectUser, type LoadUser, nameRequest, timedText } from "./load-client.js";

const positive = (what: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${what} must be a positive whole number`);
  return n;
};
const opts = new Command("bench:history")
  .option("--runs <n>", "runs of every case, each on a fresh server", positive("--runs"), 3)
  .option("--quick", "a small pass that checks every case completes")
  .parse()
  .opts<{ runs: number; quick?: boolean }>();
const quick = opts.quick === true;

const root = fileURLToPath(new URL("..", import.meta.url));
const bundle = fileURLToPath(new URL("../dist/server/main.js", import.meta.url));

/** One thing measured: how the server is started, and what each message sent carries. */
interface Case {
  name: string;
  args: string[];
  textSize: number;
  requestIds: boolean;
  messages: number;
  /** What the server counts in its budget for one (see queuedEventBytes), if it counts it. */
  counted?: number;
}

const groups = 500;
// The defaults bound history to 1,000 messages and 1 MiB per channel and 64 MiB in all: these fit.
const cases: Case[] = [
  { name: "history, 20-byte texts", args: [], textSize: 20, requestIds: false, messages: quick ? 2000 : 50_000, counted: 2 * 20 + 700 },
  { name: "history, 4 KB texts", args: [], textSize: 4096, requestIds: false, messages: quick ? 500 : 5000, counted: 2 * 4096 + 700 },
  {
    name: "request ids (history off)",
    args: ["--history-messages", "0", "--dedup-per-user", "1000000"],
    textSize: 20,
    requestIds: true,
    messages: quick ? 2000 : 50_000,
  },
];

/** The server's memory, in bytes, after garbage collection. */
interface Memory {
  heapUsed: number;
  external: number;
  rss: number;
}

/** A server process with its inspector, to collect garbage and read memory from outside. */
async function startInspectedServer(args: string[]) {
  const child = spawn(process.execPath, ["--inspect=127.0.0.1:0", bundle, "--port", "0", "--no-web", "--metrics-port", "0", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const inspectorUrl = new Promise<string>((resolve) => {
    createInterface({ input: child.stderr }).on("line", (line) => {
      const match = /Debugger listening on (ws:\/\/\S+)/.exec(line);
      if (match) resolve(match[1]!);
    });
  });
  const ports = new Map<string, number>();
  const listening = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      const entry = JSON.parse(line) as { msg?: string; port?: number };
      if (entry.port !== undefined && entry.msg !== undefined) ports.set(entry.msg, entry.port);
      if (ports.has("server listening") && ports.has("metrics listening")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`the server exited with ${code} before listening`)));
  });
  await listening;
  const inspector = await openInspector(await inspectorUrl);
  return {
    url: `http://127.0.0.1:${ports.get("server listening")}`,
    async memory(): Promise<Memory> {
      // Twice: the first may leave what finalizers freed for the next.
      await inspector.call("HeapProfiler.collectGarbage");
      await inspector.call("HeapProfiler.collectGarbage");
      const answer = (await inspector.call("Runtime.evaluate", { expression: "JSON.stringify(process.memoryUsage())", returnByValue: true })) as {
        result: { value: string };
      };
      const usage = JSON.parse(answer.result.value) as NodeJS.MemoryUsage;
      return { heapUsed: usage.heapUsed, external: usage.external, rss: rssOf(child.pid!) };
    },
    async gauge(name: string): Promise<number | undefined> {
      const text = await (await fetch(`http://127.0.0.1:${ports.get("metrics listening")}/metrics`)).text();
      const line = text.split("\n").find((l) => l.startsWith(`${name} `));
      return line === undefined ? undefined : Number(line.slice(name.length + 1));
    },
    async stop() {
      inspector.close();
      child.kill("SIGKILL");
      await exited;
    },
  };
}

function rssOf(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) * 1024;
}

/** A client of the V8 inspector protocol over the WebSocket the process opened. */
async function openInspector(url: string) {
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  let nextId = 0;
  const waiting = new Map<number, (result: unknown) => void>();
  socket.onmessage = (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: unknown };
    if (message.id === undefined) return;
    waiting.get(message.id)?.(message.result ?? message.error);
    waiting.delete(message.id);
  };
  return {
    call(method: string, params: object = {}): Promise<unknown> {
      const id = ++nextId;
      return new Promise((resolve) => {
        waiting.set(id, resolve);
        socket.send(JSON.stringify({ id, method, params }));
      });
    },
    close: () => socket.close(),
  };
}

/** Sends count messages to the channels in turn, 32 calls in flight; resolves once the writer has received them. */
async function sendAll(writer: LoadUser, channels: readonly string[], count: number, c: Case): Promise<void> {
  const expected = writer.received + count;
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < count) {
        const i = next++;
        const fields: [number, string][] = [
          [1, channels[i % channels.length]!],
          [2, timedText(c.textSize, 0, i)],
        ];
        if (c.requestIds) fields.push([3, randomUUID()]);
        await writer.call("SendMessage", encodeFields(fields));
      }
    }),
  );
  const deadline = Date.now() + 60_000;
  while (writer.received < expected && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  if (writer.received < expected) throw new Error(`${c.name}: ${writer.received} of ${expected} messages arrived`);
}

/** One case on a fresh server: memory per message, in bytes. */
async function measure(c: Case): Promise<Memory & { kept: number | undefined }> {
  const server = await startInspectedServer(c.args);
  try {
    const writer = connectUser(server.url, "writer", undefined);
    await writer.ready;
    const names = Array.from({ length: groups }, (_, i) => `g${i}`);
    for (const name of names) await writer.call("CreateGroupChat", nameRequest(name));
    await writer.call("CreateGroupChat", nameRequest("warm"));
    await sendAll(writer, ["warm"], 2000, c);
    // Its last member gone, the group is deleted and its history with it.
    await writer.call("LeaveGroupChat", nameRequest("warm"));
    const before = await server.memory();
    await sendAll(writer, names, c.messages, c);
    // Let the last responses be written and their buffers released.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const after = await server.memory();
    const kept = await server.gauge("chat_history_messages");
    writer.close();
    return {
      heapUsed: (after.heapUsed - before.heapUsed) / c.messages,
      external: (after.external - before.external) / c.messages,
      rss: (after.rss - before.rss) / c.messages,
      kept,
    };
  } finally {
    await server.stop();
  }
}

execFileSync("npm", ["run", "--silent", "build"], { cwd: root, stdio: "inherit" });
const results = new Map<string, Awaited<ReturnType<typeof measure>>[]>();
const started = Date.now();
for (let run = 0; run < (quick ? 1 : opts.runs); run++) {
  for (const c of cases) {
    const m = await measure(c);
    if (c.counted !== undefined && m.kept !== c.messages) throw new Error(`${c.name}: history kept ${m.kept} of ${c.messages} messages`);
    console.log(
      `run ${run + 1} ${c.name.padEnd(26)} heap ${m.heapUsed.toFixed(0).padStart(6)} B  outside the heap ${m.external.toFixed(0).padStart(6)} B  RSS ${m.rss.toFixed(0).padStart(6)} B per message`,
    );
    results.set(c.name, [...(results.get(c.name) ?? []), m]);
  }
}
const fmt = (values: number[]) => {
  const s = spread(values);
  const n = (x: number) => Math.round(x).toLocaleString("en-US");
  return `${n(s.median)} (${n(s.min)}–${n(s.max)})`;
};
const lines = [
  "",
  `${cpus().length} cores (${cpus()[0]?.model ?? "unknown"}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node.js ${process.version}; ${quick ? 1 : opts.runs} runs in ${((Date.now() - started) / 1000).toFixed(0)} s, a fresh server each; ${groups} groups. Bytes per message (or request id), median (min–max):`,
  "",
  "| case | messages | V8 heap | outside the heap | heap + outside | RSS | counted in the budget |",
  "| --- | --- | --- | --- | --- | --- | --- |",
];
for (const c of cases) {
  const runs = results.get(c.name) ?? [];
  lines.push(
    `| ${c.name} | ${c.messages.toLocaleString("en-US")} | ${fmt(runs.map((m) => m.heapUsed))} | ${fmt(runs.map((m) => m.external))} | ${fmt(runs.map((m) => m.heapUsed + m.external))} | ${fmt(runs.map((m) => m.rss))} | ${c.counted === undefined ? "–" : c.counted.toLocaleString("en-US")} |`,
  );
}
console.log(lines.join("\n"));
