/**
 * Unit specs of the pure core, driven through its public API by a tiny synchronous harness:
 * each node's Ready is persisted into its MemoryStorage, its messages are queued and then
 * delivered (or dropped by a partition), committed entries are applied. Deterministic: a
 * seeded PRNG per node, no timers. The randomized simulation lives in raft/sim/.
 */
import { expect } from 'chai';
import { RaftCore } from './core.js';
import type { BugFlags, RaftConfig } from './core.js';
import { LostEntriesError, NotLeaderError, ProposalDroppedError } from './errors.js';
import {
  ConfChangeType,
  decodeConfChange,
  EntryType,
  entrySize,
  MessageType,
  Role,
  message,
} from './messages.js';
import type { Entry, Message, NodeId, ReadState, Snapshot } from './messages.js';
import { ProgressState } from './progress.js';
import { MemoryStorage } from './storage.js';

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const enc = new TextEncoder();
const dec = new TextDecoder();

interface TestNode {
  id: NodeId;
  storage: MemoryStorage;
  core: RaftCore;
  applied: Entry[];
  readStates: ReadState[];
  snapshots: Snapshot[];
}

type Options = Partial<Omit<RaftConfig, 'id' | 'storage'>>;

const defaults = {
  electionTicks: 10,
  heartbeatTicks: 1,
  maxInflightMsgs: 256,
  maxSizePerMsg: 1024 * 1024,
  preVote: false,
  checkQuorum: false,
};

class Cluster {
  readonly nodes = new Map<NodeId, TestNode>();
  queue: Message[] = [];
  /** Every message delivered, in order (for transcripts and counting). */
  delivered: Message[] = [];
  /** Directed links that drop messages: "from->to". */
  readonly cut = new Set<string>();
  /** Extra drop rule. */
  drop: ((m: Message) => boolean) | null = null;

  constructor(
    ids: NodeId[],
    readonly options: Options = {},
    private readonly seed = 1,
  ) {
    for (const id of ids) this.add(id, new MemoryStorage({ voters: ids }));
  }

  add(id: NodeId, storage: MemoryStorage, extra: Options = {}): TestNode {
    const index = this.nodes.size + 1;
    const core = new RaftCore({
      ...defaults,
      random: mulberry32(this.seed * 1000 + index),
      ...this.options,
      ...extra,
      id,
      storage,
    });
    const node: TestNode = { id, storage, core, applied: [], readStates: [], snapshots: [] };
    this.nodes.set(id, node);
    return node;
  }

  /** Rebuilds a node's core from its storage (a crash and restart). */
  restart(id: NodeId, extra: Options = {}): TestNode {
    const old = this.n(id);
    const core = new RaftCore({
      ...defaults,
      random: mulberry32(this.seed * 7777),
      ...this.options,
      applied: old.applied.length > 0 ? old.applied[old.applied.length - 1]!.index : 0,
      ...extra,
      id,
      storage: old.storage,
    });
    old.core = core;
    return old;
  }

  n(id: NodeId): TestNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  core(id: NodeId): RaftCore {
    return this.n(id).core;
  }

  /** Drains one node's Ready loop following the Ready contract. */
  processReady(id: NodeId): void {
    const node = this.n(id);
    while (node.core.hasReady()) {
      const rd = node.core.ready();
      if (rd.hardState !== null) node.storage.setHardState(rd.hardState);
      if (rd.snapshot !== null) {
        node.storage.applySnapshot(rd.snapshot);
        node.snapshots.push(rd.snapshot);
      }
      node.storage.append(rd.entries);
      this.queue.push(...rd.messages);
      for (const e of rd.committedEntries) {
        node.applied.push(e);
        if (e.type === EntryType.ConfChange) {
          node.storage.setConfState(node.core.applyConfChange(decodeConfChange(e.data)));
        }
      }
      node.readStates.push(...rd.readStates);
      node.core.advance();
    }
  }

  blocked(m: Message): boolean {
    return (
      this.cut.has(`${m.from}->${m.to}`) || (this.drop !== null && this.drop(m)) || !this.nodes.has(m.to)
    );
  }

  /** Delivers what is queued now; returns how many were delivered. */
  deliver(): number {
    const q = this.queue;
    this.queue = [];
    let count = 0;
    for (const m of q) {
      if (this.blocked(m)) continue;
      this.delivered.push(m);
      if (this.delivered.length > 100_000) this.delivered.splice(0, 50_000);
      this.n(m.to).core.step(m);
      count++;
    }
    return count;
  }

  /** Runs Ready loops and deliveries until quiet. */
  stabilize(): void {
    for (let round = 0; round < 10_000; round++) {
      for (const id of this.nodes.keys()) this.processReady(id);
      if (this.queue.length === 0) return;
      this.deliver();
    }
    throw new Error('cluster did not quiesce');
  }

  /** `ticks` rounds of: tick every node (or the given ones), then stabilize. */
  tick(ticks: number, ids: NodeId[] = [...this.nodes.keys()]): void {
    for (let i = 0; i < ticks; i++) {
      for (const id of ids) this.core(id).tick();
      this.stabilize();
    }
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}->${other}`);
      this.cut.add(`${other}->${id}`);
    }
  }

  heal(): void {
    this.cut.clear();
    this.drop = null;
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.core.status().role === Role.Leader).map((n) => n.id);
  }

  /** Elects `id` by an explicit campaign. */
  elect(id: NodeId): void {
    this.core(id).campaign();
    this.stabilize();
    expect(this.core(id).status().role).to.equal(Role.Leader);
  }

  logTerms(id: NodeId): number[] {
    const s = this.n(id).storage;
    const out: number[] = [];
    for (let i = s.firstIndex(); i <= s.lastIndex(); i++) out.push(s.term(i));
    return out;
  }

  appliedData(id: NodeId): string[] {
    return this.n(id)
      .applied.filter((e) => e.type === EntryType.Normal)
      .map((e) => dec.decode(e.data));
  }

  propose(id: NodeId, ...data: string[]): void {
    for (const d of data) this.core(id).propose(enc.encode(d));
    this.stabilize();
  }
}

function entries(terms: number[]): Entry[] {
  return terms.map((term, i) => ({
    index: i + 1,
    term,
    type: EntryType.Normal,
    data: enc.encode(`${i + 1}@${term}`),
  }));
}

/** A storage holding a log with the given terms and a hard state. */
function storageWith(voters: NodeId[], terms: number[], term: number, commit = 0): MemoryStorage {
  const s = new MemoryStorage({ voters });
  s.append(entries(terms));
  s.setHardState({ term, vote: null, commit });
  return s;
}

function transcript(c: Cluster): string {
  return JSON.stringify(c.delivered, (_k, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v));
}

describe('RaftCore', () => {
  describe('pipelined Readys (maxReadiesInFlight)', () => {
    const data = (es: readonly Entry[]): string[] =>
      es.filter((e) => e.type === EntryType.Normal).map((e) => dec.decode(e.data));

    it('hands out each entry once, counts the leader only at its advance, applies only after', () => {
      const c = new Cluster(['a', 'b', 'c'], { maxReadiesInFlight: 3 });
      c.elect('a');
      const a = c.core('a');
      const storage = c.n('a').storage;
      a.propose(enc.encode('x'));
      const rd1 = a.ready();
      expect(data(rd1.entries)).to.deep.equal(['x']);
      expect(rd1.earlyMessages, 'the App goes before the persist').to.equal(2);
      storage.append(rd1.entries);
      c.queue.push(...rd1.messages.slice(0, rd1.earlyMessages));
      // A second proposal while x is still being persisted: a Ready with y alone.
      a.propose(enc.encode('y'));
      expect(a.hasReady()).to.equal(true);
      const rd2 = a.ready();
      expect(data(rd2.entries)).to.deep.equal(['y']);
      storage.append(rd2.entries);
      c.queue.push(...rd2.messages.slice(0, rd2.earlyMessages));
      const commitBefore = a.status().commit;
      // The followers persist and acknowledge both (a majority without the leader).
      c.deliver();
      c.processReady('b');
      c.processReady('c');
      c.deliver();
      const xy = a.status().lastIndex;
      expect(a.status().commit, 'committed by the followers alone').to.equal(xy);
      expect(commitBefore).to.be.below(xy);
      // Committed, but handed out to apply only in a Ready after the two in flight.
      const rd3 = a.ready();
      expect(rd3.entries).to.deep.equal([]);
      expect(data(rd3.committedEntries)).to.deep.equal(['x', 'y']);
      expect(a.hasReady(), 'three in flight: the bound').to.equal(false);
      expect(() => a.ready()).to.throw(/before advance/);
      a.advance();
      a.advance();
      a.advance();
      expect(a.hasReady()).to.equal(false);
      expect(a.status().applied).to.equal(xy);
    });

    it('a leader alone commits only what its own advance acknowledged, in order', () => {
      const c = new Cluster(['a'], { maxReadiesInFlight: 2 });
      c.elect('a');
      const a = c.core('a');
      const storage = c.n('a').storage;
      const start = a.status().commit;
      a.propose(enc.encode('x'));
      const rd1 = a.ready();
      storage.append(rd1.entries);
      a.propose(enc.encode('y'));
      const rd2 = a.ready();
      storage.append(rd2.entries);
      expect(data(rd2.entries)).to.deep.equal(['y']);
      expect(a.status().commit).to.equal(start);
      a.advance();
      expect(a.status().commit, 'x durable: x commits, y not yet').to.equal(rd1.entries[0]!.index);
      a.advance();
      expect(a.status().commit).to.equal(rd2.entries[0]!.index);
    });

    it('with one Ready in flight (the default) nothing more is handed out before advance', () => {
      const c = new Cluster(['a', 'b', 'c']);
      c.elect('a');
      const a = c.core('a');
      a.propose(enc.encode('x'));
      a.ready();
      a.propose(enc.encode('y'));
      expect(a.hasReady()).to.equal(false);
      a.advance();
      expect(a.hasReady()).to.equal(true);
      expect(data(a.ready().entries)).to.deep.equal(['y']);
    });
  });

  describe('elections (§3.4, §5.2)', () => {
    it('ticking alone elects exactly one leader; everyone agrees', () => {
      for (const seed of [1, 2, 3, 4, 5]) {
        const c = new Cluster(['a', 'b', 'c'], {}, seed);
        for (let i = 0; i < 100 && c.leaders().length === 0; i++) c.tick(1);
        const leaders = c.leaders();
        expect(leaders, `seed ${seed}`).to.have.length(1);
        const term = c.core(leaders[0]!).status().term;
        for (const n of c.nodes.values()) {
          expect(n.core.status().leader).to.equal(leaders[0]);
          expect(n.core.status().term).to.equal(term);
        }
        // Thesis §6.4: the new leader's empty entry commits and is applied everywhere.
        for (const n of c.nodes.values()) {
          expect(n.applied.map((e) => e.type)).to.deep.equal([EntryType.Empty]);
        }
      }
    });

    it('election timeouts are randomized in [electionTicks, 2*electionTicks) from the injected PRNG', () => {
      const firstCampaign = new Set<number>();
      for (let seed = 1; seed <= 20; seed++) {
        const storage = new MemoryStorage({ voters: ['a', 'b', 'c'] });
        const core = new RaftCore({ ...defaults, id: 'a', storage, random: mulberry32(seed) });
        let ticks = 0;
        while (core.status().role === Role.Follower && ticks < 100) {
          core.tick();
          ticks++;
        }
        expect(core.status().role).to.equal(Role.Candidate);
        expect(ticks).to.be.within(10, 19);
        firstCampaign.add(ticks);
      }
      expect(firstCampaign.size).to.be.greaterThan(3);
    });

    it('the same seed gives byte-identical message transcripts', () => {
      const run = (seed: number) => {
        const c = new Cluster(['a', 'b', 'c'], { preVote: true, checkQuorum: true }, seed);
        c.tick(40);
        const leader = c.leaders()[0]!;
        c.propose(leader, 'x', 'y');
        c.isolate(leader);
        c.tick(40);
        return transcript(c);
      };
      expect(run(9)).to.equal(run(9));
      expect(run(9).length).to.be.greaterThan(1000);
    });

    it('a candidate with an out-of-date log is refused (§5.4.1); the voteWithoutLogCheck bug elects it', () => {
      for (const bug of [false, true]) {
        const c = new Cluster([]);
        const bugs: BugFlags = { voteWithoutLogCheck: bug };
        c.add('a', storageWith(['a', 'b', 'c'], [1, 1], 1), { bugs });
        c.add('b', storageWith(['a', 'b', 'c'], [1, 1], 1), { bugs });
        c.add('c', storageWith(['a', 'b', 'c'], [1], 1), { bugs });
        c.core('c').campaign();
        c.stabilize();
        expect(c.core('c').status().role).to.equal(bug ? Role.Leader : Role.Follower);
      }
    });

    it('votes at most once per term (Election Safety); the forgetVote bug votes twice', () => {
      for (const bug of [false, true]) {
        const core = new RaftCore({
          ...defaults,
          id: 'a',
          storage: new MemoryStorage({ voters: ['a', 'b', 'c'] }),
          random: mulberry32(1),
          bugs: { forgetVote: bug },
        });
        core.step(message({ type: MessageType.Vote, from: 'b', to: 'a', term: 1 }));
        core.step(message({ type: MessageType.Vote, from: 'c', to: 'a', term: 1 }));
        const resp = core.ready().messages.filter((m) => m.type === MessageType.VoteResp);
        expect(resp.map((m) => [m.to, m.reject])).to.deep.equal([
          ['b', false],
          ['c', !bug],
        ]);
        core.advance();
      }
    });

    it('persists the vote before the VoteResp leaves (hard state in the same Ready)', () => {
      const core = new RaftCore({
        ...defaults,
        id: 'a',
        storage: new MemoryStorage({ voters: ['a', 'b', 'c'] }),
        random: mulberry32(1),
      });
      core.step(message({ type: MessageType.Vote, from: 'b', to: 'a', term: 3 }));
      const rd = core.ready();
      expect(rd.hardState).to.deep.equal({ term: 3, vote: 'b', commit: 0 });
      expect(rd.messages[0]!.type).to.equal(MessageType.VoteResp);
    });

    it('restarts from storage with its term, vote, commit and log', () => {
      const c = new Cluster(['a', 'b', 'c']);
      c.elect('a');
      c.propose('a', 'one', 'two');
      const before = c.core('b').status();
      c.restart('b');
      const after = c.core('b').status();
      expect([after.term, after.vote, after.commit, after.lastIndex, after.applied]).to.deep.equal([
        before.term,
        before.vote,
        before.commit,
        before.lastIndex,
        before.applied,
      ]);
      c.propose('a', 'three');
      expect(c.appliedData('b')).to.deep.equal(['one', 'two', 'three']);
      // Restarting with applied = 0 hands every committed entry out again, in order.
      const node = c.restart('b', { applied: 0 });
      const rd = node.core.ready();
      expect(rd.committedEntries.map((e) => e.index)).to.deep.equal(node.applied.map((e) => e.index));
      node.core.advance();
    });
  });

  describe('PreVote (§9.6) and CheckQuorum (§6.2, §4.2.3)', () => {
    for (const preVote of [true, false]) {
      it(`a node cut off and rejoining ${preVote ? 'does not disrupt' : 'disrupts (without PreVote)'} the leader`, () => {
        const c = new Cluster(['a', 'b', 'c'], { preVote });
        c.elect('a');
        const term = c.core('a').status().term;
        c.isolate('c');
        c.tick(60);
        expect(c.core('a').status().role).to.equal(Role.Leader);
        const cTerm = c.core('c').status().term;
        if (preVote) expect(cTerm).to.equal(term);
        else expect(cTerm).to.be.greaterThan(term);
        c.heal();
        // Rejoining: it campaigns before any heartbeat reaches it.
        c.core('c').campaign();
        c.stabilize();
        c.tick(30);
        if (preVote) {
          expect(c.leaders()).to.deep.equal(['a']);
          expect(c.core('a').status().term).to.equal(term);
        } else {
          expect(c.core('a').status().term).to.be.greaterThan(term);
        }
        expect(c.leaders()).to.have.length(1);
      });
    }

    for (const checkQuorum of [true, false]) {
      it(`an isolated leader ${checkQuorum ? 'steps down' : 'stays leader (without CheckQuorum)'}; the majority elects another`, () => {
        const c = new Cluster(['a', 'b', 'c'], { checkQuorum, preVote: true });
        c.elect('a');
        c.isolate('a');
        c.tick(50);
        // Stepped down (and, cut off, it now only tries pre-votes), or still leader without CheckQuorum.
        if (checkQuorum) expect(c.core('a').status().role).to.not.equal(Role.Leader);
        else expect(c.core('a').status().role).to.equal(Role.Leader);
        const others = c.leaders().filter((id) => id !== 'a');
        expect(others).to.have.length(1);
        if (checkQuorum) expect(() => c.core('a').propose(enc.encode('x'))).to.throw(NotLeaderError);
        else expect(() => c.core('a').propose(enc.encode('x'))).to.not.throw();
      });
    }

    it('with CheckQuorum, a follower in contact with its leader ignores a higher-term vote (the lease) unless it is a transfer', () => {
      const c = new Cluster(['a', 'b', 'c'], { checkQuorum: true });
      c.elect('a');
      const b = c.core('b');
      const term = b.status().term;
      const last = b.status().lastIndex;
      b.step(
        message({
          type: MessageType.Vote,
          from: 'c',
          to: 'b',
          term: term + 5,
          index: last + 5,
          logTerm: term,
        }),
      );
      expect(b.status().term).to.equal(term);
      expect(b.hasReady()).to.equal(false);
      b.step(
        message({
          type: MessageType.Vote,
          from: 'c',
          to: 'b',
          term: term + 5,
          index: last + 5,
          logTerm: term,
          context: enc.encode('CampaignTransfer'),
        }),
      );
      expect(b.status().term).to.equal(term + 5);
      expect(b.status().vote).to.equal('c');
    });

    it('quorumStatus: a leader that failed CheckQuorum knows at once it has no quorum; healing clears it', () => {
      const c = new Cluster(['a', 'b', 'c'], { preVote: true, checkQuorum: true });
      c.elect('a');
      expect(c.core('a').quorumStatus().lost).to.equal(false);
      c.isolate('a');
      let ticks = 0;
      while (c.core('a').status().role === Role.Leader) {
        // Still leading: a leader never reports itself cut off.
        expect(c.core('a').quorumStatus().lost).to.equal(false);
        c.tick(1);
        ticks++;
        expect(ticks).to.be.at.most(2 * 10);
      }
      // The tick that made it step down: it knows now, without a campaign round.
      const q = c.core('a').quorumStatus();
      expect(q.lost).to.equal(true);
      expect(q.ticksSinceLeader).to.be.at.least(10);
      // Cut off, its pre-votes go unanswered: still lost, and the count keeps growing.
      c.tick(40);
      expect(c.core('a').quorumStatus().lost).to.equal(true);
      expect(c.core('a').quorumStatus().ticksSinceLeader).to.be.at.least(50);
      // The majority is not lost: it has a leader.
      for (const id of ['b', 'c']) expect(c.core(id).quorumStatus().lost).to.equal(false);
      c.heal();
      c.tick(5);
      expect(c.core('a').quorumStatus()).to.deep.equal({ lost: false, ticksSinceLeader: 0 });
    });

    it('quorumStatus: an isolated follower knows once its pre-votes go unanswered; the majority in a normal election never does', () => {
      for (let seed = 1; seed <= 20; seed++) quorumStatusFollower(seed);
    });

    function quorumStatusFollower(seed: number): void {
      const c = new Cluster(['a', 'b', 'c'], { preVote: true, checkQuorum: true }, seed);
      c.elect('a');
      c.isolate('c');
      let ticks = 0;
      while (!c.core('c').quorumStatus().lost) {
        c.tick(1);
        ticks++;
        // Its timeout (< 2 election timeouts), then 2 ticks of unanswered pre-votes.
        expect(ticks, `seed ${seed}: ticks until the isolated follower knows`).to.be.below(2 * 10 + 2 + 1);
      }
      expect(c.core('c').status().leader).to.equal(null);
      // A normal failover (split votes included): heal c, then isolate the leader a. b and c
      // elect a leader, and neither ever reports itself cut off on the way.
      c.heal();
      c.tick(3);
      expect(c.core('c').quorumStatus().lost).to.equal(false);
      c.isolate('a');
      for (let i = 0; i < 60; i++) {
        c.tick(1);
        for (const id of ['b', 'c']) {
          expect(c.core(id).quorumStatus().lost, `seed ${seed}: ${id} lost at tick ${i}`).to.equal(false);
        }
      }
      expect(
        c.leaders().filter((id) => id !== 'a'),
        `seed ${seed}`,
      ).to.have.length(1);
    }

    it('a stale leader learns the higher term from an AppResp and steps down', () => {
      const c = new Cluster(['a', 'b', 'c'], { preVote: true, checkQuorum: true });
      c.elect('a');
      c.isolate('a');
      c.tick(40, ['b', 'c']);
      const newLeader = c.leaders().find((id) => id !== 'a')!;
      expect(newLeader).to.be.a('string');
      c.heal();
      c.tick(5);
      expect(c.leaders()).to.deep.equal([newLeader]);
      expect(c.core('a').status().leader).to.equal(newLeader);
    });
  });

  describe('replication (§5.3)', () => {
    // Figure 7 of the Raft paper: the leader for term 8 and followers (a)-(f).
    const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    const followers: Record<string, number[]> = {
      a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
      b: [1, 1, 1, 4],
      c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
      d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
      e: [1, 1, 1, 4, 4, 4, 4],
      f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    };
    for (const [name, flog] of Object.entries(followers)) {
      it(`Figure 7 (${name}): the follower's log converges to the leader's, with few rejections`, () => {
        const c = new Cluster([]);
        const voters = ['L', 'N', 'F'];
        c.add('L', storageWith(voters, leaderLog, 7));
        c.add('N', storageWith(voters, leaderLog, 7));
        c.add('F', storageWith(voters, flog, 7));
        c.elect('L');
        c.tick(3);
        expect(c.logTerms('F')).to.deep.equal(c.logTerms('L'));
        expect(c.logTerms('L')).to.deep.equal([...leaderLog, 8]);
        const rejects = c.delivered.filter(
          (m) => m.type === MessageType.AppResp && m.from === 'F' && m.reject,
        );
        // Fast backtracking: one rejection per conflicting term at most, not one per entry.
        expect(rejects.length).to.be.at.most(2);
        expect(c.core('F').status().commit).to.equal(11);
      });
    }

    it('commit rule (§5.4.2, Figure 8): replicas of an old-term entry do not commit it; the bug does', () => {
      for (const bug of [false, true]) {
        const c = new Cluster([]);
        const voters = ['a', 'b', 'c'];
        const bugs: BugFlags = { commitOldTermEntries: bug };
        c.add('a', storageWith(voters, [1, 2], 2, 1), { bugs });
        c.add('b', storageWith(voters, [1, 2], 2, 1), { bugs });
        c.add('c', storageWith(voters, [1], 2, 1), { bugs });
        // The leader's App messages are lost; only an ack of index 2 from b arrives.
        c.drop = (m) => m.type === MessageType.App;
        c.elect('a');
        expect(c.core('a').status().term).to.equal(3);
        expect(c.core('a').status().commit).to.equal(1);
        c.core('a').step(message({ type: MessageType.AppResp, from: 'b', to: 'a', term: 3, index: 2 }));
        expect(c.core('a').status().commit).to.equal(bug ? 2 : 1);
        // Once the current-term entry is replicated, everything before it commits too.
        c.core('a').step(message({ type: MessageType.AppResp, from: 'b', to: 'a', term: 3, index: 3 }));
        expect(c.core('a').status().commit).to.equal(3);
      }
    });

    it('batches entries by maxSizePerMsg and keeps at most maxInflightMsgs Apps in flight', () => {
      const entryBytes = entrySize({ index: 0, term: 0, type: EntryType.Normal, data: enc.encode('p0000') });
      const c = new Cluster(['a', 'b', 'c'], { maxInflightMsgs: 3, maxSizePerMsg: entryBytes * 10 });
      c.elect('a');
      c.propose('a', 'first');
      expect(c.core('a').progressOf('c')!.state).to.equal(ProgressState.Replicate);
      // c receives but its acknowledgements are lost.
      c.cut.add('c->a');
      const mark = c.delivered.length;
      for (let round = 0; round < 20; round++) {
        for (let i = 0; i < 25; i++)
          c.core('a').propose(enc.encode(`p${String(round * 25 + i).padStart(4, '0')}`));
        c.stabilize();
        expect(c.core('a').progressOf('c')!.inflight).to.be.at.most(3);
      }
      const apps = c.delivered.slice(mark).filter((m) => m.type === MessageType.App && m.entries.length > 0);
      for (const m of apps) {
        expect(m.entries.reduce((s, e) => s + entrySize(e), 0)).to.be.at.most(entryBytes * 10);
      }
      expect(apps.filter((m) => m.to === 'b').length).to.be.at.least(50);
      expect(apps.filter((m) => m.to === 'c')).to.have.length(3);
      expect(c.core('a').progressOf('c')!.inflight).to.equal(3);
      expect(c.core('a').status().commit).to.equal(c.core('a').status().lastIndex);
      // Heal: heartbeats free the window, c catches up.
      c.heal();
      c.tick(5);
      expect(c.logTerms('c')).to.deep.equal(c.logTerms('a'));
      expect(c.appliedData('c')).to.have.length(501);
    });

    it('a reordered stale rejection does not knock a replicating follower back to probing', () => {
      const c = new Cluster(['a', 'b', 'c']);
      c.elect('a');
      c.propose('a', 'x');
      const a = c.core('a');
      const match = a.progressOf('c')!.match;
      const term = a.status().term;
      c.cut.add('c->a');
      c.propose('a', 'y', 'z', 'w');
      expect(a.progressOf('c')!.state).to.equal(ProgressState.Replicate);
      const reject = (rejectHint: number) =>
        message({
          type: MessageType.AppResp,
          from: 'c',
          to: 'a',
          term,
          index: match + 2,
          reject: true,
          rejectHint,
          hintTerm: term,
        });
      // Hint below what c already acknowledged: generated before that ack, so stale.
      a.step(reject(match - 1));
      expect(a.progressOf('c')!.state).to.equal(ProgressState.Replicate);
      a.step(reject(match + 1));
      expect(a.progressOf('c')).to.include({ state: ProgressState.Probe, next: match + 2 });
      c.heal();
      c.tick(2);
      expect(c.appliedData('c')).to.deep.equal(['x', 'y', 'z', 'w']);
    });

    it('reportUnreachable sends a replicating follower back to probing', () => {
      const c = new Cluster(['a', 'b', 'c']);
      c.elect('a');
      c.propose('a', 'x');
      expect(c.core('a').progressOf('b')!.state).to.equal(ProgressState.Replicate);
      c.core('a').reportUnreachable('b');
      expect(c.core('a').progressOf('b')!.state).to.equal(ProgressState.Probe);
    });

    it('a leader accepts proposals forwarded as Prop messages', () => {
      const c = new Cluster(['a', 'b', 'c']);
      c.elect('a');
      c.core('a').step(
        message({
          type: MessageType.Prop,
          from: 'b',
          to: 'a',
          term: 0,
          entries: [{ index: 0, term: 0, type: EntryType.Normal, data: enc.encode('fwd') }],
        }),
      );
      c.stabilize();
      expect(c.appliedData('b')).to.deep.equal(['fwd']);
    });

    it('bounds uncommitted bytes: propose throws ProposalDroppedError, then recovers', () => {
      const c = new Cluster(['a', 'b', 'c'], { maxUncommittedBytes: 1000 });
      c.elect('a');
      c.isolate('a');
      let accepted = 0;
      expect(() => {
        for (let i = 0; i < 1000; i++) {
          c.core('a').propose(new Uint8Array(100));
          accepted++;
        }
      }).to.throw(ProposalDroppedError);
      expect(accepted).to.be.within(7, 9);
      c.heal();
      c.tick(3);
      expect(() => c.core('a').propose(new Uint8Array(100))).to.not.throw();
    });

    it('a follower refuses proposals with a leader hint', () => {
      const c = new Cluster(['a', 'b', 'c']);
      c.elect('a');
      try {
        c.core('b').propose(enc.encode('x'));
        expect.fail('propose on a follower must throw');
      } catch (err) {
        expect(err).to.be.instanceOf(NotLeaderError);
        expect((err as NotLeaderError).leader).to.equal('a');
      }
    });

    it('the skipPrevLogCheck bug breaks Log Matching (a follower appends after a mismatching entry)', () => {
      for (const bug of [false, true]) {
        const core = new RaftCore({
          ...defaults,
          id: 'b',
          storage: storageWith(['a', 'b', 'c'], [1, 1, 1], 2),
          random: mulberry32(1),
          bugs: { skipPrevLogCheck: bug },
        });
        core.step(
          message({
            type: MessageType.App,
            from: 'a',
            to: 'b',
            term: 3,
            index: 3,
            logTerm: 2,
            entries: [{ index: 4, term: 3, type: EntryType.Normal, data: new Uint8Array(0) }],
          }),
        );
        expect(core.status().lastIndex).to.equal(bug ? 4 : 3);
      }
    });

    it('commit never regresses on a follower; the commitRegression bug lowers it', () => {
      for (const bug of [false, true]) {
        const core = new RaftCore({
          ...defaults,
          id: 'b',
          storage: storageWith(['a', 'b', 'c'], [1, 1, 1], 1, 3),
          random: mulberry32(1),
          bugs: { commitRegression: bug },
        });
        core.step(message({ type: MessageType.Heartbeat, from: 'a', to: 'b', term: 1, commit: 1 }));
        expect(core.status().commit).to.equal(bug ? 1 : 3);
      }
    });
  });

  describe('a follower that lost entries it acknowledged', () => {
    /** What `fn` throws (fails the test if it returns). */
    function thrown(fn: () => unknown): unknown {
      try {
        fn();
      } catch (error) {
        return error;
      }
      expect.fail('expected an error');
    }

    it('commit follows Figure 2 on a follower: min(leaderCommit, last new index), a heartbeat never passes the log', () => {
      const core = new RaftCore({
        ...defaults,
        id: 'b',
        storage: storageWith(['a', 'b', 'c'], [1, 1, 1], 1),
        random: mulberry32(1),
      });
      // An App whose leader commit is ahead of what it carries commits only what it carries.
      core.step(
        message({ type: MessageType.App, from: 'a', to: 'b', term: 1, index: 3, logTerm: 1, commit: 9 }),
      );
      expect(core.status().commit).to.equal(3);
      core.step(message({ type: MessageType.Heartbeat, from: 'a', to: 'b', term: 1, commit: 3 }));
      expect(core.status().commit).to.equal(3);
      // A heartbeat beyond the log: the leader only sends min(match, commit), so this node had
      // acknowledged 4 and 5 and no longer holds them.
      const error = thrown(() =>
        core.step(message({ type: MessageType.Heartbeat, from: 'a', to: 'b', term: 1, commit: 5 })),
      );
      expect(error).to.be.instanceOf(LostEntriesError);
      const lost = error as LostEntriesError;
      expect([lost.first, lost.last, lost.source]).to.deep.equal([
        4,
        5,
        { kind: 'leader', leader: 'a', term: 1 },
      ]);
      expect(lost.message).to.equal(
        "lost acknowledged entries 4..5: this node's log is behind what it acknowledged; wipe its data directory and re-add it to the cluster (docs/operations.md#replace-a-node)",
      );
      expect(core.status().commit).to.equal(3);
    });

    it('a leader never sends a lagging follower a heartbeat commit beyond what it acknowledged', () => {
      const c = new Cluster(['a', 'b', 'c']);
      c.elect('a');
      c.drop = (m) => m.type === MessageType.App && m.to === 'c';
      c.propose('a', 'v1', 'v2', 'v3');
      c.tick(3);
      const hb = c.delivered.filter((m) => m.type === MessageType.Heartbeat && m.to === 'c');
      expect(hb.length).to.be.greaterThan(0);
      for (const m of hb) expect(m.commit).to.be.at.most(c.core('c').status().lastIndex);
      expect(c.core('a').status().commit).to.be.greaterThan(c.core('c').status().lastIndex);
      c.heal();
      c.tick(2);
      expect(c.core('c').status().commit).to.equal(c.core('a').status().commit);
    });

    it("restarted without its acknowledged tail, it stops on the leader's next heartbeat with the lost range", () => {
      const c = new Cluster(['a', 'b', 'c']);
      c.elect('a');
      c.propose('a', 'v1', 'v2', 'v3');
      c.tick(1);
      const last = c.core('b').status().lastIndex;
      const commit = c.core('a').status().commit;
      expect(commit).to.equal(last);
      // b's disk loses its last entry (and the commit record after it): it restarts from the rest.
      const old = c.n('b').storage;
      const kept = new MemoryStorage({ voters: ['a', 'b', 'c'] });
      kept.append(old.entries(1, last));
      kept.setHardState({ ...old.getHardState(), commit: last - 1 });
      c.add('b', kept);
      expect(c.core('b').status().lastIndex).to.equal(last - 1);
      for (const id of ['a', 'c']) c.core(id).tick();
      c.processReady('a');
      const error = thrown(() => c.deliver());
      expect(error).to.be.instanceOf(LostEntriesError);
      const lost = error as LostEntriesError;
      expect([lost.first, lost.last]).to.deep.equal([last, commit]);
      expect(lost.revealedBy).to.equal(
        `the commit index in a heartbeat of leader a (term ${c.core('a').status().term})`,
      );
    });

    it('a stored commit beyond the stored log refuses to build the core (no assertion)', () => {
      const error = thrown(
        () =>
          new RaftCore({
            ...defaults,
            id: 'b',
            storage: storageWith(['a', 'b', 'c'], [1, 1, 1], 1, 5),
            random: mulberry32(1),
          }),
      );
      expect(error).to.be.instanceOf(LostEntriesError);
      const lost = error as LostEntriesError;
      expect([lost.first, lost.last, lost.source.kind]).to.deep.equal([4, 5, 'stored-commit']);
    });
  });

  describe('ReadIndex (§6.4)', () => {
    const ctx = (s: string) => enc.encode(s);

    it('the leader answers after a heartbeat round reaches a majority, without writing to the log', () => {
      const c = new Cluster(['a', 'b', 'c']);
      c.elect('a');
      c.propose('a', 'v1');
      const last = c.core('a').status().lastIndex;
      c.isolate('c');
      c.core('a').readIndex(ctx('r1'));
      c.processReady('a');
      expect(c.n('a').readStates).to.have.length(0);
      const hb = c.queue.filter((m) => m.type === MessageType.Heartbeat);
      expect(hb.map((m) => dec.decode(m.context))).to.deep.equal(['r1', 'r1']);
      c.stabilize();
      expect(c.n('a').readStates.map((r) => [r.index, dec.decode(r.context)])).to.deep.equal([[last, 'r1']]);
      expect(c.core('a').status().lastIndex).to.equal(last);
    });

    it('an isolated leader cannot answer; the readIndexWithoutQuorumCheck bug answers a stale read', () => {
      for (const bug of [false, true]) {
        const c = new Cluster(['a', 'b', 'c'], { bugs: { readIndexWithoutQuorumCheck: bug } });
        c.elect('a');
        c.isolate('a');
        c.core('a').readIndex(ctx('r'));
        c.tick(3);
        expect(c.n('a').readStates).to.have.length(bug ? 1 : 0);
      }
    });

    it('a new leader waits until an entry of its term is committed', () => {
      const c = new Cluster(['a', 'b', 'c']);
      c.elect('a');
      c.propose('a', 'v1');
      // b becomes leader but its empty entry cannot commit yet (acks are lost).
      c.drop = (m) => m.type === MessageType.AppResp && m.to === 'b';
      c.elect('b');
      const term = c.core('b').status().term;
      c.core('b').readIndex(ctx('r'));
      c.stabilize();
      expect(
        c.delivered.filter((m) => m.type === MessageType.Heartbeat && m.context !== null),
      ).to.have.length(0);
      expect(c.n('b').readStates).to.have.length(0);
      c.heal();
      c.tick(2);
      const rs = c.n('b').readStates;
      expect(rs).to.have.length(1);
      // The read index covers the new leader's empty entry (and so everything committed before it).
      const empty = c.n('b').applied.find((e) => e.type === EntryType.Empty && e.term === term)!;
      expect(rs[0]!.index).to.be.at.least(empty.index);
    });

    it('a read on a node that knows no leader is dropped (the caller times out)', () => {
      const c = new Cluster(['a', 'b', 'c']);
      c.core('b').readIndex(ctx('lost'));
      expect(c.core('b').hasReady()).to.equal(false);
    });

    it('a follower forwards to the leader and receives the leader commit index', () => {
      const c = new Cluster(['a', 'b', 'c']);
      c.elect('a');
      c.propose('a', 'v1', 'v2');
      c.core('b').readIndex(ctx('f1'));
      c.stabilize();
      expect(c.delivered.some((m) => m.type === MessageType.ReadIndex && m.from === 'b')).to.equal(true);
      expect(c.n('b').readStates.map((r) => [r.index, dec.decode(r.context)])).to.deep.equal([
        [c.core('a').status().commit, 'f1'],
      ]);
      expect(c.n('a').readStates).to.have.length(0);
    });
  });

  describe('snapshots (§5.1 InstallSnapshot)', () => {
    it('a follower whose next entry was compacted gets a snapshot, installs it, then continues', () => {
      const c = new Cluster(['a', 'b', 'c']);
      c.elect('a');
      c.isolate('c');
      for (let i = 0; i < 50; i++) c.core('a').propose(enc.encode(`e${i}`));
      c.stabilize();
      const a = c.n('a');
      const applied = a.core.status().applied;
      a.storage.createSnapshot(applied, a.core.status().confState, enc.encode('state@' + String(applied)));
      a.storage.compact(applied);
      c.heal();
      c.tick(3);
      const cNode = c.n('c');
      expect(cNode.snapshots.map((s) => s.metadata.index)).to.deep.equal([applied]);
      expect(dec.decode(cNode.snapshots[0]!.data)).to.equal(`state@${applied}`);
      expect(cNode.storage.firstIndex()).to.equal(applied + 1);
      expect(c.delivered.filter((m) => m.type === MessageType.Snap)).to.have.length(1);
      c.propose('a', 'after');
      expect(c.appliedData('c')).to.deep.equal(['after']);
      expect(cNode.core.status().commit).to.equal(a.core.status().commit);
    });

    it('a lost snapshot is re-sent after an election timeout', () => {
      const c = new Cluster(['a', 'b', 'c']);
      c.elect('a');
      c.isolate('c');
      c.propose('a', 'x', 'y');
      const a = c.n('a');
      const applied = a.core.status().applied;
      a.storage.createSnapshot(applied, a.core.status().confState, new Uint8Array(0));
      a.storage.compact(applied);
      c.heal();
      c.drop = (m) => m.type === MessageType.Snap;
      c.tick(3);
      expect(c.core('a').progressOf('c')!.state).to.equal(ProgressState.Snapshot);
      c.drop = null;
      c.tick(12);
      expect(c.n('c').snapshots).to.have.length(1);
      expect(c.core('c').status().commit).to.equal(c.core('a').status().commit);
    });
  });

  describe('membership changes (§4.1-§4.2)', () => {
    function joining(c: Cluster, id: NodeId): TestNode {
      return c.add(id, new MemoryStorage());
    }

    it('a learner catches up, never votes toward quorum nor campaigns; AddVoter promotes it', () => {
      const c = new Cluster(['a', 'b', 'c']);
      c.elect('a');
      c.propose('a', 'v1');
      joining(c, 'd');
      c.core('a').proposeConfChange({ type: ConfChangeType.AddLearner, node: 'd' });
      c.tick(3);
      expect(c.core('d').status().role).to.equal(Role.Learner);
      expect(c.core('a').status().confState).to.deep.equal({ voters: ['a', 'b', 'c'], learners: ['d'] });
      expect(c.appliedData('d')).to.deep.equal(['v1']);
      // A learner never campaigns.
      c.isolate('d');
      c.tick(50, ['d']);
      expect(c.core('d').status().term).to.equal(c.core('a').status().term);
      c.heal();
      // A learner does not count toward quorum: with b and c away, nothing commits.
      c.isolate('b');
      c.isolate('c');
      const commit = c.core('a').status().commit;
      c.core('a').propose(enc.encode('v2'));
      c.tick(3, ['a', 'd']);
      expect(c.core('a').status().commit).to.equal(commit);
      expect(c.core('d').status().lastIndex).to.equal(commit + 1);
      c.heal();
      c.tick(3);
      c.core('a').proposeConfChange({ type: ConfChangeType.AddVoter, node: 'd' });
      c.tick(3);
      expect(c.core('d').status().role).to.equal(Role.Follower);
      expect(c.core('a').status().confState).to.deep.equal({ voters: ['a', 'b', 'c', 'd'], learners: [] });
      // Now d counts: with a and d, no majority of 4 -> nothing commits; with b too, it commits.
      c.isolate('b');
      c.isolate('c');
      const commit2 = c.core('a').status().commit;
      c.core('a').propose(enc.encode('v3'));
      c.tick(1, ['a', 'd']);
      expect(c.core('a').status().commit).to.equal(commit2);
      c.heal();
      c.tick(2);
      expect(c.core('a').status().commit).to.equal(commit2 + 1);
    });

    it('a new node joins through a snapshot when the log it needs is compacted', () => {
      const c = new Cluster(['a', 'b', 'c']);
      c.elect('a');
      c.propose('a', 'v1', 'v2');
      joining(c, 'd');
      c.cut.add('a->d');
      c.core('a').proposeConfChange({ type: ConfChangeType.AddLearner, node: 'd' });
      c.propose('a', 'v3');
      const a = c.n('a');
      const applied = a.core.status().applied;
      a.storage.createSnapshot(applied, a.core.status().confState, enc.encode('app-state'));
      a.storage.compact(applied);
      c.heal();
      c.tick(3);
      const d = c.n('d');
      expect(d.snapshots.map((s) => s.metadata.index)).to.deep.equal([applied]);
      expect(d.snapshots[0]!.metadata.confState).to.deep.equal({ voters: ['a', 'b', 'c'], learners: ['d'] });
      expect(d.core.status().role).to.equal(Role.Learner);
      expect(d.core.status().confState.learners).to.deep.equal(['d']);
      c.core('a').proposeConfChange({ type: ConfChangeType.AddVoter, node: 'd' });
      c.propose('a', 'v4');
      expect(d.core.status().role).to.equal(Role.Follower);
      expect(c.appliedData('d')).to.deep.equal(['v4']);
      expect(d.core.status().commit).to.equal(a.core.status().commit);
    });

    it('one change at a time, and only after the leader committed an entry of its term', () => {
      const c = new Cluster(['a', 'b', 'c']);
      c.drop = (m) => m.type === MessageType.AppResp;
      c.elect('a');
      expect(() => c.core('a').proposeConfChange({ type: ConfChangeType.AddLearner, node: 'd' })).to.throw(
        ProposalDroppedError,
        /term/,
      );
      c.heal();
      c.tick(2);
      c.cut.add('b->a');
      c.cut.add('c->a');
      c.core('a').proposeConfChange({ type: ConfChangeType.AddLearner, node: 'd' });
      expect(() => c.core('a').proposeConfChange({ type: ConfChangeType.AddLearner, node: 'e' })).to.throw(
        ProposalDroppedError,
        /pending/,
      );
      c.heal();
      c.tick(2);
      expect(() =>
        c.core('a').proposeConfChange({ type: ConfChangeType.AddLearner, node: 'e' }),
      ).to.not.throw();
    });

    it('removing a follower shrinks the quorum', () => {
      const c = new Cluster(['a', 'b', 'c']);
      c.elect('a');
      c.core('a').proposeConfChange({ type: ConfChangeType.RemoveNode, node: 'c' });
      c.tick(2);
      expect(c.core('a').status().confState.voters).to.deep.equal(['a', 'b']);
      expect(c.core('c').status().role).to.equal(Role.Learner);
      // c no longer matters: with c gone, a and b commit; with b gone, nothing commits.
      c.isolate('c');
      c.propose('a', 'x');
      expect(c.appliedData('b')).to.deep.equal(['x']);
      // c never campaigns again.
      c.tick(40, ['c']);
      expect(c.core('c').status().role).to.equal(Role.Learner);
    });

    it('a removed leader steps down once the change is applied and hands over with TimeoutNow', () => {
      const c = new Cluster(['a', 'b', 'c'], { checkQuorum: true, preVote: true });
      c.elect('a');
      const term = c.core('a').status().term;
      c.core('a').proposeConfChange({ type: ConfChangeType.RemoveNode, node: 'a' });
      c.stabilize();
      expect(c.core('a').status().role).to.equal(Role.Learner);
      expect(c.delivered.some((m) => m.type === MessageType.TimeoutNow && m.from === 'a')).to.equal(true);
      // A new leader without any tick (no election timeout waited for).
      const leaders = c.leaders();
      expect(leaders).to.have.length(1);
      expect(leaders[0]).to.not.equal('a');
      expect(c.core(leaders[0]!).status().term).to.equal(term + 1);
      expect(c.core(leaders[0]!).status().confState.voters).to.deep.equal(['b', 'c']);
      c.propose(leaders[0]!, 'after');
      expect(c.appliedData('b')).to.deep.equal(['after']);
    });

    it('cannot remove the last voter', () => {
      const c = new Cluster(['a']);
      c.elect('a');
      expect(() => c.core('a').proposeConfChange({ type: ConfChangeType.RemoveNode, node: 'a' })).to.throw(
        ProposalDroppedError,
      );
    });
  });

  describe('leadership transfer (§3.10)', () => {
    it('to an up-to-date follower: it wins the next term at once', () => {
      const c = new Cluster(['a', 'b', 'c'], { preVote: true, checkQuorum: true });
      c.elect('a');
      c.propose('a', 'x');
      const term = c.core('a').status().term;
      c.core('a').transferLeadership('b');
      c.stabilize();
      expect(c.leaders()).to.deep.equal(['b']);
      expect(c.core('b').status().term).to.equal(term + 1);
      expect(c.core('a').status().leader).to.equal('b');
    });

    it('to a lagging follower: the leader catches it up first', () => {
      const c = new Cluster(['a', 'b', 'c']);
      c.elect('a');
      c.isolate('c');
      c.propose('a', 'x', 'y', 'z');
      c.heal();
      c.core('a').transferLeadership('c');
      expect(() => c.core('a').propose(enc.encode('no'))).to.throw(ProposalDroppedError);
      c.stabilize();
      expect(c.leaders()).to.deep.equal(['c']);
      expect(c.appliedData('c')).to.deep.equal(['x', 'y', 'z']);
    });

    it('is abandoned after an election timeout if the target does not take over', () => {
      const c = new Cluster(['a', 'b', 'c']);
      c.elect('a');
      c.isolate('c');
      c.propose('a', 'x');
      c.core('a').transferLeadership('c');
      expect(() => c.core('a').propose(enc.encode('no'))).to.throw(ProposalDroppedError);
      c.tick(10, ['a', 'b']);
      expect(c.leaders()).to.deep.equal(['a']);
      c.propose('a', 'yes');
      expect(c.appliedData('b')).to.deep.equal(['x', 'yes']);
    });
  });

  describe('Ready contract', () => {
    it('ready() twice without advance() is a broken invariant; hasReady() is false meanwhile', () => {
      const c = new Cluster(['a', 'b', 'c']);
      const a = c.core('a');
      a.campaign();
      expect(a.hasReady()).to.equal(true);
      a.ready();
      expect(a.hasReady()).to.equal(false);
      expect(() => a.ready()).to.throw(/advance/);
      a.advance();
      expect(() => a.advance()).to.throw(/ready/);
    });

    it('a one-node cluster commits in the Ready after the one that persists (thesis §10.2.1)', () => {
      const c = new Cluster(['a']);
      c.elect('a');
      c.core('a').propose(enc.encode('solo'));
      const rd = c.core('a').ready();
      c.n('a').storage.append(rd.entries);
      expect(rd.entries.map((e) => dec.decode(e.data))).to.deep.equal(['solo']);
      expect(rd.committedEntries).to.deep.equal([]);
      c.core('a').advance();
      const next = c.core('a').ready();
      expect(next.committedEntries.map((e) => dec.decode(e.data))).to.deep.equal(['solo']);
      expect(next.hardState!.commit).to.equal(2);
      c.core('a').advance();
      c.core('a').readIndex(enc.encode('r'));
      expect(
        c
          .core('a')
          .ready()
          .readStates.map((r) => r.index),
      ).to.deep.equal([2]);
    });
  });
});
