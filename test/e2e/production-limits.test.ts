import assert from "node:assert/strict";
import * as http from "node:http";
import * as http2 from "node:http2";
import { after, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createChatClient } from "../../client/chat-client.js";
import { openStream } from "../helpers/chat-stream.js";
import { eventually } from "../helpers/eventually.js";
import { redisTopologies } from "../helpers/redis-topology.js";
import { startTestCluster, type TestCluster } from "../helpers/test-cluster.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

/** One HTTP/1.1 request to the web port, with the headers given. */
function webRequest(port: number, method: string, path: string, headers: Record<string, string>, body?: string) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, headers, setHost: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        text += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const codeOf = (error: unknown) => ConnectError.from(error).code;

describe("limits per user and per address", () => {
  const servers: TestServer[] = [];
  const start = async (overrides: Parameters<typeof startTestServer>[0]) => {
    const t = await startTestServer(overrides);
    servers.push(t);
    return t;
  };
  after(() => Promise.all(servers.map((t) => t.stop())));

  it("holds each user to --send-rate and --send-burst, saying when to retry, and leaves the others alone", async () => {
    const t = await start({ sendRate: 5, sendBurst: 5 });
    const flooder = createChatClient(t.baseUrl, "flooder");
    const calm = createChatClient(t.baseUrl, "calm");
    const flooderStream = await openStream(flooder, "flooder");
    const calmStream = await openStream(calm, "calm");
    const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => flooder.sendMessage({ channel: "calm", text: `flood ${i}` })));
    const sent = results.filter((r) => r.status === "fulfilled").length;
    const refusals = results.flatMap((r) => (r.status === "rejected" ? [ConnectError.from(r.reason)] : []));
    // 5 a second plus a burst of 5: about 10 of 30 sent at once get through.
    assert.ok(sent >= 5 && sent <= 12, `${sent} of 30 sent`);
    assert.ok(refusals.length >= 18);
    for (const err of refusals) {
      assert.equal(err.code, Code.ResourceExhausted);
      assert.match(err.rawMessage, /"flooder" is sending more than 5 messages a second .*: retry in \d+\.\d+ s/);
    }
    await calm.sendMessage({ channel: "flooder", text: "still fine" });
    assert.equal((await flooderStream.waitForMessages(1))[0]?.text, "still fine");
    flooderStream.cancel();
    calmStream.cancel();
  });

  it("holds each address to --connect-rate-per-ip Connect attempts a second", async () => {
    const t = await start({ connectRatePerIp: 3 });
    const outcomes: (Code | "ok")[] = [];
    const streams = [];
    for (let i = 0; i < 5; i++) {
      try {
        streams.push(await openStream(createChatClient(t.baseUrl, `rush${i}`), `rush${i}`));
        outcomes.push("ok");
      } catch (error) {
        outcomes.push(codeOf(error));
        assert.match(ConnectError.from(error).rawMessage, /too many Connect attempts from this address \(at most 3 a second\): retry in/);
      }
    }
    assert.deepEqual(outcomes, ["ok", "ok", "ok", Code.ResourceExhausted, Code.ResourceExhausted]);
    for (const s of streams) s.cancel();
  });

  it("holds each address to --max-connections-per-ip connections, refusing the rest at once", async () => {
    const t = await start({ maxConnectionsPerIp: 2 });
    const sessions = [0, 1, 2].map(() => http2.connect(`http://127.0.0.1:${t.port}`));
    const closed = sessions.map((s) => new Promise<void>((resolve) => s.once("close", () => resolve())));
    for (const s of sessions) s.on("error", () => {});
    await closed[2];
    assert.equal(sessions[0]!.closed, false);
    assert.equal(sessions[1]!.closed, false);
    await eventually(() => t.logs.some((l) => l.msg === "connection limit per address reached: refusing its new connections"), "no log line");
    // The two it holds still work: a request on the first is answered.
    const status = await new Promise<unknown>((resolve) =>
      sessions[0]!
        .request({ ":path": "/nope" })
        .on("response", (h) => resolve(h[":status"]))
        .end(),
    );
    assert.equal(status, 404);
    for (const s of sessions) s.destroy();
  });
});

describe("the web port and browsers from elsewhere", () => {
  let t: TestServer;
  let listed: TestServer;
  after(async () => {
    await t?.stop();
    await listed?.stop();
  });

  it("answers only the hosts it serves, which stops DNS rebinding", async () => {
    t = await startTestServer();
    const port = Number(new URL(t.webUrl).port);
    assert.equal((await webRequest(port, "GET", "/", { host: `127.0.0.1:${port}` })).status, 200);
    assert.equal((await webRequest(port, "GET", "/", { host: `localhost:${port}` })).status, 200);
    const rebound = await webRequest(port, "GET", "/", { host: `attacker.example:${port}` });
    assert.equal(rebound.status, 421);
    assert.match(rebound.body, /does not answer to the host "attacker.example:\d+": .*--web-host/);
    // Only the page's own files: no directory listing, no way out of web/.
    for (const path of ["/../package.json", "/%2e%2e/package.json", "/web/", "/index.html/..", "/server/main.ts"]) {
      assert.equal((await webRequest(port, "GET", path, { host: `127.0.0.1:${port}` })).status, 404, path);
    }
    listed = await startTestServer({ webHost: ["chat.example"] });
    const listedPort = Number(new URL(listed.webUrl).port);
    assert.equal((await webRequest(listedPort, "GET", "/", { host: `chat.example:${listedPort}` })).status, 200);
    assert.equal((await webRequest(listedPort, "GET", "/", { host: `attacker.example:${listedPort}` })).status, 421);
  });

  it("gives pages of other origins no CORS headers unless --web-origin lists them", async () => {
    const port = Number(new URL(t.webUrl).port);
    const preflight = {
      host: `127.0.0.1:${port}`,
      origin: "https://app.example",
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type, authorization",
    };
    const path = "/chat.v1.ChatService/ListChannels";
    // Today's behaviour, the default: nothing for other origins.
    const refused = await webRequest(port, "OPTIONS", path, preflight);
    assert.equal(refused.status, 403);
    assert.equal(refused.headers["access-control-allow-origin"], undefined);
    const simple = await webRequest(port, "POST", path, { host: `127.0.0.1:${port}`, origin: "https://app.example", "content-type": "application/json" }, "{}");
    assert.equal(simple.headers["access-control-allow-origin"], undefined);

    const allowing = await startTestServer({ webOrigin: ["https://app.example"] });
    try {
      const allowPort = Number(new URL(allowing.webUrl).port);
      const ok = await webRequest(allowPort, "OPTIONS", path, { ...preflight, host: `127.0.0.1:${allowPort}` });
      assert.equal(ok.status, 204);
      assert.equal(ok.headers["access-control-allow-origin"], "https://app.example");
      assert.match(String(ok.headers["access-control-allow-headers"]), /authorization/);
      const call = await webRequest(
        allowPort,
        "POST",
        path,
        { host: `127.0.0.1:${allowPort}`, origin: "https://app.example", "content-type": "application/json" },
        "{}",
      );
      assert.equal(call.headers["access-control-allow-origin"], "https://app.example");
      assert.match(String(call.headers["access-control-expose-headers"]), /grpc-status/i);
      const other = await webRequest(allowPort, "OPTIONS", path, { ...preflight, host: `127.0.0.1:${allowPort}`, origin: "https://evil.example" });
      assert.equal(other.headers["access-control-allow-origin"], undefined);
    } finally {
      await allowing.stop();
    }
  });
});

describe("limits shared by the nodes of a cluster", () => {
  for (const kind of redisTopologies) {
    // A time limit per topology, so that one run does not eat into the other's.
    describe(kind, { timeout: 60_000 }, () => {
      let cluster: TestCluster | undefined;
      after(() => cluster?.stop());

      it("counts a user's sends on every node against one allowance", async () => {
        cluster = await startTestCluster(kind, 2, { sendRate: 4, sendBurst: 4 });
        const { nodes } = cluster;
        const stream = await openStream(createChatClient(nodes[0]!.baseUrl, "spreader"), "spreader");
        const viaBoth = Array.from({ length: 24 }, (_, i) =>
          createChatClient(nodes[i % 2]!.baseUrl, "spreader").sendMessage({ channel: "spreader", text: `m${i}` }),
        );
        const results = await Promise.allSettled(viaBoth);
        const sent = results.filter((r) => r.status === "fulfilled").length;
        // One allowance of 4 + 4 across both nodes, not one per node (16).
        assert.ok(sent >= 4 && sent <= 10, `${sent} of 24 sent across two nodes`);
        for (const r of results) if (r.status === "rejected") assert.equal(codeOf(r.reason), Code.ResourceExhausted);
        stream.cancel();
      });
    });
  }
});
