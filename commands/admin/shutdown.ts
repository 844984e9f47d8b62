/**
 * SHUTDOWN: stops the server gracefully (ServerContext.shutdown: stop accepting, finish
 * in-flight replies, exit). Concord's durable state is its Raft log, so SAVE and NOSAVE both
 * stop without writing anything more.
 *
 * Format:
 *   SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]
 *
 * Reply:
 *   Simple string OK, then the server closes the connection as it stops.
 *   `-ERR syntax error` for unknown or conflicting options; ABORT answers
 *   `-ERR No shutdown in progress.` (a Concord shutdown is never pending).
 */
import { CommandError, SYNTAX_ERROR } from '../args.js';
import { OK, error } from '../reply.js';
import { NO_KEYS, type CommandSpec } from '../spec.js';

export const shutdown: CommandSpec = {
  name: 'shutdown',
  arity: -1,
  flags: ['admin', 'noscript', 'loading', 'stale', 'no_multi', 'allow_busy'],
  aclCategories: ['@admin', '@slow', '@dangerous'],
  keys: NO_KEYS,
  docs: {
    summary: 'Synchronously saves the database(s) to disk and shuts down the Redis server.',
    since: '1.0.0',
    group: 'server',
    complexity:
      'O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)',
    arguments: [
      {
        name: 'save-selector',
        type: 'oneof',
        optional: true,
        arguments: [
          { name: 'nosave', type: 'pure-token', token: 'NOSAVE' },
          { name: 'save', type: 'pure-token', token: 'SAVE' },
        ],
      },
      { name: 'now', type: 'pure-token', token: 'NOW', optional: true, since: '7.0.0' },
      { name: 'force', type: 'pure-token', token: 'FORCE', optional: true, since: '7.0.0' },
      { name: 'abort', type: 'pure-token', token: 'ABORT', optional: true, since: '7.0.0' },
    ],
    format: 'SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]',
    reply: 'Simple string OK, then the connection closes as the server stops.',
  },
  handler: {
    kind: 'local',
    run(ctx, args) {
      let save = false;
      let nosave = false;
      let abort = false;
      let other = false;
      while (args.hasMore()) {
        const option = args.keyword();
        if (option === 'SAVE') save = true;
        else if (option === 'NOSAVE') nosave = true;
        else if (option === 'ABORT') abort = true;
        else if (option === 'NOW' || option === 'FORCE') other = true;
        else throw new CommandError(SYNTAX_ERROR);
      }
      if ((save && nosave) || (abort && (save || nosave || other))) throw new CommandError(SYNTAX_ERROR);
      if (abort) return error('ERR No shutdown in progress.');
      ctx.server.shutdown(`SHUTDOWN from client id=${ctx.session.id} addr=${ctx.session.addr}`);
      return OK;
    },
  },
};
