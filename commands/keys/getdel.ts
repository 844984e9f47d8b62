/**
 * GETDEL: returns the value of a key and deletes it, in one operation.
 *
 * Format:
 *   GETDEL key
 *
 * Reply:
 *   Bulk string: the value; nil when the key did not exist.
 */
import assert from 'node:assert';
import { NIL, bulk, error } from '../reply.js';
import { writeHandler, type CommandSpec } from '../spec.js';

export const getdel: CommandSpec = {
  name: 'getdel',
  arity: 2,
  flags: ['write', 'fast'],
  aclCategories: ['@write', '@string', '@fast'],
  keys: { first: 1, last: 1, step: 1 },
  keySpecFlags: ['RW', 'access', 'delete'],
  docs: {
    summary: 'Returns the string value of a key after deleting the key.',
    since: '6.2.0',
    group: 'string',
    complexity: 'O(1)',
    arguments: [{ name: 'key', type: 'key', keySpecIndex: 0 }],
    format: 'GETDEL key',
    reply: 'Bulk string: the value; nil when the key did not exist.',
  },
  handler: writeHandler({
    parse: (args) => ({ type: 'keys.getdel', key: args.required() }),
    reply(result) {
      if (result.type === 'error') return error(result.message);
      if (result.type !== 'value') assert.fail(`expected a value result, got ${result.type}`);
      return result.value === null ? NIL : bulk(result.value);
    },
  }),
};
