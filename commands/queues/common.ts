/**
 * Argument parsing and reply shapes shared by the queue commands (one file per command beside
 * this one). Must never touch the state machine: commands parse into QueueOperations
 * (operations.ts) and the store (store.ts) decides.
 */
import assert from 'node:assert';
import { CommandError, parseSafeInteger, type ArgCursor } from '../args.js';
import { NIL_ARRAY, array, bulk, error, integer, type Reply } from '../reply.js';
import type { Result, ResultTree } from '../state-machine.js';
import type { Receipt } from './operations.js';
import { MAX_DURATION_MS, parseReceipt } from './store.js';

/** An integer argument within [min, max], else `-ERR <what> must be min to max`. */
export function boundedInteger(args: ArgCursor, what: string, min: number, max: number): number {
  const v = parseSafeInteger(args.required());
  if (v === null || v < min || v > max)
    throw new CommandError(`ERR ${what} must be an integer from ${min} to ${max}`);
  return v;
}

/** A duration in ms: 1 to MAX_DURATION_MS (0 too when `zero` says what it means). */
export function durationMs(args: ArgCursor, what: string, zeroAllowed = false): number {
  return boundedInteger(args, `${what} (ms)`, zeroAllowed ? 0 : 1, MAX_DURATION_MS);
}

/**
 * QNACK's and QTOUCH's arguments: `queue receipt [<keyword> milliseconds]`. The duration is 0
 * when omitted (which each command reads as its own default); anything else after the receipt
 * is `-ERR syntax error`.
 */
export function receiptWithDuration(
  args: ArgCursor,
  keyword: string,
  zeroAllowed: boolean,
): { queue: Buffer; receipt: Receipt; ms: number } {
  const queue = args.required();
  const receipt = receiptArgument(args.required());
  let ms = 0;
  if (args.hasMore()) {
    if (args.keyword() !== keyword) throw new CommandError('ERR syntax error');
    ms = durationMs(args, keyword, zeroAllowed);
  }
  args.end();
  return { queue, receipt, ms };
}

export function receiptArgument(raw: Buffer): Receipt {
  const r = parseReceipt(raw);
  if (r === null) {
    const shown = raw
      .toString()
      .slice(0, 64)
      .replace(/[\r\n]/g, ' ');
    throw new CommandError(`ERR invalid receipt '${shown}': give the receipt QPOP returned (id-delivery)`);
  }
  return r;
}

/** QPOP's messages: [[id, payload, deliveries, receipt] ...], or the nil array for none. */
export function messagesReply(result: Result): Reply {
  if (result.type === 'error') return error(result.message);
  if (result.type !== 'tree') assert.fail(`expected a tree result, got ${result.type}`);
  const tree = result.value;
  if (tree === null) return NIL_ARRAY;
  assert.ok(Array.isArray(tree), 'QPOP result is not a list');
  return array((tree as readonly ResultTree[]).map(treeReply));
}

/** QPUSH's ids: an array of integers. */
export function idsReply(result: Result): Reply {
  if (result.type === 'error') return error(result.message);
  if (result.type !== 'tree') assert.fail(`expected a tree result, got ${result.type}`);
  return treeReply(result.value);
}

function treeReply(tree: ResultTree): Reply {
  if (tree === null) return NIL_ARRAY;
  if (typeof tree === 'number' || typeof tree === 'bigint') return integer(tree);
  if (typeof tree === 'string' || Buffer.isBuffer(tree)) return bulk(tree);
  if (typeof tree === 'boolean') return integer(tree ? 1 : 0);
  return array(tree.map(treeReply));
}
