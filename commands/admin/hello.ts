/**
 * HELLO: switches protocol (RESP2/RESP3), optionally authenticates and names the connection,
 * and describes the server.
 *
 * Format:
 *   HELLO [protover [AUTH username password] [SETNAME clientname]]
 *
 * Reply:
 *   Map (flat array in RESP2), in the protocol just selected: server "redis", version (the
 *   Redis version Concord answers as), proto, id, mode "standalone", role "master",
 *   modules []. Errors: `-NOPROTO unsupported protocol version` for a version other than 2 or 3;
 *   `-ERR Protocol version is not an integer or out of range`; `-ERR Syntax error in HELLO
 *   option 'x'`; WRONGPASS for bad credentials; NOAUTH when a password is required and
 *   neither the connection nor this HELLO authenticated.
 */
import { parseInt64 } from '../args.js';
import { array, bulk, error, integer, map, type Reply } from '../reply.js';
import type { CommandContext } from '../context.js';
import { NO_KEYS, type CommandSpec } from '../spec.js';
import { REDIS_VERSION } from '../version.js';
import { WRONGPASS, checkCredentials, isValidClientAttribute } from './auth-check.js';

const NOAUTH_HELLO =
  'NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time';

export function helloMap(ctx: CommandContext): Reply {
  return map([
    [bulk('server'), bulk('redis')],
    [bulk('version'), bulk(REDIS_VERSION)],
    [bulk('proto'), integer(ctx.session.protocol)],
    [bulk('id'), integer(ctx.session.id)],
    [bulk('mode'), bulk('standalone')],
    [bulk('role'), bulk('master')],
    [bulk('modules'), array([])],
  ]);
}

export const hello: CommandSpec = {
  name: 'hello',
  arity: -1,
  flags: ['noscript', 'loading', 'stale', 'fast', 'no_auth', 'allow_busy'],
  aclCategories: ['@fast', '@connection'],
  keys: NO_KEYS,
  docs: {
    summary: 'Handshakes with the Redis server.',
    since: '6.0.0',
    group: 'connection',
    complexity: 'O(1)',
    arguments: [
      {
        name: 'arguments',
        type: 'block',
        optional: true,
        arguments: [
          { name: 'protover', type: 'integer' },
          {
            name: 'username-password',
            type: 'block',
            token: 'AUTH',
            optional: true,
            arguments: [
              { name: 'username', type: 'string' },
              { name: 'password', type: 'string' },
            ],
          },
          { name: 'clientname', type: 'string', token: 'SETNAME', optional: true },
        ],
      },
    ],
    format: 'HELLO [protover [AUTH username password] [SETNAME clientname]]',
    reply:
      'Map (flat array in RESP2) of server, version, proto, id, mode, role, modules, in the protocol just selected.',
  },
  handler: {
    kind: 'local',
    run(ctx, args, info) {
      let version: 2 | 3 | null = null;
      if (args.hasMore()) {
        const v = parseInt64(args.required());
        if (v === null) return error('ERR Protocol version is not an integer or out of range');
        if (v !== 2n && v !== 3n) return error('NOPROTO unsupported protocol version');
        version = v === 2n ? 2 : 3;
      }
      let username: Buffer | undefined;
      let password: Buffer | undefined;
      let clientName: Buffer | undefined;
      while (args.hasMore()) {
        const raw = args.required();
        const option = raw.toString('latin1').toUpperCase();
        if (option === 'AUTH' && args.remaining >= 2) {
          username = args.required();
          password = args.required();
        } else if (option === 'SETNAME' && args.remaining >= 1) {
          clientName = args.required();
          if (!isValidClientAttribute(clientName)) {
            return error('ERR Client names cannot contain spaces, newlines or special characters.');
          }
        } else {
          return error(`ERR Syntax error in HELLO option '${raw.toString()}'`);
        }
      }
      const required = info.requirePass();
      if (username !== undefined && password !== undefined) {
        if (!checkCredentials(required, username, password)) return error(WRONGPASS);
        ctx.session.authenticated = true;
      }
      if (!ctx.session.authenticated && required !== null) return error(NOAUTH_HELLO);
      if (clientName !== undefined) ctx.session.name = clientName.toString('latin1');
      if (version !== null) ctx.session.protocol = version;
      return helloMap(ctx);
    },
  },
};
