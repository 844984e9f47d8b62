/**
 * STRLEN: the length in bytes of the value at a key.
 *
 * Format:
 *   STRLEN key
 *
 * Reply:
 *   Integer: the value's length in bytes; 0 when the key does not exist.
 */
import { integer } from '../reply.js';
import { readHandler, type CommandSpec } from '../spec.js';

export const strlen: CommandSpec = {
  name: 'strlen',
  arity: 2,
  flags: ['readonly', 'fast'],
  aclCategories: ['@read', '@string', '@fast'],
  keys: { first: 1, last: 1, step: 1 },
  keySpecFlags: ['RO'],
  docs: {
    summary: 'Returns the length of a string value.',
    since: '2.2.0',
    group: 'string',
    complexity: 'O(1)',
    arguments: [{ name: 'key', type: 'key', keySpecIndex: 0 }],
    format: 'STRLEN key',
    reply: 'Integer: the length in bytes; 0 when the key does not exist.',
  },
  handler: readHandler<Buffer>({
    parse: (args) => args.required(),
    query: (sm, key, nowMs) => integer(sm.keys.get(key, nowMs)?.length ?? 0),
  }),
};
