/**
 * RESET: returns the connection to its initial state: RESP2, database 0, no name,
 * unauthenticated when a password is required.
 *
 * Format:
 *   RESET
 *
 * Reply:
 *   Simple string RESET.
 */
import { simple, type Reply } from '../reply.js';
import { NO_KEYS, type CommandSpec } from '../spec.js';
import { setReadonly } from '../cluster/redirect.js';

const RESET: Reply = Object.freeze(simple('RESET'));

export const reset: CommandSpec = {
  name: 'reset',
  arity: 1,
  flags: ['noscript', 'loading', 'stale', 'fast', 'no_auth', 'allow_busy'],
  aclCategories: ['@fast', '@connection'],
  keys: NO_KEYS,
  docs: {
    summary: 'Resets the connection.',
    since: '6.2.0',
    group: 'connection',
    complexity: 'O(1)',
    format: 'RESET',
    reply: 'Simple string RESET.',
  },
  handler: {
    kind: 'local',
    run(ctx, _args, info) {
      const session = ctx.session;
      session.protocol = 2;
      session.db = 0;
      session.name = '';
      setReadonly(session, false); // Redis's RESET returns the connection to READWRITE
      session.authenticated = info.requirePass() === null;
      return RESET;
    },
  },
};
