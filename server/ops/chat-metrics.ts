import type { Code } from "@connectrpc/connect";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { ChatBackend } from "../core/chat-backend.js";
import { grpcCodeName } from "../rpc/code-name.js";

/**
 * The server's own figures, in Prometheus form. Everything is counted in
 * batches or per call, never per event delivered, so the cost stays off the
 * fan-out path.
 */
export interface ChatMetrics {
  readonly registry: Registry;
  /** A response left for a stream with this many events; depth is what was queued. */
  responseSent(events: number, queueDepth: number): void;
  /** A stream was cut off for falling behind. */
  slowConsumerCut(): void;
  /** A call ended with this status after this many seconds. */
  callEnded(method: string, code: Code | "OK", seconds: number): void;
  /** A call was served on the lean gRPC path rather than through Connect's handler. */
  leanPathCall(): void;
}

/** Gauges of the history kept in this process, read when scraped; none when it keeps none. */
function registerHistoryGauges(registry: Registry, backend: ChatBackend): void {
  const history = backend.localHistory;
  if (history === undefined) return;
  new Gauge({
    name: "chat_history_messages",
    help: "Messages kept in this process's history, across all channels.",
    registers: [registry],
    collect() {
      this.set(history.size);
    },
  });
  new Gauge({
    name: "chat_history_bytes",
    help: "Bytes of history kept in this process, as counted against --history-total-bytes (and, once, in --max-queued-bytes).",
    registers: [registry],
    collect() {
      this.set(history.bytes);
    },
  });
}

/**
 * Creates the metrics of one server, reading users and groups (and the
 * history kept in this process) from the backend when scraped.
 */
// Longer than 60 lines: a list of metric declarations, one per metric.
export function createChatMetrics(backend: ChatBackend): ChatMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: "chat_sessions_open",
    help: "Users with a live Connect stream.",
    registers: [registry],
    async collect() {
      this.set((await backend.stats()).users);
    },
  });
  new Gauge({
    name: "chat_groups",
    help: "Groups that exist.",
    registers: [registry],
    async collect() {
      this.set((await backend.stats()).groups);
    },
  });
  registerHistoryGauges(registry, backend);
  const delivered = new Counter({ name: "chat_events_delivered_total", help: "Events written to Connect streams.", registers: [registry] });
  const perResponse = new Histogram({
    name: "chat_events_per_response",
    help: "Events coalesced into one ConnectResponse.",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers: [registry],
  });
  const depth = new Histogram({
    name: "chat_queue_depth",
    help: "Events waiting in a stream's queue when its reader took them.",
    buckets: [1, 4, 16, 64, 256, 1024, 4096, 16384],
    registers: [registry],
  });
  const slow = new Counter({ name: "chat_slow_consumers_cut_total", help: "Streams ended because their client fell too far behind.", registers: [registry] });
  const lean = new Counter({
    name: "grpc_server_lean_path_calls_total",
    help: "gRPC calls served on the lean path (the rest go through Connect's handler).",
    registers: [registry],
  });
  const callEnded = createCallRecorder(registry);
  return {
    registry,
    leanPathCall() {
      lean.inc();
    },
    responseSent(events, queueDepth) {
      delivered.inc(events);
      perResponse.observe(events);
      depth.observe(queueDepth);
    },
    slowConsumerCut() {
      slow.inc();
    },
    callEnded,
  };
}

/** Counts and times the calls that end, by method and status code. */
function createCallRecorder(registry: Registry): ChatMetrics["callEnded"] {
  const handled = new Counter({
    name: "grpc_server_handled_total",
    help: "ChatService calls completed, by method and status code.",
    labelNames: ["method", "code"],
    registers: [registry],
  });
  const latency = new Histogram({
    name: "grpc_server_handling_seconds",
    help: "ChatService call durations (for Connect, the stream's lifetime), by method.",
    labelNames: ["method"],
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 10, 60, 600, 3600],
    registers: [registry],
  });
  // Every call ends here: the labelled children are looked up once per
  // method and code, rather than prom-client hashing the labels per call.
  // Bounded: the methods are the service's, and the codes gRPC's.
  const children = new Map<string, { handled: Counter.Internal; latency: Histogram.Internal<"method"> }>();
  return (method, code, seconds) => {
    const key = `${method} ${code}`;
    let child = children.get(key);
    if (child === undefined) {
      child = { handled: handled.labels({ method, code: code === "OK" ? "OK" : grpcCodeName(code) }), latency: latency.labels({ method }) };
      children.set(key, child);
    }
    child.handled.inc();
    child.latency.observe(seconds);
  };
}
