/**
 * Describing commands from their specs: the COMMAND INFO and COMMAND DOCS replies (Redis 7
 * shapes, RESP3 maps/sets that the encoder flattens for RESP2) and the syntax line that
 * redis-cli and docs/commands.md show. Pure functions of the table; never runs a command.
 */
import { array, bulk, integer, map, simple, type Reply } from './reply.js';
import type { ArgumentDoc, CommandSpec } from './spec.js';

const setOf = (items: readonly Reply[]): Reply => ({ kind: 'set', items });

export function keySpecFlags(spec: CommandSpec): readonly string[] {
  if (spec.keySpecFlags !== undefined) return spec.keySpecFlags;
  return spec.flags.includes('write') ? ['RW', 'update'] : ['RO', 'access'];
}

function keySpecs(spec: CommandSpec): Reply {
  const { first, last, step } = spec.keys;
  // A set, as Redis 7 replies (~ in RESP3).
  if (first === 0) return setOf([]);
  return setOf([
    map([
      [bulk('flags'), setOf(keySpecFlags(spec).map((f) => simple(f)))],
      [
        bulk('begin_search'),
        map([
          [bulk('type'), bulk('index')],
          [bulk('spec'), map([[bulk('index'), integer(first)]])],
        ]),
      ],
      [
        bulk('find_keys'),
        map([
          [bulk('type'), bulk('range')],
          [
            bulk('spec'),
            map([
              [bulk('lastkey'), integer(last < 0 ? last : last - first)],
              [bulk('keystep'), integer(step)],
              [bulk('limit'), integer(0)],
            ]),
          ],
        ]),
      ],
    ]),
  ]);
}

/** One COMMAND INFO entry: the 10-element array of Redis 7. */
export function commandInfo(spec: CommandSpec): Reply {
  return array([
    bulk(spec.name),
    integer(spec.arity),
    setOf(spec.flags.map((f) => simple(f))),
    integer(spec.keys.first),
    integer(spec.keys.last),
    integer(spec.keys.step),
    setOf(spec.aclCategories.map((c) => simple(c))),
    setOf((spec.tips ?? []).map((t) => bulk(t))),
    keySpecs(spec),
    array((spec.subcommands ?? []).map(commandInfo)),
  ]);
}

function argumentDocs(args: readonly ArgumentDoc[]): Reply {
  return array(
    args.map((a) => {
      const entries: [Reply, Reply][] = [
        [bulk('name'), bulk(a.name)],
        [bulk('type'), bulk(a.type)],
      ];
      if (a.type === 'key') entries.push([bulk('key_spec_index'), integer(a.keySpecIndex ?? 0)]);
      if (a.token !== undefined) entries.push([bulk('token'), bulk(a.token)]);
      if (a.summary !== undefined) entries.push([bulk('summary'), bulk(a.summary)]);
      if (a.since !== undefined) entries.push([bulk('since'), bulk(a.since)]);
      const flags: Reply[] = [];
      if (a.optional === true) flags.push(simple('optional'));
      if (a.multiple === true) flags.push(simple('multiple'));
      if (a.multipleToken === true) flags.push(simple('multiple_token'));
      if (flags.length > 0) entries.push([bulk('flags'), setOf(flags)]);
      if (a.arguments !== undefined) entries.push([bulk('arguments'), argumentDocs(a.arguments)]);
      return map(entries);
    }),
  );
}

/** One COMMAND DOCS entry (the value of the map keyed by the command's name). */
export function commandDocs(spec: CommandSpec): Reply {
  const d = spec.docs;
  const entries: [Reply, Reply][] = [
    [bulk('summary'), bulk(d.summary)],
    [bulk('since'), bulk(d.since)],
    [bulk('group'), bulk(d.group)],
    [bulk('complexity'), bulk(d.complexity)],
  ];
  if (d.arguments !== undefined) entries.push([bulk('arguments'), argumentDocs(d.arguments)]);
  if (spec.subcommands !== undefined) {
    entries.push([
      bulk('subcommands'),
      map(spec.subcommands.map((s) => [bulk(s.name), commandDocs(s)] as const)),
    ]);
  }
  return map(entries);
}

/** An argument as redis-cli renders it in hints: `[EX seconds | PX milliseconds]`. */
export function argumentSyntax(a: ArgumentDoc): string {
  let repeat: string;
  switch (a.type) {
    case 'oneof':
      repeat = (a.arguments ?? []).map(argumentSyntax).join(' | ');
      break;
    case 'block':
      repeat = (a.arguments ?? []).map(argumentSyntax).join(' ');
      break;
    case 'pure-token':
      repeat = '';
      break;
    case 'string':
    case 'integer':
    case 'double':
    case 'key':
    case 'pattern':
    case 'unix-time':
      repeat = a.name;
      break;
    default: {
      const unknown: never = a.type;
      throw new Error(`unknown argument type ${String(unknown)}`);
    }
  }
  const token = a.token ?? '';
  const head = token !== '' && a.type !== 'pure-token' ? `${token} ` : token;
  const body = a.type === 'oneof' && (a.optional !== true || head !== '') ? `<${repeat}>` : repeat;
  let out = head + body;
  if (a.multiple === true) out += ` [${a.multipleToken === true ? head : ''}${body} ...]`;
  return a.optional === true ? `[${out}]` : out;
}

/** "SET key value [NX | XX] ..." or "CLIENT KILL ..." for a subcommand. */
export function commandSyntax(spec: CommandSpec): string {
  const name = spec.name.toUpperCase().replace('|', ' ');
  const args = (spec.docs.arguments ?? []).map(argumentSyntax).join(' ');
  return args === '' ? name : `${name} ${args}`;
}
