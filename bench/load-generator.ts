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

/** Lets the orchestrator sample the server now (with settle, once its CPU is quiet); resolves when it has. */
function mark(name: string, settle = false): Promise<void> {
  const id = nextMark++;
  return new Promise((resolve) => {
    markWaiters.set(id, resolve);
    send({ type: "mark", id, name, ...(settle ? { settle } : {}) });
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

/**
 * Resolves when every user has received what was sent to it (expected(user)
 * messages), or after timeoutMs with what has come: the sequence-number check
 * then tells what was lost.
 */
function allReceived(
  users: readonly LoadUser[],
  expected: (user: LoadUser) => number,
  timeoutMs: number,
  waiters: Set<(user: LoadUser) => void>,
): Promise<number> {
  return new Promise((resolve) => {
    // Counted as users cross the line, so that each response costs O(1).
    const done = new Set(users.filter((u) => u.received >= expected(u)));
    if (done.size === users.length) return resolve(nowUs());
    const members = new Set(users);
    const finish = () => {
      clearTimeout(timer);
      waiters.delete(onProgress);
      resolve(nowUs());
    };
    const timer = setTimeout(finish, timeoutMs);
    const onProgress = (user: LoadUser) => {
      if (members.has(user) && user.received >= expected(user)) done.add(user);
      if (done.size === users.length) finish();
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

/**
 * After a pause for strays, compares what each receiver heard with what was
 * sent to it, by sender and sequence number: sets, not order.
 */
async function verify(receivers: readonly { user: LoadUser; sent: ReadonlyMap<number, number> }[]): Promise<{ lost: number; duplicated: number }> {
  await new Promise((r) => setTimeout(r, 200));
  let lost = 0;
  let duplicated = 0;
  for (const { user, sent } of receivers) {
    const found = user.heard.check(sent);
    lost += found.lost;
    duplicated += found.duplicated;
  }
  return { lost, duplicated };
}

const cpuSecondsSince = (cpu: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / 1e6;
};

/** When a sending loop stops: after its count, or after seconds from t0, whichever comes first. */
function sendingUntil(t0: number, count: number | undefined, seconds: number | undefined): (sent: number) => boolean {
  const limit = count ?? Number.POSITIVE_INFINITY;
  const deadline = seconds === undefined ? Number.POSITIVE_INFINITY : t0 + seconds * 1e6;
  return (sent) => sent < limit && nowUs() < deadline;
}

/** Sends from one user to one channel as fast as the server accepts, inFlight calls at a time; resolves with the count sent. */
async function sendFast(sender: LoadUser, channel: string, id: number, inFlight: number, textSize: number, more: (sent: number) => boolean): Promise<number> {
  let sent = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (more(sent)) await sender.call("SendMessage", sendMessageRequest(channel, timedText(textSize, id, sent++)));
    }),
  );
  return sent;
}

/**
 * Sends n messages at a steady rate: every millisecond or so, what has
 * fallen due (timers are too coarse to space each message on its own).
 */
function sendPaced(sender: LoadUser, channel: string, id: number, p: { n: number; rate: number; inFlight: number; textSize: number }): Promise<number> {
  const t0 = nowUs();
  let sent = 0;
  return new Promise<number>((resolve, reject) => {
    let inFlight = 0;
    const tick = () => {
      const due = Math.min(p.n, Math.floor(((nowUs() - t0) / 1e6) * p.rate) + 1);
      while (sent < due && inFlight < p.inFlight) {
        inFlight++;
        sender.call("SendMessage", sendMessageRequest(channel, timedText(p.textSize, id, sent++))).then(() => {
          inFlight--;
          if (sent === p.n && inFlight === 0) resolve(sent);
        }, reject);
      }
      if (sent < p.n) setTimeout(tick, 1);
    };
    tick();
  });
}

async function fanout(
  urls: string[],
  prefix: string,
  p: { k: number; n?: number; seconds?: number; inFlight: number; textSize: number; stalled: boolean; rate?: number },
): Promise<ScenarioOutcome> {
  const latencies = new LatencyRecorder();
  const waiters = new Set<(user: LoadUser) => void>();
  const group = `${prefix}g`;
  await mark("setup");
  const setupStart = nowUs();
  const users = await connectAll(
    urls,
    Array.from({ length: p.k }, (_, i) => `${prefix}m${i}`),
    latencies,
    waiters,
  );
  const sender = users.find((u) => u.username === `${prefix}m0`)!;
  await sender.call("CreateGroupChat", nameRequest(group));
  await inBatches(
    users.filter((u) => u !== sender),
    100,
    (u) => u.call("JoinGroupChat", nameRequest(group)),
  );
  let stalled: LoadUser | undefined;
  if (p.stalled) {
    stalled = connectUser(urls[0]!, `${prefix}stalled`, undefined);
    await stalled.ready;
    await stalled.call("JoinGroupChat", nameRequest(group));
    stalled.stall();
  }
  await mark("start");
  const cpu = process.cpuUsage();
  const t0 = nowUs();
  const setupSeconds = (t0 - setupStart) / 1e6;
  const sent =
    p.rate === undefined
      ? await sendFast(sender, group, 0, p.inFlight, p.textSize, sendingUntil(t0, p.n, p.seconds))
      : await sendPaced(sender, group, 0, { n: p.n ?? Math.round((p.seconds ?? 1) * p.rate), rate: p.rate, inFlight: p.inFlight, textSize: p.textSize });
  const t1 = await allReceived(users, () => sent, 60_000, waiters);
  const generatorCpuSeconds = cpuSecondsSince(cpu);
  await mark("end");
  const seconds = (t1 - t0) / 1e6;
  const sentMap = new Map([[0, sent]]);
  const checked = await verify(users.map((user) => ({ user, sent: sentMap })));
  const stalledEnd = stalled === undefined ? undefined : await Promise.race([stalled.ended, new Promise<undefined>((r) => setTimeout(() => r(undefined), 10))]);
  for (const u of users) u.close();
  stalled?.close();
  const deliveries = users.reduce((sum, u) => sum + u.received, 0);
  return {
    deliveries,
    expected: p.k * sent,
    ...checked,
    setupSeconds,
    seconds,
    rate: deliveries / seconds,
    latency: summarize(latencies),
    generatorCpuSeconds,
    notes: {
      sent,
      eventsPerResponse: eventsPerResponse(users),
      ...(stalledEnd === undefined ? {} : { stalledRstCode: stalledEnd.rstCode, stalledGrpcStatus: stalledEnd.grpcStatus ?? -1 }),
    },
  };
}

async function direct(urls: string[], prefix: string, p: { pairs: number; perSender?: number; seconds?: number; textSize: number }): Promise<ScenarioOutcome> {
  const latencies = new LatencyRecorder();
  const waiters = new Set<(user: LoadUser) => void>();
  await mark("setup");
  const setupStart = nowUs();
  const names = (role: string) => Array.from({ length: p.pairs }, (_, i) => `${prefix}${role}${i}`);
  const senders = await connectAll(urls, names("s"), undefined, waiters);
  const receivers = await connectAll(urls, names("r"), latencies, waiters);
  // Pair i is s<i> → r<i>; the sender's number in its texts is i.
  const pairOf = (u: LoadUser) => Number(u.username.slice(prefix.length + 1));
  await mark("start");
  const cpu = process.cpuUsage();
  const t0 = nowUs();
  const setupSeconds = (t0 - setupStart) / 1e6;
  const sentBy = new Map<number, number>();
  await Promise.all(
    senders.map(async (s) => {
      const i = pairOf(s);
      const more = sendingUntil(t0, p.perSender, p.seconds);
      let seq = 0;
      for (; more(seq); seq++) await s.call("SendMessage", sendMessageRequest(`${prefix}r${i}`, timedText(p.textSize, i, seq)));
      sentBy.set(i, seq);
    }),
  );
  const t1 = await allReceived(receivers, (u) => sentBy.get(pairOf(u)) ?? 0, 60_000, waiters);
  const generatorCpuSeconds = cpuSecondsSince(cpu);
  await mark("end");
  const seconds = (t1 - t0) / 1e6;
  const checked = await verify(receivers.map((user) => ({ user, sent: new Map([[pairOf(user), sentBy.get(pairOf(user)) ?? 0]]) })));
  for (const u of [...senders, ...receivers]) u.close();
  const deliveries = receivers.reduce((sum, u) => sum + u.received, 0);
  const expected = [...sentBy.values()].reduce((a, b) => a + b, 0);
  return {
    deliveries,
    expected,
    ...checked,
    setupSeconds,
    seconds,
    rate: deliveries / seconds,
    latency: summarize(latencies),
    generatorCpuSeconds,
    notes: { sent: expected, eventsPerResponse: eventsPerResponse(receivers) },
  };
}

/**
 * Opens count Connect streams between the marks idle-before and opened,
 * then lets the server settle for a second before the mark idle-after, so
 * that the orchestrator reads the memory they hold.
 */
async function openIdle(
  urls: string[],
  prefix: string,
  count: number,
  latencies: LatencyRecorder | undefined,
  waiters: Set<(user: LoadUser) => void>,
): Promise<{ users: LoadUser[]; openSeconds: number }> {
  await mark("idle-before");
  const t0 = nowUs();
  const users = await connectAll(
    urls,
    Array.from({ length: count }, (_, i) => `${prefix}c${i}`),
    latencies,
    waiters,
  );
  const openSeconds = (nowUs() - t0) / 1e6;
  await mark("opened");
  await new Promise((r) => setTimeout(r, 1000));
  await mark("idle-after");
  return { users, openSeconds };
}

async function connections(urls: string[], prefix: string, p: { count: number; messages: number; textSize: number }): Promise<ScenarioOutcome> {
  const latencies = new LatencyRecorder();
  const waiters = new Set<(user: LoadUser) => void>();
  const { users, openSeconds } = await openIdle(urls, prefix, p.count, latencies, waiters);
  const group = `${prefix}all`;
  const sender = users[0]!;
  await sender.call("CreateGroupChat", nameRequest(group));
  await inBatches(users.slice(1), 200, (u) => u.call("JoinGroupChat", nameRequest(group)));
  await mark("start");
  const cpu = process.cpuUsage();
  const t1 = nowUs();
  for (let i = 1; i <= p.messages; i++) {
    await sender.call("SendMessage", sendMessageRequest(group, timedText(p.textSize, 0, i - 1)));
    await allReceived(users, () => i, 60_000, waiters);
  }
  const t2 = nowUs();
  const generatorCpuSeconds = cpuSecondsSince(cpu);
  await mark("end");
  const sentMap = new Map([[0, p.messages]]);
  const checked = await verify(users.map((user) => ({ user, sent: sentMap })));
  for (const u of users) u.close();
  const deliveries = users.reduce((sum, u) => sum + u.received, 0);
  return {
    deliveries,
    expected: p.count * p.messages,
    ...checked,
    setupSeconds: openSeconds,
    seconds: (t2 - t1) / 1e6,
    rate: deliveries / ((t2 - t1) / 1e6),
    latency: summarize(latencies),
    generatorCpuSeconds,
    notes: { openSeconds, eventsPerResponse: eventsPerResponse(users) },
  };
}

/**
 * Opens count idle Connect streams, each on its connection, lets the server
 * settle, then closes them all: the orchestrator reads memory per stream
 * from idle-before/idle-after and CPU per Connect from idle-before/closed.
 */
async function streams(urls: string[], prefix: string, p: { count: number }): Promise<ScenarioOutcome> {
  const cpu = process.cpuUsage();
  const { users, openSeconds } = await openIdle(urls, prefix, p.count, undefined, new Set());
  const t1 = nowUs();
  for (const u of users) u.close();
  await Promise.all(users.map((u) => u.ended));
  const closeSeconds = (nowUs() - t1) / 1e6;
  await mark("closed", true);
  return {
    deliveries: users.filter((u) => u.responses > 0).length,
    expected: p.count,
    lost: users.filter((u) => u.responses === 0).length,
    duplicated: 0,
    setupSeconds: openSeconds,
    seconds: openSeconds + closeSeconds,
    rate: p.count / openSeconds,
    latency: { p50: NaN, p99: NaN, max: NaN },
    generatorCpuSeconds: cpuSecondsSince(cpu),
    notes: { openSeconds, closeSeconds },
  };
}

process.on("message", (message: GeneratorRequest | { type: "marked"; id: number }) => {
  if (message.type === "marked") {
    markWaiters.get(message.id)?.();
    markWaiters.delete(message.id);
    return;
  }
  const { urls, scenario } = message;
  const prefix = message.prefix ?? "";
  setAccess(message.access ?? {});
  const run =
    scenario.kind === "fanout"
      ? fanout(urls, prefix, scenario)
      : scenario.kind === "direct"
        ? direct(urls, prefix, scenario)
        : scenario.kind === "connections"
          ? connections(urls, prefix, scenario)
          : streams(urls, prefix, scenario);
  run.then(
    (outcome) => send({ type: "done", outcome }),
    (error: unknown) => send({ type: "failed", error: error instanceof Error ? error.message : String(error) }),
  );
});
