/**
 * AUTH: authenticates the connection as the default user (the only user).
 *
 * Format:
 *   AUTH [username] password
 *
 * Reply:
 *   Simple string OK. `-WRONGPASS invalid username-password pair or user is disabled.` for a
 *   wrong password or another user; with no password configured, `AUTH password` answers
 *   `-ERR AUTH <password> called without any password configured for the default user. Are you
 *   sure your configuration is correct?` (and `AUTH default anything` succeeds, as Redis's
 *   nopass default user).
 */
import { CommandError, SYNTAX_ERROR } from '../args.js';
import { OK, error } from '../reply.js';
import { NO_KEYS, type CommandSpec } from '../spec.js';
import { WRONGPASS, checkCredentials } from './auth-check.js';

const DEFAULT_USER: Buffer = Buffer.from('default');

export const auth: CommandSpec = {
  name: 'auth',
  arity: -2,
  flags: ['noscript', 'loading', 'stale', 'fast', 'no_auth', 'allow_busy'],
  aclCategories: ['@fast', '@connection'],
  keys: NO_KEYS,
  docs: {
    summary: 'Authenticates the connection.',
    since: '1.0.0',
    group: 'connection',
    complexity: 'O(N) where N is the number of passwords defined for the user',
    arguments: [
      { name: 'username', type: 'string', optional: true, since: '6.0.0' },
      { name: 'password', type: 'string' },
    ],
    format: 'AUTH [username] password',
    reply: 'Simple string OK, or a WRONGPASS error.',
  },
  handler: {
    kind: 'local',
    run(ctx, args, info) {
      if (args.remaining > 2) throw new CommandError(SYNTAX_ERROR);
      const required = info.requirePass();
      let username = DEFAULT_USER;
      if (args.remaining === 2) {
        username = args.required();
      } else if (required === null) {
        return error(
          'ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?',
        );
      }
      const password = args.required();
      if (!checkCredentials(required, username, password)) return error(WRONGPASS);
      ctx.session.authenticated = true;
      return OK;
    },
  },
};
