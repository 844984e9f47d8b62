/**
 * CLIENT: connection introspection and control. Each subcommand is its own spec (name
 * "client|x") with its own arity and flags.
 *
 * Format:
 *   CLIENT ID
 *   CLIENT SETNAME connection-name
 *   CLIENT GETNAME
 *   CLIENT SETINFO <LIB-NAME libname | LIB-VER libver>
 *   CLIENT INFO
 *   CLIENT LIST [TYPE <NORMAL | MASTER | REPLICA | PUBSUB>] [ID client-id [client-id ...]]
 *   CLIENT KILL <ip:port | <[ID client-id] | [TYPE <NORMAL | MASTER | SLAVE | REPLICA | PUBSUB>] |
 *     [USER username] | [ADDR ip:port] | [LADDR ip:port] | [SKIPME <YES | NO>] | [MAXAGE maxage]>
 *     [<[ID client-id] | [TYPE <NORMAL | MASTER | SLAVE | REPLICA | PUBSUB>] | [USER username] |
 *     [ADDR ip:port] | [LADDR ip:port] | [SKIPME <YES | NO>] | [MAXAGE maxage]> ...]>
 *   CLIENT NO-EVICT <ON | OFF>
 *   CLIENT NO-TOUCH <ON | OFF>
 *   CLIENT HELP
 *
 * Reply:
 *   ID: integer. SETNAME, SETINFO, NO-EVICT, NO-TOUCH: OK. GETNAME: bulk string or nil.
 *   INFO, LIST: text, one line per client ("id=.. addr=.. laddr=.. name=.. age=.. idle=..
 *   flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=.. omem=.. cmd=.. user=default redir=-1
 *   resp=.. lib-name=.. lib-ver=.."), verbatim in RESP3. KILL old form: OK or
 *   `-ERR No such client`; filter form: integer, the number of clients killed (SKIPME YES by
 *   default). NO-EVICT and NO-TOUCH change nothing: Concord neither evicts nor tracks LRU.
 */
import { CommandError, SYNTAX_ERROR, parseInt64, type ArgCursor } from '../args.js';
import type { ClientSession, CommandContext } from '../context.js';
import { containerHandler, helpReply } from '../help.js';
import { NIL, OK, bulk, error, integer, verbatim, type Reply } from '../reply.js';
import { NO_KEYS, type ArgumentDoc, type CommandFlag, type CommandSpec } from '../spec.js';
import { isValidClientAttribute } from './auth-check.js';

const FLAGS: readonly CommandFlag[] = ['noscript', 'loading', 'stale'];
const ADMIN_FLAGS: readonly CommandFlag[] = ['admin', 'noscript', 'loading', 'stale'];
const ACL = ['@slow', '@connection'];
const ADMIN_ACL = ['@admin', '@slow', '@dangerous', '@connection'];

/** One CLIENT LIST line (without the newline), with the figures the session really has. */
export function clientLine(s: ClientSession, nowMs: number): string {
  const age = Math.max(0, Math.floor((nowMs - s.createdAtMs) / 1000));
  const idle = Math.max(0, Math.floor((nowMs - s.lastActivityMs) / 1000));
  return (
    `id=${s.id} addr=${s.addr} laddr=${s.laddr} name=${s.name} age=${age} idle=${idle} flags=N ` +
    `db=${s.db} sub=0 psub=0 ssub=0 multi=-1 qbuf=${s.queryBufferBytes()} omem=${s.outputBufferBytes()} ` +
    `cmd=${s.lastCommand === '' ? 'NULL' : s.lastCommand} user=default redir=-1 resp=${s.protocol} ` +
    `lib-name=${s.libName} lib-ver=${s.libVersion}`
  );
}

/** The `<ON | OFF>` argument of CLIENT NO-EVICT and CLIENT NO-TOUCH, for COMMAND DOCS. */
const ON_OFF_ARGUMENTS: ArgumentDoc[] = [
  {
    name: 'enabled',
    type: 'oneof',
    arguments: [
      { name: 'on', type: 'pure-token', token: 'ON' },
      { name: 'off', type: 'pure-token', token: 'OFF' },
    ],
  },
];

function onOff(args: ArgCursor): void {
  const v = args.keyword();
  if (v !== 'ON' && v !== 'OFF') throw new CommandError(SYNTAX_ERROR);
}

/** A positive client id for CLIENT KILL ID / CLIENT LIST ID. */
function clientId(raw: Buffer, message: string): number {
  const v = parseInt64(raw);
  if (v === null || v <= 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CommandError(message);
  return Number(v);
}

function sub(
  name: string,
  arity: number,
  flags: readonly CommandFlag[],
  acl: readonly string[],
  summary: string,
  since: string,
  format: string,
  reply: string,
  run: (ctx: CommandContext, args: ArgCursor) => Reply,
  args?: CommandSpec['docs']['arguments'],
): CommandSpec {
  return {
    name: `client|${name}`,
    arity,
    flags,
    aclCategories: acl,
    keys: NO_KEYS,
    docs: {
      summary,
      since,
      group: 'connection',
      complexity:
        name === 'list' || name === 'kill' ? 'O(N) where N is the number of client connections' : 'O(1)',
      ...(args === undefined ? {} : { arguments: args }),
      format,
      reply,
    },
    handler: { kind: 'local', run },
  };
}

const HELP_LINES = [
  'CACHING (YES|NO)',
  '    Not supported by Concord.',
  'GETNAME',
  '    Return the name of the current connection.',
  'ID',
  '    Return the ID of the current connection.',
  'INFO',
  '    Return information about the current client connection.',
  'KILL <ip:port>',
  '    Kill connection made from <ip:port>.',
  'KILL <option> <value> [<option> <value> [...]]',
  '    Kill connections. Options are:',
  '    * ADDR (<ip:port>|<unixsocket>:0)',
  '      Kill connections made from the specified address',
  '    * LADDR (<ip:port>|<unixsocket>:0)',
  '      Kill connections made to specified local address',
  '    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)',
  '      Kill connections by type.',
  '    * USER <username>',
  '      Kill connections authenticated by <username>.',
  '    * SKIPME (YES|NO)',
  '      Skip killing current connection (default: yes).',
  '    * ID <client-id>',
  '      Kill connections by client id.',
  '    * MAXAGE <maxage>',
  '      Kill connections older than the specified age.',
  'LIST [options ...]',
  '    Return information about client connections. Options:',
  '    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)',
  '      Return clients of specified type.',
  '    * ID <client-id> [<client-id> ...]',
  '      Return clients of specified ids.',
  'NO-EVICT (ON|OFF)',
  '    Accepted; Concord never evicts clients.',
  'NO-TOUCH (ON|OFF)',
  '    Accepted; Concord does not track key access times.',
  'SETNAME <name>',
  '    Assign the name <name> to the current connection.',
  'SETINFO <option> <value>',
  '    Set client meta attr. Options are:',
  '    * LIB-NAME: the client lib name.',
  '    * LIB-VER: the client lib version.',
];

function killOldForm(ctx: CommandContext, addr: string): Reply {
  for (const c of ctx.server.clients()) {
    if (c.addr === addr) {
      ctx.server.killClient(c.id);
      return OK;
    }
  }
  return error('ERR No such client');
}

function kill(ctx: CommandContext, args: ArgCursor): Reply {
  if (args.remaining === 1) return killOldForm(ctx, args.requiredString());
  if (args.remaining % 2 !== 0) throw new CommandError(SYNTAX_ERROR);
  let id: number | null = null;
  let addr: string | null = null;
  let laddr: string | null = null;
  let maxAgeS: number | null = null;
  let typeMatchesAll = true;
  let skipMe = true;
  while (args.hasMore()) {
    const option = args.keyword();
    const value = args.required();
    switch (option) {
      case 'ID':
        id = clientId(value, 'ERR client-id should be greater than 0');
        break;
      case 'TYPE': {
        const type = value.toString('latin1').toLowerCase();
        if (type === 'normal') typeMatchesAll = true;
        else if (type === 'master' || type === 'slave' || type === 'replica' || type === 'pubsub')
          typeMatchesAll = false;
        else return error(`ERR Unknown client type '${value.toString()}'`);
        break;
      }
      case 'USER':
        if (value.toString() !== 'default') return error(`ERR No such user '${value.toString()}'`);
        break;
      case 'ADDR':
        addr = value.toString();
        break;
      case 'LADDR':
        laddr = value.toString();
        break;
      case 'SKIPME': {
        const v = value.toString('latin1').toUpperCase();
        if (v === 'YES') skipMe = true;
        else if (v === 'NO') skipMe = false;
        else throw new CommandError(SYNTAX_ERROR);
        break;
      }
      case 'MAXAGE': {
        const v = parseInt64(value);
        if (v === null) throw new CommandError(SYNTAX_ERROR);
        maxAgeS = Number(v);
        break;
      }
      default:
        throw new CommandError(SYNTAX_ERROR);
    }
  }
  if (!typeMatchesAll) return integer(0);
  const nowMs = Date.now();
  let killed = 0;
  for (const c of ctx.server.clients()) {
    if (id !== null && c.id !== id) continue;
    if (addr !== null && c.addr !== addr) continue;
    if (laddr !== null && c.laddr !== laddr) continue;
    if (maxAgeS !== null && Math.floor((nowMs - c.createdAtMs) / 1000) <= maxAgeS) continue;
    if (skipMe && c.id === ctx.session.id) continue;
    if (ctx.server.killClient(c.id)) killed++;
  }
  return integer(killed);
}

function list(ctx: CommandContext, args: ArgCursor): Reply {
  let ids: Set<number> | null = null;
  let typeMatchesAll = true;
  while (args.hasMore()) {
    const option = args.keyword();
    if (option === 'TYPE' && args.remaining >= 1) {
      const type = args.requiredString().toLowerCase();
      if (type === 'normal') typeMatchesAll = true;
      else if (type === 'master' || type === 'slave' || type === 'replica' || type === 'pubsub')
        typeMatchesAll = false;
      else return error(`ERR Unknown client type '${type}'`);
    } else if (option === 'ID' && args.remaining >= 1) {
      ids = new Set();
      while (args.hasMore()) ids.add(clientId(args.required(), 'ERR Invalid client ID'));
    } else {
      throw new CommandError(SYNTAX_ERROR);
    }
  }
  const nowMs = Date.now();
  let text = '';
  if (typeMatchesAll) {
    for (const c of ctx.server.clients()) {
      if (ids !== null && !ids.has(c.id)) continue;
      text += clientLine(c, nowMs) + '\n';
    }
  }
  return verbatim(text);
}

const subcommands: CommandSpec[] = [
  sub(
    'id',
    2,
    FLAGS,
    ACL,
    'Returns the unique client ID of the connection.',
    '5.0.0',
    'CLIENT ID',
    'Integer: the id of this connection.',
    (ctx) => integer(ctx.session.id),
  ),
  sub(
    'setname',
    3,
    FLAGS,
    ACL,
    'Sets the connection name.',
    '2.6.9',
    'CLIENT SETNAME connection-name',
    'Simple string OK; an error if the name has spaces or special characters.',
    (ctx, args) => {
      const name = args.required();
      if (!isValidClientAttribute(name)) {
        return error('ERR Client names cannot contain spaces, newlines or special characters.');
      }
      ctx.session.name = name.toString('latin1');
      return OK;
    },
    [{ name: 'connection-name', type: 'string' }],
  ),
  sub(
    'getname',
    2,
    FLAGS,
    ACL,
    'Returns the name of the connection.',
    '2.6.9',
    'CLIENT GETNAME',
    'Bulk string: the name, or nil when none is set.',
    (ctx) => (ctx.session.name === '' ? NIL : bulk(ctx.session.name)),
  ),
  sub(
    'setinfo',
    4,
    FLAGS,
    ACL,
    'Sets information specific to the client or connection.',
    '7.2.0',
    'CLIENT SETINFO <LIB-NAME libname | LIB-VER libver>',
    'Simple string OK.',
    (ctx, args) => {
      const rawAttr = args.required();
      const attr = rawAttr.toString('latin1').toLowerCase();
      const value = args.required();
      if (attr !== 'lib-name' && attr !== 'lib-ver') {
        return error(`ERR Unrecognized option '${rawAttr.toString()}'`);
      }
      if (!isValidClientAttribute(value)) {
        return error(`ERR ${attr} cannot contain spaces, newlines or special characters.`);
      }
      if (attr === 'lib-name') ctx.session.libName = value.toString('latin1');
      else ctx.session.libVersion = value.toString('latin1');
      return OK;
    },
    [
      {
        name: 'attr',
        type: 'oneof',
        arguments: [
          { name: 'libname', type: 'string', token: 'LIB-NAME' },
          { name: 'libver', type: 'string', token: 'LIB-VER' },
        ],
      },
    ],
  ),
  sub(
    'info',
    2,
    FLAGS,
    ACL,
    'Returns information about the connection.',
    '6.2.0',
    'CLIENT INFO',
    "Text: this connection's CLIENT LIST line (verbatim string in RESP3).",
    (ctx) => verbatim(clientLine(ctx.session, Date.now()) + '\n'),
  ),
  sub(
    'list',
    -2,
    ADMIN_FLAGS,
    ADMIN_ACL,
    'Lists open connections.',
    '2.4.0',
    'CLIENT LIST [TYPE <NORMAL | MASTER | REPLICA | PUBSUB>] [ID client-id [client-id ...]]',
    'Text: one line per connection (verbatim string in RESP3).',
    list,
    [
      {
        name: 'client-type',
        type: 'oneof',
        token: 'TYPE',
        optional: true,
        since: '5.0.0',
        arguments: [
          { name: 'normal', type: 'pure-token', token: 'NORMAL' },
          { name: 'master', type: 'pure-token', token: 'MASTER' },
          { name: 'replica', type: 'pure-token', token: 'REPLICA' },
          { name: 'pubsub', type: 'pure-token', token: 'PUBSUB' },
        ],
      },
      { name: 'client-id', type: 'integer', token: 'ID', optional: true, multiple: true, since: '6.2.0' },
    ],
  ),
  sub(
    'kill',
    -3,
    ADMIN_FLAGS,
    ADMIN_ACL,
    'Terminates open connections.',
    '2.4.0',
    'CLIENT KILL <ip:port | <[ID client-id] | [TYPE <NORMAL | MASTER | SLAVE | REPLICA | PUBSUB>] | ' +
      '[USER username] | [ADDR ip:port] | [LADDR ip:port] | [SKIPME <YES | NO>] | [MAXAGE maxage]> ' +
      '[<[ID client-id] | [TYPE <NORMAL | MASTER | SLAVE | REPLICA | PUBSUB>] | [USER username] | ' +
      '[ADDR ip:port] | [LADDR ip:port] | [SKIPME <YES | NO>] | [MAXAGE maxage]> ...]>',
    'Old form: OK or an error; filter form: integer, the number of clients killed.',
    kill,
    [
      {
        name: 'filter',
        type: 'oneof',
        arguments: [
          { name: 'ip:port', type: 'string' },
          {
            name: 'new-format',
            type: 'oneof',
            multiple: true,
            arguments: [
              { name: 'client-id', type: 'integer', token: 'ID', optional: true },
              {
                name: 'client-type',
                type: 'oneof',
                token: 'TYPE',
                optional: true,
                arguments: [
                  { name: 'normal', type: 'pure-token', token: 'NORMAL' },
                  { name: 'master', type: 'pure-token', token: 'MASTER' },
                  { name: 'slave', type: 'pure-token', token: 'SLAVE' },
                  { name: 'replica', type: 'pure-token', token: 'REPLICA' },
                  { name: 'pubsub', type: 'pure-token', token: 'PUBSUB' },
                ],
              },
              { name: 'username', type: 'string', token: 'USER', optional: true },
              { name: 'ip:port', type: 'string', token: 'ADDR', optional: true },
              { name: 'ip:port', type: 'string', token: 'LADDR', optional: true },
              {
                name: 'skipme',
                type: 'oneof',
                token: 'SKIPME',
                optional: true,
                arguments: [
                  { name: 'yes', type: 'pure-token', token: 'YES' },
                  { name: 'no', type: 'pure-token', token: 'NO' },
                ],
              },
              { name: 'maxage', type: 'integer', token: 'MAXAGE', optional: true },
            ],
          },
        ],
      },
    ],
  ),
  sub(
    'no-evict',
    3,
    ADMIN_FLAGS,
    ADMIN_ACL,
    'Sets the client eviction mode of the connection.',
    '7.0.0',
    'CLIENT NO-EVICT <ON | OFF>',
    'Simple string OK (Concord never evicts clients).',
    (_ctx, args) => {
      onOff(args);
      return OK;
    },
    ON_OFF_ARGUMENTS,
  ),
  sub(
    'no-touch',
    3,
    FLAGS,
    ACL,
    'Controls whether commands sent by the client affect the LRU/LFU of accessed keys.',
    '7.2.0',
    'CLIENT NO-TOUCH <ON | OFF>',
    'Simple string OK (Concord keeps no access times).',
    (_ctx, args) => {
      onOff(args);
      return OK;
    },
    ON_OFF_ARGUMENTS,
  ),
  sub(
    'help',
    2,
    ['loading', 'stale'],
    ['@slow', '@connection'],
    'Returns helpful text about the different subcommands.',
    '5.0.0',
    'CLIENT HELP',
    'Array of simple strings.',
    () => helpReply('client', HELP_LINES),
  ),
];

export const client: CommandSpec = {
  name: 'client',
  arity: -2,
  flags: [],
  aclCategories: ['@slow'],
  keys: NO_KEYS,
  docs: {
    summary: 'A container for client connection commands.',
    since: '2.4.0',
    group: 'connection',
    complexity: 'Depends on subcommand.',
    format: 'CLIENT <subcommand> [arguments]',
    reply: 'Depends on the subcommand.',
  },
  handler: containerHandler('client'),
  subcommands,
};
