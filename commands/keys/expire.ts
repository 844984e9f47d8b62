/**
 * EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT: set a key's time to live (relative, from the time the
 * operation is applied, or absolute), with Redis 7's NX/XX/GT/LT conditions; PERSIST removes it.
 * A time already past deletes the key.
 *
 * Format:
 *   EXPIRE key seconds [NX | XX | GT | LT]
 *   PEXPIRE key milliseconds [NX | XX | GT | LT]
 *   EXPIREAT key unix-time-seconds [NX | XX | GT | LT]
 *   PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]
 *   PERSIST key
 *
 * Reply:
 *   Integer: 1 when the expiry was set (or removed, for PERSIST); 0 when the key does not exist
 *   or the condition was not met. Errors: `-ERR value is not an integer or out of range`,
 *   `-ERR invalid expire time in 'expire' command` for a time out of range,
 *   `-ERR NX and XX, GT or LT options at the same time are not compatible`,
 *   `-ERR GT and LT options at the same time are not compatible`, `-ERR Unsupported option x`.
 */
import { CommandError, MAX_TTL_MS, NOT_INTEGER, parseInt64, type ArgCursor } from '../args.js';
import { integerReply } from '../results.js';
import type { ArgumentDoc, CommandSpec } from '../spec.js';
import { writeHandler } from '../spec.js';
import type { ExpireCondition, Operation } from '../state-machine.js';

const CONDITION_DOC: ArgumentDoc = {
  name: 'condition',
  type: 'oneof',
  optional: true,
  since: '7.0.0',
  arguments: [
    { name: 'nx', type: 'pure-token', token: 'NX' },
    { name: 'xx', type: 'pure-token', token: 'XX' },
    { name: 'gt', type: 'pure-token', token: 'GT' },
    { name: 'lt', type: 'pure-token', token: 'LT' },
  ],
};

/** Redis's parseExtendedExpireArgumentsOrReply: options first, then the time. */
function parseExpire(args: ArgCursor, name: string, unitMs: 1 | 1000, mode: 'ttl' | 'at'): Operation {
  const key = args.required();
  const raw = args.required();
  let nx = false;
  let xx = false;
  let gt = false;
  let lt = false;
  while (args.hasMore()) {
    const optionRaw = args.required();
    const option = optionRaw.toString('latin1').toUpperCase();
    if (option === 'NX') nx = true;
    else if (option === 'XX') xx = true;
    else if (option === 'GT') gt = true;
    else if (option === 'LT') lt = true;
    else throw new CommandError(`ERR Unsupported option ${optionRaw.toString()}`);
  }
  if (nx && (xx || gt || lt))
    throw new CommandError('ERR NX and XX, GT or LT options at the same time are not compatible');
  if (gt && lt) throw new CommandError('ERR GT and LT options at the same time are not compatible');
  const condition: ExpireCondition = nx ? 'nx' : xx ? 'xx' : gt ? 'gt' : lt ? 'lt' : 'always';
  const v = parseInt64(raw);
  if (v === null) throw new CommandError(NOT_INTEGER);
  let ms = v * BigInt(unitMs);
  const limit = BigInt(mode === 'ttl' ? MAX_TTL_MS : Number.MAX_SAFE_INTEGER);
  if (ms > limit) throw new CommandError(`ERR invalid expire time in '${name}' command`);
  // Any time in the past deletes the key; clamping keeps the number exact without changing that.
  if (ms < -limit) ms = -limit;
  return { type: 'keys.expire', key, mode, ms: Number(ms), condition };
}

function expireCommand(
  name: string,
  unitMs: 1 | 1000,
  mode: 'ttl' | 'at',
  argName: string,
  argType: 'integer' | 'unix-time',
  since: string,
  summary: string,
): CommandSpec {
  const upper = name.toUpperCase();
  return {
    name,
    arity: -3,
    flags: ['write', 'fast'],
    aclCategories: ['@keyspace', '@write', '@fast'],
    keys: { first: 1, last: 1, step: 1 },
    keySpecFlags: ['RW', 'update'],
    docs: {
      summary,
      since,
      group: 'generic',
      complexity: 'O(1)',
      arguments: [
        { name: 'key', type: 'key', keySpecIndex: 0 },
        { name: argName, type: argType },
        CONDITION_DOC,
      ],
      format: `${upper} key ${argName} [NX | XX | GT | LT]`,
      reply:
        'Integer: 1 when the expiry was set; 0 when the key does not exist or the condition was not met.',
    },
    handler: writeHandler({
      parse: (args) => parseExpire(args, name, unitMs, mode),
      reply: integerReply,
    }),
  };
}

export const expire = expireCommand(
  'expire',
  1000,
  'ttl',
  'seconds',
  'integer',
  '1.0.0',
  'Sets the expiration time of a key in seconds.',
);
export const pexpire = expireCommand(
  'pexpire',
  1,
  'ttl',
  'milliseconds',
  'integer',
  '2.6.0',
  'Sets the expiration time of a key in milliseconds.',
);
export const expireat = expireCommand(
  'expireat',
  1000,
  'at',
  'unix-time-seconds',
  'unix-time',
  '1.2.0',
  'Sets the expiration time of a key to a Unix timestamp.',
);
export const pexpireat = expireCommand(
  'pexpireat',
  1,
  'at',
  'unix-time-milliseconds',
  'unix-time',
  '2.6.0',
  'Sets the expiration time of a key to a Unix milliseconds timestamp.',
);

export const persist: CommandSpec = {
  name: 'persist',
  arity: 2,
  flags: ['write', 'fast'],
  aclCategories: ['@keyspace', '@write', '@fast'],
  keys: { first: 1, last: 1, step: 1 },
  keySpecFlags: ['RW', 'update'],
  docs: {
    summary: 'Removes the expiration time of a key.',
    since: '2.2.0',
    group: 'generic',
    complexity: 'O(1)',
    arguments: [{ name: 'key', type: 'key', keySpecIndex: 0 }],
    format: 'PERSIST key',
    reply: 'Integer: 1 when the expiry was removed; 0 when the key does not exist or has none.',
  },
  handler: writeHandler({
    parse: (args) => ({ type: 'keys.persist', key: args.required() }),
    reply: integerReply,
  }),
};
