/**
 * The ONE place where typed operating errors become RESP error replies (house style: error
 * kind 2). Client errors are already Replies (the dispatcher returns them) and never get
 * here; broken invariants are assertion failures that crash the node and are never caught.
 *
 * Mapping (Redis Cluster's retry prefixes, so clients that know them retry):
 * - ConfigError, ClusterAdminError -> their Redis text (`-ERR ...`).
 * - ClusterDownError (no leader within the bound) -> `-CLUSTERDOWN No leader: ...`.
 * - NoQuorumError (this node knows it cannot reach a majority: at once) -> `-CLUSTERDOWN no
 *   quorum: this node cannot reach a majority (last leader contact N ms ago)`.
 * - NodeRemovedError -> `-ERR this node was removed from the cluster (by config index N)`.
 * - NotLeaderError -> `-TRYAGAIN ...` (the executor normally routes to the leader first).
 * - ProposalDroppedError, ReadTimeoutError -> `-TRYAGAIN ...` (nothing was done: safe to retry).
 * - LeadershipLostError, ProposalTimeoutError, OutcomeUnknownError -> `-TRYAGAIN outcome
 *   unknown: ...` (the write may have applied: retry only if it is idempotent). Never an OK.
 * - NodeStoppedError -> `-TRYAGAIN node stopping: ...`.
 * - anything else -> `-ERR internal error`, and a log line at error level with the stack, so
 *   an unexpected exception costs one reply, not the process.
 *
 * Must never decide what a command means, and never leak a stack trace to a client.
 */
import { error, type Reply } from '../commands/reply.js';
import {
  LeadershipLostError,
  NodeStoppedError,
  NotLeaderError,
  ProposalDroppedError,
  ProposalTimeoutError,
  ReadTimeoutError,
} from '../raft/errors.js';
import { ClusterAdminError } from './cluster-view.js';
import { ClusterDownError, NodeRemovedError, NoQuorumError, OutcomeUnknownError } from './raft-executor.js';
import type { Logger } from './log.js';

/** A configuration change refused; `message` is the complete Redis error text ("ERR ..."). */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const INTERNAL_ERROR: Reply = Object.freeze(error('ERR internal error'));

/** Turns a thrown value into the reply the client gets. */
export function errorToReply(thrown: unknown, log: Logger): Reply {
  if (thrown instanceof ConfigError) return error(thrown.message);
  if (thrown instanceof NotLeaderError) {
    return error(
      thrown.leader === null
        ? 'TRYAGAIN no leader elected yet'
        : `TRYAGAIN not the leader, try ${thrown.leader}`,
    );
  }
  if (thrown instanceof ProposalDroppedError) return error(`TRYAGAIN ${thrown.message}`);
  if (thrown instanceof ClusterAdminError) return error(thrown.message);
  if (thrown instanceof ClusterDownError) return error(`CLUSTERDOWN No leader: ${thrown.message}`);
  if (thrown instanceof NoQuorumError) return error(`CLUSTERDOWN ${thrown.message}`);
  if (thrown instanceof NodeRemovedError) return error(`ERR ${thrown.message}`);
  if (thrown instanceof ReadTimeoutError) return error(`TRYAGAIN ${thrown.message}`);
  if (
    thrown instanceof LeadershipLostError ||
    thrown instanceof ProposalTimeoutError ||
    thrown instanceof OutcomeUnknownError
  ) {
    return error(`TRYAGAIN outcome unknown: ${thrown.message}`);
  }
  if (thrown instanceof NodeStoppedError) return error(`TRYAGAIN node stopping: ${thrown.message}`);
  log.error({ err: thrown }, 'internal error while running a command');
  return INTERNAL_ERROR;
}
