/**
 * Prints the top entries of a V8 .cpuprofile by self time, with the share of
 * samples each takes: `node --import tsx bench/top-of-profile.ts FILE [N]`.
 */
import { readFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
const [file, count = "25"] = process.argv.slice(2);
const profile = JSON.parse(readFileSync(file!, "utf8")) as { nodes: Node[] };
const self = new Map<string, number>();
let total = 0;
for (const node of profile.nodes) {
  const hits = node.hitCount ?? 0;
  total += hits;
  const f = node.callFrame;
  const where = f.url.replace(/^.*node_modules\//, "").replace(/^file:\/\/.*\/main\//, "");
  const key = `${f.functionName || "(anonymous)"} ${where}:${f.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + hits);
}
const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(count));
for (const [key, hits] of top) console.log(`${((hits / total) * 100).toFixed(1).padStart(5)}%  ${key}`);
