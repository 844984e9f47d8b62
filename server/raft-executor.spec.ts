/**
 * RaftExecutor over three real RaftNodes (MemoryStorage, in-process LocalNetwork): writes on a
 * follower are forwarded and applied everywhere; a pipeline keeps its order (a read between
 * writes sees exactly the writes before it); reads on a follower use the leader's time for
 * expiry; a node cut off from the others fails with CLUSTERDOWN within its bound, never hangs.
 * Over a scripted node: a write retried after its first hand-off did nothing never waits
 * behind the reads that wait for it (the stall of docs/faults.md, finding 2).
 */
import { expect } from 'chai';
import type { Result } from '../commands/state-machine.js';
import { StateMachine } from '../commands/state-machine.js';
import { LocalNetwork } from '../raft/local-transport.js';
import { RaftNode } from '../raft/node.js';
import { MemoryStorage } from '../raft/storage.js';
import { decodeOperation } from '../commands/codec.js';
import { NotLeaderError } from '../raft/errors.js';
import { ForwardKind, serveForwarded, type ForwardTarget } from './forward.js';
import { ConcordApplication } from './node.js';
import { ClusterDownError, NoQuorumError, RaftExecutor, type ExecutorNode } from './raft-executor.js';

const IDS = ['a', 'b', 'c'];
const TICK_MS = 10;
const ELECTION_TICKS = 10;

interface Member {
  readonly id: string;
  readonly sm: StateMachine;
  readonly node: RaftNode<Result | null>;
  readonly executor: RaftExecutor;
  readonly transport: ReturnType<LocalNetwork['connect']>;
}

const key = (s: string): Buffer => Buffer.from(s);
const set = (k: string, v: string, ttlMs = 0) =>
  ({
    type: 'keys.set',
    key: key(k),
    value: key(v),
    condition: 'always',
    expire: ttlMs > 0 ? 'ttl' : 'none',
    expireMs: ttlMs,
    get: false,
  }) as const;
const get = (sm: StateMachine, k: string, nowMs: number): string | null =>
  sm.keys.get(key(k), nowMs)?.toString() ?? null;

async function until<T>(what: string, check: () => T | undefined, deadlineMs = 5000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('server/raft-executor over three Raft nodes', function () {
  this.timeout(30_000);
  let net: LocalNetwork;
  let members: Member[];
  /** Added to each node's clock for expiry checks (a follower's skewed clock). */
  const skew = new Map<string, number>();

  beforeEach(async () => {
    net = new LocalNetwork();
    members = [];
    skew.clear();
    for (const id of IDS) {
      const transport = net.connect(id);
      const sm = new StateMachine();
      const node = await RaftNode.start<Result | null>({
        id,
        storage: new MemoryStorage(),
        transport,
        application: new ConcordApplication(sm),
        tickMs: TICK_MS,
        electionTicks: ELECTION_TICKS,
        heartbeatTicks: 1,
        bootstrap: IDS,
        onFatal: (error) => {
          throw error;
        },
      });
      transport.onRequest((_from, payload) =>
        serveForwarded(
          {
            get isLeader() {
              return node.isLeader;
            },
            get leaderId() {
              return node.leaderId;
            },
            propose: (p) => node.propose(p),
            leaderTimeMs: () => sm.readTime(Date.now() + (skew.get(id) ?? 0)),
            learnPeers: () => undefined,
          },
          payload,
        ),
      );
      const executor = new RaftExecutor({
        node,
        stateMachine: sm,
        transport,
        leaderWaitMs: 2 * TICK_MS * ELECTION_TICKS,
        forwardTimeoutMs: 4 * TICK_MS * ELECTION_TICKS,
        pollMs: TICK_MS / 2,
        clock: () => Date.now() + (skew.get(id) ?? 0),
      });
      members.push({ id, sm, node, executor, transport });
    }
  });

  afterEach(async () => {
    for (const m of members) {
      m.executor.stop();
      await m.node.stop();
    }
  });

  const leader = (): Promise<Member> =>
    until('a leader', () => members.find((m) => m.node.isLeader && m.node.leaderId === m.id));

  it('a write on a follower is forwarded, applied everywhere, and its Result relayed', async () => {
    const l = await leader();
    const follower = members.find((m) => m !== l)!;
    expect(await follower.executor.write(set('k', 'v'))).to.deep.equal({
      type: 'set',
      written: true,
      previous: null,
    });
    const incr = await follower.executor.write({ type: 'keys.incrby', key: key('n'), delta: 5n });
    expect(incr).to.deep.equal({ type: 'integer', value: 5n });
    for (const m of members) {
      const value = await m.executor.read((sm, k: string, now) => get(sm, k, now), 'k');
      expect(value, `read on ${m.id}`).to.equal('v');
    }
  });

  it('writes forwarded in one turn travel in one request, applied in call order, with a bounded number in flight', async () => {
    const l = await leader();
    const follower = members.find((m) => m !== l)!;
    const kinds: number[] = [];
    const executor = new RaftExecutor({
      node: follower.node,
      stateMachine: follower.sm,
      transport: {
        request: (peer, payload, timeoutMs) => {
          kinds.push(payload[1]!);
          return follower.transport.request(peer, payload, timeoutMs);
        },
      },
      leaderWaitMs: 2 * TICK_MS * ELECTION_TICKS,
      forwardTimeoutMs: 4 * TICK_MS * ELECTION_TICKS,
      pollMs: TICK_MS / 2,
      maxForwardBatches: 1,
      maxForwardBatchWrites: 100,
    });
    // 1000 writes in one turn: batches of at most 100, one in flight, the rest gathering.
    const writes = Array.from({ length: 1000 }, (_, i) =>
      executor.write({ type: 'keys.incrby', key: key('order'), delta: BigInt(i + 1) }),
    );
    const results = await Promise.all(writes);
    let total = 0n;
    results.forEach((r, i) => {
      total += BigInt(i + 1);
      expect(r, `write ${i}`).to.deep.equal({ type: 'integer', value: total });
    });
    expect(kinds.length).to.be.within(10, 12);
    expect(kinds.every((k) => k === 4)).to.equal(true);
    executor.stop();
  });

  it('refuses an operation larger than a replicated entry may be, proposing nothing', async () => {
    const l = await leader();
    const small = new RaftExecutor({
      node: l.node,
      stateMachine: l.sm,
      transport: null,
      leaderWaitMs: 1000,
      forwardTimeoutMs: 1000,
      pollMs: 5,
      maxEntryBytes: 1024,
    });
    const before = l.node.status().lastIndex;
    const result = await small.write(set('big', 'x'.repeat(2048)));
    expect(result.type).to.equal('error');
    expect(result.type === 'error' && result.message).to.match(
      /^ERR operation of \d+ bytes exceeds the 1024 bytes/,
    );
    expect(l.node.status().lastIndex).to.equal(before);
    expect(await small.write(set('small', 'x'))).to.deep.equal({
      type: 'set',
      written: true,
      previous: null,
    });
  });

  it('keeps a pipeline in order: each read sees exactly the writes called before it', async () => {
    await leader();
    for (const m of members) {
      const e = m.executor;
      const pipeline: Promise<unknown>[] = [];
      for (let i = 0; i < 20; i++) {
        pipeline.push(e.write(set(`p-${m.id}`, `v${i}`)));
        pipeline.push(e.read((sm, k: string, now) => get(sm, k, now), `p-${m.id}`));
      }
      pipeline.push(e.write({ type: 'keys.del', keys: [key(`p-${m.id}`)] }));
      pipeline.push(e.read((sm, k: string, now) => get(sm, k, now), `p-${m.id}`));
      const replies = await Promise.all(pipeline);
      const reads = replies.filter((_, i) => i % 2 === 1);
      expect(reads, `pipeline on ${m.id}`).to.deep.equal([
        ...Array.from({ length: 20 }, (_, i) => `v${i}`),
        null,
      ]);
    }
  });

  it("judges expiry on a follower by the leader's time, not the follower's clock", async () => {
    const l = await leader();
    const follower = members.find((m) => m !== l)!;
    await l.executor.write(set('ttl', 'x', 60_000));
    // The follower's clock runs two minutes ahead: by its own clock the key would be gone.
    skew.set(follower.id, 120_000);
    expect(await follower.executor.read((sm, k: string, now) => get(sm, k, now), 'ttl')).to.equal('x');
    // The leader's clock moving past the expiry does expire it on the follower too.
    skew.set(l.id, 120_000);
    expect(await follower.executor.read((sm, k: string, now) => get(sm, k, now), 'ttl')).to.equal(null);
  });

  it('a node cut off from the others fails with ClusterDownError within its bound', async () => {
    const l = await leader();
    const lonely = members.find((m) => m !== l)!;
    net.isolate(lonely.id, IDS);
    const started = Date.now();
    const outcome = await lonely.executor.write(set('lost', 'x')).then(
      () => 'ok',
      (error: unknown) => error,
    );
    const tookMs = Date.now() - started;
    expect(outcome).to.be.instanceOf(Error);
    expect(outcome).to.not.equal('ok');
    const read = await lonely.executor
      .read((sm, k: string, now) => get(sm, k, now), 'lost')
      .then(
        () => 'ok',
        (error: unknown) => error,
      );
    // By now it may know it is cut off (its pre-votes went unanswered): then it says so at once.
    expect(read).to.satisfy((e: unknown) => e instanceof ClusterDownError || e instanceof NoQuorumError);
    // Bounded: the forwarding timeout plus the leader wait, far below any hang.
    expect(tookMs).to.be.below(8 * TICK_MS * ELECTION_TICKS);
  });

  for (const who of ['leader', 'follower'] as const) {
    it(`an isolated ${who} that knows it has no quorum fails at once, without waiting for a leader`, async () => {
      const l = await leader();
      const lonely = who === 'leader' ? l : members.find((m) => m !== l)!;
      net.isolate(lonely.id, IDS);
      // A leader knows when CheckQuorum makes it step down; a follower once its pre-votes go unanswered.
      const sinceMs = await until(
        `${lonely.id} to know it has no quorum`,
        () => lonely.node.noQuorumForMs() ?? undefined,
      );
      expect(sinceMs).to.be.at.least(TICK_MS * ELECTION_TICKS);
      // This executor's clock never moves: a wait for a leader could never end, so an answer
      // at all proves the node did not wait (no timed assertion).
      const frozen = new RaftExecutor({
        node: lonely.node,
        stateMachine: lonely.sm,
        transport: lonely.transport,
        leaderWaitMs: 2 * TICK_MS * ELECTION_TICKS,
        forwardTimeoutMs: 4 * TICK_MS * ELECTION_TICKS,
        pollMs: TICK_MS / 2,
        clock: () => 1_000_000,
      });
      try {
        const write = await frozen.write(set('lost', 'x')).then(
          () => 'ok',
          (error: unknown) => error,
        );
        expect(write).to.be.instanceOf(NoQuorumError);
        expect((write as Error).message).to.match(
          /^no quorum: this node cannot reach a majority \(last leader contact \d+ ms ago\)$/,
        );
        const read = await frozen
          .read((sm, k: string, now) => get(sm, k, now), 'lost')
          .then(
            () => 'ok',
            (error: unknown) => error,
          );
        expect(read).to.be.instanceOf(NoQuorumError);
      } finally {
        frozen.stop();
      }
      // Healed: it hears from a leader again and serves.
      net.heal();
      await until(`${lonely.id} to know a leader`, () =>
        lonely.node.noQuorumForMs() === null && lonely.node.leaderId !== null ? true : undefined,
      );
      expect(await lonely.executor.write(set('back', 'y'))).to.include({ type: 'set', written: true });
    });
  }
});

/**
 * A node whose proposals the test settles by hand; a settled proposal applies to `sm` first
 * (as RaftNode resolves a proposal only once its entry applied).
 */
class ScriptedNode implements ExecutorNode {
  readonly id = 'a';
  isLeader = true;
  leaderId: string | null = 'a';
  readonly proposals: { payload: Uint8Array; resolve: () => void; reject: (error: Error) => void }[] = [];
  private index = 0;

  constructor(private readonly sm: StateMachine) {}

  propose(payload: Uint8Array): Promise<Result | null> {
    return new Promise<Result | null>((resolve, reject) => {
      this.proposals.push({
        payload,
        resolve: () =>
          resolve(
            this.sm.apply({ index: ++this.index, timeMs: 1, op: decodeOperation(Buffer.from(payload)) }),
          ),
        reject,
      });
    });
  }

  readIndex(): Promise<void> {
    return Promise.resolve();
  }
}

describe('server/raft-executor: a retried write never waits behind reads called after it', function () {
  this.timeout(30_000);

  /**
   * The write's first hand-off does nothing (NotLeaderError), and a read is called meanwhile:
   * the read waits for the write, so the write's retry must not wait for the read. Before the
   * fix the retry was queued behind that read (closing its group): a cycle of promises that
   * never settled, and every later GET and SET of every client of the node queued behind it
   * for good while PING and INFO answered. The executor's clock is frozen, so no bound can
   * end the wait: only the retry itself can.
   */
  it('on a leader: a proposal refused with NotLeaderError is proposed again, then the read runs', async () => {
    const sm = new StateMachine();
    const node = new ScriptedNode(sm);
    const executor = new RaftExecutor({
      node,
      stateMachine: sm,
      transport: null,
      leaderWaitMs: 1_000,
      forwardTimeoutMs: 1_000,
      pollMs: 1,
      clock: () => 1_000_000,
    });
    try {
      const write = executor.write(set('k', 'v'));
      const read = executor.read((s, k: string, now) => get(s, k, now), 'k');
      // What INFO raft shows: the write proposed at once (the chain idle), a read group open.
      expect(executor.status()).to.deep.include({
        handOffIdle: true,
        writesInFlight: 1,
        oldestWriteMs: 0,
        readGroupPending: 1,
      });
      // A later client's write closes the group and queues behind its read.
      const later = executor.write(set('k', 'w'));
      expect(executor.status()).to.deep.include({
        handOffIdle: false,
        writesInFlight: 2,
        readGroupPending: 0,
      });
      expect(node.proposals).to.have.length(1);
      // The core stepped down while RaftNode still said leader (its role updates after a sync).
      node.proposals[0]!.reject(new NotLeaderError(null));
      await until('the refused write to be proposed again', () => node.proposals[1]);
      node.proposals[1]!.resolve();
      expect(await write).to.include({ type: 'set', written: true });
      expect(await read).to.equal('v');
      await until('the later write to be proposed', () => node.proposals[2]);
      node.proposals[2]!.resolve();
      expect(await later).to.include({ type: 'set', written: true });
      expect(sm.keys.get(key('k'), 1)?.toString()).to.equal('w');
      await until('the executor to be idle', () => (executor.status().handOffIdle ? true : undefined));
      expect(executor.status()).to.deep.include({
        writesInFlight: 0,
        oldestWriteMs: null,
        readGroupPending: 0,
      });
    } finally {
      executor.stop();
    }
  });

  it('on a follower: a write batch answered NOT_LEADER is forwarded again, then the read runs', async () => {
    const sm = new StateMachine();
    const node = new ScriptedNode(sm);
    node.isLeader = false;
    node.leaderId = 'b';
    // The leader this node forwards to: not the leader at first (it was deposed), then it is.
    let leading = false;
    const leaderSm = new StateMachine();
    let leaderIndex = 0;
    const target: ForwardTarget = {
      get isLeader() {
        return leading;
      },
      get leaderId() {
        return leading ? 'b' : null;
      },
      propose: (payload) =>
        Promise.resolve(
          leaderSm.apply({ index: ++leaderIndex, timeMs: 1, op: decodeOperation(Buffer.from(payload)) }),
        ),
      leaderTimeMs: () => 1,
      learnPeers: () => undefined,
    };
    // Write batches wait for the test to answer them; time requests are answered at once.
    const batches: { answer: () => void }[] = [];
    const executor = new RaftExecutor({
      node,
      stateMachine: sm,
      transport: {
        request: (_peer, payload) =>
          new Promise<Buffer>((resolve, reject) => {
            const answer = (): void => {
              serveForwarded(target, Buffer.from(payload)).then((r) => resolve(Buffer.from(r)), reject);
            };
            if (payload[1] === ForwardKind.WriteBatch) batches.push({ answer });
            else answer();
          }),
      },
      leaderWaitMs: 1_000,
      forwardTimeoutMs: 1_000,
      pollMs: 1,
      clock: () => 1_000_000,
    });
    try {
      const write = executor.write(set('k', 'v'));
      await until('the write batch to be sent', () => batches[0]);
      // Called while the write is handed off but not answered: the read waits for it.
      const read = executor.read((_s, k: string, now) => `${k}@${now}`, 'k');
      batches[0]!.answer();
      leading = true;
      await until('the write to be forwarded again', () => batches[1]);
      batches[1]!.answer();
      expect(await write).to.include({ type: 'set', written: true });
      expect(leaderSm.keys.get(key('k'), 1)?.toString()).to.equal('v');
      expect(await read).to.equal('k@1');
    } finally {
      executor.stop();
    }
  });
});
