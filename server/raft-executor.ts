/**
 * The Raft-backed Executor (commands/executor.ts): how commands reach the replicated state
 * machine on a cluster node.
 *
 * - write(op): on the leader, propose the encoded operation and resolve with the Result the
 *   state machine returned when the entry applied (RaftNode resolves by (index, term)). On a
 *   follower, forward it to the leader (server/forward.ts) and relay the leader's Result. While
 *   no leader is known, wait up to `leaderWaitMs`, then fail with ClusterDownError. The writes
 *   forwarded in one event-loop turn travel as one WRITE_BATCH request (in hand-off order; the
 *   leader proposes them in that order), at most `maxForwardBatches` requests in flight: later
 *   writes gather in the next batch until one answers (no polling).
 * - read(query, arg): a ReadIndex barrier (RaftNode.readIndex: a follower asks the leader, so
 *   followers serve linearizable reads from local state), then the query at the LEADER's time:
 *   the leader's own clock on the leader, and on a follower a time fetched from the leader in
 *   parallel with the barrier (batched: one request in flight). A follower's clock may be
 *   skewed; judging expiry by it would let two nodes disagree about whether a key exists.
 *
 * Errors (operating errors, mapped to replies in server/errors.ts): ClusterDownError (no
 * leader within the bound: nothing was done), OutcomeUnknownError (the write may or may not
 * have applied: never a false OK), and raft/errors.ts ProposalDroppedError, LeadershipLostError,
 * ProposalTimeoutError, ReadTimeoutError, NodeStoppedError.
 *
 * Must never: acknowledge a write before it applied, serve a read without the barrier, wait
 * without a bound, or keep unbounded queues.
 */
import { decodeResult, encodeOperation } from '../commands/codec.js';
import { randomBytes } from 'node:crypto';
import type { Executor } from '../commands/executor.js';
import { WaiterRegistry } from '../commands/waiters.js';
import type { Operation, Result, StateMachine } from '../commands/state-machine.js';
import { NodeStoppedError, NotLeaderError, ProposalDroppedError, ReadTimeoutError } from '../raft/errors.js';
import type { NodeId } from '../raft/messages.js';
import { PeerUnreachableError, type Transport } from '../raft/transport.js';
import {
  decodeBatchResponse,
  decodeForwardResponse,
  decodeTime,
  encodeForwardRequest,
  encodeWriteBatch,
  ForwardKind,
  ForwardStatus,
} from './forward.js';
import type { ForwardResponse } from './forward.js';

/** No leader could be found (or reached) within the bound; nothing was done: retry later. */
export class ClusterDownError extends Error {
  override readonly name = 'ClusterDownError';
}

/**
 * This node knows it cannot reach a majority (CheckQuorum failed, or its pre-votes go
 * unanswered): failed at once rather than after the leader wait. Nothing was done.
 */
export class NoQuorumError extends Error {
  override readonly name = 'NoQuorumError';
  constructor(readonly sinceLeaderMs: number) {
    super(`no quorum: this node cannot reach a majority (last leader contact ${sinceLeaderMs} ms ago)`);
  }
}

/** This node was removed from the cluster: it serves no read or write any more. */
export class NodeRemovedError extends Error {
  override readonly name = 'NodeRemovedError';
  constructor(readonly configIndex: number) {
    super(`this node was removed from the cluster (by config index ${configIndex})`);
  }
}

/** A write was handed to a leader but its fate is unknown (it may have applied). */
export class OutcomeUnknownError extends Error {
  override readonly name = 'OutcomeUnknownError';
}

/** What the executor needs of the Raft node (RaftNode fits). */
export interface ExecutorNode {
  readonly id: NodeId;
  readonly isLeader: boolean;
  readonly leaderId: NodeId | null;
  propose(payload: Uint8Array): Promise<Result | null>;
  readIndex(): Promise<void>;
  /**
   * Null unless the node knows it cannot reach a majority; then ms since it last heard from a
   * leader (RaftNode.noQuorumForMs). Absent: never known, always wait for a leader.
   */
  noQuorumForMs?(): number | null;
}

export interface RaftExecutorOptions {
  node: ExecutorNode;
  stateMachine: StateMachine;
  /** Null on a node without peers (single node, no cluster secret). */
  transport: Pick<Transport, 'request'> | null;
  /**
   * Whether a live connection to `peer` is open. A request to a leader that is not connected
   * would wait in a queue until it times out with an unknown outcome (the leader may be dead):
   * instead the executor waits, bounded, for the connection or a new leader. Default: always.
   */
  isConnected?: (peer: NodeId) => boolean;
  /** How long a request waits for a leader to be known and reachable (about 2 election timeouts). */
  leaderWaitMs: number;
  /** How long a forwarded request may take at the leader (it must outlast a proposal). */
  forwardTimeoutMs: number;
  /** Poll interval while waiting for a leader. */
  pollMs: number;
  clock?: () => number;
  /**
   * Largest encoded operation replicated (default unlimited). A bigger one would not fit a
   * peer frame and would wedge replication behind it, so it is refused before proposing with
   * a client error Result.
   */
  maxEntryBytes?: number;
  /** Reads waiting for the leader's time, at most (default 10,000). */
  maxTimeWaiters?: number;
  /** Forwarded write batches in flight to the leader, at most (default 16). */
  maxForwardBatches?: number;
  /**
   * Unique per node process (node id and a boot nonce): prefixes this node's waiter ids
   * (commands/waiters.ts). Default: the node id and a random nonce.
   */
  waiterIdPrefix?: string;
  /**
   * The clock expiry is judged by on this node when it leads (RaftNode.timeMs: the time it
   * stamps entries with). Default: `clock`.
   */
  leaderClock?: () => number;
  /** Requests blocked on this node at most (LOCK ... WAIT, QPOP ... BLOCK); default 10,000. */
  maxWaiters?: number;
  /** Writes per forwarded batch, at most (default 1024), and their bytes (default 4 MiB). */
  maxForwardBatchWrites?: number;
  maxForwardBatchBytes?: number;
  /** Writes waiting to be forwarded, at most (default 100,000): beyond, refused (nothing done). */
  maxForwardQueued?: number;
}

/**
 * What the executor holds now (INFO raft's `executor_*` fields): a write or read that stays
 * in flight well past the leader wait is a stall, whatever Raft says.
 */
export interface ExecutorStatus {
  /** Nothing waits to be handed off (the hand-off chain has settled). */
  readonly handOffIdle: boolean;
  readonly writesInFlight: number;
  /** Age of the oldest write in flight (ms by the executor's clock), null when none. */
  readonly oldestWriteMs: number | null;
  /** Reads of the open read group not yet answered (0 when no group is open). */
  readonly readGroupPending: number;
  readonly forwardQueued: number;
  readonly forwardBatchesInFlight: number;
  /** Reads waiting for the leader's time, and whether a time request is in flight. */
  readonly timeWaiters: number;
  readonly timeInFlight: boolean;
}

/** Writes for one leader, forwarded together in one WRITE_BATCH request. */
interface ForwardBatch {
  readonly leader: NodeId;
  readonly payloads: Buffer[];
  bytes: number;
  readonly waiters: { resolve: (result: Result | null) => void; reject: (error: Error) => void }[];
}

interface TimeWaiter {
  readonly resolve: (timeMs: number) => void;
  readonly reject: (error: Error) => void;
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class RaftExecutor implements Executor {
  readonly waiters: WaiterRegistry;
  private readonly node: ExecutorNode;
  private readonly sm: StateMachine;
  private readonly transport: Pick<Transport, 'request'> | null;
  private readonly leaderWaitMs: number;
  private readonly forwardTimeoutMs: number;
  private readonly pollMs: number;
  private readonly clock: () => number;
  private readonly leaderClock: () => number;
  private readonly maxTimeWaiters: number;
  private readonly isConnected: (peer: NodeId) => boolean;
  private readonly maxEntryBytes: number;
  private timeWaiters: TimeWaiter[] = [];
  /** Resolves once every write called so far has been handed off. */
  private handOffChain: Promise<void> = Promise.resolve();
  /** handOffChain has settled: nothing waits to be handed off (the leader's fast path may run). */
  private chainIdle = true;
  private chainVersion = 0;
  private writeSeq = 0;
  /** Reads called since the last write: they run together, and the next write waits for them. */
  private readGroup: { ready: Promise<void>; runs: Promise<unknown>[]; pending: number } | null = null;
  /** Every write called and not yet settled, in call order, with the clock when called. */
  private readonly writesInFlight = new Map<number, { done: Promise<Result>; sinceMs: number }>();
  private timeInFlight = false;
  private stopped = false;
  /** The config index that removed this node from the cluster, once known. */
  private removedAt: number | null = null;
  /** Forward batches not yet sent, oldest first; the last one still takes writes. */
  private forwardQueue: ForwardBatch[] = [];
  private forwardQueued = 0;
  private forwardBatchesInFlight = 0;
  private forwardFlushScheduled = false;
  private readonly maxForwardBatches: number;
  private readonly maxForwardBatchWrites: number;
  private readonly maxForwardBatchBytes: number;
  private readonly maxForwardQueued: number;

  constructor(options: RaftExecutorOptions) {
    this.node = options.node;
    this.sm = options.stateMachine;
    this.transport = options.transport;
    this.leaderWaitMs = options.leaderWaitMs;
    this.forwardTimeoutMs = options.forwardTimeoutMs;
    this.pollMs = options.pollMs;
    this.clock = options.clock ?? Date.now;
    this.leaderClock = options.leaderClock ?? this.clock;
    this.maxTimeWaiters = options.maxTimeWaiters ?? 10_000;
    this.isConnected = options.isConnected ?? (() => true);
    this.maxEntryBytes = options.maxEntryBytes ?? Infinity;
    this.maxForwardBatches = options.maxForwardBatches ?? 16;
    this.maxForwardBatchWrites = options.maxForwardBatchWrites ?? 1024;
    this.maxForwardBatchBytes = options.maxForwardBatchBytes ?? 4 << 20;
    this.maxForwardQueued = options.maxForwardQueued ?? 100_000;
    this.waiters = new WaiterRegistry(
      options.waiterIdPrefix ?? `${options.node.id}.${randomBytes(4).toString('hex')}`,
      options.maxWaiters ?? 10_000,
    );
    this.sm.onWakeUp((id, result) => this.waiters.wake(id, result));
  }

  /** A snapshot of what is queued and in flight (cheap: no iteration beyond the oldest write). */
  status(): ExecutorStatus {
    const oldest = this.writesInFlight.values().next();
    return {
      handOffIdle: this.chainIdle,
      writesInFlight: this.writesInFlight.size,
      oldestWriteMs: oldest.done === true ? null : Math.max(0, this.clock() - oldest.value.sinceMs),
      readGroupPending: this.readGroup?.pending ?? 0,
      forwardQueued: this.forwardQueued,
      forwardBatchesInFlight: this.forwardBatchesInFlight,
      timeWaiters: this.timeWaiters.length,
      timeInFlight: this.timeInFlight,
    };
  }

  /** Fails every later request at once (the node is stopping). */
  stop(): void {
    this.stopped = true;
  }

  /** This node was removed from the cluster at `configIndex`: every read and write fails. */
  markRemoved(configIndex: number): void {
    this.removedAt = configIndex;
  }

  /** The node was added back (it was catching up through its own earlier removal): serve again. */
  clearRemoved(): void {
    this.removedAt = null;
  }

  /**
   * Writes are HANDED OFF (proposed on the leader, or sent to it) strictly in call order, one
   * after the other, so a pipeline of writes from one client applies in its order even while
   * the first ones wait for a leader; they then complete in parallel. A write whose hand-off
   * found nothing done (not the leader after all, leader unreachable) is retried within its
   * bound at once, outside the queue (see retry).
   */
  write(op: Operation): Promise<Result> {
    if (this.removedAt !== null) return Promise.reject(new NodeRemovedError(this.removedAt));
    const payload = encodeOperation(op);
    if (payload.length > this.maxEntryBytes) {
      return Promise.resolve({
        type: 'error',
        message: `ERR operation of ${payload.length} bytes exceeds the ${this.maxEntryBytes} bytes a replicated entry may take`,
      });
    }
    const calledMs = this.clock();
    const deadline = calledMs + this.leaderWaitMs;
    // Fast path (the common case on a busy leader): nothing queued ahead and no read open, so
    // proposing now keeps call order, without the hand-off chain's promises per write.
    const done =
      this.chainIdle && this.readGroup === null && !this.stopped && this.node.isLeader
        ? this.proposeNow(payload, deadline)
        : this.writeBy(payload, deadline);
    const seq = ++this.writeSeq;
    this.writesInFlight.set(seq, { done, sinceMs: calledMs });
    const forget = (): void => {
      this.writesInFlight.delete(seq);
    };
    done.then(forget, forget);
    return done;
  }

  /** Proposes on this node (the leader) at once; a refusal with nothing done retries the slow way. */
  private proposeNow(payload: Buffer, deadline: number): Promise<Result> {
    return this.node.propose(payload).then(
      (result) => {
        if (result === null) throw new OutcomeUnknownError('entry applied without a result');
        return result;
      },
      async (error: unknown) => {
        if (error instanceof NotLeaderError || error instanceof ProposalDroppedError) {
          if (this.clock() >= deadline) throw error;
          await delay(this.pollMs);
          return this.retry(payload, deadline);
        }
        throw error;
      },
    );
  }

  /** Replaces the hand-off chain, noting when it has settled (see chainIdle). */
  private setChain(chain: Promise<void>): void {
    this.handOffChain = chain;
    this.chainIdle = false;
    const version = ++this.chainVersion;
    void chain.then(() => {
      if (this.chainVersion === version) this.chainIdle = true;
    });
  }

  private writeBy(payload: Buffer, deadline: number): Promise<Result> {
    this.closeReadGroup();
    const handed = this.handOffChain.then(() => this.handOff(payload, deadline));
    this.setChain(
      handed.then(
        () => undefined,
        () => undefined,
      ),
    );
    // Nothing was done: try again (bounded by the deadline).
    return handed.then(async (attempt) => (await attempt.outcome) ?? this.retry(payload, deadline));
  }

  /**
   * Hands off again a write whose hand-off did nothing, at once and NOT through the hand-off
   * chain. Reads called after this write wait for it to complete (read), and the chain may
   * already wait for those reads (closeReadGroup, by this retry or by any later write): queued
   * there, the retry would wait for itself. That cycle never settled and no bound could end
   * it, since the deadlines only run inside handOff: every later GET and SET of every client
   * of the node queued behind it for good, while PING and INFO answered (docs/faults.md,
   * finding 2). Out of the chain, a write waits only for operations called before it.
   */
  private async retry(payload: Buffer, deadline: number): Promise<Result> {
    for (;;) {
      const attempt = await this.handOff(payload, deadline);
      const result = await attempt.outcome;
      if (result !== null) return result;
    }
  }

  /**
   * Waits (bounded) for a leader, then proposes or forwards `payload`; resolves once it is
   * handed off, with its outcome: the Result, or null when nothing was done (retry).
   */
  private async handOff(payload: Buffer, deadline: number): Promise<{ outcome: Promise<Result | null> }> {
    for (;;) {
      if (this.removedAt !== null) throw new NodeRemovedError(this.removedAt);
      if (this.stopped) throw new NodeStoppedError('stopping');
      const node = this.node;
      if (node.isLeader) {
        const outcome = node.propose(payload).then(
          (result) => {
            if (result === null) throw new OutcomeUnknownError('entry applied without a result');
            return result;
          },
          async (error: unknown) => {
            // Nothing was appended: safe to retry until the bound.
            if (error instanceof NotLeaderError || error instanceof ProposalDroppedError) {
              if (this.clock() >= deadline) throw error;
              await delay(this.pollMs);
              return null;
            }
            throw error;
          },
        );
        return { outcome };
      }
      const leader = node.leaderId;
      if (leader === null || leader === node.id || this.transport === null) {
        this.failIfNoQuorum();
        await this.waitOrFail(deadline, 'no leader elected');
        continue;
      }
      if (!this.isConnected(leader)) {
        await this.waitOrFail(deadline, `leader ${leader} not reachable`);
        continue;
      }
      const outcome = this.forwardWrite(leader, payload).then(async (result) => {
        if (result === null)
          await this.waitOrFail(deadline, `leader ${leader} unreachable or no longer leader`);
        return result;
      });
      return { outcome };
    }
  }

  /**
   * The Result, or null when nothing was proposed and a retry is safe. Throws otherwise. Joins
   * the batch being gathered for `leader` (sent at the end of this turn, or when a batch in
   * flight answers): hand-off order is send order, and the leader proposes in that order.
   */
  private forwardWrite(leader: NodeId, payload: Buffer): Promise<Result | null> {
    if (this.transport === null) return Promise.resolve(null);
    if (this.forwardQueued >= this.maxForwardQueued) {
      return Promise.reject(new ProposalDroppedError('too many writes waiting to be forwarded'));
    }
    return new Promise<Result | null>((resolve, reject) => {
      let batch = this.forwardQueue[this.forwardQueue.length - 1];
      if (
        batch === undefined ||
        batch.leader !== leader ||
        batch.payloads.length >= this.maxForwardBatchWrites ||
        (batch.payloads.length > 0 && batch.bytes + payload.length > this.maxForwardBatchBytes)
      ) {
        batch = { leader, payloads: [], bytes: 0, waiters: [] };
        this.forwardQueue.push(batch);
      }
      batch.payloads.push(payload);
      batch.bytes += payload.length;
      batch.waiters.push({ resolve, reject });
      this.forwardQueued++;
      if (!this.forwardFlushScheduled) {
        this.forwardFlushScheduled = true;
        setImmediate(() => {
          this.forwardFlushScheduled = false;
          this.flushForwards();
        });
      }
    });
  }

  /** Sends queued batches, oldest first, while a request slot is free. */
  private flushForwards(): void {
    while (this.forwardBatchesInFlight < this.maxForwardBatches) {
      const batch = this.forwardQueue.shift();
      if (batch === undefined) return;
      this.forwardQueued -= batch.payloads.length;
      this.forwardBatchesInFlight++;
      void this.sendBatch(batch).finally(() => {
        this.forwardBatchesInFlight--;
        this.flushForwards();
      });
    }
  }

  /** One WRITE_BATCH request; settles every write of the batch, in order. Never rejects. */
  private async sendBatch(batch: ForwardBatch): Promise<void> {
    const { leader, waiters } = batch;
    const settleAll = (outcome: (i: number) => Result | null): void => {
      waiters.forEach((w, i) => {
        try {
          w.resolve(outcome(i));
        } catch (error) {
          w.reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    };
    const transport = this.transport;
    if (transport === null || this.stopped) {
      settleAll(() => {
        throw new NodeStoppedError('stopping');
      });
      return;
    }
    let raw: Buffer;
    try {
      raw = await transport.request(
        leader,
        encodeForwardRequest(ForwardKind.WriteBatch, encodeWriteBatch(batch.payloads)),
        this.forwardTimeoutMs,
      );
    } catch (error) {
      if (error instanceof PeerUnreachableError) return settleAll(() => null);
      const message = error instanceof Error ? error.message : String(error);
      return settleAll(() => {
        throw new OutcomeUnknownError(`forwarded to ${leader}: ${message}`);
      });
    }
    let response: ForwardResponse;
    let items: ForwardResponse[] | null = null;
    try {
      response = decodeForwardResponse(raw);
      if (response.status === ForwardStatus.Ok) {
        items = decodeBatchResponse(response.body);
        if (items.length !== waiters.length)
          throw new Error(`${items.length} answers to ${waiters.length} writes`);
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return settleAll(() => {
        throw new OutcomeUnknownError(`forwarded to ${leader}: bad answer: ${message}`);
      });
    }
    const whole = response;
    settleAll((i) => forwardOutcome(leader, items === null ? whole : items[i]!));
  }

  /** The minority side of a partition fails fast and never hangs (issue #4). */
  private failIfNoQuorum(): void {
    const ms = this.node.noQuorumForMs?.() ?? null;
    if (ms !== null) throw new NoQuorumError(ms);
  }

  private async waitOrFail(deadline: number, why: string): Promise<void> {
    const left = deadline - this.clock();
    if (left <= 0) throw new ClusterDownError(`${why} within ${this.leaderWaitMs} ms`);
    await delay(Math.min(this.pollMs, left));
  }

  /**
   * Reads keep their place among writes (a pipelined GET after a SET sees the SET, and does
   * not see a DEL sent after it): a read waits until every write called before it has
   * completed, and writes called after it are handed off only once it has been served.
   * Consecutive reads form one group and run together (one ReadIndex batch).
   */
  read<A, T>(query: (sm: StateMachine, arg: A, nowMs: number) => T, arg: A): Promise<T> {
    let group = this.readGroup;
    if (group === null) {
      const priorWrites = [...this.writesInFlight.values()].map((w) => w.done);
      const tail = this.handOffChain;
      group = {
        ready:
          priorWrites.length === 0
            ? tail
            : tail.then(() => Promise.allSettled(priorWrites)).then(() => undefined),
        runs: [],
        pending: 0,
      };
      this.readGroup = group;
    }
    const open = group;
    const run = open.ready.then(() => this.readNow(query, arg));
    open.runs.push(run);
    open.pending++;
    const settled = (): void => {
      // Every read of the open group answered: later writes need not wait for it (and a
      // read-only stream never grows one group without bound).
      if (--open.pending === 0 && this.readGroup === open) this.readGroup = null;
    };
    run.then(settled, settled);
    return run;
  }

  readLocal<A, T>(query: (sm: StateMachine, arg: A, nowMs: number) => T, arg: A): T {
    return query(this.sm, arg, this.sm.readTime(this.leaderClock()));
  }

  /** Writes called after the open read group wait for all of its reads. */
  private closeReadGroup(): void {
    const group = this.readGroup;
    if (group === null) return;
    this.readGroup = null;
    this.setChain(Promise.allSettled(group.runs).then(() => undefined));
  }

  private async readNow<A, T>(query: (sm: StateMachine, arg: A, nowMs: number) => T, arg: A): Promise<T> {
    const deadline = this.clock() + this.leaderWaitMs;
    for (;;) {
      if (this.removedAt !== null) throw new NodeRemovedError(this.removedAt);
      if (this.stopped) throw new NodeStoppedError('stopping');
      const node = this.node;
      const leader = node.leaderId;
      if (leader === null) {
        this.failIfNoQuorum();
        await this.waitOrFail(deadline, 'no leader elected');
        continue;
      }
      // The leader's time, fetched while the barrier runs (its clock at a moment after the read began).
      const leaderTime = node.isLeader ? null : this.leaderTime();
      leaderTime?.catch(() => undefined);
      try {
        await node.readIndex();
        const timeMs = leaderTime === null ? this.leaderClock() : await leaderTime;
        return query(this.sm, arg, this.sm.readTime(timeMs));
      } catch (error) {
        // Leadership moved or the leader is not reachable: retry within the bound.
        // A ReadIndex request or its answer may be lost on the way (a reconnect drops queued
        // messages): the node times it out after one election timeout and it is asked again.
        if (
          error instanceof NotLeaderError ||
          error instanceof ClusterDownError ||
          error instanceof ReadTimeoutError
        ) {
          await this.waitOrFail(deadline, error.message);
          continue;
        }
        throw error;
      }
    }
  }

  /** The leader's clock, one request in flight for every read waiting (batched). */
  private leaderTime(): Promise<number> {
    if (this.timeWaiters.length >= this.maxTimeWaiters) {
      return Promise.reject(new ProposalDroppedError('too many reads waiting for the leader time'));
    }
    return new Promise<number>((resolve, reject) => {
      this.timeWaiters.push({ resolve, reject });
      this.pumpTime();
    });
  }

  private pumpTime(): void {
    if (this.timeInFlight || this.timeWaiters.length === 0) return;
    const batch = this.timeWaiters;
    this.timeWaiters = [];
    this.timeInFlight = true;
    this.fetchTime()
      .then(
        (timeMs) => {
          for (const w of batch) w.resolve(timeMs);
        },
        (error: unknown) => {
          const err = error instanceof Error ? error : new Error(String(error));
          for (const w of batch) w.reject(err);
        },
      )
      .finally(() => {
        this.timeInFlight = false;
        this.pumpTime();
      });
  }

  private async fetchTime(): Promise<number> {
    const leader = this.node.leaderId;
    if (leader === null) throw new NotLeaderError(null);
    if (leader === this.node.id) return this.leaderClock();
    if (this.transport === null) throw new ClusterDownError('no peer transport');
    if (!this.isConnected(leader)) throw new ClusterDownError(`leader ${leader} not reachable`);
    let raw: Buffer;
    try {
      raw = await this.transport.request(
        leader,
        encodeForwardRequest(ForwardKind.Time),
        this.forwardTimeoutMs,
      );
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new ClusterDownError(`leader ${leader}: ${message}`);
    }
    const response = decodeForwardResponse(raw);
    if (response.status === ForwardStatus.Ok) return decodeTime(response.body);
    if (response.status === ForwardStatus.NotLeader) {
      const hint = response.body.toString('utf8');
      throw new NotLeaderError(hint === '' ? null : hint);
    }
    throw new ClusterDownError(`leader ${leader} answered status ${response.status} for its time`);
  }
}

/** A forwarded write's answer: the Result, null when nothing was proposed (retry), or throws. */
function forwardOutcome(leader: NodeId, response: ForwardResponse): Result | null {
  switch (response.status) {
    case ForwardStatus.Ok:
      return decodeResult(response.body);
    case ForwardStatus.NotLeader:
      return null;
    case ForwardStatus.Dropped:
      throw new ProposalDroppedError(`at leader ${leader}: ${response.body.toString('utf8')}`);
    case ForwardStatus.Unknown:
      throw new OutcomeUnknownError(`at leader ${leader}: ${response.body.toString('utf8')}`);
    case ForwardStatus.BadRequest:
      throw new Error(`leader ${leader} refused a forwarded write: ${response.body.toString('utf8')}`);
    default: {
      const never: never = response.status;
      throw new Error(`unknown forward status ${String(never)}`);
    }
  }
}
