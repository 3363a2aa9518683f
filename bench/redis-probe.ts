import { Redis } from "ioredis";
import type { RedisMaster } from "./redis-topology.js";
import { processCpuSeconds } from "./servers.js";

/** How many times a command ran over a window, and how long it took in all, in microseconds. */
export interface CommandCost {
  count: number;
  micros: number;
}

/** What one Redis master did over a window. */
export interface MasterWindow {
  readonly port: number;
  /** CPU time its process used (user + system, from /proc), in seconds. */
  readonly cpuSeconds: number;
  /**
   * The top-level commands other clients sent, from SLOWLOG at threshold 0
   * (traced windows only; empty otherwise), by label: Redis's command name
   * (`set`, `cluster|slots`), or `evalsha:<first 8 digits of the SHA>`
   * (`fcall:<function>`) for a script, whose time includes the commands it
   * runs.
   */
  readonly logged: ReadonlyMap<string, CommandCost>;
  /** The commands scripts ran, by label, from the same log (Redis 7 logs them too, from the client `?:0`). */
  readonly inner: ReadonlyMap<string, CommandCost>;
  /**
   * INFO commandstats deltas by Redis's command name, the probe's own
   * commands left out. Commands that scripts run count here too, besides
   * the script's own time: only a cross-check.
   */
  readonly stats: ReadonlyMap<string, CommandCost>;
}

/** What the masters did between {@link RedisProbe.begin} and {@link RedisProbe.end}. */
export interface RedisWindow {
  /** Wall time between the CPU samples. */
  readonly seconds: number;
  readonly traced: boolean;
  readonly masters: readonly MasterWindow[];
}

/** Watches every master of a topology over windows of time. */
export interface RedisProbe {
  /**
   * Opens a window. A traced one logs every command (SLOWLOG at threshold
   * 0), which costs Redis CPU of its own (about a microsecond a command
   * here), so CPU is measured in untraced windows.
   */
  begin(traced: boolean): Promise<void>;
  end(): Promise<RedisWindow>;
  close(): void;
}

/** The probe's connections' name: SLOWLOG entries that carry it are the probe's own. */
const probeName = "bench-probe";

/** Large enough for any window the benchmark runs; a log this full means entries were dropped. */
const slowlogMaxLen = 1_000_000;

/** Redis's subcommand families, which commandstats names `family|sub` and the slowlog lists as two arguments. */
const families = new Set(["client", "cluster", "command", "config", "function", "memory", "object", "pubsub", "script", "slowlog", "xinfo"]);

/** The label of a logged command, from its arguments (see MasterWindow.logged). */
export function labelOf(args: readonly string[]): string {
  const name = (args[0] ?? "").toLowerCase();
  if (name === "evalsha" || name === "evalsha_ro") return `${name}:${(args[1] ?? "").slice(0, 8)}`;
  if (name === "fcall" || name === "fcall_ro") return `${name}:${args[1] ?? ""}`;
  if (families.has(name) && args[1] !== undefined) return `${name}|${args[1].toLowerCase()}`;
  return name;
}

/** Redis's command name of a label: the label without the script's SHA. */
export function commandOf(label: string): string {
  return label.split(":")[0]!;
}

/** Parses INFO commandstats: `cmdstat_<name>:calls=N,usec=N,...` lines. */
function parseCommandStats(info: string): Map<string, CommandCost> {
  const stats = new Map<string, CommandCost>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    stats.set(match[1]!, { count: Number(match[2]), micros: Number(match[3]) });
  }
  return stats;
}

/** The probe's own commands, which commandstats counts like anyone's. */
const isProbeCommand = (name: string) => name === "info" || name.startsWith("slowlog|") || name.startsWith("config|");

function statsDelta(before: ReadonlyMap<string, CommandCost>, after: ReadonlyMap<string, CommandCost>): Map<string, CommandCost> {
  const delta = new Map<string, CommandCost>();
  for (const [name, now] of after) {
    if (isProbeCommand(name)) continue;
    const then = before.get(name) ?? { count: 0, micros: 0 };
    if (now.count > then.count) delta.set(name, { count: now.count - then.count, micros: now.micros - then.micros });
  }
  return delta;
}

/** The address the slowlog gives the commands a script runs: Lua's own client's. */
const scriptClientAddress = "?:0";

/**
 * Sums SLOWLOG GET's entries ([id, time, µs, args, address, client name])
 * by label into those clients sent and those scripts ran, leaving out the
 * probe's own; throws if the log overflowed.
 */
function tallySlowlog(entries: unknown, port: number): { logged: Map<string, CommandCost>; inner: Map<string, CommandCost> } {
  // SLOWLOG GET answers an array of entries shaped as above; ioredis types replies as unknown.
  const list = entries as [number, number, number, string[], string, string][];
  if (list.length >= slowlogMaxLen) throw new Error(`the slowlog of the Redis on port ${port} overflowed: shorten --seconds`);
  const logged = new Map<string, CommandCost>();
  const inner = new Map<string, CommandCost>();
  for (const [, , micros, args, address, client] of list) {
    if (client === probeName) continue;
    const tally = address === scriptClientAddress ? inner : logged;
    const label = labelOf(args);
    const cost = tally.get(label) ?? { count: 0, micros: 0 };
    cost.count++;
    cost.micros += micros;
    tally.set(label, cost);
  }
  return { logged, inner };
}

/** The replies of a pipeline, in order; throws its first error. */
function repliesOf(results: [Error | null, unknown][] | null): unknown[] {
  if (results === null) throw new Error("a Redis pipeline of the probe was not run");
  return results.map(([error, reply]) => {
    if (error !== null) throw error;
    return reply;
  });
}

interface Watched {
  readonly master: RedisMaster;
  readonly client: Redis;
  stats: Map<string, CommandCost>;
  cpu: number;
}

/**
 * Connects to every master (as plain clients: each probe talks to its own
 * master, not through the cluster) and keeps its slowlog off between
 * windows.
 */
export async function createRedisProbe(masters: readonly RedisMaster[]): Promise<RedisProbe> {
  const watched: Watched[] = [];
  for (const master of masters) {
    const client = new Redis({ host: "127.0.0.1", port: master.port, connectionName: probeName, lazyConnect: true, maxRetriesPerRequest: 1 });
    await client.connect();
    await client.config("SET", "slowlog-max-len", String(slowlogMaxLen), "slowlog-log-slower-than", "-1");
    watched.push({ master, client, stats: new Map(), cpu: 0 });
  }
  let started = 0;
  let traced = false;
  return {
    async begin(trace) {
      traced = trace;
      await Promise.all(
        watched.map(async (w) => {
          const replies = repliesOf(
            await w.client
              .pipeline()
              .config("SET", "slowlog-log-slower-than", trace ? "0" : "-1")
              .slowlog("RESET")
              .info("commandstats")
              .exec(),
          );
          w.stats = parseCommandStats(String(replies[2]));
        }),
      );
      for (const w of watched) w.cpu = processCpuSeconds(w.master.pid);
      started = performance.now();
    },
    async end() {
      const seconds = (performance.now() - started) / 1000;
      const cpu = watched.map((w) => processCpuSeconds(w.master.pid) - w.cpu);
      const windows = await Promise.all(
        watched.map(async (w, i): Promise<MasterWindow> => {
          const replies = repliesOf(
            await w.client.pipeline().config("SET", "slowlog-log-slower-than", "-1").info("commandstats").call("SLOWLOG", "GET", "-1").slowlog("RESET").exec(),
          );
          const { logged, inner } = traced ? tallySlowlog(replies[2], w.master.port) : { logged: new Map(), inner: new Map() };
          return { port: w.master.port, cpuSeconds: cpu[i]!, logged, inner, stats: statsDelta(w.stats, parseCommandStats(String(replies[1]))) };
        }),
      );
      return { seconds, traced, masters: windows };
    },
    close() {
      for (const w of watched) w.client.disconnect();
    },
  };
}
