/**
 * What one idle Connect stream costs the server's memory, and what holds it.
 * Run as `node --import tsx bench/stream-memory.ts` (see --help for the
 * options; `--server limit` measures the bare node:http2 baseline).
 *
 * It starts the server as `npm run bench` does (bench/servers.ts: the
 * project's bundle with the default settings, built first, or
 * baselines/raw-http2-server.ts) with its inspector on. This process is the
 * client: it opens idle chat.v1.ChatService/Connect streams over plain
 * node:http2, one user each, spread over a few connections (or one
 * connection per stream, as `npm run bench` opens them), and waits for each
 * stream's first response.
 *
 * After a warm-up (streams opened and closed, so that compiled code and
 * lazily made structures are in the baseline) it measures the server at 0,
 * N and 2N open streams: process.memoryUsage() after two forced garbage
 * collections, then at N and 2N a V8 heap snapshot. It prints the memory
 * growth per stream from 0 to N (before any snapshot inflates the process)
 * and from N to 2N, and the snapshots' difference per stream by group
 * (constructor, or closure with its place in the bundle): objects, self
 * size and retained size (from the dominator tree); then the same bytes
 * folded into their owners. The snapshots stay in --dir, and --analyze
 * reads them again.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import * as http2 from "node:http2";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, InvalidArgumentError } from "commander";
import { encodeFields, frame } from "./grpc-wire.js";
import { type BenchServer, startServer } from "./servers.js";

const serverKinds = ["project", "limit"] as const;
type Kind = (typeof serverKinds)[number];

/** The memory figures read from the server. */
type Memory = NodeJS.MemoryUsage;

/** A free loopback port, for the server's inspector. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      // Listening on TCP, its address is an AddressInfo.
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Starts the server as npm run bench does (servers.ts: the project's bundle,
 * built first, or the baseline under tsx), with its inspector on, through
 * which this process collects its garbage, reads its memory and has it write
 * heap snapshots.
 */
async function startInspected(kind: Kind) {
  const inspectPort = await freePort();
  const server: BenchServer = await startServer(kind, { NODE_OPTIONS: `--inspect=127.0.0.1:${inspectPort}` });
  // The inspector's /json/list answers with its targets, the process's first.
  const targets = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
  const inspector = await openInspector(targets[0]!.webSocketDebuggerUrl);
  // Runtime.evaluate answers with a RemoteObject, its value returned by value.
  const evaluate = async (expression: string) =>
    ((await inspector.call("Runtime.evaluate", { expression, returnByValue: true })) as { result: { value: unknown } }).result.value;
  return {
    url: server.url,
    async measure(snapshot?: string): Promise<Memory> {
      // Twice: the first may leave what finalizers freed for the next.
      await inspector.call("HeapProfiler.collectGarbage");
      await inspector.call("HeapProfiler.collectGarbage");
      // What the expression returns.
      const memory = JSON.parse(String(await evaluate("JSON.stringify(process.memoryUsage())"))) as Memory;
      if (snapshot !== undefined) await evaluate(`process.getBuiltinModule("node:v8").writeHeapSnapshot(${JSON.stringify(snapshot)})`);
      return memory;
    },
    async stop() {
      inspector.close();
      await server.stop();
    },
  };
}

/** A client of the V8 inspector protocol over the WebSocket the process opened (as in history-memory.ts). */
async function openInspector(url: string) {
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  let nextId = 0;
  const waiting = new Map<number, (result: unknown) => void>();
  socket.onmessage = (event) => {
    // The inspector protocol's messages: answers carry the id of their call.
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

/** Opens the streams, has the server measured, reads the snapshots. */
async function main(): Promise<void> {
  const positive = (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("must be a whole number");
    return n;
  };
  const opts = new Command("stream-memory")
    .option("--server <kind>", `the server: ${serverKinds.join(" or ")}`, "project")
    .option("--streams <n>", "N: the streams of each step (measured at 0, N and 2N)", positive, 2000)
    .option("--connections <n>", "connections the streams are spread over; 0 for one connection per stream, as npm run bench opens them", positive, 8)
    .option("--no-snapshots", "measure process.memoryUsage() only")
    .option("--top <n>", "constructor groups shown", positive, 40)
    .option("--dir <path>", "where the heap snapshots are written", join(tmpdir(), "stream-memory"))
    .option("--analyze", "read the snapshots a run with the same --server, --streams and --dir left, without running")
    .parse()
    .opts<{ server: Kind; streams: number; connections: number; snapshots: boolean; top: number; dir: string; analyze?: boolean }>();
  if (!serverKinds.includes(opts.server)) throw new InvalidArgumentError(`--server: unknown ${opts.server}`);
  const n = opts.streams;
  mkdirSync(opts.dir, { recursive: true });
  if (opts.analyze === true) {
    analyze(opts.dir, opts.server, n, opts.top);
    return;
  }

  const server = await startInspected(opts.server);
  const clients = new Clients(server.url, opts.connections);
  try {
    // Warm-up: the code paths of opening and closing, compiled; then closed again.
    const warm = await clients.open("warm", Math.min(n, 500));
    clients.close(warm);
    await settle();
    const at0 = await server.measure();
    await clients.open("a", n);
    await settle();
    const atN = await server.measure();
    const snapN = opts.snapshots ? join(opts.dir, `${opts.server}-${n}.heapsnapshot`) : undefined;
    if (snapN !== undefined) await server.measure(snapN);
    await clients.open("b", n);
    await settle();
    const at2N = await server.measure();
    const snap2N = opts.snapshots ? join(opts.dir, `${opts.server}-${2 * n}.heapsnapshot`) : undefined;
    if (snap2N !== undefined) await server.measure(snap2N);

    console.log(`${opts.server}: ${n} streams per step over ${opts.connections === 0 ? "one connection each" : `${opts.connections} connections`}`);
    console.log("bytes per stream        heapUsed    external  arrayBuffers         rss");
    for (const [label, from, to] of [
      ["0 -> N", at0, atN],
      ["N -> 2N (after a snapshot)", atN, at2N],
    ] as const) {
      const per = (key: keyof NodeJS.MemoryUsage) => ((to[key] - from[key]) / n).toFixed(0).padStart(12);
      console.log(`${label.padEnd(20)}${per("heapUsed")}${per("external")}${per("arrayBuffers")}${per("rss")}`);
    }
    clients.closeAll();
    await server.stop();
    if (snapN !== undefined && snap2N !== undefined) analyze(opts.dir, opts.server, n, opts.top);
  } finally {
    clients.closeAll();
    await server.stop();
  }
}

/** Lets the server finish what the last streams started (log lines, timers). */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 1000));
}

/** Idle Connect streams, on a fixed set of connections or on one connection each. */
class Clients {
  private readonly shared: http2.ClientHttp2Session[] = [];
  private opened = 0;
  private readonly owned = new Map<string, { session: http2.ClientHttp2Session; stream: http2.ClientHttp2Stream }[]>();

  constructor(
    private readonly url: string,
    connections: number,
  ) {
    for (let i = 0; i < connections; i++) this.shared.push(this.connect());
  }

  private connect(): http2.ClientHttp2Session {
    const session = http2.connect(this.url);
    session.on("error", () => {});
    return session;
  }

  /** Opens count streams named prefix-i, 200 at a time, each until its first response. */
  async open(prefix: string, count: number): Promise<string> {
    const streams: { session: http2.ClientHttp2Session; stream: http2.ClientHttp2Stream }[] = [];
    for (let from = 0; from < count; from += 200) {
      const batch = Array.from({ length: Math.min(200, count - from) }, (_, i) => {
        const session = this.shared.length === 0 ? this.connect() : this.shared[this.opened++ % this.shared.length]!;
        const stream = session.request({
          ":method": "POST",
          ":path": "/chat.v1.ChatService/Connect",
          "content-type": "application/grpc+proto",
          te: "trailers",
        });
        stream.on("error", () => {});
        streams.push({ session, stream });
        stream.end(frame(encodeFields([[1, `${prefix}-${from + i}`]])));
        return new Promise<void>((resolve, reject) => {
          stream.once("data", () => resolve());
          stream.once("close", () => reject(new Error(`stream ${prefix}-${from + i} closed before its first response (RST ${stream.rstCode})`)));
        });
      });
      await Promise.all(batch);
    }
    this.owned.set(prefix, streams);
    return prefix;
  }

  close(prefix: string): void {
    for (const { session, stream } of this.owned.get(prefix) ?? []) {
      if (this.shared.length === 0) session.destroy();
      else stream.close();
    }
    this.owned.delete(prefix);
  }

  closeAll(): void {
    for (const prefix of [...this.owned.keys()]) this.close(prefix);
    for (const session of this.shared) session.destroy();
  }
}

/** Objects of one kind in a snapshot: by node type and constructor (or closure, or string) name. */
interface Group {
  count: number;
  self: number;
  retained: number;
}

/** What a snapshot holds, grouped two ways. */
interface Summary {
  /** Every object by its own group, with retained sizes. */
  groups: Map<string, Group>;
  /**
   * Every object's self size folded into its owner: the nearest object that
   * dominates it (itself included) and is an instance of a class of its own,
   * a closure or a native object, not a plain Object, Array or V8 internal.
   */
  owners: Map<string, Group>;
}

/** Groups whose objects are parts of others rather than owners (see Summary.owners). */
const partGroups = /^(Object|Array|\(\w+( \w+)*\) .*|system \/ .*|)$/;

/**
 * Reads a heap snapshot and sums its objects by group, with retained sizes
 * from the dominator tree (weak edges do not retain). A group's retained
 * size counts only objects that no other object of the same group dominates,
 * so that a linked chain is not counted once per link. Closures are grouped
 * by name and place: the script, line and opening code of the function.
 */
function summarize(file: string): Summary {
  // V8 writes its snapshot format (see HeapSnapshot), which the meta describes.
  const snapshot = JSON.parse(readFileSync(file, "utf8")) as HeapSnapshot;
  const meta = snapshot.snapshot.meta;
  const nf = meta.node_fields.length;
  const ef = meta.edge_fields.length;
  // The first field's types are an array of names; so are the edges'; every field looked up below is in V8's format.
  const nodeTypes = meta.node_types[0] as string[];
  const edgeTypes = meta.edge_types[0] as string[];
  const [typeAt, nameAt, selfAt, edgeCountAt] = ["type", "name", "self_size", "edge_count"].map((f) => meta.node_fields.indexOf(f)) as [
    number,
    number,
    number,
    number,
  ];
  const [edgeTypeAt, edgeNameAt, toAt] = ["type", "name_or_index", "to_node"].map((f) => meta.edge_fields.indexOf(f)) as [number, number, number];
  const weak = edgeTypes.indexOf("weak");
  const { nodes, edges, strings } = snapshot;
  const count = nodes.length / nf;
  // First edge of every node, and the reverse graph for the dominator computation.
  const firstEdge = new Uint32Array(count + 1);
  for (let i = 0, e = 0; i < count; i++) {
    firstEdge[i] = e;
    e += nodes[i * nf + edgeCountAt]! * ef;
  }
  firstEdge[count] = edges.length;
  const succ = (i: number, visit: (j: number) => void) => {
    for (let e = firstEdge[i]!; e < firstEdge[i + 1]!; e += ef) if (edges[e + edgeTypeAt] !== weak) visit(edges[e + toAt]! / nf);
  };
  const edgeNamed = (i: number, name: string): number | undefined => {
    for (let e = firstEdge[i]!; e < firstEdge[i + 1]!; e += ef) {
      const type = edgeTypes[edges[e + edgeTypeAt]!];
      if (type !== "element" && type !== "hidden" && strings[edges[e + edgeNameAt]!] === name) return edges[e + toAt]! / nf;
    }
    return undefined;
  };
  // Depth-first postorder from the root (node 0), iteratively.
  const order = new Int32Array(count).fill(-1);
  const post: number[] = [];
  const stack: number[] = [0];
  const edgeCursor = new Uint32Array(count);
  const seen = new Uint8Array(count);
  seen[0] = 1;
  for (let i = 0; i < count; i++) edgeCursor[i] = firstEdge[i]!;
  while (stack.length > 0) {
    const i = stack[stack.length - 1]!;
    let pushed = false;
    while (edgeCursor[i]! < firstEdge[i + 1]!) {
      const e = edgeCursor[i]!;
      edgeCursor[i] = e + ef;
      if (edges[e + edgeTypeAt] === weak) continue;
      const j = edges[e + toAt]! / nf;
      if (seen[j] === 0) {
        seen[j] = 1;
        stack.push(j);
        pushed = true;
        break;
      }
    }
    if (!pushed) {
      stack.pop();
      order[i] = post.length;
      post.push(i);
    }
  }
  // Predecessors, of reachable nodes only.
  const predCount = new Uint32Array(count + 1);
  for (const i of post) succ(i, (j) => predCount[j]!++);
  const predStart = new Uint32Array(count + 1);
  for (let i = 0; i < count; i++) predStart[i + 1] = predStart[i]! + predCount[i]!;
  const preds = new Uint32Array(predStart[count]!);
  const fill = predStart.slice();
  for (const i of post) succ(i, (j) => (preds[fill[j]!++] = i));
  // Cooper, Harvey and Kennedy's iterative dominators, in reverse postorder.
  const idom = new Int32Array(count).fill(-1);
  idom[0] = 0;
  const intersect = (a0: number, b0: number) => {
    let a = a0;
    let b = b0;
    while (a !== b) {
      while (order[a]! < order[b]!) a = idom[a]!;
      while (order[b]! < order[a]!) b = idom[b]!;
    }
    return a;
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (let k = post.length - 2; k >= 0; k--) {
      const i = post[k]!;
      let dom = -1;
      for (let p = predStart[i]!; p < predStart[i + 1]!; p++) {
        const q = preds[p]!;
        if (idom[q] === -1) continue;
        dom = dom === -1 ? q : intersect(q, dom);
      }
      if (dom !== -1 && idom[i] !== dom) {
        idom[i] = dom;
        changed = true;
      }
    }
  }
  // Retained sizes: children before their dominators, which postorder gives.
  const retained = new Float64Array(count);
  for (const i of post) retained[i]! += nodes[i * nf + selfAt]!;
  for (const i of post) if (i !== 0) retained[idom[i]!]! += retained[i]!;
  // Where each closure's code is: the snapshot's locations give its line and
  // column in its script.
  const places = new Map<number, { line: number; column: number }>();
  const locations = snapshot.locations ?? [];
  const lf = meta.location_fields ?? ["object_index", "script_id", "line", "column"];
  for (let l = 0; l < locations.length; l += lf.length) {
    places.set(locations[l + lf.indexOf("object_index")]! / nf, {
      line: locations[l + lf.indexOf("line")]!,
      column: locations[l + lf.indexOf("column")]!,
    });
  }
  const sourceLines = new Map<string, string[]>();
  const placeOf = (i: number) => {
    // Under tsx (the baseline), esbuild's keepNames gives an arrow function assigned to a const its name as a property.
    const named = edgeNamed(i, "name");
    const name = named !== undefined && nodeTypes[nodes[named * nf + typeAt]!] === "string" ? `${strings[nodes[named * nf + nameAt]!]}() ` : "";
    const shared = edgeNamed(i, "shared");
    const script = shared === undefined ? undefined : (edgeNamed(shared, "script") ?? edgeNamed(shared, "script_or_debug_info"));
    if (script === undefined) return `${name}?`;
    const url = strings[nodes[script * nf + nameAt]!]!;
    let source = sourceLines.get(url);
    if (source === undefined) {
      // The bundle, read where it is; the snapshot keeps only a script's first kilobyte.
      const path = url.startsWith("file://") ? fileURLToPath(url) : undefined;
      source = path?.endsWith(".js") && existsSync(path) ? readFileSync(path, "utf8").split("\n") : [];
      sourceLines.set(url, source);
    }
    const place = places.get(i);
    const code = place === undefined ? "" : (source[place.line] ?? "").slice(place.column, place.column + 56).trim();
    const short = url.replace(/^file:\/\/.*?\/(dist|server|bench|gen|test|node_modules)\//, "$1/").replace(/^.*\/node_modules\//, "");
    return `${name}${short}:${place === undefined ? "?" : place.line + 1}${code === "" ? "" : ` ${JSON.stringify(code)}`}`;
  };
  const groupOf = (i: number) => {
    const type = nodeTypes[nodes[i * nf + typeAt]!]!;
    const name = type === "string" || type === "concatenated string" || type === "sliced string" ? "" : strings[nodes[i * nf + nameAt]!]!;
    const short = name.length > 60 ? `${name.slice(0, 57)}...` : name;
    if (type === "closure") return `(closure) ${short || "anonymous"} ${placeOf(i)}`;
    return `${type === "object" ? "" : `(${type}) `}${short}`;
  };
  // Every node's group as a number, so that walking the dominator chain compares integers.
  const keys: string[] = [];
  const keyIndex = new Map<string, number>();
  const groupIndex = new Int32Array(count);
  for (const i of post) {
    const key = groupOf(i);
    let k = keyIndex.get(key);
    if (k === undefined) {
      k = keys.push(key) - 1;
      keyIndex.set(key, k);
    }
    groupIndex[i] = k;
  }
  const isOwner = keys.map((key) => !partGroups.test(key) || key.startsWith("(closure) ") || key.startsWith("(native) "));
  const sums = keys.map(() => ({ count: 0, self: 0, retained: 0 }));
  const owned = keys.map(() => ({ count: 0, self: 0, retained: 0 }));
  for (const i of post) {
    const k = groupIndex[i]!;
    const group = sums[k]!;
    const self = nodes[i * nf + selfAt]!;
    group.count++;
    group.self += self;
    // Counted unless an object of the same group holds it already.
    let d = idom[i]!;
    while (d !== 0 && groupIndex[d] !== k) d = idom[d]!;
    if (d === 0) group.retained += retained[i]!;
    let owner = i;
    while (owner !== 0 && !isOwner[groupIndex[owner]!]) owner = idom[owner]!;
    const ownerGroup = owned[owner === 0 ? k : groupIndex[owner]!]!;
    ownerGroup.self += self;
    if (owner === i) ownerGroup.count++;
  }
  const groups = new Map<string, Group>();
  const owners = new Map<string, Group>();
  for (const [k, key] of keys.entries()) {
    groups.set(key, sums[k]!);
    if (owned[k]!.self !== 0) owners.set(key, owned[k]!);
  }
  return { groups, owners };
}

/** The parts of V8's heap snapshot format read here. */
interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: unknown[]; edge_fields: string[]; edge_types: unknown[]; location_fields?: string[] } };
  nodes: number[];
  edges: number[];
  locations?: number[];
  strings: string[];
}

/** Reads the snapshots at N and 2N streams from dir, and prints what grew. */
function analyze(dir: string, kind: Kind, n: number, top: number): void {
  printDiff(summarize(join(dir, `${kind}-${n}.heapsnapshot`)), summarize(join(dir, `${kind}-${2 * n}.heapsnapshot`)), n, top);
}

/** Prints, per stream, what grew between the snapshots at N and at 2N. */
function printDiff(before: Summary, after: Summary, n: number, top: number): void {
  const perStream = (a: Map<string, Group>, b: Map<string, Group>) => {
    const keys = new Set([...a.keys(), ...b.keys()]);
    return [...keys].map((key) => {
      const x = b.get(key) ?? { count: 0, self: 0, retained: 0 };
      const y = a.get(key) ?? { count: 0, self: 0, retained: 0 };
      return { key, count: (y.count - x.count) / n, self: (y.self - x.self) / n, retained: (y.retained - x.retained) / n };
    });
  };
  const rows = perStream(after.groups, before.groups);
  const total = rows.reduce((sum, r) => sum + r.self, 0);
  console.log(`\nheap snapshot, N -> 2N, per stream: ${total.toFixed(0)} bytes of self size in all`);
  console.log(`${"objects".padStart(8)} ${"self B".padStart(8)} ${"retained B".padStart(11)}  group`);
  for (const r of rows.sort((x, y) => y.self - x.self).slice(0, top)) {
    console.log(`${r.count.toFixed(2).padStart(8)} ${r.self.toFixed(0).padStart(8)} ${r.retained.toFixed(0).padStart(11)}  ${r.key}`);
  }
  console.log("\nthe same, each object's self size folded into its owner (its nearest dominator of a class of its own, a closure or native)");
  console.log(`${"owners".padStart(8)} ${"bytes".padStart(8)}  owner`);
  for (const r of perStream(after.owners, before.owners)
    .sort((x, y) => y.self - x.self)
    .slice(0, top)) {
    console.log(`${r.count.toFixed(2).padStart(8)} ${r.self.toFixed(0).padStart(8)}  ${r.key}`);
  }
}

// Last: the classes above must be initialized before it runs.
await main();
