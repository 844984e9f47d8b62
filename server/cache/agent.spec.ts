import { expect } from 'chai';
import { LocalExecutor } from '../../commands/executor.js';
import { PeerUnreachableError } from '../../raft/transport.js';
import { findStaleReads, type HistoryOp } from '../../commands/cache/coherence-check.js';
import { CacheAgent, type CacheHost } from './agent.js';
import { cacheInfoLines } from '../../commands/cache/common.js';

/**
 * Three agents in one process: n1 leads and owns the (single) state machine through a
 * LocalExecutor; requests travel through an in-memory network that can delay messages and
 * cut a node off. Followers never read home locally (they fetch from the leader), so one
 * state machine is enough to exercise the protocol.
 */
class Net {
  readonly agents = new Map<string, CacheAgent>();
  readonly cut = new Set<string>();
  maxDelayMs = 0;
  private seed = 42;

  private random(): number {
    // xorshift: a reproducible delay sequence
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x >>> 0;
    return this.seed / 2 ** 32;
  }

  private hop(): Promise<void> {
    if (this.maxDelayMs === 0) return Promise.resolve();
    const ms = Math.floor(this.random() * this.maxDelayMs);
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  async request(from: string, to: string, payload: Buffer): Promise<Buffer> {
    if (this.cut.has(from) || this.cut.has(to)) throw new PeerUnreachableError(to, 'cut off');
    await this.hop();
    const agent = this.agents.get(to);
    if (agent === undefined) throw new PeerUnreachableError(to, 'unknown');
    const answer = await agent.serve(from, payload);
    await this.hop();
    if (this.cut.has(from) || this.cut.has(to)) throw new PeerUnreachableError(to, 'cut off');
    return answer;
  }
}

/** Who leads, in which term (tests move leadership by changing it). */
interface Office {
  leader: string;
  term: number;
}

async function cluster(
  leaseMs = 300,
  office: Office = { leader: 'n1', term: 1 },
): Promise<{ net: Net; nodes: CacheAgent[]; executor: LocalExecutor }> {
  const net = new Net();
  const executor = new LocalExecutor();
  const ids = ['n1', 'n2', 'n3'];
  const nodes = ids.map((id) => {
    const host: CacheHost = {
      id,
      isLeader: () => id === office.leader,
      leaderId: () => office.leader,
      term: () => office.term,
      peers: () => ids.filter((p) => p !== id),
      readBarrier: () => Promise.resolve(),
      propose: (op) => Promise.resolve(executor.write(op)),
      stateMachine: executor.stateMachine,
      leaderTimeMs: () => executor.stateMachine.readTime(Date.now()),
      request: (peer, payload) => net.request(id, peer, payload),
      isConnected: (peer) => !net.cut.has(peer) && !net.cut.has(id),
    };
    const agent = new CacheAgent({ host, leaseMs, leaderWaitMs: 300, pollMs: 5 });
    net.agents.set(id, agent);
    return agent;
  });
  // n1 takes office: it flushes the others first (grants sent before the flush would not install).
  nodes[0]!.leadershipChanged();
  const deadline = Date.now() + 2_000;
  while (nodes.slice(1).some((n) => info(n)['cache_flushes_received'] !== '1')) {
    if (Date.now() > deadline) throw new Error('the flush never arrived');
    await new Promise((resolve) => setImmediate(resolve));
  }
  return { net, nodes, executor };
}

const b = (s: string): Buffer => Buffer.from(s);

async function text(v: Buffer | null | Promise<Buffer | null>): Promise<string | null> {
  const value = await v;
  return value === null ? null : value.toString();
}

function info(agent: CacheAgent): Record<string, string> {
  return Object.fromEntries(cacheInfoLines(agent.figures()).map((l) => l.split(':') as [string, string]));
}

type Line = [string, string, number, number];

async function lineStates(agent: CacheAgent, key: string): Promise<Record<string, string>> {
  const tree = (await agent.state(b(key))) as readonly unknown[];
  const out: Record<string, string> = {};
  for (const item of tree.slice(0, -1)) {
    const [node, state] = item as Line;
    out[node] = state;
  }
  return out;
}

describe('cache agent (three in-process nodes)', () => {
  it('I->E on a miss, then E->S on a remote read: the second reader shares the line', async () => {
    const { nodes } = await cluster();
    const [n1, n2, n3] = nodes as [CacheAgent, CacheAgent, CacheAgent];
    // (A key written by n1 would be M on n1: a read makes it shared at once. This one is unwritten.)
    expect(await text(n2.get(b('k')))).to.equal(null);
    expect((await lineStates(n1, 'k'))['n2']).to.equal('E');
    expect(await text(n3.get(b('k')))).to.equal(null);
    // The downgrade message is best effort: poll until it lands.
    const deadline = Date.now() + 2_000;
    while ((await lineStates(n1, 'k'))['n2'] !== 'S' && Date.now() < deadline) await Promise.resolve();
    expect(await lineStates(n1, 'k')).to.include({ n2: 'S', n3: 'S' });
    // A hit answers synchronously, with no request.
    expect(n2.get(b('k'))).to.equal(null);
    expect(info(n2)['cache_hits']).to.equal('1');
  });

  it('S->I on a remote write: the write completes only after the holders dropped the old value', async () => {
    const { nodes } = await cluster();
    const [n1, n2, n3] = nodes as [CacheAgent, CacheAgent, CacheAgent];
    await n1.set(b('k'), b('old'), 0, 'default');
    await n2.get(b('k'));
    await n3.get(b('k'));
    await n1.set(b('k'), b('new'), 0, 'default');
    expect(info(n1)['cache_invalidations_sent']).to.equal('2');
    expect(await lineStates(n1, 'k')).to.include({ n1: 'M', n2: 'I', n3: 'I' });
    expect(await text(n2.get(b('k')))).to.equal('new');
    expect(await text(n3.get(b('k')))).to.equal('new');
  });

  it('E->M on a silent local write: no invalidation round', async () => {
    const { nodes } = await cluster();
    const [n1, n2] = nodes as [CacheAgent, CacheAgent, CacheAgent];
    const before = Number(info(n1)['cache_writes_without_round']);
    await n2.set(b('solo'), b('x'), 0, 'default');
    await n2.get(b('solo'));
    await n2.set(b('solo'), b('y'), 0, 'default');
    expect(Number(info(n1)['cache_writes_without_round'])).to.equal(before + 2);
    expect((await lineStates(n1, 'solo'))['n2']).to.equal('M');
    expect(await text(n2.get(b('solo')))).to.equal('y');
  });

  it('S->S update on remote write under the update policy: holders get the value and keep serving', async () => {
    const { nodes } = await cluster();
    const [n1, n2] = nodes as [CacheAgent, CacheAgent, CacheAgent];
    await n1.setPolicy(b('k'), 'update');
    await n1.set(b('k'), b('v1'), 0, 'default');
    await n2.get(b('k'));
    await n1.set(b('k'), b('v2'), 0, 'default');
    expect(info(n2)['cache_updates_received']).to.equal('1');
    const hit = n2.get(b('k'));
    expect(hit).to.be.instanceOf(Buffer);
    expect((hit as Buffer).toString()).to.equal('v2');
    expect((await lineStates(n1, 'k'))['n2']).to.equal('S');
  });

  it('an unreachable holder delays a write until its lease ran out, and never serves the old value after', async () => {
    const { net, nodes } = await cluster(200);
    const [n1, , n3] = nodes as [CacheAgent, CacheAgent, CacheAgent];
    await n1.set(b('k'), b('old'), 0, 'default');
    expect(await text(n3.get(b('k')))).to.equal('old');
    net.cut.add('n3');
    await n1.set(b('k'), b('new'), 0, 'default');
    expect(info(n1)['cache_invalidations_timed_out']).to.equal('1');
    // The write completed: n3's lease is over, so it must ask the leader, which it cannot reach.
    let served: string | null | Error;
    try {
      served = await text(n3.get(b('k')));
    } catch (error) {
      served = error as Error;
    }
    expect(served).to.be.instanceOf(Error);
    net.cut.delete('n3');
    expect(await text(n3.get(b('k')))).to.equal('new');
  });

  it('any->I on a flush: a new leader empties every near-cache before its first write completes', async () => {
    const office = { leader: 'n1', term: 1 };
    const { nodes } = await cluster(300, office);
    const [n1, n2, n3] = nodes as [CacheAgent, CacheAgent, CacheAgent];
    await n1.set(b('k'), b('v1'), 0, 'default');
    await n2.get(b('k'));
    await n3.get(b('k'));
    expect(await lineStates(n1, 'k')).to.include({ n2: 'S', n3: 'S' });
    // n2 takes office in term 2: it knows no directory, so it flushes everyone.
    office.leader = 'n2';
    office.term = 2;
    n2.leadershipChanged();
    await n2.set(b('k'), b('v2'), 0, 'default');
    // n1 flushed itself when it took office in term 1; this is the first FLUSH it receives.
    expect(info(n1)['cache_flushes_received']).to.equal('1');
    expect(info(n3)['cache_flushes_received']).to.equal('2');
    expect(await lineStates(n2, 'k')).to.include({ n1: 'I', n2: 'M', n3: 'I' });
    expect(await text(n3.get(b('k')))).to.equal('v2');
    // The old leader no longer serves fetches: they go to n2.
    expect(await text(n1.get(b('k')))).to.equal('v2');
    expect(await lineStates(n2, 'k')).to.include({ n1: 'S', n2: 'S', n3: 'S' });
  });

  it('a fenced write refused at apply runs no round: holders keep serving, the writer gets no M line', async () => {
    const { nodes, executor } = await cluster();
    const [n1, n2, n3] = nodes as [CacheAgent, CacheAgent, CacheAgent];
    const acquire = (owner: string): unknown =>
      executor.write({
        type: 'lock.acquire',
        name: b('L'),
        owner: b(owner),
        mode: 'exclusive',
        ttlMs: 60_000,
        waitMs: 0,
        waiterId: '',
      });
    acquire('A');
    executor.write({ type: 'lock.release', name: b('L'), owner: b('A') });
    acquire('B');
    expect(await n1.set(b('k'), b('b'), 0, 'default', { name: b('L'), token: 2 })).to.deep.include({
      type: 'tree',
    });
    expect(await text(n2.get(b('k')))).to.equal('b');
    const sent = info(n1)['cache_invalidations_sent'];
    const stale = await n3.set(b('k'), b('stale'), 0, 'default', { name: b('L'), token: 1 });
    expect(stale).to.deep.equal({
      type: 'error',
      message: "FENCED token 1 is older than lock 'L' current token 2",
    });
    const gone = await n3.del(b('k'), { name: b('L'), token: 1 });
    expect(gone).to.deep.include({ type: 'error' });
    expect(info(n1)['cache_invalidations_sent']).to.equal(sent);
    expect(info(n1)['cache_writes_fenced']).to.equal('2');
    // n2's line survived (a synchronous hit); n3 holds nothing written by its refused writes.
    const hit = n2.get(b('k'));
    expect(hit).to.be.instanceOf(Buffer);
    expect((hit as Buffer).toString()).to.equal('b');
    expect((await lineStates(n1, 'k'))['n3']).to.equal('I');
    expect(await text(n3.get(b('k')))).to.equal('b');
  });

  it('CDEL invalidates and later reads see nil', async () => {
    const { nodes } = await cluster();
    const [n1, n2] = nodes as [CacheAgent, CacheAgent, CacheAgent];
    await n1.set(b('k'), b('v'), 0, 'default');
    expect(await text(n2.get(b('k')))).to.equal('v');
    const r = await n1.del(b('k'));
    expect(r).to.deep.include({ type: 'tree' });
    expect(await text(n2.get(b('k')))).to.equal(null);
  });

  it('any->I on eviction: the LRU keeps within its entry bound and tells the leader', async () => {
    const net = new Net();
    const executor = new LocalExecutor();
    const host: CacheHost = {
      id: 'n1',
      isLeader: () => true,
      leaderId: () => 'n1',
      term: () => 1,
      peers: () => [],
      readBarrier: () => Promise.resolve(),
      propose: (op) => Promise.resolve(executor.write(op)),
      stateMachine: executor.stateMachine,
      leaderTimeMs: () => Date.now(),
      request: (peer, payload) => net.request('n1', peer, payload),
      isConnected: () => true,
    };
    const agent = new CacheAgent({ host, maxEntries: 10 });
    for (let i = 0; i < 50; i++) await agent.set(b(`k${i}`), b(`v${i}`), 0, 'default');
    for (let i = 0; i < 50; i++) expect(await text(agent.get(b(`k${i}`)))).to.equal(`v${i}`);
    const figures = info(agent);
    expect(Number(figures['cache_lines'])).to.equal(10);
    expect(Number(figures['cache_evictions'])).to.be.greaterThan(0);
    agent.stop();
  });

  it('concurrent misses of one key send one FETCH; the others read the line it installed', async () => {
    const { net, nodes } = await cluster();
    const [n1, n2] = nodes as [CacheAgent, CacheAgent, CacheAgent];
    await n1.set(b('k'), b('v'), 0, 'default');
    net.maxDelayMs = 3;
    const reads = Array.from({ length: 20 }, () => text(n2.get(b('k'))));
    expect(await Promise.all(reads)).to.deep.equal(Array.from({ length: 20 }, () => 'v'));
    const figures = info(n2);
    expect(figures['cache_fetches']).to.equal('1');
    expect(figures['cache_misses']).to.equal('1');
    expect(figures['cache_misses_joined']).to.equal('19');
    expect(figures['cache_hits']).to.equal('19');
  });

  it('a joined miss whose fetch could not install (a local write began) waits for the write', async () => {
    const { net, nodes } = await cluster();
    const [n1, n2] = nodes as [CacheAgent, CacheAgent, CacheAgent];
    await n1.set(b('k'), b('old'), 0, 'default');
    net.maxDelayMs = 3;
    const first = text(n2.get(b('k')));
    const joined = text(n2.get(b('k')));
    // The write poisons the fetch in flight: it must not install, so the joined read cannot
    // take the line; it waits for n2's own write instead and reads it.
    const write = n2.set(b('k'), b('new'), 0, 'default');
    expect(await first).to.equal('old');
    await write;
    expect(await joined).to.equal('new');
    expect(info(n2)['cache_misses_joined']).to.equal('1');
  });

  it('a hit in the last quarter of its lease renews the line in the background (refresh-ahead)', async () => {
    const { nodes } = await cluster(400);
    const [n1, n2] = nodes as [CacheAgent, CacheAgent, CacheAgent];
    await n1.set(b('k'), b('v'), 0, 'default');
    expect(await text(n2.get(b('k')))).to.equal('v');
    const leaseLeft = async (): Promise<number> => {
      const tree = (await n2.state(b('k'))) as readonly unknown[];
      const mine = tree.find((item) => Array.isArray(item) && item[0] === 'n2') as Line;
      return mine[3];
    };
    // Poll (no sleep) until the line enters the last quarter of its lease, then hit it.
    const deadline = Date.now() + 2_000;
    while ((await leaseLeft()) >= n2.refreshAheadMs - 10) {
      if (Date.now() > deadline) throw new Error('the lease never ran down');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const hit = n2.get(b('k'));
    expect(hit).to.be.instanceOf(Buffer);
    expect(info(n2)['cache_refreshes']).to.equal('1');
    // The renewal lands: the line's lease is long again, and it never went through a miss.
    const renewed = Date.now() + 2_000;
    while ((await leaseLeft()) < n2.refreshAheadMs) {
      if (Date.now() > renewed) throw new Error('the line was never renewed');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(info(n2)['cache_misses']).to.equal('1');
    expect(info(n2)['cache_fetches']).to.equal('2');
  });

  it('any->I on FLUSHALL: home emptied, every node dropped every line before the flush completed', async () => {
    const { nodes, executor } = await cluster();
    const [n1, n2, n3] = nodes as [CacheAgent, CacheAgent, CacheAgent];
    for (const k of ['a', 'b']) await n1.set(b(k), b(`v${k}`), 0, 'default');
    for (const n of nodes) for (const k of ['a', 'b']) expect(await text(n.get(b(k)))).to.equal(`v${k}`);
    expect(await n3.flushAll()).to.deep.include({ type: 'tree' });
    for (const n of nodes) expect(info(n)['cache_lines']).to.equal('0');
    expect(executor.stateMachine.cache.size).to.equal(0);
    expect(info(n1)['cache_data_flushes']).to.equal('1');
    for (const n of [n1, n2, n3]) expect(await text(n.get(b('a')))).to.equal(null);
  });

  it('a cluster-wide lease is granted at once; a shorter one set later does not shorten the grace', async () => {
    const { nodes } = await cluster(300);
    const [n1, n2] = nodes as [CacheAgent, CacheAgent, CacheAgent];
    expect(n1.leaseMs).to.equal(300);
    await n2.setLease(5_000);
    expect(n2.leaseMs).to.equal(5_000);
    await n1.set(b('k'), b('v'), 0, 'default');
    expect(await text(n2.get(b('k')))).to.equal('v');
    const tree = (await n2.state(b('k'))) as readonly unknown[];
    const mine = tree.find((item) => Array.isArray(item) && item[0] === 'n2') as Line;
    expect(mine[3]).to.be.above(300);
    await n2.setLease(100);
    expect(n1.leaseMs).to.equal(100);
    // Lines granted under the 5 s lease may still be out there: a new leader must wait that out.
    expect(n1.graceMs).to.equal(5_000 + 500);
  });

  it('resize: lines move to the new bounds, least recently used evicted first', async () => {
    const { nodes } = await cluster(60_000);
    const [n1, n2] = nodes as [CacheAgent, CacheAgent, CacheAgent];
    for (const k of ['a', 'b', 'c', 'd']) await n1.set(b(k), b(k), 0, 'default');
    for (const k of ['a', 'b', 'c', 'd']) await n2.get(b(k));
    expect(n2.get(b('a'))).to.be.instanceOf(Buffer); // a is now the most recently used
    n2.resize(2, 1024 * 1024);
    const figures = info(n2);
    expect(figures['cache_max_lines']).to.equal('2');
    expect(figures['cache_lines']).to.equal('2');
    expect(figures['cache_evictions']).to.equal('2');
    expect(n2.get(b('a'))).to.be.instanceOf(Buffer);
    expect(n2.get(b('d'))).to.be.instanceOf(Buffer);
    const miss = n2.get(b('b'));
    expect(miss).to.be.instanceOf(Promise);
    expect(await text(miss)).to.equal('b');
  });

  it('concurrent writers and readers on every node over delayed links: no read older than a completed write', async () => {
    const { net, nodes } = await cluster(100);
    net.maxDelayMs = 3;
    const keys = ['a', 'b', 'c'];
    const history: HistoryOp[] = [];
    let counter = 0;
    const clock = (): number => performance.now();
    const worker = async (agent: CacheAgent, w: number): Promise<void> => {
      for (let i = 0; i < 60; i++) {
        const key = keys[(w * 7 + i) % keys.length]!;
        const start = clock();
        if ((i + w) % 4 === 0) {
          const value = ++counter;
          await agent.set(b(key), b(String(value)), 0, 'default');
          history.push({ kind: 'w', key, value: String(value), start, end: clock(), ok: true });
        } else {
          const got = await agent.get(b(key));
          history.push({
            kind: 'r',
            key,
            value: got === null ? null : got.toString(),
            ok: true,
            start,
            end: clock(),
          });
        }
      }
    };
    await Promise.all(nodes.flatMap((agent, n) => [worker(agent, n * 2), worker(agent, n * 2 + 1)]));
    const violations = findStaleReads(history);
    expect(violations, JSON.stringify(violations.slice(0, 3))).to.deep.equal([]);
    expect(history.filter((o) => o.kind === 'r').length).to.be.greaterThan(200);
  });
});
