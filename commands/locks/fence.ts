/**
 * The FENCE option for any write command (SET, the queue's QACK, the cache's CSET and CDEL):
 * `FENCE name token` makes the command's operation apply only if `token` is not older
 * than lock `name`'s latest fencing token (else `-FENCED ...`, and nothing is written).
 *
 * How a command adopts it: on the keyword FENCE, call fenceArguments(args); wrap the parsed
 * operation with withFence(op, fence); in the reply, an error result is the refusal, and
 * innerOperation(op) gives back the command's own operation for its usual reply. Code that
 * acts on a write's outcome outside the state machine (the cache agent's invalidation round)
 * must look inside the wrapper and treat the error result as "nothing written".
 * Must never decide anything itself: the check runs in the state machine, at apply.
 */
import { CommandError, parseSafeInteger, type ArgCursor } from '../args.js';
import type { ArgumentDoc } from '../spec.js';
import type { Operation } from '../state-machine.js';
import { lockKey } from './args.js';
import { fenced, type FencedOperation } from './operations.js';

export interface Fence {
  readonly name: Buffer;
  readonly token: number;
}

/** `[FENCE name token]` in a command's docs (COMMAND DOCS, docs/commands.md). */
export const FENCE_ARGUMENT: ArgumentDoc = {
  name: 'fence',
  type: 'block',
  token: 'FENCE',
  optional: true,
  since: '0.1.0',
  arguments: [
    { name: 'name', type: 'string' },
    { name: 'token', type: 'integer' },
  ],
};

/** Reads `name token` after the FENCE keyword. */
export function fenceArguments(args: ArgCursor): Fence {
  const name = lockKey(args.required(), 'name');
  const token = parseSafeInteger(args.required());
  if (token === null || token < 1) throw new CommandError('ERR FENCE token must be a positive integer');
  return { name, token };
}

export function withFence<O extends Operation>(op: O, fence: Fence | null): O | FencedOperation {
  return fence === null ? op : fenced(fence.name, fence.token, op);
}

/** The command's own operation inside a possibly fenced one. */
export function innerOperation<O extends Operation>(op: O | FencedOperation): O {
  return (op.type === 'lock.fenced' ? op.op : op) as O;
}
