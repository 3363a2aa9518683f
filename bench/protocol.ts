/** What the orchestrator and the load generator say to each other over IPC. */

/** Send-to-receive latency percentiles, in milliseconds. */
export interface Latency {
  p50: number;
  p99: number;
  max: number;
}

/**
 * A scenario's parameters. A fan-out or direct scenario sends n (or
 * perSender) messages, or as many as it can for seconds after its set-up,
 * whichever ends first.
 */
export type Scenario =
  | { kind: "fanout"; k: number; n?: number; seconds?: number; inFlight: number; textSize: number; stalled: boolean; rate?: number }
  | { kind: "direct"; pairs: number; perSender?: number; seconds?: number; textSize: number }
  | { kind: "connections"; count: number; messages: number; textSize: number }
  /** Opens count Connect streams, holds them idle, then closes them: memory per stream and CPU per Connect. */
  | { kind: "streams"; count: number };

/** What the generator measured. */
export interface ScenarioOutcome {
  /** Messages that arrived, duplicates included. */
  deliveries: number;
  /** Messages sent, times the recipients of each. */
  expected: number;
  /** Sequence numbers sent to a recipient that never reached it: must be 0. */
  lost: number;
  /** Extra arrivals of a sequence number, and arrivals of numbers never sent: must be 0. */
  duplicated: number;
  /** Connecting the users and joining them to their group, before the first message. */
  setupSeconds: number;
  seconds: number;
  /** Deliveries (or messages) per second over the measured phase. */
  rate: number;
  latency: Latency;
  generatorCpuSeconds: number;
  notes: Record<string, number>;
}

/**
 * Runs a scenario against the server at urls[0], or with users spread over
 * several nodes. Its usernames and group names start with prefix, so that
 * scenarios run one after another on one server never meet each other's
 * sessions still closing.
 */
export type GeneratorRequest = { type: "run"; urls: string[]; scenario: Scenario; access?: Access; prefix?: string };

/** How the load reaches a secured server: the CA to trust for https:// URLs, and the secret to sign tokens with. */
export interface Access {
  ca?: string;
  jwtSecret?: string;
  /** Sign a new token for every call (the server's cache of verified tokens never helps), not one per user. */
  freshTokens?: boolean;
}
/**
 * A mark asks the orchestrator to sample the servers now ("setup" before the
 * users connect, "start" before the first message, "end" after the last
 * delivery, "idle-before"/"idle-after"/"closed" around idle streams); with
 * settle, only once the servers' CPU has gone quiet (after streams close).
 */
export type GeneratorReply =
  | { type: "mark"; id: number; name: string; settle?: boolean }
  | { type: "done"; outcome: ScenarioOutcome }
  | { type: "failed"; error: string };
