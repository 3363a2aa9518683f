import { readFileSync } from "node:fs";

/** The descriptors kept back from the gRPC port for everything else the process opens: web sockets, Redis, files. */
const reserve = 256;

/**
 * The default cap on connections: what the process's file-descriptor limit
 * leaves after a reserve for everything else it opens, so that running out of
 * descriptors never locks everyone out. The limit is the soft "Max open
 * files" of limits, the text of /proc/self/limits; where there is none (not
 * Linux: no such file), the common default of 1024.
 */
export function defaultMaxConnections(limits: string = readProcLimits()): number {
  const line = limits.split("\n").find((l) => l.startsWith("Max open files"));
  const soft = Number(line?.split(/\s{2,}/)[1]);
  const limit = Number.isSafeInteger(soft) && soft > 0 ? soft : 1024;
  return Math.max(16, Math.min(100_000, limit - reserve));
}

/** How the default is worked out, for --help and the documentation, whose readers' machines differ. */
export const defaultMaxConnectionsText = `the file-descriptor limit less ${reserve}`;

function readProcLimits(): string {
  try {
    return readFileSync("/proc/self/limits", "utf8");
  } catch {
    return "";
  }
}
