import { readFileSync } from "node:fs";

const clockTicks = 100;

/**
 * CPU seconds the whole machine has spent busy so far, all cores together,
 * from /proc/stat: user, nice, system, irq, softirq and steal time. The
 * benchmark subtracts what its own processes used over a run to learn how
 * much other processes disturbed it.
 */
export function machineBusySeconds(): number {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number);
  return (user + nice + system + irq + softirq + steal) / clockTicks;
}
