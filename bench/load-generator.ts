/**
 * The load generator: runs one scenario per request from the orchestrator
 * (bench/run.ts), in a process of its own, with each simulated user on its own
 * HTTP/2 connection. It reads gRPC frames and counts events without building
 * message objects, and asks the orchestrator to sample the server's CPU and
 * memory at the edges of each measured phase.
 */
import { connectUser, LatencyRecorder, type LoadUser, nameRequest, nowUs, sendMessageRequest, setAccess, timedText } from "./load-client.js";
import type { GeneratorReply, GeneratorRequest, Latency, ScenarioOutcome } from "./protocol.js";

let nextMark = 0;
const markWaiters = new Map<number, () => void>();

/** Lets the orchestrator sample the server now; resolves when it has. */
function mark(name: string): Promise<void> {
  const id = nextMark++;
  return new Promise((resolve) => {
    markWaiters.set(id, resolve);
    send({ type: "mark", id, name });
  });
}

function send(reply: GeneratorReply): void {
  process.send!(reply);
}

async function inBatches<T>(items: readonly T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

function summarize(latencies: LatencyRecorder): Latency {
  const sorted = latencies.sorted();
  const at = (q: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! / 1000);
  return { p50: at(0.5), p99: at(0.99), max: sorted.length === 0 ? NaN : sorted[sorted.length - 1]! / 1000 };
}

/** Resolves when every user has received count messages; rejects after timeoutMs. */
function allReceived(users: readonly LoadUser[], count: number, timeoutMs: number, waiters: Set<(user: LoadUser) => void>): Promise<number> {
  return new Promise((resolve, reject) => {
    // Counted as users cross the line, so that each response costs O(1).
    const done = new Set(users.filter((u) => u.received >= count));
    if (done.size === users.length) return resolve(nowUs());
    const members = new Set(users);
    const timer = setTimeout(() => {
      waiters.delete(onProgress);
      const short = users.filter((u) => u.received < count);
      reject(new Error(`${short.length} of ${users.length} users got fewer than ${count} messages (e.g. ${short[0]?.username}: ${short[0]?.received})`));
    }, timeoutMs);
    const onProgress = (user: LoadUser) => {
      if (user.received >= count && members.has(user)) done.add(user);
      if (done.size === users.length) {
        clearTimeout(timer);
        waiters.delete(onProgress);
        resolve(nowUs());
      }
    };
    waiters.add(onProgress);
  });
}

/** Connects the users, the i-th to urls[i % urls.length]: members spread over the nodes. */
async function connectAll(
  urls: string[],
  names: string[],
  latencies: LatencyRecorder | undefined,
  waiters: Set<(user: LoadUser) => void>,
): Promise<LoadUser[]> {
  const users: LoadUser[] = [];
  const index = new Map(names.map((name, i) => [name, i]));
  await inBatches(names, 200, async (name) => {
    const user = connectUser(urls[index.get(name)! % urls.length]!, name, latencies, (u) => {
      for (const w of waiters) w(u);
    });
    users.push(user);
    await user.ready;
  });
  return users;
}

/** Messages per response, the Connected response left out. */
function eventsPerResponse(users: readonly LoadUser[]): number {
  const responses = users.reduce((sum, u) => sum + u.responses - 1, 0);
  return users.reduce((sum, u) => sum + u.received, 0) / Math.max(1, responses);
}

/** Checks after a pause that nobody got more than expected. */
async function duplicates(users: readonly LoadUser[], expected: number): Promise<number> {
  await new Promise((r) => setTimeout(r, 200));
  return users.reduce((sum, u) => sum + Math.max(0, u.received - expected), 0);
}

async function fanout(
  urls: string[],
  p: { k: number; n: number; inFlight: number; textSize: number; stalled: boolean; rate?: number },
): Promise<ScenarioOutcome> {
  const latencies = new LatencyRecorder();
  const waiters = new Set<(user: LoadUser) => void>();
  const names = Array.from({ length: p.k }, (_, i) => `m${i}`);
  const users = await connectAll(urls, names, latencies, waiters);
  const byName = new Map(users.map((u) => [u.username, u]));
  const sender = byName.get("m0")!;
  await sender.call("CreateGroupChat", nameRequest("g"));
  await inBatches(
    users.filter((u) => u !== sender),
    100,
    (u) => u.call("JoinGroupChat", nameRequest("g")),
  );
  let stalled: LoadUser | undefined;
  if (p.stalled) {
    stalled = connectUser(urls[0]!, "stalled", undefined);
    await stalled.ready;
    await stalled.call("JoinGroupChat", nameRequest("g"));
    stalled.stall();
  }
  await mark("start");
  const cpu = process.cpuUsage();
  const t0 = nowUs();
  let sent = 0;
  const text = () => sendMessageRequest("g", timedText(p.textSize));
  if (p.rate === undefined) {
    // As fast as the server accepts them, several in flight.
    await Promise.all(
      Array.from({ length: p.inFlight }, async () => {
        while (sent < p.n) {
          sent++;
          await sender.call("SendMessage", text());
        }
      }),
    );
  } else {
    // At a steady rate: every millisecond or so, send what has fallen due
    // (timers are too coarse to space each message on its own).
    const rate = p.rate;
    await new Promise<void>((resolve, reject) => {
      let inFlight = 0;
      const tick = () => {
        const due = Math.min(p.n, Math.floor(((nowUs() - t0) / 1e6) * rate) + 1);
        while (sent < due && inFlight < p.inFlight) {
          sent++;
          inFlight++;
          sender.call("SendMessage", text()).then(() => {
            inFlight--;
            if (sent === p.n && inFlight === 0) resolve();
          }, reject);
        }
        if (sent < p.n) setTimeout(tick, 1);
      };
      tick();
    });
  }
  const t1 = await allReceived(users, p.n, 120_000, waiters);
  const generatorCpu = process.cpuUsage(cpu);
  await mark("end");
  const seconds = (t1 - t0) / 1e6;
  const extra = await duplicates(users, p.n);
  const stalledEnd = stalled === undefined ? undefined : await Promise.race([stalled.ended, new Promise<undefined>((r) => setTimeout(() => r(undefined), 10))]);
  for (const u of users) u.close();
  stalled?.close();
  return {
    deliveries: users.reduce((sum, u) => sum + Math.min(u.received, p.n), 0),
    expected: p.k * p.n,
    duplicates: extra,
    seconds,
    rate: (p.k * p.n) / seconds,
    latency: summarize(latencies),
    generatorCpuSeconds: (generatorCpu.user + generatorCpu.system) / 1e6,
    notes: {
      eventsPerResponse: eventsPerResponse(users),
      ...(stalledEnd === undefined ? {} : { stalledRstCode: stalledEnd.rstCode, stalledGrpcStatus: stalledEnd.grpcStatus ?? -1 }),
    },
  };
}

async function direct(urls: string[], p: { pairs: number; perSender: number; textSize: number }): Promise<ScenarioOutcome> {
  const latencies = new LatencyRecorder();
  const waiters = new Set<(user: LoadUser) => void>();
  const senders = await connectAll(
    urls,
    Array.from({ length: p.pairs }, (_, i) => `s${i}`),
    undefined,
    waiters,
  );
  const receivers = await connectAll(
    urls,
    Array.from({ length: p.pairs }, (_, i) => `r${i}`),
    latencies,
    waiters,
  );
  await mark("start");
  const cpu = process.cpuUsage();
  const t0 = nowUs();
  await Promise.all(
    senders.map(async (s) => {
      const to = `r${s.username.slice(1)}`;
      for (let i = 0; i < p.perSender; i++) await s.call("SendMessage", sendMessageRequest(to, timedText(p.textSize)));
    }),
  );
  const t1 = await allReceived(receivers, p.perSender, 120_000, waiters);
  const generatorCpu = process.cpuUsage(cpu);
  await mark("end");
  const seconds = (t1 - t0) / 1e6;
  const extra = await duplicates(receivers, p.perSender);
  for (const u of [...senders, ...receivers]) u.close();
  const expected = p.pairs * p.perSender;
  return {
    deliveries: receivers.reduce((sum, u) => sum + Math.min(u.received, p.perSender), 0),
    expected,
    duplicates: extra,
    seconds,
    rate: expected / seconds,
    latency: summarize(latencies),
    generatorCpuSeconds: (generatorCpu.user + generatorCpu.system) / 1e6,
    notes: { eventsPerResponse: eventsPerResponse(receivers) },
  };
}

async function connections(urls: string[], p: { count: number; messages: number; textSize: number }): Promise<ScenarioOutcome> {
  const latencies = new LatencyRecorder();
  const waiters = new Set<(user: LoadUser) => void>();
  await mark("idle-before");
  const t0 = nowUs();
  const users = await connectAll(
    urls,
    Array.from({ length: p.count }, (_, i) => `c${i}`),
    latencies,
    waiters,
  );
  const openSeconds = (nowUs() - t0) / 1e6;
  // Let the server settle before its memory is read.
  await new Promise((r) => setTimeout(r, 1000));
  await mark("idle-after");
  const sender = users[0]!;
  await sender.call("CreateGroupChat", nameRequest("all"));
  await inBatches(users.slice(1), 200, (u) => u.call("JoinGroupChat", nameRequest("all")));
  await mark("start");
  const cpu = process.cpuUsage();
  const t1 = nowUs();
  for (let i = 1; i <= p.messages; i++) {
    await sender.call("SendMessage", sendMessageRequest("all", timedText(p.textSize)));
    await allReceived(users, i, 60_000, waiters);
  }
  const t2 = nowUs();
  const generatorCpu = process.cpuUsage(cpu);
  await mark("end");
  const extra = await duplicates(users, p.messages);
  for (const u of users) u.close();
  const expected = p.count * p.messages;
  return {
    deliveries: users.reduce((sum, u) => sum + Math.min(u.received, p.messages), 0),
    expected,
    duplicates: extra,
    seconds: (t2 - t1) / 1e6,
    rate: expected / ((t2 - t1) / 1e6),
    latency: summarize(latencies),
    generatorCpuSeconds: (generatorCpu.user + generatorCpu.system) / 1e6,
    notes: { openSeconds, eventsPerResponse: eventsPerResponse(users) },
  };
}

process.on("message", (message: GeneratorRequest | { type: "marked"; id: number }) => {
  if (message.type === "marked") {
    markWaiters.get(message.id)?.();
    markWaiters.delete(message.id);
    return;
  }
  const { urls, scenario } = message;
  setAccess(message.access ?? {});
  const run = scenario.kind === "fanout" ? fanout(urls, scenario) : scenario.kind === "direct" ? direct(urls, scenario) : connections(urls, scenario);
  run.then(
    (outcome) => send({ type: "done", outcome }),
    (error: unknown) => send({ type: "failed", error: error instanceof Error ? error.message : String(error) }),
  );
});
