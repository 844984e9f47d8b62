/**
 * What the cache commands (CGET, CSET, CDEL, CPOLICY, CSTATE, INFO cache) ask of the node's
 * coherence agent (server/cache/agent.ts). The commands never see lines, leases or the
 * directory: the agent owns the protocol; this is its contract.
 *
 * Errors: operating errors are thrown / rejected (ClusterDownError, OutcomeUnknownError ...,
 * mapped in server/errors.ts); client errors decided by the home come back as error Results.
 */
import type { Result, ResultTree } from '../state-machine.js';
import type { CacheWritePolicy } from './operations.js';
import type { Fence } from '../locks/fence.js';

export interface CacheService {
  /**
   * The value of `key` (null: absent), never older than a CSET/CDEL that completed before the
   * call. Answers synchronously on a local hit.
   */
  get(key: Buffer): Buffer | null | Promise<Buffer | null>;
  /**
   * Stores `value` through the Raft log; resolves once every other holder has dropped (or, by
   * policy, updated) its copy or its lease ran out. Result: the home's tree [version, policy].
   * With `fence`, the write applies only if the fence holds (commands/locks/fence.ts); when it
   * does not, the result is the -FENCED error, nothing was written and no line changed
   * anywhere except that this node may have dropped its own copy of `key`.
   */
  set(
    key: Buffer,
    value: Buffer,
    ttlMs: number,
    policy: CacheWritePolicy,
    fence?: Fence | null,
  ): Promise<Result>;
  /**
   * Deletes `key` with the same guarantee (and the same fence). Result: tree
   * [version, policy, deleted 0|1].
   */
  del(key: Buffer, fence?: Fence | null): Promise<Result>;
  /** Sets a key's policy, or the cluster-wide one when `key` is null. */
  setPolicy(key: Buffer | null, policy: CacheWritePolicy): Promise<Result>;
  /**
   * FLUSHALL / FLUSHDB: empties the keyspace and the cache's home through the Raft log, then
   * resolves once no node can serve a line of the old home (each dropped all its lines, or its
   * lease ran out). Result: tree [version].
   */
  flushAll(): Promise<Result>;
  /** CSTATE: the line on every node and the leader's directory view of `key`. */
  state(key: Buffer): Promise<ResultTree>;
  /** This node's figures, read by INFO cache and /metrics alike. Must not change state. */
  figures(): CacheFigures;
}

/**
 * A node's near-cache figures: counters since start, levels now, and the leader's view. Time
 * figures in ms; the latency percentiles are over the last 1,024 samples.
 */
export interface CacheFigures {
  readonly hits: number;
  readonly misses: number;
  /** hits / (hits + misses), 0 before any lookup. */
  readonly hitRatio: number;
  readonly leaseExpiries: number;
  /** FETCHes sent to the leader: misses, plus renewals of hot lines (refreshes). */
  readonly fetches: number;
  readonly refreshes: number;
  /** Misses that waited for a FETCH of the same key already in flight instead of sending one. */
  readonly missesJoined: number;
  readonly writes: number;
  readonly writesWithoutRound: number;
  readonly writesFenced: number;
  readonly invalidationsSent: number;
  readonly invalidationsReceived: number;
  readonly invalidationsTimedOut: number;
  readonly updatesSent: number;
  readonly updatesReceived: number;
  readonly downgradesSent: number;
  readonly downgradesReceived: number;
  readonly evictions: number;
  readonly flushesSent: number;
  readonly flushesReceived: number;
  /** FLUSHALL rounds run by this node as leader. */
  readonly dataFlushes: number;
  readonly lines: number;
  readonly linesM: number;
  readonly linesE: number;
  readonly linesS: number;
  readonly bytes: number;
  readonly maxLines: number;
  readonly maxBytes: number;
  /** The lease granted now (cluster-wide setting, else this node's flag). */
  readonly leaseMs: number;
  readonly writeLatencyP50Ms: number;
  readonly writeLatencyP99Ms: number;
  readonly invalidationWaitP50Ms: number;
  readonly invalidationWaitP99Ms: number;
  /** Whether this node leads and so holds the directory (the next two are 0 otherwise). */
  readonly directoryLeader: boolean;
  readonly directoryKeys: number;
  readonly directoryHolders: number;
}
