import { type DestinationStream, type LogFn, type Logger, pino } from "pino";

/** The log levels the server accepts, from the most to the least verbose. */
export const logLevels = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;

/** One of {@link logLevels}. */
export type LogLevel = (typeof logLevels)[number];

/** How the log holds up under a flood. */
export interface LogOptions {
  /**
   * Lines of one kind (the same message at the same level) written per
   * second; the rest of that second's are counted and summarised in one
   * line. Default 100.
   */
  burstPerSecond?: number;
}

/**
 * Creates the server's structured logger: one JSON object per line, with an
 * ISO timestamp, written asynchronously (to stdout by default, through
 * sonic-boom's buffer), so that a flood of failing calls never waits on the
 * terminal or the pipe. Call {@link flushLog} before the process exits.
 *
 * A flood of one kind of line (100,000 bad calls, a rapid-reset storm) is
 * summarised: past burstPerSecond lines of the same message and level in
 * one second, the rest are only counted, and one line per second says how
 * many of each were left out ("log lines suppressed").
 */
export function createLogger(level: LogLevel, destination?: DestinationStream, options: LogOptions = {}): Logger {
  const burst = options.burstPerSecond ?? 100;
  const seen = new Map<string, number>();
  let summaryTimer: NodeJS.Timeout | undefined;
  let logger: Logger;
  const summarise = () => {
    const suppressed: Record<string, number> = {};
    let any = false;
    for (const [kind, count] of seen) {
      if (count > burst) {
        suppressed[kind] = count - burst;
        any = true;
      }
    }
    seen.clear();
    summaryTimer = undefined;
    if (any) logger.warn({ suppressed, burstPerSecond: burst }, "log lines suppressed");
  };
  logger = pino(
    {
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        logMethod(args: Parameters<LogFn>, method: LogFn, levelValue: number) {
          const message = args.find((arg): arg is string => typeof arg === "string") ?? "";
          const kind = `${pino.levels.labels[levelValue] ?? levelValue}: ${message}`;
          const count = (seen.get(kind) ?? 0) + 1;
          seen.set(kind, count);
          if (summaryTimer === undefined) {
            summaryTimer = setTimeout(summarise, 1000);
            summaryTimer.unref();
          }
          if (count <= burst || message === "log lines suppressed") {
            method.apply(this, args);
          }
        },
      },
    },
    // At most 16 MiB waiting for a stdout that does not keep up: past it,
    // lines are dropped rather than held.
    destination ?? pino.destination({ fd: 1, sync: false, maxLength: 16 * 1024 * 1024 }),
  );
  return logger;
}

/** Writes out what the logger still buffers; resolves when it is written. */
export function flushLog(logger: Logger): Promise<void> {
  return new Promise((resolve) => logger.flush(() => resolve()));
}
