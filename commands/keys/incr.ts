/**
 * INCR, INCRBY, DECR, DECRBY: add to the integer stored at a key (a missing key counts as 0;
 * the key keeps its expiry).
 *
 * Format:
 *   INCR key
 *   INCRBY key increment
 *   DECR key
 *   DECRBY key decrement
 *
 * Reply:
 *   Integer: the value after the change. Errors: `-ERR value is not an integer or out of range`
 *   when the stored value or the argument is not a signed 64-bit integer;
 *   `-ERR increment or decrement would overflow` when the result leaves that range;
 *   `-ERR decrement would overflow` for DECRBY -9223372036854775808.
 */
import { fail } from '../args.js';
import { integerReply } from '../results.js';
import type { ArgumentDoc, CommandSpec } from '../spec.js';
import { writeHandler } from '../spec.js';

const INT64_MIN = -(2n ** 63n);
const KEY: ArgumentDoc = { name: 'key', type: 'key', keySpecIndex: 0 };
const KEYS = { first: 1, last: 1, step: 1 };
const KEY_FLAGS = ['RW', 'access', 'update'];
const FLAGS = ['write', 'denyoom', 'fast'] as const;
const ACL = ['@write', '@string', '@fast'];

export const incr: CommandSpec = {
  name: 'incr',
  arity: 2,
  flags: FLAGS,
  aclCategories: ACL,
  keys: KEYS,
  keySpecFlags: KEY_FLAGS,
  docs: {
    summary:
      "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
    since: '1.0.0',
    group: 'string',
    complexity: 'O(1)',
    arguments: [KEY],
    format: 'INCR key',
    reply: 'Integer: the value after the increment.',
  },
  handler: writeHandler({
    parse: (args) => ({ type: 'keys.incrby', key: args.required(), delta: 1n }),
    reply: integerReply,
  }),
};

export const incrby: CommandSpec = {
  name: 'incrby',
  arity: 3,
  flags: FLAGS,
  aclCategories: ACL,
  keys: KEYS,
  keySpecFlags: KEY_FLAGS,
  docs: {
    summary:
      "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
    since: '1.0.0',
    group: 'string',
    complexity: 'O(1)',
    arguments: [KEY, { name: 'increment', type: 'integer' }],
    format: 'INCRBY key increment',
    reply: 'Integer: the value after the increment.',
  },
  handler: writeHandler({
    parse: (args) => ({ type: 'keys.incrby', key: args.required(), delta: args.int64() }),
    reply: integerReply,
  }),
};

export const decr: CommandSpec = {
  name: 'decr',
  arity: 2,
  flags: FLAGS,
  aclCategories: ACL,
  keys: KEYS,
  keySpecFlags: KEY_FLAGS,
  docs: {
    summary:
      "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
    since: '1.0.0',
    group: 'string',
    complexity: 'O(1)',
    arguments: [KEY],
    format: 'DECR key',
    reply: 'Integer: the value after the decrement.',
  },
  handler: writeHandler({
    parse: (args) => ({ type: 'keys.incrby', key: args.required(), delta: -1n }),
    reply: integerReply,
  }),
};

export const decrby: CommandSpec = {
  name: 'decrby',
  arity: 3,
  flags: FLAGS,
  aclCategories: ACL,
  keys: KEYS,
  keySpecFlags: KEY_FLAGS,
  docs: {
    summary:
      "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.",
    since: '1.0.0',
    group: 'string',
    complexity: 'O(1)',
    arguments: [KEY, { name: 'decrement', type: 'integer' }],
    format: 'DECRBY key decrement',
    reply: 'Integer: the value after the decrement.',
  },
  handler: writeHandler({
    parse(args) {
      const key = args.required();
      const decrement = args.int64();
      if (decrement === INT64_MIN) fail('ERR decrement would overflow');
      return { type: 'keys.incrby', key, delta: -decrement };
    },
    reply: integerReply,
  }),
};
