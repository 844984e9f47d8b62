/**
 * The node driver against real timers (10 ms ticks), MemoryStorage and the in-process
 * LocalNetwork with partitions: elections, replication in order, proposal outcomes under
 * leadership loss, linearizable reads, restarts, snapshots with InstallSnapshot, leader-stamped
 * time, bootstrap membership for joiners, bounds. Polls with deadlines; never sleeps.
 */
import { expect } from 'chai';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import {
  LeadershipLostError,
  NodeStoppedError,
  NotLeaderError,
  ProposalDroppedError,
  ProposalTimeoutError,
  ReadTimeoutError,
} from './errors.js';
import { LocalNetwork } from './local-transport.js';
import { ConfChangeType, EntryType, MessageType, Role } from './messages.js';
import type { HardState, Message, NodeId, Snapshot } from './messages.js';
import { RaftNode, decodeEntryData, encodeEntryData, readChunks } from './node.js';
import type { AppliedEntry, NodeEvent, PeerTransport, RaftApplication, RaftNodeConfig } from './node.js';
import { MemoryStorage } from './storage.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const IDS: readonly NodeId[] = ['n1', 'n2', 'n3'];

/** A replicated list of strings; apply returns the entry's index. */
class ListApp implements RaftApplication<number> {
  values: string[] = [];
  times: number[] = [];
  lastIndex = 0;
  /** The log index of each of `values` (kept in snapshots, like the values). */
  indexes: number[] = [];
  /**
   * Index -> value of every Normal entry in the state, applied here or restored from a snapshot
   * (a node that installed the leader's snapshot never applies the entries it covers, yet a read
   * there must see them).
   */
  readonly byIndex = new Map<number, string>();
  maxTimeMs = 0;
  restores = 0;

  apply(e: AppliedEntry): number {
    expect(e.index).to.equal(this.lastIndex + 1);
    this.lastIndex = e.index;
    if (e.type === EntryType.Normal) {
      this.values.push(decoder.decode(e.payload));
      this.indexes.push(e.index);
      this.byIndex.set(e.index, decoder.decode(e.payload));
      this.times.push(e.timeMs);
      this.maxTimeMs = Math.max(this.maxTimeMs, e.timeMs);
    }
    return e.index;
  }

  snapshot(): Promise<Uint8Array> {
    // Capture now (synchronously), serialize in chunks off the loop.
    const bytes = encoder.encode(
      JSON.stringify({
        index: this.lastIndex,
        maxTimeMs: this.maxTimeMs,
        values: this.values,
        indexes: this.indexes,
      }),
    );
    let at = 0;
    return readChunks((max) => {
      if (at >= bytes.byteLength) return null;
      const chunk = bytes.subarray(at, at + Math.min(max, 64));
      at += chunk.byteLength;
      return chunk;
    });
  }

  restore(s: Snapshot): void {
    const state = JSON.parse(decoder.decode(s.data)) as {
      index: number;
      maxTimeMs: number;
      values: string[];
      indexes: number[];
    };
    expect(state.index).to.equal(s.metadata.index);
    this.values = state.values;
    this.indexes = state.indexes;
    this.byIndex.clear();
    state.values.forEach((v, i) => this.byIndex.set(state.indexes[i]!, v));
    this.maxTimeMs = state.maxTimeMs;
    this.times = [];
    this.lastIndex = state.index;
    this.restores++;
  }

  appliedTimeMs(): number {
    return this.maxTimeMs;
  }
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Settles a promise into a value so tests can assert on rejections without racing. */
function settle<T>(p: Promise<T>): { done: boolean; value?: T; error?: unknown } {
  const out: { done: boolean; value?: T; error?: unknown } = { done: false };
  p.then(
    (value) => {
      out.done = true;
      out.value = value;
    },
    (error: unknown) => {
      out.done = true;
      out.error = error;
    },
  );
  return out;
}

type Overrides = Partial<Omit<RaftNodeConfig<number>, 'id' | 'storage' | 'transport' | 'application'>>;

class Cluster {
  readonly net = new LocalNetwork();
  readonly storages = new Map<NodeId, MemoryStorage>();
  readonly apps = new Map<NodeId, ListApp>();
  readonly nodes = new Map<NodeId, RaftNode<number>>();
  readonly events: { id: NodeId; event: NodeEvent }[] = [];
  readonly offsets = new Map<NodeId, number>();

  constructor(
    private readonly overrides: Overrides = {},
    private readonly hooks: {
      storage?: (id: NodeId) => MemoryStorage;
      transport?: (id: NodeId, inner: PeerTransport) => PeerTransport;
    } = {},
  ) {}

  async startAll(): Promise<void> {
    for (const id of IDS) await this.start(id, { bootstrap: IDS });
  }

  /** Give the nodes' clocks a monotonic reading (RaftNode then stamps per-term wall + monotonic). */
  monotonic = false;

  clockOf(id: NodeId): Clock {
    const clock: Clock = {
      now: () => Date.now() + (this.offsets.get(id) ?? 0),
      every: (ms, fn) => systemClock.every(ms, fn),
    };
    return this.monotonic ? { ...clock, monotonic: () => performance.now() } : clock;
  }

  async start(id: NodeId, extra: Overrides = {}, storage?: MemoryStorage): Promise<RaftNode<number>> {
    const s = storage ?? this.storages.get(id) ?? this.hooks.storage?.(id) ?? new MemoryStorage();
    this.storages.set(id, s);
    const app = new ListApp();
    this.apps.set(id, app);
    const node = await RaftNode.start<number>({
      id,
      storage: s,
      transport: this.hooks.transport?.(id, this.net.connect(id)) ?? this.net.connect(id),
      application: app,
      tickMs: 10,
      electionTicks: 10,
      heartbeatTicks: 1,
      clock: this.clockOf(id),
      onFatal: (error) => {
        throw error;
      },
      ...this.overrides,
      ...extra,
    });
    node.onEvent((event) => {
      if (this.events.length < 10_000) this.events.push({ id, event });
    });
    this.nodes.set(id, node);
    return node;
  }

  async stop(id: NodeId): Promise<void> {
    const node = this.nodes.get(id);
    this.nodes.delete(id);
    await node?.stop();
  }

  async stopAll(): Promise<void> {
    for (const id of [...this.nodes.keys()]) await this.stop(id);
  }

  node(id: NodeId): RaftNode<number> {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`${id} is not running`);
    return n;
  }

  app(id: NodeId): ListApp {
    return this.apps.get(id)!;
  }

  /** Waits until exactly one running node among `among` is leader and all of them agree on it. */
  async leader(among: readonly NodeId[] = [...this.nodes.keys()]): Promise<NodeId> {
    let found: NodeId | null = null;
    await waitFor(
      () => {
        const leaders = among.filter((id) => this.nodes.get(id)?.isLeader === true);
        if (leaders.length !== 1) return false;
        found = leaders[0]!;
        return among.every((id) => this.nodes.get(id)?.leaderId === found);
      },
      `one leader among ${among.join(',')}`,
    );
    return found!;
  }

  async converged(ids: readonly NodeId[], count: number): Promise<void> {
    await waitFor(
      () => ids.every((id) => this.app(id).values.length >= count),
      `${ids.join(',')} to apply ${count} values`,
    );
    const reference = this.app(ids[0]!).values;
    for (const id of ids) expect(this.app(id).values, id).to.deep.equal(reference);
  }
}

/**
 * MemoryStorage whose sync() takes a few ms (a slow fsync) and remembers what was durable when
 * the last sync resolved, so the transport wrapper can check that nothing is sent before it.
 */
class SlowSyncStorage extends MemoryStorage {
  durableLastIndex = 0;
  durableHardState: HardState = { term: 0, vote: null, commit: 0 };
  failWith: Error | null = null;

  override sync(): Promise<void> {
    const last = this.lastIndex();
    const hs = this.getHardState();
    const failure = this.failWith;
    return new Promise((resolve, reject) =>
      setTimeout(() => {
        if (failure !== null) {
          reject(failure);
          return;
        }
        this.durableLastIndex = last;
        this.durableHardState = hs;
        resolve();
      }, 2),
    );
  }
}

/** MemoryStorage whose syncs wait, while `hold` is set, until release() (in call order). */
class GatedStorage extends MemoryStorage {
  hold = false;
  private queue: (() => void)[] = [];

  get waiting(): number {
    return this.queue.length;
  }

  override sync(): Promise<void> {
    if (!this.hold) return Promise.resolve();
    return new Promise((resolve) => this.queue.push(resolve));
  }

  release(): void {
    this.hold = false;
    const q = this.queue;
    this.queue = [];
    for (const resolve of q) resolve();
  }
}

/** Lets the event loop run `n` turns (not a sleep: no timer, only queued work). */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Wraps a transport: every outgoing message must depend only on durable state (Figure 2). */
function durabilityChecker(
  storage: SlowSyncStorage,
  violations: string[],
  inner: PeerTransport,
  early: { count: number } = { count: 0 },
): PeerTransport {
  return {
    send(m: Message): void {
      const hs = storage.durableHardState;
      const problem =
        m.type !== MessageType.PreVote && m.type !== MessageType.PreVoteResp && m.term > hs.term
          ? `term ${m.term} sent, ${hs.term} durable`
          : m.type === MessageType.VoteResp && !m.reject && hs.vote !== m.to
            ? `vote for ${m.to} sent, ${String(hs.vote)} durable`
            : m.type === MessageType.AppResp && !m.reject && m.index > storage.durableLastIndex
              ? `ack of ${m.index} sent, ${storage.durableLastIndex} durable`
              : null;
      // A leader's App may carry entries it has not made durable yet (thesis §10.2.1): it
      // counts itself toward commit only once they are.
      if (
        m.type === MessageType.App &&
        m.entries.length > 0 &&
        m.entries[m.entries.length - 1]!.index > storage.durableLastIndex
      )
        early.count++;
      if (problem !== null && violations.length < 100)
        violations.push(`${m.from}->${m.to} ${m.type}: ${problem}`);
      inner.send(m);
    },
    onMessage: (handler) => inner.onMessage(handler),
    onUnreachable: (handler) => inner.onUnreachable(handler),
  };
}

function payload(s: string): Uint8Array {
  return encoder.encode(s);
}

describe('raft/node: entry time header', () => {
  it('round-trips times up to 2^53 - 1 and keeps the payload', () => {
    for (const t of [0, 1, 0xffff_ffff, 0x1_0000_0000, Date.now(), Number.MAX_SAFE_INTEGER]) {
      const data = encodeEntryData(t, payload('abc'));
      expect(data.byteLength).to.equal(11);
      const d = decodeEntryData(data);
      expect(d.timeMs).to.equal(t);
      expect(decoder.decode(d.payload)).to.equal('abc');
    }
  });

  it('refuses negative or fractional times', () => {
    expect(() => encodeEntryData(-1, payload('x'))).to.throw();
    expect(() => encodeEntryData(1.5, payload('x'))).to.throw();
  });
});

describe('raft/node: three nodes over the local network', function () {
  this.timeout(20_000);
  let c: Cluster;

  afterEach(async () => {
    await c.stopAll();
  });

  it('elects a leader; proposals apply on all three in order, group-committed', async () => {
    c = new Cluster();
    await c.startAll();
    const leader = await c.leader();
    const n = c.node(leader);
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => n.propose(payload(`v${i}`))));
    // Each result is the index the entry applied at: strictly increasing in proposal order.
    for (let i = 1; i < results.length; i++) expect(results[i]).to.equal(results[i - 1]! + 1);
    await c.converged(IDS, 200);
    expect(c.app(leader).values).to.deep.equal(Array.from({ length: 200 }, (_, i) => `v${i}`));
    // Group commit: 200 proposals made together need far fewer syncs.
    expect(n.status().syncs).to.be.lessThan(100);
    for (const id of IDS) expect(c.node(id).status().confState.voters).to.deep.equal(['n1', 'n2', 'n3']);
    const seen = (id: NodeId, type: NodeEvent['type']): boolean =>
      c.events.some((e) => e.id === id && e.event.type === type);
    expect(
      c.events.some(
        (e) => e.id === leader && e.event.type === 'role-changed' && e.event.role === Role.Leader,
      ),
    ).to.equal(true);
    for (const id of IDS) expect(seen(id, 'leader-changed'), id).to.equal(true);
  });

  it('rejects proposals on followers with NotLeaderError naming the leader', async () => {
    c = new Cluster();
    await c.startAll();
    const leader = await c.leader();
    const follower = IDS.find((id) => id !== leader)!;
    const err = await c
      .node(follower)
      .propose(payload('x'))
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).to.be.instanceOf(NotLeaderError);
    expect((err as NotLeaderError).leader).to.equal(leader);
  });

  it('isolated leader: a new leader is elected, the old pending proposals never succeed', async () => {
    c = new Cluster({ proposalTimeoutMs: 3000 });
    await c.startAll();
    const old = await c.leader();
    await c.node(old).propose(payload('before'));
    c.net.isolate(old, IDS);
    const doomed = Array.from({ length: 5 }, (_, i) => settle(c.node(old).propose(payload(`lost${i}`))));
    const rest = IDS.filter((id) => id !== old);
    const fresh = await c.leader(rest);
    expect(fresh).to.not.equal(old);
    await c.node(fresh).propose(payload('after'));
    await waitFor(() => doomed.every((d) => d.done), 'the old leader to give up its proposals');
    for (const d of doomed) {
      expect(d.value, 'a false success').to.equal(undefined);
      expect(
        d.error instanceof LeadershipLostError || d.error instanceof ProposalTimeoutError,
        String(d.error),
      ).to.equal(true);
    }
    c.net.heal();
    await c.leader();
    await c.converged(IDS, 2);
    expect(c.app(old).values).to.deep.equal(['before', 'after']);
  });

  it('readIndex: resolves on leader and follower; a partitioned leader never serves it', async () => {
    c = new Cluster({ readTimeoutMs: 400 });
    await c.startAll();
    const leader = await c.leader();
    const follower = IDS.find((id) => id !== leader)!;
    await c.node(leader).propose(payload('a'));
    // Many reads in one turn travel as one ReadIndex.
    await Promise.all(Array.from({ length: 50 }, () => c.node(leader).readIndex()));
    await c.node(follower).readIndex();
    expect(c.app(follower).values).to.deep.equal(['a']);

    c.net.isolate(leader, IDS);
    const rest = IDS.filter((id) => id !== leader);
    const read = settle(c.node(leader).readIndex());
    const fresh = await c.leader(rest);
    await c.node(fresh).propose(payload('b'));
    await waitFor(() => read.done, 'the partitioned read to finish');
    expect(read.error, 'a stale read was served').to.not.equal(undefined);
    expect(read.error instanceof ReadTimeoutError || read.error instanceof NotLeaderError).to.equal(true);
    expect(c.app(leader).values).to.deep.equal(['a']);
  });

  it('a node restarted from its storage catches up', async () => {
    c = new Cluster();
    await c.startAll();
    let leader = await c.leader();
    for (let i = 0; i < 10; i++) await c.node(leader).propose(payload(`a${i}`));
    const victim = IDS.find((id) => id !== leader)!;
    await c.converged(IDS, 10);
    await c.stop(victim);
    leader = await c.leader(IDS.filter((id) => id !== victim));
    for (let i = 0; i < 10; i++) await c.node(leader).propose(payload(`b${i}`));
    const restarted = await c.start(victim);
    expect(restarted.status().term).to.be.greaterThan(0);
    await c.converged(IDS, 20);
    expect(c.app(victim).values.slice(-1)).to.deep.equal(['b9']);
  });

  it('takes snapshots, compacts, and a wiped node catches up through InstallSnapshot', async () => {
    c = new Cluster({ snapshotEntries: 20, snapshotCatchUpEntries: 5 });
    await c.startAll();
    const leader = await c.leader();
    const n = c.node(leader);
    await Promise.all(Array.from({ length: 30 }, (_, i) => n.propose(payload(`s${i}`))));
    for (let i = 30; i < 60; i++) await n.propose(payload(`s${i}`));
    await waitFor(() => n.status().snapshotIndex >= 40, 'leader snapshots');
    expect(n.status().firstIndex).to.be.greaterThan(20);
    expect(c.events.some((e) => e.id === leader && e.event.type === 'snapshot-taken')).to.equal(true);

    // A lost disk: the node is removed, wiped (new empty storage, no membership, no
    // bootstrap) and added back, so the leader tracks it afresh and must send the snapshot.
    const victim = IDS.find((id) => id !== leader)!;
    await c.stop(victim);
    await n.proposeConfChange({ type: ConfChangeType.RemoveNode, node: victim });
    await c.start(victim, {}, new MemoryStorage());
    await n.proposeConfChange({ type: ConfChangeType.AddVoter, node: victim });
    await c.converged(IDS, 60);
    expect(c.app(victim).restores).to.equal(1);
    expect([...c.node(victim).status().confState.voters].sort()).to.deep.equal(['n1', 'n2', 'n3']);
    // It keeps replicating after the snapshot.
    await n.propose(payload('tail'));
    await c.converged(IDS, 61);
  });

  it('leader-stamped time never goes back, across clock jumps and a new leader with a slow clock', async () => {
    c = new Cluster();
    await c.startAll();
    const first = await c.leader();
    c.offsets.set(first, 1_000_000);
    for (let i = 0; i < 5; i++) await c.node(first).propose(payload(`fast${i}`));
    c.offsets.set(first, -1_000_000); // the wall clock jumps back
    for (let i = 0; i < 5; i++) await c.node(first).propose(payload(`back${i}`));
    const maxFirst = Math.max(...c.app(first).times);
    expect(maxFirst).to.be.at.least(Date.now() + 900_000);
    await c.converged(IDS, 10);
    await c.stop(first);
    const rest = IDS.filter((id) => id !== first);
    const second = await c.leader(rest);
    for (let i = 0; i < 5; i++) await c.node(second).propose(payload(`slow${i}`));
    await c.converged(rest, 15);
    for (const id of rest) {
      const times = c.app(id).times;
      for (let i = 1; i < times.length; i++) expect(times[i]).to.be.at.least(times[i - 1]!);
      expect(times[times.length - 1]).to.be.at.least(maxFirst);
    }
  });

  it('with a monotonic clock, a wall-clock step during a term does not move leader time', async () => {
    c = new Cluster();
    c.monotonic = true;
    await c.startAll();
    const leader = await c.leader();
    await c.node(leader).propose(payload('before'));
    const before = Math.max(...c.app(leader).times);
    // The leader's wall clock steps 1,000 s ahead mid-term (NTP, a VM resume): leases judged by
    // leader time must not all run out at once.
    c.offsets.set(leader, 1_000_000);
    for (let i = 0; i < 3; i++) await c.node(leader).propose(payload(`after${i}`));
    const after = Math.max(...c.app(leader).times);
    expect(after).to.be.at.least(before);
    expect(after - before).to.be.below(60_000);
    expect(c.node(leader).timeMs()).to.be.below(Date.now() + 60_000);
  });

  it('bootstrap puts the membership in the log: a joiner with empty storage replays it', async () => {
    c = new Cluster();
    await c.startAll();
    const leader = await c.leader();
    await c.node(leader).propose(payload('x'));
    // Indexes 1..3 are the bootstrap AddVoter entries, at term 1.
    const boot = c.storages.get(leader)!.entries(1, 4);
    expect(boot.map((e) => [e.type, e.term])).to.deep.equal([
      [EntryType.ConfChange, 1],
      [EntryType.ConfChange, 1],
      [EntryType.ConfChange, 1],
    ]);
    const joinerIds = [...IDS, 'n4'];
    await c.start('n4', {}, new MemoryStorage());
    const cs = await c.node(leader).proposeConfChange({ type: ConfChangeType.AddVoter, node: 'n4' });
    expect(cs.voters).to.deep.equal(joinerIds);
    expect(
      c.events.some(
        (e) => e.id === leader && e.event.type === 'conf-changed' && e.event.change.node === 'n4',
      ),
    ).to.equal(true);
    await waitFor(() => c.app('n4').values.length === 1, 'n4 to catch up');
    await c.node(leader).propose(payload('y'));
    await c.converged(joinerIds, 2);
    expect(c.node('n4').status().confState.voters).to.deep.equal(joinerIds);
    expect(c.node('n4').status().role).to.equal(Role.Follower);
    expect(c.node('n4').leaderId).to.equal(leader);
  });

  it('bounds proposals in flight and rejects pending ones on stop', async () => {
    c = new Cluster({ maxPendingProposals: 5 });
    await c.startAll();
    const leader = await c.leader();
    const n = c.node(leader);
    const all = Array.from({ length: 8 }, (_, i) => settle(n.propose(payload(`p${i}`))));
    await waitFor(() => all.slice(5).every((s) => s.done), 'over-bound proposals to reject');
    for (const s of all.slice(5)) expect(s.error).to.be.instanceOf(ProposalDroppedError);
    await waitFor(() => all.every((s) => s.done), 'the first five');
    for (const s of all.slice(0, 5)) expect(s.value).to.be.a('number');

    // Cut the followers so the next proposal cannot commit, then stop: it rejects.
    c.net.isolate(leader, IDS);
    const stuck = settle(n.propose(payload('stuck')));
    await c.stop(leader);
    await waitFor(() => stuck.done, 'the stuck proposal');
    expect(stuck.error).to.be.instanceOf(NodeStoppedError);
    const late = await n.propose(payload('late')).then(
      () => null,
      (e: unknown) => e,
    );
    expect(late).to.be.instanceOf(NodeStoppedError);
  });
  it('promises nothing before it is durable, a leader replicates while it syncs; proposals during a slow sync share the next one', async () => {
    const violations: string[] = [];
    const early = { count: 0 };
    const storages = new Map<NodeId, SlowSyncStorage>();
    c = new Cluster(
      {},
      {
        storage: (id) => {
          const s = new SlowSyncStorage();
          storages.set(id, s);
          return s;
        },
        transport: (id, inner) => durabilityChecker(storages.get(id)!, violations, inner, early),
      },
    );
    await c.startAll();
    const leader = await c.leader();
    const n = c.node(leader);
    const before = n.status().syncs;
    // 300 proposals in 30 bursts, each burst made while earlier syncs are in flight.
    const all: Promise<number>[] = [];
    for (let burst = 0; burst < 30; burst++) {
      for (let i = 0; i < 10; i++) all.push(n.propose(payload(`g${burst}.${i}`)));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(all);
    await c.converged(IDS, 300);
    const syncs = n.status().syncs - before;
    expect(syncs).to.be.greaterThan(0);
    expect(syncs, 'one sync per burst at most').to.be.lessThan(30);
    // An election with votes under slow syncs: isolate the leader, then heal.
    c.net.isolate(leader, IDS);
    const fresh = await c.leader(IDS.filter((id) => id !== leader));
    await c.node(fresh).propose(payload('after'));
    c.net.heal();
    await c.converged(IDS, 301);
    expect(violations).to.deep.equal([]);
    expect(early.count, 'Apps sent while the leader syncs').to.be.greaterThan(0);
  });

  for (const pipeline of [4, 1]) {
    it(`${pipeline > 1 ? 'pipelined: a proposal made while the leader syncs is written and replicated at once' : 'one Ready at a time: a proposal made while the leader syncs waits for that sync'}; nothing applies before the leader's own sync`, async () => {
      const gates = new Map<NodeId, GatedStorage>();
      const apps: { from: NodeId; values: string[] }[] = [];
      c = new Cluster(
        { maxReadiesInFlight: pipeline },
        {
          storage: (id) => {
            const s = new GatedStorage();
            gates.set(id, s);
            return s;
          },
          transport: (id, inner) => ({
            send(m: Message): void {
              if (m.type === MessageType.App && m.entries.length > 0) {
                apps.push({
                  from: id,
                  values: m.entries
                    .filter((e) => e.type === EntryType.Normal)
                    .map((e) => decoder.decode(decodeEntryData(e.data).payload)),
                });
              }
              inner.send(m);
            },
            onMessage: (handler) => inner.onMessage(handler),
            onUnreachable: (handler) => inner.onUnreachable(handler),
          }),
        },
      );
      await c.startAll();
      const leader = await c.leader();
      const n = c.node(leader);
      const gate = gates.get(leader)!;
      await n.propose(payload('warm'));
      gate.hold = true;
      const a = settle(n.propose(payload('a')));
      await waitFor(() => gate.waiting === 1, 'the leader to sync a');
      const aIndex = gate.lastIndex();
      const b = settle(n.propose(payload('b')));
      const sentB = (): boolean => apps.some((m) => m.from === leader && m.values.includes('b'));
      if (pipeline > 1) {
        // b is staged and its App sent while a's sync is still held.
        await waitFor(sentB, 'the App carrying b');
        expect(gate.lastIndex()).to.equal(aIndex + 1);
        expect(gate.waiting, 'b has its own sync queued behind a').to.equal(2);
        // Both followers acknowledged a (a majority without the leader) and they apply it...
        await waitFor(
          () => IDS.filter((id) => id !== leader).every((id) => c.app(id).values.includes('a')),
          'the followers to apply a',
        );
      } else {
        await turns(20);
        expect(sentB(), 'no App for b before a is durable').to.equal(false);
        expect(gate.lastIndex(), 'b not staged yet').to.equal(aIndex);
      }
      // ...but the leader applies nothing it has not made durable itself.
      await turns(20);
      expect(a.done, 'a resolved before the leader synced it').to.equal(false);
      expect(c.app(leader).values).to.not.include('a');
      gate.release();
      await waitFor(() => a.done && b.done, 'a and b to resolve');
      expect(a.error).to.equal(undefined);
      expect(b.error).to.equal(undefined);
      expect(a.value).to.equal(aIndex);
      expect(b.value).to.equal(aIndex + 1);
      await c.converged(IDS, 3);
    });
  }

  it('a failed sync stops the node: nothing sent after it, pending proposals rejected, onFatal told', async () => {
    const fatal: unknown[] = [];
    const storages = new Map<NodeId, SlowSyncStorage>();
    c = new Cluster(
      { onFatal: (e) => fatal.push(e) },
      {
        storage: (id) => {
          const s = new SlowSyncStorage();
          storages.set(id, s);
          return s;
        },
      },
    );
    await c.startAll();
    const leader = await c.leader();
    const n = c.node(leader);
    await n.propose(payload('ok'));
    await c.converged(IDS, 1);
    storages.get(leader)!.failWith = new Error('ENOSPC: no space left on device');
    const doomed = settle(n.propose(payload('never')));
    await waitFor(() => doomed.done, 'the proposal to reject');
    expect(doomed.error).to.be.instanceOf(NodeStoppedError);
    expect(String((doomed.error as Error).message)).to.contain('ENOSPC');
    expect(fatal).to.have.length(1);
    // The App carrying 'never' may have gone out before the failed sync (thesis §10.2.1): the
    // followers may commit it (its outcome is unknown to the client), and go on either way.
    const rest = IDS.filter((id) => id !== leader);
    const fresh = await c.leader(rest);
    await c.node(fresh).propose(payload('next'));
    const values = c.app(fresh).values;
    await c.converged(rest, values.includes('never') ? 3 : 2);
    expect([
      ['ok', 'next'],
      ['ok', 'never', 'next'],
    ]).to.deep.include(c.app(fresh).values);
  });
  it('without CheckQuorum an isolated leader keeps its role: proposals and reads time out', async () => {
    c = new Cluster({ checkQuorum: false, proposalTimeoutMs: 300, readTimeoutMs: 300 });
    await c.startAll();
    const leader = await c.leader();
    await c.node(leader).propose(payload('a'));
    c.net.isolate(leader, IDS);
    const write = settle(c.node(leader).propose(payload('lost')));
    const read = settle(c.node(leader).readIndex());
    await waitFor(() => write.done && read.done, 'timeouts');
    expect(write.error).to.be.instanceOf(ProposalTimeoutError);
    expect(read.error).to.be.instanceOf(ReadTimeoutError);
    expect(c.node(leader).isLeader).to.equal(true);
    expect(c.node(leader).status().pendingProposals).to.equal(0);
    expect(c.node(leader).status().pendingReads).to.equal(0);
  });

  it('restarts from a compacted storage: the application is restored from the snapshot', async () => {
    c = new Cluster({ snapshotEntries: 10, snapshotCatchUpEntries: 0 });
    await c.startAll();
    const leader = await c.leader();
    for (let i = 0; i < 25; i++) await c.node(leader).propose(payload(`r${i}`));
    await c.converged(IDS, 25);
    const victim = IDS.find((id) => id !== leader)!;
    await waitFor(() => c.node(victim).status().snapshotIndex >= 20, 'the follower to snapshot');
    const stampBefore = c.node(victim).status().lastStampMs;
    await c.stop(victim);
    const storage = c.storages.get(victim)!;
    expect(storage.firstIndex()).to.be.greaterThan(1);
    const restarted = await c.start(victim);
    expect(c.app(victim).restores).to.equal(1);
    expect(restarted.appliedIndex).to.equal(storage.snapshot().metadata.index);
    // The last stamped time comes back from the log and the restored application on start.
    expect(restarted.status().lastStampMs).to.equal(stampBefore);
    await c.node(leader).propose(payload('more'));
    await c.converged(IDS, 26);
  });
  it('snapshots a large state only after as many bytes as it holds were applied (the AOF-rewrite rule)', async () => {
    c = new Cluster({ snapshotEntries: 5, snapshotCatchUpEntries: 0 });
    await c.startAll();
    const leader = await c.leader();
    const n = c.node(leader);
    const taken = (): number => c.events.filter((e) => e.event.type === 'snapshot-taken').length;
    // A 20 KB value, then small ones: the first snapshot (every node) holds the 20 KB.
    await n.propose(payload('x'.repeat(20_000)));
    for (let i = 0; i < 5; i++) await n.propose(payload(`a${i}`));
    await waitFor(() => IDS.every((id) => c.node(id).status().snapshotIndex >= 5), 'the first snapshots');
    const first = taken();
    // 60 small entries (about 2 KB): past snapshotEntries many times, far from 20 KB.
    for (let i = 0; i < 60; i++) await n.propose(payload(`b${i}`));
    await c.converged(IDS, 66);
    expect(taken(), 'no snapshot before 20 KB of entries were applied').to.equal(first);
    // Then 24 KB more: every node snapshots again.
    const before = Math.max(...IDS.map((id) => c.node(id).status().snapshotIndex));
    for (let i = 0; i < 2; i++) await n.propose(payload('y'.repeat(12_000)));
    await waitFor(
      () => IDS.every((id) => c.node(id).status().snapshotIndex > before),
      'the second snapshots',
    );
  });

  it('under drops and rolling partitions: every success is applied where it said, reads see every earlier success', async () => {
    c = new Cluster({ proposalTimeoutMs: 1000, readTimeoutMs: 300 });
    await c.startAll();
    await c.leader();
    c.net.dropRate = 0.05;
    const resolved: { value: string; index: number }[] = [];
    const neverAppended: string[] = [];
    const unknown: string[] = [];
    const violations: string[] = [];
    let reads = 0;
    let seq = 0;
    const deadline = Date.now() + 2500;
    let victim = 0;
    const nemesis = setInterval(() => {
      c.net.heal();
      c.net.isolate(IDS[victim++ % IDS.length]!, IDS);
    }, 300);
    const client = async (): Promise<void> => {
      while (Date.now() < deadline) {
        const leader = [...c.nodes.values()].find((n) => n.isLeader);
        if (leader === undefined) {
          await waitFor(
            () => [...c.nodes.values()].some((n) => n.isLeader) || Date.now() > deadline,
            'a leader',
          );
          continue;
        }
        const value = `c${seq++}`;
        await leader.propose(payload(value)).then(
          (index) => {
            resolved.push({ value, index });
          },
          (e: unknown) => {
            if (e instanceof NotLeaderError || e instanceof ProposalDroppedError) neverAppended.push(value);
            else if (e instanceof LeadershipLostError || e instanceof ProposalTimeoutError)
              unknown.push(value);
            else throw e;
          },
        );
      }
    };
    const reader = async (id: NodeId): Promise<void> => {
      while (Date.now() < deadline) {
        const before = resolved.slice();
        const node = c.node(id);
        const ok = await node.readIndex().then(
          () => true,
          (e: unknown) => {
            if (e instanceof NotLeaderError || e instanceof ReadTimeoutError) return false;
            throw e;
          },
        );
        if (!ok) {
          await waitFor(() => node.leaderId !== null || Date.now() > deadline, 'a known leader');
          continue;
        }
        reads++;
        const seen = c.app(id).byIndex;
        for (const r of before) {
          if (seen.get(r.index) !== r.value && violations.length < 10)
            violations.push(`${id} read missed ${r.value}@${r.index} (has ${String(seen.get(r.index))})`);
        }
      }
    };
    await Promise.all([client(), client(), client(), client(), ...IDS.map((id) => reader(id))]);
    clearInterval(nemesis);
    c.net.heal();
    c.net.dropRate = 0;
    const leader = c.node(await c.leader());
    await leader.propose(payload('final'));
    // Entries of unknown outcome may commit too: wait until everyone has the final one.
    await waitFor(() => IDS.every((id) => c.app(id).values.includes('final')), 'the final value everywhere');
    for (const id of IDS) expect(c.app(id).values, id).to.deep.equal(c.app(IDS[0]!).values);

    expect(violations).to.deep.equal([]);
    expect(resolved.length, 'some proposals succeeded').to.be.greaterThan(20);
    expect(reads, 'some reads succeeded').to.be.greaterThan(20);
    const applied = c.app(IDS[0]!);
    for (const r of resolved) expect(applied.byIndex.get(r.index), r.value).to.equal(r.value);
    const inLog = new Set(applied.values);
    expect(inLog.size, 'no value applied twice').to.equal(applied.values.length);
    for (const v of neverAppended) expect(inLog.has(v), v).to.equal(false);
  });
  it('a failed snapshot capture is reported and retried; the node keeps serving', async () => {
    c = new Cluster({ snapshotEntries: 5, snapshotCatchUpEntries: 0 });
    await c.startAll();
    const leader = await c.leader();
    const app = c.app(leader);
    let failures = 0;
    const real = app.snapshot.bind(app);
    app.snapshot = () => (failures++ < 2 ? Promise.reject(new Error('capture failed')) : real());
    for (let i = 0; i < 20; i++) await c.node(leader).propose(payload(`f${i}`));
    await waitFor(() => c.node(leader).status().snapshotIndex > 0, 'a snapshot after the failures');
    const failed = c.events.filter((e) => e.id === leader && e.event.type === 'snapshot-failed');
    expect(failed).to.have.length(2);
    await c.converged(IDS, 20);
  });
});
