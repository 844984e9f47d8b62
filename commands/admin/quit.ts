/**
 * QUIT: asks the server to close the connection once this reply is written.
 *
 * Format:
 *   QUIT
 *
 * Reply:
 *   Simple string OK, then the connection closes.
 */
import { OK } from '../reply.js';
import { NO_KEYS, type CommandSpec } from '../spec.js';

export const quit: CommandSpec = {
  name: 'quit',
  arity: -1,
  flags: ['noscript', 'loading', 'stale', 'fast', 'no_auth', 'allow_busy'],
  aclCategories: ['@fast', '@connection'],
  keys: NO_KEYS,
  docs: {
    summary: 'Closes the connection.',
    since: '1.0.0',
    group: 'connection',
    complexity: 'O(1)',
    format: 'QUIT',
    reply: 'Simple string OK, then the connection closes.',
  },
  handler: {
    kind: 'local',
    run(ctx) {
      ctx.session.closeAfterReply = true;
      return OK;
    },
  },
};
