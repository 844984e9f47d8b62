/**
 * PING: liveness check, answered locally.
 *
 * Format:
 *   PING [message]
 *
 * Reply:
 *   Simple string PONG without an argument; otherwise the argument as a bulk string.
 *   In RESP2 pub/sub mode Redis answers an array; Concord has no pub/sub.
 */
import { wrongArity } from '../args.js';
import { PONG, bulk } from '../reply.js';
import type { CommandSpec } from '../spec.js';
import { NO_KEYS } from '../spec.js';

export const ping: CommandSpec = {
  name: 'ping',
  arity: -1,
  flags: ['fast'],
  aclCategories: ['@fast', '@connection'],
  keys: NO_KEYS,
  docs: {
    summary: "Returns the server's liveliness response.",
    since: '1.0.0',
    group: 'connection',
    complexity: 'O(1)',
    arguments: [{ name: 'message', type: 'string', optional: true }],
    format: 'PING [message]',
    reply: 'Simple string PONG without an argument; otherwise the argument as a bulk string.',
  },
  handler: {
    kind: 'local',
    run(_ctx, args) {
      if (args.remaining > 1) wrongArity('ping');
      const message = args.optional();
      return message === undefined ? PONG : bulk(message);
    },
  },
};
