/**
 * The seam between the server (sockets, process) and the commands (what the server
 * understands). The server implements these interfaces; command handlers use only them, so a
 * command never touches a socket and the server never interprets a command's arguments.
 *
 * Contract: `Dispatcher.execute` (commands/dispatch.ts) takes one request's argv as Buffers
 * and returns its Reply, synchronously when it can (local commands, single-node writes) or as
 * a Promise (writes and reads that wait for consensus). The connection keeps replies in
 * request order whatever order the promises settle in.
 */
import type { ClusterView } from '../server/cluster-view.js';
import type { Reply } from './reply.js';

export type Protocol = 2 | 3;

/** Per-connection state the commands may read and change (HELLO, AUTH, CLIENT SETNAME ...). */
export interface ClientSession {
  readonly id: number;
  /** "ip:port" of the peer and of the local socket, as CLIENT LIST shows them. */
  readonly addr: string;
  readonly laddr: string;
  readonly createdAtMs: number;
  protocol: Protocol;
  authenticated: boolean;
  name: string;
  libName: string;
  libVersion: string;
  db: number;
  /** Lower-case name of the last command run (CLIENT LIST "cmd="). */
  lastCommand: string;
  lastActivityMs: number;
  /** Set by QUIT: the connection closes once this reply is written. */
  closeAfterReply: boolean;
  /** Bytes buffered for this client, input and output (CLIENT LIST qbuf/omem). */
  queryBufferBytes(): number;
  outputBufferBytes(): number;
  /**
   * Calls `listener` once when the connection closes or the client ends its side (a blocked
   * LOCK or QPOP then withdraws its wait); at once if that happened already. Returns a function that unsubscribes.
   */
  onClose(listener: () => void): () => void;
}

/** What the server exposes to admin commands (CLIENT LIST/KILL, INFO, CONFIG, SHUTDOWN). */
export interface ServerContext {
  readonly config: ConfigStore;
  readonly startedAtMs: number;
  readonly tcpPort: number;
  readonly runId: string;
  clients(): readonly ClientSession[];
  /** Closes the connection of client `id` after its current reply; false if there is none. */
  killClient(id: number): boolean;
  stats(): ServerStats;
  /** Graceful stop: stop accepting, finish in-flight replies, exit. */
  shutdown(reason: string): void;
  /**
   * The replicated cluster this node belongs to (server/cluster-view.ts). Absent only where no
   * Raft node runs (command unit tests): commands answer as Redis without cluster support.
   */
  readonly cluster?: ClusterView;
}

export interface ServerStats {
  totalConnectionsReceived: number;
  totalCommandsProcessed: number;
  rejectedConnections: number;
  totalNetInputBytes: number;
  totalNetOutputBytes: number;
  connectedClients: number;
}

/** The server's tunable parameters, by their redis.conf-style names (CONFIG GET/SET). */
export interface ConfigStore {
  /** Names matching a glob pattern (CONFIG GET takes several patterns) with their values. */
  get(pattern: string): [string, string][];
  /**
   * Throws a ConfigError with a Redis-style message when the name or value is bad. A node-local
   * parameter is set at once (returns nothing); a cluster-wide one (held in the replicated
   * state: cache-policy, cache-lease-ms) is only checked, and the function returned applies it
   * through the Raft log (it rejects with the operating error or ConfigError if that fails).
   */
  set(name: string, value: string): void | (() => Promise<void>);
}

export interface CommandContext {
  readonly session: ClientSession;
  readonly server: ServerContext;
}

export type ReplyOrPromise = Reply | Promise<Reply>;
