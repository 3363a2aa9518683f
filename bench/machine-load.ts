import { createHash } from "node:crypto";
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

const calibrationData = Buffer.alloc(1 << 16, 1);

/**
 * How much CPU time a fixed piece of work (hashing 2.5 MiB) takes now, in
 * milliseconds: the median of three tries. This machine is a virtual one
 * whose host may share its cores with others; that makes every instruction
 * slower alike, and /proc/stat inside the machine does not show it. CPU
 * time, not wall time, so that the benchmark's own processes, which share
 * the cores, do not count: only what makes the same work cost more CPU.
 */
export function calibrationMs(): number {
  const times: number[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const started = process.cpuUsage();
    for (let i = 0; i < 40; i++) createHash("sha256").update(calibrationData).digest();
    const used = process.cpuUsage(started);
    times.push((used.user + used.system) / 1000);
  }
  return times.sort((a, b) => a - b)[1]!;
}
