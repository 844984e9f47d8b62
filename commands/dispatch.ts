/**
 * The dispatcher: one request's argv in, its Reply out. Everything command-related between
 * the connection and the executor happens here: table lookup (case-insensitive), unknown
 * command/subcommand, arity, NOAUTH, then the command by kind — `local` answers from the
 * context, `read` goes through `executor.read`, `write` is parsed into a typed operation and
 * goes through `executor.write`.
 *
 * Contract: never throws for a client error (returns an error Reply); operating errors thrown
 * by the executor propagate (synchronously or as a rejected Promise) to the server, which maps
 * them in server/errors.ts. Answers synchronously whenever the executor does.
 * Must never touch a socket or keep per-request state.
 */
import { ArgCursor, CommandError } from './args.js';
import { movedReply } from './cluster/redirect.js';
import type { CommandContext } from './context.js';
import type { CacheService } from './cache/service.js';
import type { Executor } from './executor.js';
import { error, type Reply } from './reply.js';
import type { CommandSpec, DispatchInfo } from './spec.js';
import { COMMANDS, buildTable } from './table.js';

export interface DispatcherOptions {
  executor: Executor;
  /** The password clients must AUTH with, or null when none is required. Read per request. */
  requirePass: () => string | null;
  /** The command set (defaults to the full table); tests may pass a subset. */
  commands?: readonly CommandSpec[];
  /** The node's coherent near-cache (CGET/CSET...); absent: those commands answer an error. */
  cache?: CacheService;
}

interface Entry {
  readonly spec: CommandSpec;
  /** The lower-case name's bytes, for the allocation-free lookup. */
  readonly nameBytes: Buffer;
  readonly noAuth: boolean;
  /** Subcommands by lower-case name ("id" for "client|id"), when this is a container. */
  readonly subcommands: Map<string, Entry> | null;
  /** e.g. "CLIENT", for "Try CLIENT HELP." */
  readonly upperName: string;
  /** Requests that named this command (past lookup; before arity and auth checks) since start. */
  calls: number;
}

const NOAUTH: Reply = Object.freeze(error('NOAUTH Authentication required.'));

/** Redis quotes at most 128 bytes of a name and of the argument list in these errors. */
const QUOTE_LIMIT = 128;

export class Dispatcher {
  readonly executor: Executor;
  private readonly requirePass: () => string | null;
  /**
   * Allocation-free lookup: entries bucketed by name length and first letter, compared byte by
   * byte ignoring ASCII case, so finding a command costs no string per request.
   */
  private readonly buckets: (Entry[] | undefined)[] = [];
  private readonly info: DispatchInfo;

  constructor(options: DispatcherOptions) {
    this.executor = options.executor;
    this.requirePass = options.requirePass;
    const table = buildTable(options.commands ?? COMMANDS);
    for (const spec of table.values()) {
      const entry = makeEntry(spec);
      const name = entry.nameBytes;
      if (name.length > MAX_NAME_BYTES) throw new Error(`command name too long: ${spec.name}`);
      const index = bucketIndex(name.length, name[0]!);
      (this.buckets[index] ??= []).push(entry);
    }
    this.info = {
      commands: table,
      requirePass: options.requirePass,
      executor: options.executor,
      ...(options.cache === undefined ? {} : { cache: options.cache }),
    };
  }

  execute(ctx: CommandContext, argv: Buffer[]): Reply | Promise<Reply> {
    const first = argv[0];
    if (first === undefined) return error('ERR empty command');
    let entry = this.find(first);
    if (entry === undefined) return unknownCommand(first, argv);
    let start = 1;
    const subArg = argv[1];
    // A container alone runs itself if its arity allows (COMMAND); else the arity check fails.
    if (entry.subcommands !== null && subArg !== undefined) {
      const subName = subArg.toString('latin1').toLowerCase();
      const sub = entry.subcommands.get(subName);
      if (sub === undefined) {
        return error(
          `ERR unknown subcommand '${sanitize(clip(subArg.toString()))}'. Try ${entry.upperName} HELP.`,
        );
      }
      entry = sub;
      start = 2;
      // CLIENT LIST shows "cmd=client|list" as Redis 7 does (the server records argv[0] only).
      ctx.session.lastCommand = sub.spec.name;
    }
    entry.calls++;
    const spec = entry.spec;
    const arity = spec.arity;
    if (arity > 0 ? argv.length !== arity : argv.length < -arity) return wrongArity(spec.name);
    if (!entry.noAuth && !ctx.session.authenticated && this.requirePass() !== null) return NOAUTH;
    const h = spec.handler;
    // Cluster-mode clients get -MOVED from a follower when `cluster-redirect` is on (see
    // commands/cluster/redirect.ts); everyone else is served here, the follower forwarding.
    if (h.kind !== 'local') {
      const moved = movedReply(ctx, spec, argv);
      if (moved !== null) return moved;
    }
    const args = new ArgCursor(argv, start);
    try {
      switch (h.kind) {
        case 'local': {
          const r = h.run(ctx, args, this.info);
          return r instanceof Promise ? r.then(undefined, clientErrorToReply) : r;
        }
        case 'read': {
          const q = h.parse(args);
          return this.executor.read(h.query, q);
        }
        case 'write': {
          const op = h.parse(args);
          const r = this.executor.write(op);
          return r instanceof Promise ? r.then((result) => h.reply(result, op)) : h.reply(r, op);
        }
        default: {
          const unknown: never = h;
          throw new Error(`unknown handler kind ${String(unknown)}`);
        }
      }
    } catch (e) {
      if (e instanceof CommandError) return e.reply;
      throw e;
    }
  }

  /**
   * Calls per command since start, by name (`get`, `client|list`): the figures behind
   * /metrics' concord_commands_total. A container counts only calls that named no known
   * subcommand. Reads counters only.
   */
  *commandCalls(): Generator<readonly [string, number]> {
    const walk = function* (entry: Entry): Generator<readonly [string, number]> {
      yield [entry.spec.name, entry.calls];
      if (entry.subcommands !== null) for (const sub of entry.subcommands.values()) yield* walk(sub);
    };
    for (const bucket of this.buckets)
      if (bucket !== undefined) for (const entry of bucket) yield* walk(entry);
  }

  private find(name: Buffer): Entry | undefined {
    const n = name.length;
    if (n === 0 || n > MAX_NAME_BYTES) return undefined;
    const bucket = this.buckets[bucketIndex(n, name[0]!)];
    if (bucket === undefined) return undefined;
    candidates: for (const entry of bucket) {
      const expected = entry.nameBytes;
      for (let i = 0; i < n; i++) {
        let c = name[i]!;
        if (c >= 0x41 && c <= 0x5a) c |= 0x20; // ASCII upper to lower
        if (c !== expected[i]) continue candidates;
      }
      return entry;
    }
    return undefined;
  }
}

const MAX_NAME_BYTES = 32;

function bucketIndex(length: number, firstByte: number): number {
  return length * 32 + (firstByte & 0x1f);
}

function makeEntry(spec: CommandSpec): Entry {
  let subcommands: Map<string, Entry> | null = null;
  if (spec.subcommands !== undefined) {
    subcommands = new Map();
    for (const sub of spec.subcommands) {
      const bar = sub.name.indexOf('|');
      if (bar < 0 || sub.name.slice(0, bar) !== spec.name) {
        throw new Error(`subcommand ${sub.name} is not named ${spec.name}|...`);
      }
      subcommands.set(sub.name.slice(bar + 1), makeEntry(sub));
    }
  }
  return {
    spec,
    nameBytes: Buffer.from(spec.name.slice(spec.name.indexOf('|') + 1), 'latin1'),
    noAuth: spec.flags.includes('no_auth'),
    subcommands,
    upperName: spec.name.toUpperCase(),
    calls: 0,
  };
}

function clientErrorToReply(e: unknown): Reply {
  if (e instanceof CommandError) return e.reply;
  throw e;
}

function wrongArity(name: string): Reply {
  return error(`ERR wrong number of arguments for '${name}' command`);
}

function clip(s: string): string {
  return s.length > QUOTE_LIMIT ? s.slice(0, QUOTE_LIMIT) : s;
}

/** Error lines cannot hold CR/LF: Redis replaces them with spaces. */
function sanitize(s: string): string {
  return s.replace(/[\r\n]/g, ' ');
}

/** `ERR unknown command 'x', with args beginning with: 'a' 'b' ` exactly as Redis 7 words it. */
function unknownCommand(nameArg: Buffer, argv: readonly Buffer[]): Reply {
  const name = nameArg.toString();
  let args = '';
  for (let i = 1; i < argv.length && args.length < QUOTE_LIMIT; i++) {
    const a = argv[i]!.toString();
    args += `'${a.slice(0, QUOTE_LIMIT - args.length)}' `;
  }
  return error(`ERR unknown command '${sanitize(clip(name))}', with args beginning with: ${sanitize(args)}`);
}
