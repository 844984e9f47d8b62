/**
 * Test support for the command specs: an in-memory ClientSession and ServerContext with real
 * (if simple) behaviour, and a helper to run one command line through a Dispatcher. Used only
 * by *.spec.ts files; the server's own Connection/RespServer are tested in server/.
 */
import type { CacheService } from './cache/service.js';
import { Dispatcher } from './dispatch.js';
import type { ClientSession, ConfigStore, Protocol, ServerContext, ServerStats } from './context.js';
import { LocalExecutor, type Executor } from './executor.js';
import { globMatch } from './glob.js';
import type { Reply } from './reply.js';

export class TestSession implements ClientSession {
  protocol: Protocol = 2;
  authenticated = false;
  name = '';
  libName = '';
  libVersion = '';
  db = 0;
  lastCommand = '';
  lastActivityMs: number;
  closeAfterReply = false;
  readonly createdAtMs: number;
  constructor(
    readonly id: number,
    readonly addr = `127.0.0.1:${40000 + id}`,
    readonly laddr = '127.0.0.1:6379',
    nowMs = Date.now(),
  ) {
    this.createdAtMs = nowMs;
    this.lastActivityMs = nowMs;
  }
  queryBufferBytes(): number {
    return 0;
  }
  outputBufferBytes(): number {
    return 0;
  }
  private readonly closeListeners = new Set<() => void>();
  private closed = false;
  onClose(listener: () => void): () => void {
    if (this.closed) {
      listener();
      return () => undefined;
    }
    this.closeListeners.add(listener);
    return () => void this.closeListeners.delete(listener);
  }
  /** Simulates the client disconnecting. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const listener of [...this.closeListeners]) listener();
    this.closeListeners.clear();
  }
}

/** A ConfigStore over a Map, validating integers for the names listed in `integers`. */
export class MapConfigStore implements ConfigStore {
  readonly values: Map<string, string>;
  constructor(
    initial: Record<string, string>,
    private readonly integers: ReadonlySet<string> = new Set(),
  ) {
    this.values = new Map(Object.entries(initial));
  }
  get(pattern: string): [string, string][] {
    return [...this.values].filter(([name]) => globMatch(pattern, name, true));
  }
  set(name: string, value: string): void {
    if (!this.values.has(name)) {
      throw new TestConfigError(`ERR Unknown option or number of arguments for CONFIG SET - '${name}'`);
    }
    if (this.integers.has(name) && !/^-?\d+$/.test(value)) {
      throw new TestConfigError(
        `ERR CONFIG SET failed (possibly related to argument '${name}') - argument couldn't be parsed into an integer`,
      );
    }
    this.values.set(name, value);
  }
}

export class TestConfigError extends Error {
  override readonly name = 'ConfigError';
}

export class TestServer implements ServerContext {
  readonly startedAtMs = Date.now();
  readonly tcpPort = 6379;
  readonly runId = 'a'.repeat(40);
  readonly sessions: TestSession[] = [];
  readonly killed: number[] = [];
  shutdownReasons: string[] = [];
  commandsProcessed = 0;
  constructor(
    readonly config: ConfigStore = new MapConfigStore(
      { maxclients: '10000', timeout: '0' },
      new Set(['maxclients', 'timeout']),
    ),
  ) {}
  clients(): readonly ClientSession[] {
    return this.sessions;
  }
  killClient(id: number): boolean {
    if (!this.sessions.some((s) => s.id === id)) return false;
    this.killed.push(id);
    return true;
  }
  stats(): ServerStats {
    return {
      totalConnectionsReceived: this.sessions.length,
      totalCommandsProcessed: this.commandsProcessed,
      rejectedConnections: 0,
      totalNetInputBytes: 0,
      totalNetOutputBytes: 0,
      connectedClients: this.sessions.length,
    };
  }
  shutdown(reason: string): void {
    this.shutdownReasons.push(reason);
  }
  connect(): { session: TestSession; server: TestServer } {
    const session = new TestSession(this.sessions.length + 1);
    this.sessions.push(session);
    return { session, server: this };
  }
}

/** A dispatcher, a server and one connected client, with a password setting tests can change. */
export class Harness {
  password: string | null = null;
  readonly server = new TestServer();
  readonly ctx: { readonly session: TestSession; readonly server: TestServer };
  readonly dispatcher: Dispatcher;
  readonly executor: Executor;
  /** The clock of the LocalExecutor (ms since epoch), moved by tests. */
  nowMs = 1_700_000_000_000;

  constructor(executor?: Executor, cache?: CacheService) {
    this.executor = executor ?? new LocalExecutor({ clock: () => this.nowMs });
    this.dispatcher = new Dispatcher({
      executor: this.executor,
      requirePass: () => this.password,
      ...(cache === undefined ? {} : { cache }),
    });
    this.ctx = this.server.connect();
  }

  get session(): TestSession {
    return this.ctx.session;
  }

  /** Runs one command given as words (or Buffers) and returns its reply, awaited. */
  async run(...words: (string | Buffer)[]): Promise<Reply> {
    return this.dispatcher.execute(
      this.ctx,
      words.map((w) => (typeof w === 'string' ? Buffer.from(w) : w)),
    );
  }

  /** Runs a command that must answer synchronously. */
  runSync(...words: (string | Buffer)[]): Reply {
    const r = this.dispatcher.execute(
      this.ctx,
      words.map((w) => (typeof w === 'string' ? Buffer.from(w) : w)),
    );
    if (r instanceof Promise) throw new Error(`${words.join(' ')} answered asynchronously`);
    return r;
  }
}

/** A readable form of a Reply for assertions: strings for bulk/simple, nested arrays, etc. */
export function plain(reply: Reply): unknown {
  switch (reply.kind) {
    case 'simple':
      return reply.value;
    case 'error':
      return { error: reply.message };
    case 'integer':
      return typeof reply.value === 'bigint' ? reply.value : BigInt(reply.value);
    case 'bulk':
      return reply.value === null ? null : reply.value.toString();
    case 'array':
      return reply.items === null ? null : reply.items.map(plain);
    case 'set':
    case 'push':
      return reply.items.map(plain);
    case 'map':
      return Object.fromEntries(reply.entries.map(([k, v]) => [String(plain(k)), plain(v)]));
    case 'double':
      return reply.value;
    case 'boolean':
      return reply.value;
    case 'null':
      return null;
    case 'verbatim':
      return reply.value;
    default: {
      const unknown: never = reply;
      throw new Error(`unknown reply ${JSON.stringify(unknown)}`);
    }
  }
}
