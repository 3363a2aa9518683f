import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Cluster, Redis } from "ioredis";
import { eventually } from "../helpers/eventually.js";
import { startRedisCluster, type TestRedisCluster } from "../helpers/redis-cluster.js";
import { startRedisTopology } from "../helpers/redis-topology.js";

/** An ioredis Cluster client on the test cluster's seeds, its errors kept rather than thrown. */
function connect(cluster: TestRedisCluster, options: { shardedSubscribers?: boolean } = {}): { client: Cluster; errors: Error[] } {
  const nodes = cluster.seedList.map((address) => ({ host: "127.0.0.1", port: Number(address.split(":")[1]) }));
  const client = new Cluster(nodes, options);
  const errors: Error[] = [];
  // The sharded subscriber emits "error" each time it fails to reach a dead master; unheard, that would throw.
  client.on("error", (error: Error) => errors.push(error));
  return { client, errors };
}

/**
 * The test harness for Redis Cluster on its own, before any chat backend
 * uses it: the cluster starts, clients find its three masters, sharded
 * pub/sub works through ioredis, and a master killed and restarted comes
 * back with its slots.
 */
describe("the local Redis Cluster of the tests", { timeout: 60_000 }, () => {
  let cluster: TestRedisCluster;
  let startMs = 0;
  const clients: Cluster[] = [];
  before(async () => {
    const started = Date.now();
    cluster = await startRedisCluster();
    startMs = Date.now() - started;
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await cluster.kill();
  });

  it("has three masters that share the slots, each owning the keys of its own hash tags", async (t) => {
    // Test suites start it a few times: keep an eye on what it costs.
    t.diagnostic(`started a 3-master Redis Cluster in ${startMs} ms`);
    assert.equal(new Set(cluster.masters.map((m) => m.port)).size, 3);
    assert.equal(cluster.seeds, cluster.masters.map((m) => `127.0.0.1:${m.port}`).join(","));
    // One hash tag per master, found by asking the cluster where each tag's key lives.
    const tagOf = new Map<number, string>();
    for (let i = 0; tagOf.size < 3; i++) {
      const owner = await cluster.masterOf(`{tag${i}}:key`);
      if (!tagOf.has(owner.port)) tagOf.set(owner.port, `tag${i}`);
    }
    const { client } = connect(cluster);
    clients.push(client);
    for (const tag of tagOf.values()) await client.set(`{${tag}}:key`, tag);
    // Asked directly, each master holds exactly the key of its tag.
    for (const master of cluster.masters) {
      const direct = new Redis(master.url);
      assert.deepEqual(await direct.keys("*"), [`{${tagOf.get(master.port)}}:key`]);
      direct.disconnect();
    }
    await cluster.flushall();
    for (const tag of tagOf.values()) assert.equal(await client.get(`{${tag}}:key`), null);
  });

  it("carries SPUBLISH to an SSUBSCRIBEr, and resubscribes by itself once the channel's master, killed, is back", async (t) => {
    const channel = "{team}:deliver";
    const master = await cluster.masterOf(channel);
    const { client: subscriber, errors } = connect(cluster, { shardedSubscribers: true });
    const { client: publisher } = connect(cluster);
    clients.push(subscriber, publisher);
    const received: string[] = [];
    subscriber.on("smessage", (from: string, message: string) => {
      if (from === channel) received.push(message);
    });
    // A sharded subscriber's connection that ends says so with "-node" and the master's "host:port".
    const lost: string[] = [];
    subscriber.on("-node", (_redis: Redis, nodeKey?: string) => {
      if (nodeKey !== undefined) lost.push(nodeKey);
    });
    assert.equal(await subscriber.ssubscribe(channel), 1);
    assert.equal(await publisher.spublish(channel, "before"), 1);
    await eventually(() => received.includes("before"), "the shard message never arrived");

    await master.kill();
    await eventually(
      () => lost.includes(master.address),
      () => `no -node for ${master.address}: ${JSON.stringify(lost)}`,
    );
    await assert.rejects(publisher.spublish(channel, "while dead"));
    // The other masters serve their slots meanwhile (the node timeout has not marked this one failed).
    for (const other of cluster.masters.filter((m) => m !== master)) {
      const key = await keyOn((k) => cluster.masterOf(k), other.port);
      await publisher.set(key, "still served");
    }
    const restarting = Date.now();
    await master.restart();
    t.diagnostic(`a killed master was back, cluster_state:ok everywhere, ${Date.now() - restarting} ms after its restart`);
    assert.ok(errors.length > 0, "the subscriber never said it could not reach the dead master");
    // No SSUBSCRIBE by hand: the subscriber group subscribes again on its own.
    let n = 0;
    await eventually(async () => {
      await publisher.spublish(channel, `after ${++n}`);
      return received.some((m) => m.startsWith("after"));
    }, "no message after the master came back");
    assert.ok(!received.includes("while dead"));
  });

  it("brings a killed master back into a cluster that is ok, with its slots and without its data", async () => {
    const master = cluster.masters[1];
    const key = await keyOn((k) => cluster.masterOf(k), master.port);
    const { client } = connect(cluster);
    clients.push(client);
    await client.set(key, "lost with the master");
    await master.kill();
    await master.restart();
    await cluster.waitUntilOk(1000);
    assert.equal((await cluster.masterOf(key)).port, master.port);
    assert.equal(await client.get(key), null);
  });
});

describe("a Redis Cluster whose masters all die", { timeout: 60_000 }, () => {
  it("comes back ok when they restart together, each with its slots", async () => {
    const cluster = await startRedisCluster();
    try {
      const owners = await Promise.all(["{a}", "{b}", "{c}", "{d}"].map(async (k) => (await cluster.masterOf(k)).port));
      await Promise.all(cluster.masters.map((m) => m.kill()));
      // Together: each waits for cluster_state:ok everywhere, which needs the others.
      await Promise.all(cluster.masters.map((m) => m.restart()));
      assert.deepEqual(await Promise.all(["{a}", "{b}", "{c}", "{d}"].map(async (k) => (await cluster.masterOf(k)).port)), owners);
    } finally {
      await cluster.kill();
    }
  });
});

describe("a link to a Redis Cluster through TCP proxies", { timeout: 60_000 }, () => {
  it("reaches every master through its proxy, and delays what it carries", async () => {
    const topology = await startRedisTopology("redis-cluster");
    const link = await topology.startLink();
    const through = link.backendOptions.target;
    assert.ok("clusterNodes" in through, "a cluster's link gives cluster seeds");
    const client = new Cluster(
      through.clusterNodes.map((a) => ({ host: "127.0.0.1", port: Number(a.split(":")[1]) })),
      { natMap: through.natMap },
    );
    try {
      const direct = topology.servers.map((s) => String(s.port));
      for (const address of through.clusterNodes) assert.ok(!direct.includes(address.split(":")[1]!), `${address} is no proxy`);
      const keys = await Promise.all(topology.servers.map((s) => keyOn(topology.holderOf, s.port)));
      for (const key of keys) await client.set(key, "via the link");
      assert.equal((await topology.keys("*")).length, 3);
      // Every connection the client holds goes through a proxy that delays.
      link.setDelay(200);
      const started = Date.now();
      assert.deepEqual(await Promise.all(keys.map((k) => client.get(k))), ["via the link", "via the link", "via the link"]);
      assert.ok(Date.now() - started >= 400, `took ${Date.now() - started} ms through a link delaying 200 ms each way`);
    } finally {
      client.disconnect();
      await link.close();
      await topology.kill();
    }
  });
});

/** A key whose slot the master on this port owns, as holderOf says. */
async function keyOn(holderOf: (key: string) => Promise<{ port: number }>, port: number): Promise<string> {
  for (let i = 0; ; i++) {
    const key = `{k${i}}`;
    if ((await holderOf(key)).port === port) return key;
  }
}
