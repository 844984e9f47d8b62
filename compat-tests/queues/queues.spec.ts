/**
 * The distributed queue against a real three-node cluster (real processes, real fsync, ioredis
 * clients spread over every node): throughput with per-producer FIFO, redelivery after a
 * consumer dies, kill -9 of the leader and of every node mid-run, dead-lettering and replay,
 * idempotent push, blocking pops. Every assertion is on recorded histories and the final state.
 */
import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { waitFor } from '../harness.js';
import { Cluster, client, skipUnlessClusterSupported } from '../cluster/cluster-harness.js';
import { QueueLoad } from './queue-load.js';

type Message = [number, string, number, string];

async function qinfo(redis: Redis, queue: string): Promise<Map<string, unknown>> {
  const flat = (await redis.call('QINFO', queue)) as unknown[];
  const m = new Map<string, unknown>();
  for (let i = 0; i < flat.length; i += 2) m.set(String(flat[i]), flat[i + 1]);
  return m;
}

/** Final checks shared by the crash tests, run once the cluster is whole again. */
async function verifyCrashRun(c: Cluster, load: QueueLoad, queue: string): Promise<void> {
  expect(load.violations, 'violations').to.deep.equal([]);
  const leader = await c.waitForLeader(15_000);
  await c.waitForApplied(await leader.raftNumber('raft_commit_index'), c.nodes);
  const delivered = new Set(load.deliveries.map((d) => d.id));
  // No acknowledged push is lost: each was delivered, and the queue is empty (all acked).
  const lost = load.pushes.filter((p) => !delivered.has(p.id));
  expect(lost.slice(0, 5), `${lost.length} acknowledged pushes never delivered`).to.deep.equal([]);
  // Duplicates only as redeliveries: no delivery (id, count) was handed out twice.
  const seen = new Set<string>();
  for (const d of load.deliveries) {
    const k = `${d.id}-${d.delivery}`;
    expect(seen.has(k), `delivery ${k} handed out twice`).to.equal(false);
    seen.add(k);
  }
  for (const node of c.nodes) {
    const r = client(node.port);
    try {
      expect(await r.call('QLEN', queue), `QLEN on ${node.id}`).to.equal(0);
      const info = await qinfo(r, queue);
      // Every message that entered the queue left it through exactly one ack.
      expect(info.get('acked'), `acked on ${node.id}`).to.equal(info.get('pushed'));
      expect(Number(info.get('pushed'))).to.be.at.least(load.pushes.length);
    } finally {
      r.disconnect();
    }
  }
  const redeliveries = load.deliveries.filter((d) => d.delivery > 1).length;
  console.log(
    `      ${load.pushes.length} pushes acknowledged, ${load.deliveries.length} deliveries (${redeliveries} redeliveries), ${load.errors.length} client errors`,
  );
}

describe('cluster: queues', function () {
  this.timeout(120_000);
  let cluster: Cluster | undefined;
  const clients: Redis[] = [];
  const open = (port: number, timeoutMs = 5_000): Redis => {
    const r = client(port, timeoutMs);
    clients.push(r);
    return r;
  };

  before(async function () {
    await skipUnlessClusterSupported(this);
  });

  afterEach(async () => {
    for (const r of clients.splice(0)) r.disconnect();
    await cluster?.destroy();
    cluster = undefined;
  });

  it('4 producers and 4 consumers over 3 nodes move 100,000 messages: all delivered, each acked once, FIFO per producer', async () => {
    const c = (cluster = await Cluster.start({ size: 3, tickMs: 50, electionTicks: 10 }));
    await c.waitForLeader();
    await c.waitUntilServing();
    const started = Date.now();
    const load = new QueueLoad({
      queue: 'bulk',
      ports: () => c.nodes.map((n) => n.port),
      producers: 4,
      consumers: 4,
      batchesPerProducer: 250,
      batchSize: 100,
      popCount: 200,
      visibilityMs: 60_000,
      maxDurationMs: 90_000,
    });
    const probe = open(c.nodes[0]!.port);
    await load.finish(async () => load.allProduced && (await probe.call('QLEN', 'bulk')) === 0);
    const ms = Date.now() - started;
    console.log(`      100,000 messages produced, consumed and acked in ${ms} ms`);
    expect(load.errors, 'client errors').to.deep.equal([]);
    expect(load.violations).to.deep.equal([]);
    expect(load.pushes.length).to.equal(100_000);
    expect(load.deliveries.length, 'deliveries (no redelivery expected)').to.equal(100_000);
    expect(load.ackReplies, 'messages removed by QACK').to.equal(100_000);
    expect(new Set(load.deliveries.map((d) => d.id)).size).to.equal(100_000);
    const idOf = new Map(load.pushes.map((p) => [`p${p.producer}:${p.seq}`, p.id]));
    for (const d of load.deliveries) expect(idOf.get(d.payload), d.payload).to.equal(d.id);
    // FIFO per producer: ids rise with each producer's sequence, and every consumer receives a
    // producer's messages in that order.
    for (let p = 0; p < 4; p++) {
      const ids = load.pushes
        .filter((x) => x.producer === p)
        .sort((a, b) => a.seq - b.seq)
        .map((x) => x.id);
      for (let i = 1; i < ids.length; i++) expect(ids[i]!, `producer ${p} id order`).to.be.above(ids[i - 1]!);
    }
    for (let consumer = 0; consumer < 4; consumer++) {
      const last = new Map<string, number>();
      for (const d of load.deliveries.filter((x) => x.consumer === consumer)) {
        const [producer, seq] = d.payload.split(':') as [string, string];
        expect(Number(seq), `consumer ${consumer} order of ${producer}`).to.be.above(
          last.get(producer) ?? -1,
        );
        last.set(producer, Number(seq));
      }
    }
    for (const node of c.nodes) {
      const info = await qinfo(open(node.port), 'bulk');
      expect([info.get('pushed'), info.get('delivered'), info.get('acked')], node.id).to.deep.equal([
        100_000, 100_000, 100_000,
      ]);
    }
  });

  it('a consumer that dies holding leases: its messages are delivered again after the timeout, count raised', async () => {
    const c = (cluster = await Cluster.start({ size: 3, tickMs: 50, electionTicks: 10 }));
    await c.waitForLeader();
    const [a, b, d] = c.nodes.map((n) => open(n.port));
    await a!.call('QPUSH', 'jobs', ...Array.from({ length: 10 }, (_, i) => `job${i}`));
    const dying = client(c.nodes[1]!.port);
    const held = (await dying.call(
      'QPOP',
      'jobs',
      'COUNT',
      4,
      'VISIBILITY',
      1_000,
      'CONSUMER',
      'dying',
    )) as Message[];
    expect(held.map((m) => [m[1], m[2]])).to.deep.equal([
      ['job0', 1],
      ['job1', 1],
      ['job2', 1],
      ['job3', 1],
    ]);
    const pending = (await d!.call('QPENDING', 'jobs')) as unknown[][];
    expect(pending.map((p) => [p[0], p[1], p[2]])).to.deep.equal(held.map((m) => [m[0], 'dying', 1]));
    dying.disconnect(); // the consumer dies without acking
    // Another consumer drains the rest, then gets the dead one's messages once their leases run out.
    const rest = (await b!.call('QPOP', 'jobs', 'COUNT', 10)) as Message[];
    expect(rest.map((m) => m[1])).to.deep.equal(['job4', 'job5', 'job6', 'job7', 'job8', 'job9']);
    const again: Message[] = [];
    await waitFor(
      "redelivery of the dead consumer's messages",
      async () => {
        const got = (await b!.call('QPOP', 'jobs', 'COUNT', 10, 'BLOCK', 2_000)) as Message[] | null;
        if (got !== null) again.push(...got);
        return again.length >= 4 ? true : undefined;
      },
      15_000,
    );
    expect(again.map((m) => [m[0], m[1], m[2], m[3]])).to.deep.equal(
      held.map((m) => [m[0], m[1], 2, `${m[0]}-2`]),
    );
    // The dead consumer's receipts are refused now; the new ones ack.
    const stale = await d!.call('QACK', 'jobs', held[0]![3]).catch((e: Error) => e.message);
    expect(String(stale)).to.match(/^LEASELOST/);
    expect(await d!.call('QACK', 'jobs', ...again.map((m) => m[3]), ...rest.map((m) => m[3]))).to.equal(10);
    const info = await qinfo(a!, 'jobs');
    expect([info.get('redelivered'), info.get('expired'), info.get('acked')]).to.deep.equal([4, 4, 10]);
  });

  it('kill -9 of the leader mid-run: no acknowledged push lost, nothing acked comes back, duplicates only as redeliveries', async () => {
    const c = (cluster = await Cluster.start({ size: 3, tickMs: 50, electionTicks: 10 }));
    const oldLeader = await c.waitForLeader();
    await c.waitUntilServing();
    const load = new QueueLoad({
      queue: 'crash',
      ports: () => c.running().map((n) => n.port),
      producers: 4,
      consumers: 4,
      batchesPerProducer: 60,
      batchSize: 50,
      popCount: 20,
      visibilityMs: 3_000,
      maxDurationMs: 60_000,
    });
    try {
      await waitFor(
        'a third of the pushes',
        () => (load.pushes.length >= 4_000 ? true : undefined),
        30_000,
      );
      const ackedBefore = load.ackedAt.size;
      expect(ackedBefore, 'acks before the kill').to.be.above(0);
      await oldLeader.kill9();
      await c.waitForLeader(15_000, c.running());
      const probe = open(c.running()[0]!.port);
      await load.finish(async () => load.allProduced && (await probe.call('QLEN', 'crash')) === 0);
    } finally {
      await load.stop();
    }
    expect(load.pushes.length, 'every batch acknowledged in the end (IDEMP resends)').to.equal(12_000);
    await oldLeader.start();
    await verifyCrashRun(c, load, 'crash');
  });

  it('kill -9 of every node mid-run, then restart: no acknowledged push lost, nothing acked comes back', async () => {
    const c = (cluster = await Cluster.start({ size: 3, tickMs: 50, electionTicks: 10 }));
    await c.waitForLeader();
    await c.waitUntilServing();
    const load = new QueueLoad({
      queue: 'outage',
      ports: () => c.nodes.map((n) => n.port),
      producers: 4,
      consumers: 4,
      batchesPerProducer: 60,
      batchSize: 50,
      popCount: 20,
      visibilityMs: 3_000,
      maxDurationMs: 75_000,
    });
    try {
      await waitFor(
        'a third of the pushes',
        () => (load.pushes.length >= 4_000 ? true : undefined),
        30_000,
      );
      await c.killAll();
      await Promise.all(c.nodes.map((n) => n.start()));
      await c.waitForLeader(15_000);
      const probe = open(c.nodes[0]!.port);
      await load.finish(async () => load.allProduced && (await probe.call('QLEN', 'outage')) === 0);
    } finally {
      await load.stop();
    }
    expect(load.pushes.length, 'every batch acknowledged in the end (IDEMP resends)').to.equal(12_000);
    await verifyCrashRun(c, load, 'outage');
  });

  it('dead-letters after N deliveries; the dead-letter queue can be read, inspected and replayed', async () => {
    const c = (cluster = await Cluster.start({ size: 3, tickMs: 50, electionTicks: 10 }));
    await c.waitForLeader();
    const [a, b, d] = c.nodes.map((n) => open(n.port));
    expect(await a!.call('QCONFIG', 'mail', 'MAXDELIVERIES', 3, 'VISIBILITY', 200)).to.equal('OK');
    await b!.call('QPUSH', 'mail', 'm1', 'm2');
    // Delivery 1 and 2 are given back with QNACK; delivery 3's lease runs out.
    for (let round = 1; round <= 3; round++) {
      const got = (await d!.call('QPOP', 'mail', 'COUNT', 2, 'BLOCK', 5_000)) as Message[];
      expect(
        got.map((m) => m[2]),
        `round ${round}`,
      ).to.deep.equal([round, round]);
      if (round < 3) for (const m of got) expect(await a!.call('QNACK', 'mail', m[3])).to.equal(1);
    }
    const info = await waitFor(
      'dead-lettering',
      async () => {
        const i = await qinfo(b!, 'mail');
        return i.get('dead-lettered') === 2 ? i : undefined;
      },
      10_000,
    );
    const dlq = String(info.get('dead-letter-queue'));
    expect(info.get('ready')).to.equal(0);
    expect(info.get('dead-lettered-total')).to.equal(2);
    expect(await d!.call('QLEN', 'mail')).to.equal(0);
    // The dead-letter queue is a queue: readable with QPOP (and given back), inspectable.
    const dead = (await a!.call('QPOP', dlq, 'COUNT', 10)) as Message[];
    expect(dead.map((m) => [m[1], m[2]])).to.deep.equal([
      ['m1', 1],
      ['m2', 1],
    ]);
    expect(((await b!.call('QPENDING', dlq)) as unknown[]).length).to.equal(2);
    for (const m of dead) expect(await b!.call('QNACK', dlq, m[3])).to.equal(1);
    expect(await d!.call('QREPLAY', 'mail')).to.equal(2);
    expect(await a!.call('QLEN', dlq)).to.equal(0);
    const back = (await b!.call('QPOP', 'mail', 'COUNT', 10)) as Message[];
    expect(back.map((m) => [m[1], m[2]])).to.deep.equal([
      ['m1', 1],
      ['m2', 1],
    ]);
    expect(back.map((m) => m[0])).to.deep.equal([3, 4]);
  });

  it('idempotent push: resends with the same key through any node add nothing and return the first ids', async () => {
    const c = (cluster = await Cluster.start({ size: 3, tickMs: 50, electionTicks: 10 }));
    await c.waitForLeader();
    const [a, b, d] = c.nodes.map((n) => open(n.port));
    const first = await a!.call('QPUSH', 'orders', 'IDEMP', 'order-17', 'x', 'y');
    expect(first).to.deep.equal([1, 2]);
    expect(await b!.call('QPUSH', 'orders', 'IDEMP', 'order-17', 'x', 'y')).to.deep.equal([1, 2]);
    expect(await d!.call('QPUSH', 'orders', 'IDEMP', 'order-17', 'x', 'y')).to.deep.equal([1, 2]);
    expect(await d!.call('QPUSH', 'orders', 'IDEMP', 'order-18', 'z')).to.deep.equal([3]);
    for (const r of [a!, b!, d!]) expect(await r.call('QLEN', 'orders')).to.equal(3);
    expect((await qinfo(b!, 'orders')).get('duplicate-pushes')).to.equal(2);
    // After the window, the key is forgotten.
    expect(await a!.call('QCONFIG', 'orders', 'IDEMPWINDOW', 300)).to.equal('OK');
    await waitFor(
      'the idempotency window to pass',
      async () => {
        const ids = (await b!.call('QPUSH', 'orders', 'IDEMP', 'order-17', 'again')) as number[];
        return ids[0] !== 1 ? ids : undefined;
      },
      10_000,
    );
  });

  it('blocking pops on different nodes wake in arrival order, and time out cleanly with nil', async () => {
    const c = (cluster = await Cluster.start({ size: 3, tickMs: 50, electionTicks: 10 }));
    await c.waitForLeader();
    const waiting = c.nodes.map((n) => open(n.port, 20_000));
    const probe = open(c.nodes[0]!.port);
    const pops: Promise<unknown>[] = [];
    for (const [i, r] of waiting.entries()) {
      pops.push(r.call('QPOP', 'wake', 'BLOCK', 15_000, 'CONSUMER', `w${i}`));
      await waitFor(
        `waiter ${i} registered`,
        async () => ((await qinfo(probe, 'wake')).get('waiting-consumers') === i + 1 ? true : undefined),
        10_000,
      );
    }
    expect(await probe.call('QPUSH', 'wake', 'one', 'two', 'three')).to.deep.equal([1, 2, 3]);
    const got = (await Promise.all(pops)) as Message[][];
    expect(got.map((m) => [m[0]![0], m[0]![1]])).to.deep.equal([
      [1, 'one'],
      [2, 'two'],
      [3, 'three'],
    ]);
    // A wait that runs out answers nil, and the connection goes on serving.
    const follower = waiting[(c.nodes.findIndex((n) => n.port !== c.nodes[0]!.port) + 1) % 3]!;
    expect(await follower.call('QPOP', 'empty', 'BLOCK', 300)).to.equal(null);
    expect(await follower.ping()).to.equal('PONG');
    expect((await qinfo(probe, 'empty')).get('waiting-consumers')).to.equal(0);
  });
});
