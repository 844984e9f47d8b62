/**
 * TYPE: the type of the value at a key. Concord's keyspace holds only strings.
 *
 * Format:
 *   TYPE key
 *
 * Reply:
 *   Simple string: "string", or "none" when the key does not exist.
 */
import { simple, type Reply } from '../reply.js';
import { readHandler, type CommandSpec } from '../spec.js';

const STRING: Reply = Object.freeze(simple('string'));
const NONE: Reply = Object.freeze(simple('none'));

export const type: CommandSpec = {
  name: 'type',
  arity: 2,
  flags: ['readonly', 'fast'],
  aclCategories: ['@keyspace', '@read', '@fast'],
  keys: { first: 1, last: 1, step: 1 },
  keySpecFlags: ['RO'],
  docs: {
    summary: 'Determines the type of value stored at a key.',
    since: '1.0.0',
    group: 'generic',
    complexity: 'O(1)',
    arguments: [{ name: 'key', type: 'key', keySpecIndex: 0 }],
    format: 'TYPE key',
    reply: 'Simple string: "string", or "none" when the key does not exist.',
  },
  handler: readHandler<Buffer>({
    parse: (args) => args.required(),
    query: (sm, key, nowMs) => (sm.keys.peek(key, nowMs) === undefined ? NONE : STRING),
  }),
};
