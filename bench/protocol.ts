/** What the orchestrator and the load generator say to each other over IPC. */

/** Send-to-receive latency percentiles, in milliseconds. */
export interface Latency {
  p50: number;
  p99: number;
  max: number;
}

/** A scenario's parameters. */
export type Scenario =
  | { kind: "fanout"; k: number; n: number; inFlight: number; textSize: number; stalled: boolean; rate?: number }
  | { kind: "direct"; pairs: number; perSender: number; textSize: number }
  | { kind: "connections"; count: number; messages: number; textSize: number };

/** What the generator measured. */
export interface ScenarioOutcome {
  /** Deliveries that arrived, at most the expected count per user. */
  deliveries: number;
  expected: number;
  /** Deliveries beyond the expected count: must be 0. */
  duplicates: number;
  seconds: number;
  /** Deliveries (or messages) per second over the measured phase. */
  rate: number;
  latency: Latency;
  generatorCpuSeconds: number;
  notes: Record<string, number>;
}

/** Runs a scenario against the server at urls[0], or with users spread over several nodes. */
export type GeneratorRequest = { type: "run"; urls: string[]; scenario: Scenario; access?: Access };

/** How the load reaches a secured server: the CA to trust for https:// URLs, and the secret to sign tokens with. */
export interface Access {
  ca?: string;
  jwtSecret?: string;
  /** Sign a new token for every call (the server's cache of verified tokens never helps), not one per user. */
  freshTokens?: boolean;
}
export type GeneratorReply = { type: "mark"; id: number; name: string } | { type: "done"; outcome: ScenarioOutcome } | { type: "failed"; error: string };
