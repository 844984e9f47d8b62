/**
 * The coherent cache against a real three-node cluster: writers and readers on every node over
 * a small hot key set (CSET/CGET through ioredis), every operation recorded with its invoke and
 * completion time, then checked (commands/cache/coherence-check.ts): no CGET returns a value
 * older than a CSET that completed before the CGET began. Run steady, while the leader is
 * killed with -9 (a leader change), and while a node is partitioned off with iptables (skipped
 * when not root). Also: an LRU smaller than the key set stays within its bounds, and the hit
 * ratio of a Zipf workload is reported.
 */
import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { findStaleReads, type HistoryOp } from '../../commands/cache/coherence-check.js';
import { waitFor } from '../harness.js';
import { Cluster, client, skipUnlessClusterSupported, type ClusterNode } from '../cluster/cluster-harness.js';
import { Partition, skipUnlessIptablesUsable } from '../cluster/iptables.js';

const TICK_MS = 50;
const ELECTION_TICKS = 10;
const LEASE_MS = 1_000;
const KEYS = ['hot:a', 'hot:b', 'hot:c', 'hot:d'];

interface LoadOptions {
  nodes: () => readonly ClusterNode[];
  writersPerNode: number;
  readersPerNode: number;
  durationMs: number;
  maxOpsPerClient: number;
}

/** Bounded CSET/CGET loops on every node, recording a history. */
class CacheLoad {
  readonly history: HistoryOp[] = [];
  readonly errors: string[] = [];
  private stopped = false;
  private readonly done: Promise<void>;
  private readonly clients: Redis[] = [];
  private readonly t0 = Date.now();

  constructor(private readonly options: LoadOptions) {
    const loops: Promise<void>[] = [];
    for (const node of options.nodes()) {
      for (let w = 0; w < options.writersPerNode; w++) loops.push(this.loop(node, `${node.id}w${w}`, true));
      for (let r = 0; r < options.readersPerNode; r++) loops.push(this.loop(node, `${node.id}r${r}`, false));
    }
    this.done = Promise.all(loops).then(() => undefined);
  }

  private async loop(node: ClusterNode, name: string, writer: boolean): Promise<void> {
    const redis = client(node.port, 4_000);
    this.clients.push(redis);
    for (let i = 0; i < this.options.maxOpsPerClient; i++) {
      if (this.stopped || Date.now() - this.t0 > this.options.durationMs) return;
      const key = KEYS[(i * 7 + name.length + (writer ? 1 : 3)) % KEYS.length]!;
      const start = performance.now();
      try {
        if (writer) {
          const value = `${name}-${i}`;
          const op = { kind: 'w' as const, key, value, start, end: Infinity, ok: false };
          this.history.push(op);
          const reply = await redis.call('CSET', key, value);
          Object.assign(op, { end: performance.now(), ok: reply === 'OK' });
        } else {
          const reply = (await redis.call('CGET', key)) as string | null;
          this.history.push({ kind: 'r', key, value: reply, start, end: performance.now(), ok: true });
        }
      } catch (err) {
        if (this.errors.length < 50)
          this.errors.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  reads(): number {
    return this.history.filter((o) => o.kind === 'r').length;
  }

  writes(): number {
    return this.history.filter((o) => o.kind === 'w' && o.ok).length;
  }

  /** Waits for the loops to end by themselves (duration or count), then closes the clients. */
  async finish(): Promise<void> {
    await this.done;
    await this.stop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
    await Promise.all(this.clients.map((c) => c.quit().catch(() => c.disconnect())));
  }
}

async function infoCache(port: number): Promise<Map<string, string>> {
  const redis = client(port);
  try {
    const text = String(await redis.info('cache'));
    const out = new Map<string, string>();
    for (const line of text.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) out.set(line.slice(0, colon), line.slice(colon + 1));
    }
    return out;
  } finally {
    redis.disconnect();
  }
}

function report(label: string, load: CacheLoad): void {
  const violations = findStaleReads(load.history);
  console.log(
    `      ${label}: ${load.writes()} CSET acked, ${load.reads()} CGET, ${load.errors.length} errors, ${violations.length} stale reads`,
  );
  expect(violations, violations.slice(0, 5).join('\n')).to.deep.equal([]);
}

function startCluster(extra: readonly string[] = [], uids?: readonly number[]): Promise<Cluster> {
  return Cluster.start({
    size: 3,
    tickMs: TICK_MS,
    electionTicks: ELECTION_TICKS,
    logLevel: 'warn',
    extraArgs: ['--cache-lease-ms', String(LEASE_MS), ...extra],
    ...(uids === undefined ? {} : { uids }),
  });
}

describe('cache: coherence on a three-node cluster', function () {
  this.timeout(120_000);
  let cluster: Cluster | undefined;

  before(async function () {
    await skipUnlessClusterSupported(this);
  });

  afterEach(async function () {
    await cluster?.destroy();
    cluster = undefined;
  });

  it('writers and readers on every node: no CGET older than a completed CSET; hot keys hit locally', async function () {
    const c = (cluster = await startCluster());
    await c.waitForLeader();
    await c.waitUntilServing();
    const load = new CacheLoad({
      nodes: () => c.nodes,
      writersPerNode: 1,
      readersPerNode: 2,
      durationMs: 6_000,
      maxOpsPerClient: 5_000,
    });
    await load.finish();
    report('steady', load);
    expect(load.writes()).to.be.greaterThan(50);
    expect(load.reads()).to.be.greaterThan(200);
    let hits = 0;
    for (const node of c.nodes) hits += Number((await infoCache(node.port)).get('cache_hits'));
    expect(hits, 'local hits across the nodes').to.be.greaterThan(0);
  });

  it('kill -9 of the leader mid-load (a leader change): still no stale CGET', async function () {
    const c = (cluster = await startCluster());
    const leader = await c.waitForLeader();
    await c.waitUntilServing();
    const load = new CacheLoad({
      nodes: () => c.nodes,
      writersPerNode: 1,
      readersPerNode: 2,
      durationMs: 9_000,
      maxOpsPerClient: 5_000,
    });
    await waitFor('some cache traffic', () => (load.writes() > 30 ? true : undefined), 10_000);
    await leader.kill9();
    const survivors = c.running();
    const next = await c.waitForLeader(10_000, survivors);
    expect(next.id).to.not.equal(leader.id);
    const before = load.writes();
    await waitFor(
      'CSETs acknowledged after the failover',
      () => (load.writes() > before + 30 ? true : undefined),
      15_000,
    );
    await load.stop();
    report(`leader ${leader.id} killed, ${next.id} elected`, load);
    const flushes = Number((await infoCache(next.port)).get('cache_flushes_sent'));
    expect(flushes, 'the new leader flushed the near-caches').to.be.greaterThan(0);
  });

  it('an LRU smaller than the key set stays within its bounds; Zipf hit ratio reported', async function () {
    const maxEntries = 64;
    const maxBytes = 64 * 1024;
    const c = (cluster = await startCluster([
      '--cache-max-entries',
      String(maxEntries),
      '--cache-max-bytes',
      String(maxBytes),
    ]));
    const leader = await c.waitForLeader();
    await c.waitUntilServing();
    const node = c.nodes.find((n) => n !== leader)!;
    const redis = client(node.port);
    try {
      const keyCount = 512;
      const value = 'x'.repeat(200);
      for (let i = 0; i < keyCount; i++) await redis.call('CSET', `z:${i}`, value);
      // Zipf(s = 1) over the keys: rank r drawn with probability ~ 1/r (seeded LCG).
      const weights = Array.from({ length: keyCount }, (_, r) => 1 / (r + 1));
      const total = weights.reduce((a, b) => a + b, 0);
      const cumulative: number[] = [];
      weights.reduce((acc, w, i) => (cumulative[i] = acc + w / total), 0);
      let seed = 12345;
      // 32-bit LCG in integer arithmetic (a double product would lose the low bits and cycle).
      const rand = (): number => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
      const before = await infoCache(node.port);
      const reads = 4_000;
      for (let i = 0; i < reads; i++) {
        const u = rand();
        let lo = 0;
        let hi = keyCount - 1;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (cumulative[mid]! < u) lo = mid + 1;
          else hi = mid;
        }
        expect(await redis.call('CGET', `z:${lo}`)).to.equal(value);
      }
      const after = await infoCache(node.port);
      const hits = Number(after.get('cache_hits')) - Number(before.get('cache_hits'));
      const lines = Number(after.get('cache_lines'));
      const bytes = Number(after.get('cache_bytes'));
      console.log(
        `      Zipf(1) over ${keyCount} keys, cache of ${maxEntries} lines: hit ratio ${(hits / reads).toFixed(3)}, ${lines} lines, ${bytes} bytes, ${after.get('cache_evictions')} evictions`,
      );
      expect(lines).to.be.at.most(maxEntries);
      expect(bytes).to.be.at.most(maxBytes);
      expect(Number(after.get('cache_evictions'))).to.be.greaterThan(0);
      expect(hits / reads, 'a skewed workload hits a small cache').to.be.greaterThan(0.3);
    } finally {
      redis.disconnect();
    }
  });
});

// ------------------------------------------------------------------ partition (iptables)

const UIDS = [41011, 41012, 41013];
const COMMENT = `concord-cache-partition-${process.pid}`;

describe('cache: coherence while a node is partitioned off (iptables)', function () {
  this.timeout(120_000);
  let cluster: Cluster | undefined;
  const partition = new Partition(COMMENT);

  before(async function () {
    await skipUnlessClusterSupported(this);
    await skipUnlessIptablesUsable(this);
  });

  afterEach(async function () {
    try {
      await partition.heal();
    } finally {
      await cluster?.destroy();
      cluster = undefined;
    }
  });

  for (const which of ['leader', 'follower'] as const) {
    it(`partitioning the ${which} off mid-load: no stale CGET on either side, nor after healing`, async function () {
      const c = (cluster = await startCluster([], UIDS));
      const leader = await c.waitForLeader();
      await c.waitUntilServing();
      const isolated = which === 'leader' ? leader : c.nodes.find((n) => n !== leader)!;
      const others = c.nodes.filter((n) => n !== isolated);
      const load = new CacheLoad({
        nodes: () => c.nodes,
        writersPerNode: 1,
        readersPerNode: 2,
        durationMs: 12_000,
        maxOpsPerClient: 5_000,
      });
      await waitFor('some cache traffic', () => (load.writes() > 30 ? true : undefined), 10_000);
      await partition.isolate(isolated, others);
      const majorityLeader = await c.waitForLeader(10_000, others);
      const before = load.writes();
      await waitFor(
        'CSETs acknowledged by the majority',
        () => (load.writes() > before + 30 ? true : undefined),
        15_000,
      );
      await partition.heal();
      const healedAt = load.writes();
      await waitFor('CSETs after healing', () => (load.writes() > healedAt + 10 ? true : undefined), 15_000);
      await load.stop();
      report(`${which} ${isolated.id} partitioned, ${majorityLeader.id} leads the majority`, load);
    });
  }
});
