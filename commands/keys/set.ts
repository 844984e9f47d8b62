/**
 * SET: stores a string value, with optional condition, expiry and old-value return (Redis 7).
 *
 * Format:
 *   SET key value [NX | XX] [GET] [EX seconds | PX milliseconds |
 *     EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL] [FENCE name token]
 *
 * Reply:
 *   Without GET: simple string OK when the value was set; nil when NX or XX prevented it.
 *   With GET: the previous value as a bulk string, or nil when the key did not exist (whether
 *   or not the value was set). Errors: `-ERR syntax error` for conflicting or unknown options,
 *   `-ERR value is not an integer or out of range` for a non-integer time,
 *   `-ERR invalid expire time in 'set' command` for a time <= 0 or too large.
 *   An EXAT/PXAT time already past stores nothing and deletes the key (replies as if set).
 *   With FENCE (Concord): `-FENCED ...` and nothing written when `token` is older than lock
 *   `name`'s latest fencing token (commands/locks/fence.ts).
 */
import assert from 'node:assert';
import { CommandError, MAX_TTL_MS, NOT_INTEGER, SYNTAX_ERROR, parseInt64, type ArgCursor } from '../args.js';
import { NIL, OK, bulk, error, type Reply } from '../reply.js';
import type { ExpireMode, Result, SetCondition, SetOperation } from '../state-machine.js';
import { writeHandler, type CommandSpec } from '../spec.js';
import { FENCE_ARGUMENT, fenceArguments, innerOperation, withFence, type Fence } from '../locks/fence.js';
import type { FencedOperation } from '../locks/operations.js';

const INVALID_EXPIRE = "ERR invalid expire time in 'set' command";

/**
 * Parses EX/PX/EXAT/PXAT's argument to milliseconds as Redis's getExpireMillisecondsOrReply
 * does: an integer > 0, within range once in milliseconds.
 */
export function expireArgumentMs(raw: Buffer, unitMs: 1 | 1000, relative: boolean, invalid: string): number {
  const v = parseInt64(raw);
  if (v === null) throw new CommandError(NOT_INTEGER);
  if (v <= 0n) throw new CommandError(invalid);
  const ms = v * BigInt(unitMs);
  if (ms > BigInt(relative ? MAX_TTL_MS : Number.MAX_SAFE_INTEGER)) throw new CommandError(invalid);
  return Number(ms);
}

export function parseSet(args: ArgCursor): SetOperation | FencedOperation {
  const key = args.required();
  const value = args.required();
  let condition: SetCondition = 'always';
  let expire: ExpireMode = 'none';
  let expireKeyword = '';
  let expireRaw: Buffer | undefined;
  let get = false;
  let fence: Fence | null = null;
  // As Redis: first the option words (syntax), then the time's value.
  while (args.hasMore()) {
    const word = args.keyword();
    switch (word) {
      case 'NX':
      case 'XX': {
        const wanted = word === 'NX' ? 'nx' : 'xx';
        if (condition !== 'always' && condition !== wanted) throw new CommandError(SYNTAX_ERROR);
        condition = wanted;
        break;
      }
      case 'GET':
        get = true;
        break;
      case 'FENCE':
        if (fence !== null) throw new CommandError(SYNTAX_ERROR);
        fence = fenceArguments(args);
        break;
      // One expiry option; repeating the same one is allowed and the last wins, as in Redis.
      case 'KEEPTTL':
        if (expireKeyword !== '' && expireKeyword !== word) throw new CommandError(SYNTAX_ERROR);
        expire = 'keep';
        expireKeyword = word;
        break;
      case 'EX':
      case 'PX':
      case 'EXAT':
      case 'PXAT':
        if ((expireKeyword !== '' && expireKeyword !== word) || !args.hasMore())
          throw new CommandError(SYNTAX_ERROR);
        expire = word === 'EX' || word === 'PX' ? 'ttl' : 'at';
        expireKeyword = word;
        expireRaw = args.required();
        break;
      default:
        throw new CommandError(SYNTAX_ERROR);
    }
  }
  let expireMs = 0;
  if (expireRaw !== undefined) {
    const unitMs = expireKeyword === 'EX' || expireKeyword === 'EXAT' ? 1000 : 1;
    expireMs = expireArgumentMs(expireRaw, unitMs, expire === 'ttl', INVALID_EXPIRE);
  }
  return withFence<SetOperation>({ type: 'keys.set', key, value, condition, expire, expireMs, get }, fence);
}

export function setReply(result: Result, wrapped: SetOperation | FencedOperation): Reply {
  if (result.type === 'error') return error(result.message);
  const op = innerOperation(wrapped);
  if (result.type !== 'set') assert.fail(`expected a set result, got ${result.type}`);
  if (op.get) return result.previous === null ? NIL : bulk(result.previous);
  return result.written ? OK : NIL;
}

export const set: CommandSpec = {
  name: 'set',
  arity: -3,
  flags: ['write', 'denyoom'],
  aclCategories: ['@write', '@string', '@slow'],
  keys: { first: 1, last: 1, step: 1 },
  keySpecFlags: ['RW', 'access', 'update', 'variable_flags'],
  docs: {
    summary: "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.",
    since: '1.0.0',
    group: 'string',
    complexity: 'O(1)',
    arguments: [
      { name: 'key', type: 'key', keySpecIndex: 0 },
      { name: 'value', type: 'string' },
      {
        name: 'condition',
        type: 'oneof',
        optional: true,
        since: '2.6.12',
        arguments: [
          { name: 'nx', type: 'pure-token', token: 'NX' },
          { name: 'xx', type: 'pure-token', token: 'XX' },
        ],
      },
      { name: 'get', type: 'pure-token', token: 'GET', optional: true, since: '6.2.0' },
      {
        name: 'expiration',
        type: 'oneof',
        optional: true,
        arguments: [
          { name: 'seconds', type: 'integer', token: 'EX', since: '2.6.12' },
          { name: 'milliseconds', type: 'integer', token: 'PX', since: '2.6.12' },
          { name: 'unix-time-seconds', type: 'unix-time', token: 'EXAT', since: '6.2.0' },
          { name: 'unix-time-milliseconds', type: 'unix-time', token: 'PXAT', since: '6.2.0' },
          { name: 'keepttl', type: 'pure-token', token: 'KEEPTTL', since: '6.0.0' },
        ],
      },
      FENCE_ARGUMENT,
    ],
    format:
      'SET key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL] [FENCE name token]',
    reply:
      "Without GET: OK when the value was set; nil when NX or XX prevented it. With GET: the previous value, or nil when the key did not exist. With FENCE: -FENCED when the token is older than the lock's latest.",
  },
  handler: writeHandler({ parse: parseSet, reply: setReply }),
};
