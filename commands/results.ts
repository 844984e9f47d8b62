/**
 * Turning state machine Results into Replies, shared by the write commands. A Result of the
 * wrong type for the command is a broken invariant (the state machine and the command disagree
 * about the operation), so it crashes through node:assert instead of guessing a reply.
 *
 * Also the shared immutable Results: here, in a module the family stores can import without
 * importing state-machine.ts (which imports the stores; a value import cycle there works only
 * while nothing reads these at module load).
 */
import assert from 'node:assert';
import { OK, error, integer, type Reply } from './reply.js';
import type { Result } from './state-machine.js';

export const OK_RESULT: Result = Object.freeze({ type: 'ok' });
export const BLOCKED_RESULT: Result = Object.freeze({ type: 'blocked' });

export function okReply(result: Result): Reply {
  if (result.type === 'error') return error(result.message);
  if (result.type !== 'ok') assert.fail(`expected an ok result, got ${result.type}`);
  return OK;
}

export function integerReply(result: Result): Reply {
  if (result.type === 'error') return error(result.message);
  if (result.type !== 'integer') assert.fail(`expected an integer result, got ${result.type}`);
  return integer(result.value);
}
