import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { GeneratorReply, GeneratorRequest, ScenarioOutcome } from "./protocol.js";

const generatorEntry = fileURLToPath(new URL("./load-generator.ts", import.meta.url));

/** A mark the generator asked for: the moment to sample the servers. */
export type Mark = Extract<GeneratorReply, { type: "mark" }>;

/** The load generator (load-generator.ts) in a process of its own, for one scenario after another. */
export interface GeneratorProcess {
  readonly pid: number;
  /**
   * Runs one request. At each mark the generator waits while sample() runs;
   * resolves with the outcome and the samples by mark name.
   */
  run<S>(request: GeneratorRequest, sample: (mark: Mark) => S | Promise<S>): Promise<{ outcome: ScenarioOutcome; samples: Map<string, S> }>;
  kill(): void;
}

/** Forks the load generator; label names the server it loads, in errors. */
export function startGeneratorProcess(label: string): GeneratorProcess {
  const child = fork(generatorEntry, [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return {
    // A forked child has its pid at once.
    pid: child.pid!,
    run(request, sample) {
      const samples = new Map<string, Awaited<ReturnType<typeof sample>>>();
      return new Promise((resolve, reject) => {
        const onMessage = async (reply: GeneratorReply) => {
          if (reply.type === "mark") {
            samples.set(reply.name, await sample(reply));
            child.send({ type: "marked", id: reply.id });
            return;
          }
          child.off("message", onMessage);
          child.off("exit", onExit);
          if (reply.type === "done") resolve({ outcome: reply.outcome, samples });
          else reject(new Error(`${label}: ${reply.error}`));
        };
        const onExit = (code: number | null) => reject(new Error(`${label}: the load generator exited with ${code}`));
        child.on("message", onMessage);
        child.once("exit", onExit);
        child.send(request);
      });
    },
    kill() {
      child.kill("SIGKILL");
    },
  };
}
