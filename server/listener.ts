/**
 * The RESP listener: a net.Server that accepts clients and is the ServerContext the admin
 * commands see (CLIENT LIST/KILL, INFO stats, CONFIG, SHUTDOWN).
 *
 * Owns: the listening socket, the set of live connections, client ids, the accept-time
 * limits and graceful shutdown:
 * - maxclients: one client too many gets `-ERR max number of clients reached` and is closed;
 * - protected mode (Redis 7's rule): while protected-mode is yes and no password is set, a
 *   client from a non-loopback address gets Redis's -DENIED text and is closed;
 * - close(): stop accepting, stop reading from every client, let in-flight replies finish,
 *   close the sockets (destroying the stragglers after a deadline). SHUTDOWN reaches the same
 *   path through the `onShutdown` callback.
 *
 * Must never interpret commands, read argv/env, or exit the process (main.ts decides that).
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { ClientSession, ServerContext, ServerStats } from '../commands/context.js';
import type { Config, ServerConfig } from './config.js';
import { Connection, type ConnectionHost, type ConnectionStats, type RequestHandler } from './connection.js';
import type { Logger } from './log.js';

export const MAX_CLIENTS_ERROR = '-ERR max number of clients reached\r\n';

/** Redis 7's text, with Concord's ways out (flag, environment, CONFIG SET, password). */
export const PROTECTED_MODE_ERROR =
  '-DENIED Concord is running in protected mode because protected mode is enabled and no password is set ' +
  'for the default user. In this mode connections are only accepted from the loopback interface. If you ' +
  'want to connect from external computers to Concord you may adopt one of the following solutions: ' +
  "1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback " +
  'interface by connecting to Concord from the same host the server is running, however MAKE SURE Concord ' +
  'is not publicly accessible from internet if you do so. 2) Alternatively you can just disable the ' +
  'protected mode by setting CONCORD_PROTECTED_MODE=no in its environment, and then restarting the server. ' +
  "3) If you started the server manually just for testing, restart it with the '--protected-mode no' " +
  'option. 4) Set up an authentication password (--requirepass or CONCORD_REQUIREPASS). NOTE: You only ' +
  'need to do one of the above things in order for the server to start accepting connections from the ' +
  'outside.\r\n';

/** How long close() lets in-flight replies finish before destroying the remaining sockets. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 5000;

export interface RespServerOptions {
  config: ServerConfig;
  handler: RequestHandler;
  log: Logger;
  /** Called by ServerContext.shutdown (the SHUTDOWN command); the owner stops the node. */
  onShutdown?: (reason: string) => void;
  shutdownGraceMs?: number;
}

/** Loopback as Redis's connIsLocal sees it: 127.0.0.0/8 and ::1 (also IPv4-mapped). */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
  return plain.startsWith('127.') || plain === '::1';
}

/**
 * Whether a new client may stay: null, or the error line it gets before being closed.
 * maxclients first, then protected mode (Redis 7: protected-mode yes, no password, and a peer
 * that is not loopback), as Redis's acceptCommonHandler and clientAcceptHandler order them.
 */
export function admissionRefusal(
  config: Pick<Config, 'maxClients' | 'protectedMode' | 'requirePass'>,
  connectedClients: number,
  remoteAddress: string | undefined,
): string | null {
  if (connectedClients >= config.maxClients) return MAX_CLIENTS_ERROR;
  if (config.protectedMode && config.requirePass === null && !isLoopback(remoteAddress))
    return PROTECTED_MODE_ERROR;
  return null;
}

export class RespServer implements ServerContext {
  readonly config: ServerConfig;
  readonly startedAtMs = Date.now();
  readonly runId = randomBytes(20).toString('hex');

  private readonly server: net.Server;
  private readonly connections = new Map<number, Connection>();
  private readonly host: ConnectionHost;
  private readonly log: Logger;
  private readonly onShutdown: (reason: string) => void;
  private readonly shutdownGraceMs: number;
  private readonly counters: ConnectionStats & {
    totalConnectionsReceived: number;
    rejectedConnections: number;
  } = {
    totalConnectionsReceived: 0,
    totalCommandsProcessed: 0,
    rejectedConnections: 0,
    totalNetInputBytes: 0,
    totalNetOutputBytes: 0,
    errorReplies: new Map(),
  };
  private nextClientId = 1;
  private boundPort = 0;
  private closing: Promise<void> | null = null;
  private readonly emptied: (() => void)[] = [];

  constructor(options: RespServerOptions) {
    this.config = options.config;
    this.log = options.log;
    this.onShutdown = options.onShutdown ?? ((reason) => void this.close(reason));
    this.shutdownGraceMs = options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
    const config = this.config;
    this.host = {
      handler: options.handler,
      server: this,
      get config() {
        return config.current;
      },
      log: this.log,
      stats: this.counters,
      closed: (connection: Connection) => this.connectionClosed(connection),
    };
    this.server = net.createServer({ noDelay: true, allowHalfOpen: true, pauseOnConnect: false }, (socket) =>
      this.accept(socket),
    );
    this.server.on('error', (err) => this.log.error({ err }, 'listener error'));
    config.onChange((name) => {
      if (name === 'timeout')
        for (const connection of this.connections.values()) connection.applyIdleTimeout();
      if (name === 'loglevel') this.log.level = config.current.logLevel;
    });
  }

  /** Starts listening on the configured bind address and port (0 = any free port). */
  async listen(): Promise<net.AddressInfo> {
    const { bind, port } = this.config.current;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen({ host: bind, port, exclusive: true }, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    const address = this.server.address() as net.AddressInfo;
    this.boundPort = address.port;
    const current = this.config.current;
    if (current.protectedMode && current.requirePass === null && !isLoopback(address.address)) {
      this.log.warn(
        { bind: current.bind },
        'protected mode is on and no password is set: clients from other hosts will be refused (set --requirepass, or --protected-mode no)',
      );
    }
    return address;
  }

  get tcpPort(): number {
    return this.boundPort;
  }

  // ---- ServerContext

  clients(): readonly ClientSession[] {
    return [...this.connections.values()];
  }

  killClient(id: number): boolean {
    const connection = this.connections.get(id);
    if (connection === undefined) return false;
    connection.close();
    return true;
  }

  stats(): ServerStats {
    const c = this.counters;
    return {
      totalConnectionsReceived: c.totalConnectionsReceived,
      totalCommandsProcessed: c.totalCommandsProcessed,
      rejectedConnections: c.rejectedConnections,
      totalNetInputBytes: c.totalNetInputBytes,
      totalNetOutputBytes: c.totalNetOutputBytes,
      connectedClients: this.connections.size,
    };
  }

  /** Error replies sent since start, by Redis prefix (read-only view for /metrics). */
  errorReplies(): ReadonlyMap<string, number> {
    return this.counters.errorReplies;
  }

  shutdown(reason: string): void {
    this.onShutdown(reason);
  }

  // ---- accepting

  private accept(socket: net.Socket): void {
    const config = this.config.current;
    if (this.closing !== null) {
      socket.destroy();
      return;
    }
    const refusal = admissionRefusal(config, this.connections.size, socket.remoteAddress);
    if (refusal !== null) {
      if (refusal === PROTECTED_MODE_ERROR) {
        this.log.warn({ addr: socket.remoteAddress }, 'refused a non-loopback client in protected mode');
      }
      this.reject(socket, refusal);
      return;
    }
    this.counters.totalConnectionsReceived++;
    const connection = new Connection(socket, this.nextClientId++, this.host);
    this.connections.set(connection.id, connection);
    this.log.debug({ client: connection.id, addr: connection.addr }, 'client connected');
  }

  private reject(socket: net.Socket, text: string): void {
    this.counters.rejectedConnections++;
    socket.on('error', () => socket.destroy());
    socket.end(text);
    // A client that never reads or closes must not hold the socket for ever.
    setTimeout(() => socket.destroy(), 2000).unref();
  }

  private connectionClosed(connection: Connection): void {
    this.connections.delete(connection.id);
    this.log.debug({ client: connection.id, addr: connection.addr }, 'client disconnected');
    if (this.connections.size === 0) for (const resolve of this.emptied.splice(0)) resolve();
  }

  /**
   * Graceful stop: stop accepting, stop reading, let in-flight replies finish and close every
   * client; after the grace period the remaining sockets are destroyed. Idempotent.
   */
  close(reason = 'shutdown'): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.log.info({ reason, clients: this.connections.size }, 'shutting down');
    this.closing = (async () => {
      const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
      for (const connection of this.connections.values()) connection.close();
      if (this.connections.size > 0) {
        const emptied = new Promise<void>((resolve) => this.emptied.push(resolve));
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, this.shutdownGraceMs);
        });
        await Promise.race([emptied, deadline]);
        clearTimeout(timer);
        for (const connection of this.connections.values()) connection.destroy();
      }
      await stopped;
    })();
    return this.closing;
  }
}
