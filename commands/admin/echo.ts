/**
 * ECHO: returns its argument.
 *
 * Format:
 *   ECHO message
 *
 * Reply:
 *   Bulk string: the message.
 */
import { bulk } from '../reply.js';
import { NO_KEYS, type CommandSpec } from '../spec.js';

export const echo: CommandSpec = {
  name: 'echo',
  arity: 2,
  flags: ['fast'],
  aclCategories: ['@fast', '@connection'],
  keys: NO_KEYS,
  docs: {
    summary: 'Returns the given string.',
    since: '1.0.0',
    group: 'connection',
    complexity: 'O(1)',
    arguments: [{ name: 'message', type: 'string' }],
    format: 'ECHO message',
    reply: 'Bulk string: the message.',
  },
  handler: { kind: 'local', run: (_ctx, args) => bulk(args.required()) },
};
