/**
 * The ONE place where typed operating errors become RESP error replies (house style: error
 * kind 2). Client errors are already Replies (the dispatcher returns them) and never get
 * here; broken invariants are assertion failures that crash the node and are never caught.
 *
 * Mapping:
 * - ConfigError (a CONFIG SET refused by the ConfigStore) -> its Redis text, `-ERR ...`.
 * - NotLeaderError -> `-TRYAGAIN ...` (a single-node server is always the leader; the
 *   follower-to-leader routing of the next issue decides whether to forward instead).
 * - ProposalDroppedError -> `-TRYAGAIN ...` (the leader refused it without appending: safe to retry).
 * - anything else -> `-ERR internal error`, and a log line at error level with the stack, so
 *   an unexpected exception costs one reply, not the process.
 *
 * Must never decide what a command means, and never leak a stack trace to a client.
 */
import { error, type Reply } from '../commands/reply.js';
import { NotLeaderError, ProposalDroppedError } from '../raft/errors.js';
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
  log.error({ err: thrown }, 'internal error while running a command');
  return INTERNAL_ERROR;
}
