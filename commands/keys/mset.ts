/**
 * MSET: sets several keys at once (atomically: one operation), clearing their expiry.
 *
 * Format:
 *   MSET key value [key value ...]
 *
 * Reply:
 *   Simple string OK.
 */
import { wrongArity } from '../args.js';
import { okReply } from '../results.js';
import { writeHandler, type CommandSpec } from '../spec.js';

export const mset: CommandSpec = {
  name: 'mset',
  arity: -3,
  flags: ['write', 'denyoom'],
  aclCategories: ['@write', '@string', '@slow'],
  keys: { first: 1, last: -1, step: 2 },
  keySpecFlags: ['OW', 'update'],
  tips: ['request_policy:multi_shard'],
  docs: {
    summary: 'Atomically creates or modifies the string values of one or more keys.',
    since: '1.0.1',
    group: 'string',
    complexity: 'O(N) where N is the number of keys to set.',
    arguments: [
      {
        name: 'data',
        type: 'block',
        multiple: true,
        arguments: [
          { name: 'key', type: 'key', keySpecIndex: 0 },
          { name: 'value', type: 'string' },
        ],
      },
    ],
    format: 'MSET key value [key value ...]',
    reply: 'Simple string OK.',
  },
  handler: writeHandler({
    parse(args) {
      if (args.remaining % 2 !== 0) wrongArity('mset');
      const pairs: [Buffer, Buffer][] = [];
      while (args.hasMore()) pairs.push([args.required(), args.required()]);
      return { type: 'keys.mset', pairs };
    },
    reply: okReply,
  }),
};
