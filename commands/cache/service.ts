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
  /** CSTATE: the line on every node and the leader's directory view of `key`. */
  state(key: Buffer): Promise<ResultTree>;
  /** INFO cache: "field:value" lines. */
  infoLines(): string[];
}
