/**
 * COMMAND: introspection of the command table (the one registry in table.ts), as Redis 7.
 *
 * Format:
 *   COMMAND
 *   COMMAND COUNT
 *   COMMAND INFO [command-name [command-name ...]]
 *   COMMAND DOCS [command-name [command-name ...]]
 *   COMMAND LIST [FILTERBY <MODULE module-name | ACLCAT category | PATTERN pattern>]
 *   COMMAND GETKEYS command [arg [arg ...]]
 *   COMMAND GETKEYSANDFLAGS command [arg [arg ...]]
 *   COMMAND HELP
 *
 * Reply:
 *   COMMAND, COMMAND INFO: array of 10-element command descriptions (name, arity, flags,
 *   first key, last key, step, ACL categories, tips, key specs, subcommands); nil for an
 *   unknown name. COUNT: integer (top-level commands). DOCS: map (flat array in RESP2) of
 *   name to summary, since, group, complexity, arguments, subcommands; unknown names are
 *   left out. LIST: array of names, subcommands as "container|sub". GETKEYS: array of the
 *   keys in the given command; GETKEYSANDFLAGS: array of [key, flags].
 *   Subcommand names are "container|sub" (e.g. "client|kill").
 */
import { CommandError, SYNTAX_ERROR, type ArgCursor } from '../args.js';
import { commandDocs, commandInfo, keySpecFlags } from '../describe.js';
import { globMatch } from '../glob.js';
import { helpReply } from '../help.js';
import { NIL, array, bulk, error, integer, map, simple, type Reply } from '../reply.js';
import { NO_KEYS, type CommandSpec, type DispatchInfo } from '../spec.js';

const FLAGS = ['loading', 'stale'] as const;
const ACL = ['@slow', '@connection'];

/** "get", "client|kill", or "client kill" split over two arguments is not accepted here. */
function lookupByName(commands: ReadonlyMap<string, CommandSpec>, name: string): CommandSpec | undefined {
  const lower = name.toLowerCase();
  const bar = lower.indexOf('|');
  if (bar < 0) return commands.get(lower);
  const container = commands.get(lower.slice(0, bar));
  return container?.subcommands?.find((s) => s.name === lower);
}

/** The spec a full command line runs (container + subcommand resolved), as GETKEYS needs. */
function lookupArgv(
  commands: ReadonlyMap<string, CommandSpec>,
  argv: readonly Buffer[],
): CommandSpec | undefined {
  const spec = commands.get(argv[0]!.toString('latin1').toLowerCase());
  if (spec?.subcommands === undefined || argv.length < 2) return spec;
  const full = `${spec.name}|${argv[1]!.toString('latin1').toLowerCase()}`;
  return spec.subcommands.find((s) => s.name === full);
}

function allSpecs(commands: ReadonlyMap<string, CommandSpec>): CommandSpec[] {
  const out: CommandSpec[] = [];
  for (const spec of commands.values()) {
    out.push(spec);
    for (const s of spec.subcommands ?? []) out.push(s);
  }
  return out;
}

/** Key argument indexes (into argv, 0 = command name) from first/last/step. */
export function keyIndexes(spec: CommandSpec, argc: number): number[] {
  const { first, last, step } = spec.keys;
  if (first === 0) return [];
  const end = last < 0 ? argc + last : last;
  const out: number[] = [];
  for (let i = first; i <= end && i < argc; i += step) out.push(i);
  return out;
}

function getKeys(info: DispatchInfo, args: ArgCursor, withFlags: boolean): Reply {
  const argv = args.rest();
  const spec = lookupArgv(info.commands, argv);
  if (spec === undefined) return error('ERR Invalid command specified');
  if (spec.keys.first === 0) return error('ERR The command has no key arguments');
  if (spec.arity > 0 ? argv.length !== spec.arity : argv.length < -spec.arity) {
    return error('ERR Invalid number of arguments specified for command');
  }
  const indexes = keyIndexes(spec, argv.length);
  if (indexes.length === 0) return error('ERR Invalid arguments specified for command');
  if (!withFlags) return array(indexes.map((i) => bulk(argv[i]!)));
  const flags: Reply = { kind: 'set', items: keySpecFlags(spec).map((f) => simple(f)) };
  return array(indexes.map((i) => array([bulk(argv[i]!), flags])));
}

function list(info: DispatchInfo, args: ArgCursor): Reply {
  let filter: ((spec: CommandSpec) => boolean) | null = null;
  if (args.hasMore()) {
    if (args.remaining !== 3 || args.keyword() !== 'FILTERBY') throw new CommandError(SYNTAX_ERROR);
    const type = args.keyword();
    const value = args.requiredString();
    if (type === 'MODULE') filter = () => false;
    else if (type === 'ACLCAT') {
      const category = `@${value.toLowerCase()}`;
      filter = (spec) => spec.aclCategories.includes(category);
    } else if (type === 'PATTERN') filter = (spec) => globMatch(value, spec.name, true);
    else throw new CommandError(SYNTAX_ERROR);
  }
  const names: Reply[] = [];
  for (const spec of allSpecs(info.commands))
    if (filter === null || filter(spec)) names.push(bulk(spec.name));
  return array(names);
}

const HELP_LINES = [
  '(no subcommand)',
  '    Return details about all Redis commands.',
  'COUNT',
  '    Return the total number of commands in this Redis server.',
  'LIST',
  '    Return a list of all commands in this Redis server.',
  'INFO [<command-name> ...]',
  '    Return details about multiple Redis commands.',
  '    If no command names are given, documentation details for all',
  '    commands are returned.',
  'DOCS [<command-name> ...]',
  '    Return documentation details about multiple Redis commands.',
  '    If no command names are given, documentation details for all',
  '    commands are returned.',
  'GETKEYS <full-command>',
  '    Return the keys from a full Redis command.',
  'GETKEYSANDFLAGS <full-command>',
  '    Return the keys and the access flags from a full Redis command.',
];

function sub(
  name: string,
  arity: number,
  summary: string,
  since: string,
  complexity: string,
  format: string,
  reply: string,
  run: (args: ArgCursor, info: DispatchInfo) => Reply,
  args?: CommandSpec['docs']['arguments'],
): CommandSpec {
  return {
    name: `command|${name}`,
    arity,
    flags: FLAGS,
    aclCategories: ACL,
    keys: NO_KEYS,
    docs: {
      summary,
      since,
      group: 'server',
      complexity,
      ...(args === undefined ? {} : { arguments: args }),
      format,
      reply,
    },
    handler: { kind: 'local', run: (_ctx, cursor, info) => run(cursor, info) },
  };
}

const allInfo = (info: DispatchInfo): Reply => array([...info.commands.values()].map(commandInfo));

export const command: CommandSpec = {
  name: 'command',
  arity: -1,
  flags: FLAGS,
  aclCategories: ACL,
  keys: NO_KEYS,
  docs: {
    summary: 'Returns detailed information about all commands.',
    since: '2.8.13',
    group: 'server',
    complexity: 'O(N) where N is the total number of Redis commands',
    format: 'COMMAND',
    reply: 'Array of 10-element command descriptions.',
  },
  handler: { kind: 'local', run: (_ctx, _args, info) => allInfo(info) },
  subcommands: [
    sub(
      'count',
      2,
      'Returns a count of commands.',
      '2.8.13',
      'O(1)',
      'COMMAND COUNT',
      'Integer: the number of top-level commands.',
      (_args, info) => integer(info.commands.size),
    ),
    sub(
      'info',
      -2,
      'Returns information about one, multiple or all commands.',
      '2.8.13',
      'O(N) where N is the number of commands to look up',
      'COMMAND INFO [command-name [command-name ...]]',
      'Array of command descriptions; nil for an unknown name.',
      (args, info) => {
        if (!args.hasMore()) return allInfo(info);
        return array(
          args.rest().map((n) => {
            const spec = lookupByName(info.commands, n.toString());
            return spec === undefined ? NIL : commandInfo(spec);
          }),
        );
      },
      [{ name: 'command-name', type: 'string', optional: true, multiple: true }],
    ),
    sub(
      'docs',
      -2,
      'Returns documentary information about one, multiple or all commands.',
      '7.0.0',
      'O(N) where N is the number of commands to look up',
      'COMMAND DOCS [command-name [command-name ...]]',
      'Map of command name to its documentation; unknown names are left out.',
      (args, info) => {
        const specs = args.hasMore()
          ? args.rest().flatMap((n) => lookupByName(info.commands, n.toString()) ?? [])
          : [...info.commands.values()];
        return map(specs.map((s) => [bulk(s.name), commandDocs(s)] as const));
      },
      [{ name: 'command-name', type: 'string', optional: true, multiple: true }],
    ),
    sub(
      'list',
      -2,
      'Returns a list of command names.',
      '7.0.0',
      'O(N) where N is the total number of Redis commands',
      'COMMAND LIST [FILTERBY <MODULE module-name | ACLCAT category | PATTERN pattern>]',
      'Array of command names, subcommands as container|sub.',
      (args, info) => list(info, args),
      [
        {
          name: 'filterby',
          type: 'oneof',
          token: 'FILTERBY',
          optional: true,
          arguments: [
            { name: 'module-name', type: 'string', token: 'MODULE' },
            { name: 'category', type: 'string', token: 'ACLCAT' },
            { name: 'pattern', type: 'pattern', token: 'PATTERN' },
          ],
        },
      ],
    ),
    sub(
      'getkeys',
      -3,
      'Extracts the key names from an arbitrary command.',
      '2.8.13',
      'O(N) where N is the number of arguments to the command',
      'COMMAND GETKEYS command [arg [arg ...]]',
      'Array of the key names in the command.',
      (args, info) => getKeys(info, args, false),
      [
        { name: 'command', type: 'string' },
        { name: 'arg', type: 'string', optional: true, multiple: true },
      ],
    ),
    sub(
      'getkeysandflags',
      -3,
      'Extracts the key names and access flags for an arbitrary command.',
      '7.0.0',
      'O(N) where N is the number of arguments to the command',
      'COMMAND GETKEYSANDFLAGS command [arg [arg ...]]',
      'Array of [key, flags] pairs.',
      (args, info) => getKeys(info, args, true),
      [
        { name: 'command', type: 'string' },
        { name: 'arg', type: 'string', optional: true, multiple: true },
      ],
    ),
    sub(
      'help',
      2,
      'Returns helpful text about the different subcommands.',
      '5.0.0',
      'O(1)',
      'COMMAND HELP',
      'Array of simple strings.',
      () => helpReply('command', HELP_LINES),
    ),
  ],
};
