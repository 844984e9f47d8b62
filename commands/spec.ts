/**
 * The shape of a command specification: what `table.ts` registers and what every command file
 * (`keys/set.ts`, `admin/ping.ts` ...) exports. The registry, dispatch, COMMAND INFO/DOCS and
 * docs/commands.md are all derived from these values, so a command is described exactly once.
 *
 * This module owns the types and the small constructors command files use to build handlers;
 * it must never import a command file or the table (command files import it, so an import back
 * would be a cycle).
 */
import type { CommandContext } from './context.js';
import type { Reply } from './reply.js';
import type { ArgCursor } from './args.js';
import type { Operation, Result, StateMachine } from './state-machine.js';
import type { Executor } from './executor.js';
import type { CacheService } from './cache/service.js';

/** Redis 7 command flags, spelled as COMMAND INFO shows them. */
export type CommandFlag =
  | 'write'
  | 'readonly'
  | 'denyoom'
  | 'admin'
  | 'noscript'
  | 'loading'
  | 'stale'
  | 'fast'
  | 'no_auth'
  | 'allow_busy'
  | 'no_multi'
  | 'may_replicate'
  | 'no_mandatory_keys'
  /** May wait for the replicated state to change (QPOP ... BLOCK), holding its connection. */
  | 'blocking';

/** COMMAND DOCS argument types (Redis 7 `redisCommandArg` types). */
export type ArgumentType =
  'string' | 'integer' | 'double' | 'key' | 'pattern' | 'unix-time' | 'pure-token' | 'oneof' | 'block';

export interface ArgumentDoc {
  readonly name: string;
  readonly type: ArgumentType;
  /** Literal word that introduces the argument (e.g. "EX"), for tokens and keyword options. */
  readonly token?: string;
  readonly optional?: boolean;
  readonly multiple?: boolean;
  readonly multipleToken?: boolean;
  /** For 'key' arguments: index into the command's key specs (always 0 here). */
  readonly keySpecIndex?: number;
  readonly since?: string;
  readonly summary?: string;
  /** For 'oneof' and 'block'. */
  readonly arguments?: readonly ArgumentDoc[];
}

export type CommandGroup = 'generic' | 'string' | 'connection' | 'server' | 'lock' | 'queue' | 'cache';

export interface CommandDocs {
  readonly summary: string;
  readonly since: string;
  readonly group: CommandGroup;
  readonly complexity: string;
  readonly arguments?: readonly ArgumentDoc[];
  /** The command file's `Format:` block: the syntax, one form per line. */
  readonly format: string;
  /** The command file's `Reply:` block: what the command answers, in prose. */
  readonly reply: string;
}

/** Key positions as COMMAND INFO gives them: indexes into argv (0 = command name). */
export interface KeyPositions {
  readonly first: number;
  /** Negative counts from the end (-1 = last argument). */
  readonly last: number;
  readonly step: number;
}

export const NO_KEYS: KeyPositions = Object.freeze({ first: 0, last: 0, step: 0 });

/**
 * A command answered from the connection/server context alone (PING, CLIENT, INFO...).
 * `run` may throw `CommandError` (from the cursor) for a client error; dispatch turns it into
 * an error reply.
 */
export interface LocalHandler {
  readonly kind: 'local';
  run(ctx: CommandContext, args: ArgCursor, dispatch: DispatchInfo): Reply | Promise<Reply>;
}

/**
 * A query of the state machine. `parse` validates argv before any read barrier; `query` runs
 * against the state machine with the executor's clock and must not change state.
 * (Methods, not function properties, so a `ReadHandler<Buffer>` is a `ReadHandler<unknown>`.)
 */
export interface ReadHandler<Q> {
  readonly kind: 'read';
  parse(this: void, args: ArgCursor): Q;
  query(this: void, sm: StateMachine, q: Q, nowMs: number): Reply;
}

/** A change: `parse` builds the typed operation, `reply` turns its applied result into a Reply. */
export interface WriteHandler<O extends Operation> {
  readonly kind: 'write';
  parse(this: void, args: ArgCursor): O;
  reply(this: void, result: Result, op: O): Reply;
}

export type Handler = LocalHandler | ReadHandler<unknown> | WriteHandler<Operation>;

export interface CommandSpec {
  /** Lower case wire name; subcommands are "container|sub" as in Redis 7 ("client|id"). */
  readonly name: string;
  /** Redis convention: N = exactly N argv items (name included), -N = at least N. */
  readonly arity: number;
  readonly flags: readonly CommandFlag[];
  readonly aclCategories: readonly string[];
  readonly keys: KeyPositions;
  /**
   * Redis 7 key-spec flags for COMMAND INFO/GETKEYSANDFLAGS ("RO", "RW", "OW", "RM", "access",
   * "update", "insert", "delete"...). Default: RW+update for write commands, RO+access otherwise.
   */
  readonly keySpecFlags?: readonly string[];
  /** Redis 7 command tips for COMMAND INFO ("nondeterministic_output", "request_policy:..."). */
  readonly tips?: readonly string[];
  readonly docs: CommandDocs;
  readonly handler: Handler;
  readonly subcommands?: readonly CommandSpec[];
}

/**
 * What dispatch gives a local handler besides the context: the table (COMMAND), the password
 * source (AUTH, HELLO) and the executor (INFO keyspace, DBSIZE-like figures).
 */
export interface DispatchInfo {
  /** Top-level commands by lower-case name. */
  readonly commands: ReadonlyMap<string, CommandSpec>;
  readonly requirePass: () => string | null;
  readonly executor: Executor;
  /** The node's coherent near-cache (commands/cache/); absent where none runs. */
  readonly cache?: CacheService;
}

/** Builds a read handler with its query type checked, stored type-erased in the table. */
export function readHandler<Q>(h: {
  parse(this: void, args: ArgCursor): Q;
  query(this: void, sm: StateMachine, q: Q, nowMs: number): Reply;
}): ReadHandler<unknown> {
  return { kind: 'read', parse: h.parse, query: h.query };
}

/** Builds a write handler with its operation type checked. */
export function writeHandler<O extends Operation>(h: {
  parse(this: void, args: ArgCursor): O;
  reply(this: void, result: Result, op: O): Reply;
}): WriteHandler<Operation> {
  return { kind: 'write', parse: h.parse, reply: h.reply };
}
