/**
 * `npm run bench:presence [-- --watchers N --churn R --seconds S --runs N]`:
 * what presence costs. The server holds W watcher streams that ask for
 * presence events, while users connect and disconnect at R per second. It
 * runs with presence on (the default interval), and off (--no-presence),
 * alternating, and reports the server's CPU per connect-and-disconnect, what
 * each watcher received, and the spread over the runs. Clients share a few
 * HTTP/2 connections, as the load generator's do.
 */

import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Command } from "commander";
import { ChatService } from "../gen/chat/v1/chat_pb.js";
import { startServer } from "./servers.js";

const opts = new Command("presence")
  .option("--watchers <n>", "streams that ask for presence", "1000")
  .option("--churn <n>", "users that connect and disconnect per second", "200")
  .option("--seconds <n>", "length of each measured window", "5")
  .option("--runs <n>", "runs of each setting", "3")
  .option("--interval-ms <n>", "--presence-interval-ms of the server", "250")
  .parse()
  .opts<{ watchers: string; churn: string; seconds: string; runs: string; intervalMs: string }>();
const watchers = Number(opts.watchers);
const churn = Number(opts.churn);
const seconds = Number(opts.seconds);

interface Result {
  /** Server CPU over the window, in percent of one core. */
  cpuPercent: number;
  changesPerSecond: number;
  cpuMicrosPerChange: number;
  eventsPerWatcher: number;
  channelsPerWatcher: number;
  completedChanges: number;
}

async function run(presence: boolean): Promise<Result> {
  process.env.BENCH_SERVER_ARGS = presence ? `--presence-interval-ms ${opts.intervalMs}` : "--no-presence";
  const server = await startServer("project");
  const clients: Client<typeof ChatService>[] = [];
  for (let i = 0; i < 8; i++) clients.push(createClient(ChatService, createGrpcTransport({ baseUrl: server.url })));
  const abort = new AbortController();
  let events = 0;
  let channels = 0;
  const opened: Promise<void>[] = [];
  for (let i = 0; i < watchers; i++) {
    const client = clients[i % clients.length]!;
    opened.push(
      new Promise<void>((resolve) => {
        void (async () => {
          try {
            for await (const res of client.connect({ username: `w${i}`, presenceEvents: true }, { signal: abort.signal })) {
              for (const event of res.events) {
                if (event.kind.case === "connected") resolve();
                else if (event.kind.case === "channelsChanged") {
                  events++;
                  channels += event.kind.value.added.length + event.kind.value.removed.length;
                }
              }
            }
          } catch {
            // Ended by the abort below.
          }
        })();
      }),
    );
  }
  await Promise.all(opened);
  // Warm-up: let the watchers' own arrival be published and read.
  await new Promise((r) => setTimeout(r, 1500));
  events = 0;
  channels = 0;
  const cpuBefore = server.cpuSeconds();
  let completed = 0;
  const until = Date.now() + seconds * 1000;
  const pending = new Set<Promise<void>>();
  let n = 0;
  while (Date.now() < until) {
    const tick = Date.now();
    for (let k = 0; k < churn / 20; k++) {
      const client = clients[n % clients.length]!;
      const user = `c${n++}`;
      const one = (async () => {
        const stop = new AbortController();
        try {
          for await (const res of client.connect({ username: user }, { signal: stop.signal })) {
            if (res.events.some((e) => e.kind.case === "connected")) break;
          }
          completed++;
        } catch {
          // Counted as not completed.
        }
      })();
      pending.add(one);
      void one.then(() => pending.delete(one));
    }
    await new Promise((r) => setTimeout(r, Math.max(0, 50 - (Date.now() - tick))));
  }
  await Promise.all(pending);
  // The last interval's changes, published.
  await new Promise((r) => setTimeout(r, Number(opts.intervalMs) + 500));
  const cpu = server.cpuSeconds() - cpuBefore;
  abort.abort();
  await server.stop();
  return {
    cpuPercent: (cpu * 100) / (seconds + (Number(opts.intervalMs) + 500) / 1000),
    changesPerSecond: completed / seconds,
    cpuMicrosPerChange: (cpu * 1e6) / Math.max(1, completed),
    eventsPerWatcher: events / watchers,
    channelsPerWatcher: channels / watchers,
    completedChanges: completed,
  };
}

const results: Record<"on" | "off", Result[]> = { on: [], off: [] };
for (let r = 0; r < Number(opts.runs); r++) {
  for (const setting of ["on", "off"] as const) {
    const result = await run(setting === "on");
    results[setting].push(result);
    console.log(`${setting} run ${r + 1}: ${JSON.stringify(result)}`);
  }
}
const spread = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return `${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} (${sorted[0]!.toFixed(0)}–${sorted.at(-1)!.toFixed(0)})`;
};
console.log(`\n${watchers} watchers, ${churn} connect-and-disconnects a second, ${seconds} s windows, ${opts.runs} runs each; median (min–max):`);
console.log(
  "| presence | server CPU, % of a core | connect+disconnects/s done | server CPU per connect+disconnect | ChannelsChanged per watcher | changes carried per watcher |",
);
console.log("| --- | --- | --- | --- | --- | --- |");
for (const setting of ["on", "off"] as const) {
  const rs = results[setting];
  console.log(
    `| ${setting} | ${spread(rs.map((x) => x.cpuPercent))} | ${spread(rs.map((x) => x.changesPerSecond))} | ${spread(rs.map((x) => x.cpuMicrosPerChange))} µs | ${spread(rs.map((x) => x.eventsPerWatcher))} | ${spread(rs.map((x) => x.channelsPerWatcher))} |`,
  );
}
process.exit(0);
