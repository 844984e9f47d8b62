/**
 * One client connection: bytes in -> requests -> dispatcher -> replies out, strictly in
 * request order. Implements the ClientSession the commands see (commands/context.ts).
 *
 * Owns: the socket, its RequestDecoder, the FIFO of reply slots, the output buffer and the
 * per-client limits:
 * - replies leave in request order: a synchronous reply is encoded at once when nothing is
 *   pending ahead of it; otherwise it waits in a slot behind the Promise replies before it;
 * - writes are batched: everything produced while handling one received chunk (or one turn of
 *   settled Promises) goes out in one socket write (or one corked writev);
 * - backpressure: reading stops while the socket's unsent output exceeds
 *   clientOutputPauseBytes or maxRequestsInFlight requests are pending, and resumes when they
 *   drain; a client whose unsent output exceeds clientOutputBufferLimit is closed, and so is one
 *   whose unprocessed input exceeds client-query-buffer-limit (both as Redis does: no reply);
 * - a framing error replies with Redis's error text after the replies already due, then closes
 *   this connection only.
 *
 * The synchronous path allocates no closure or Promise per request. Must never interpret a
 * command's arguments (the dispatcher does) nor map errors itself (server/errors.ts does).
 */
import type { Socket } from 'node:net';
import type {
  ClientSession,
  CommandContext,
  Protocol,
  ReplyOrPromise,
  ServerContext,
} from '../commands/context.js';
import { error, type Reply } from '../commands/reply.js';
import { TCP_KEEPALIVE_SECONDS, type Config } from './config.js';
import { errorToReply } from './errors.js';
import type { Logger } from './log.js';
import type { DecoderLimits } from './resp/decode.js';
import { RequestDecoder } from './resp/decode.js';
import { OutputBuffer, encodeReply } from './resp/encode.js';

/** What the connection needs from the dispatcher (commands/dispatch.ts Dispatcher). */
export interface RequestHandler {
  execute(ctx: CommandContext, argv: Buffer[]): ReplyOrPromise;
}

/** Counters the connection updates (INFO stats, /metrics). */
export interface ConnectionStats {
  totalCommandsProcessed: number;
  totalNetInputBytes: number;
  totalNetOutputBytes: number;
  /** Error replies sent, by Redis prefix (at most MAX_ERROR_PREFIXES keys; the rest under 'OTHER'). */
  readonly errorReplies: Map<string, number>;
}

/** Distinct error prefixes counted, at most: prefixes come from code, but bound the map anyway. */
export const MAX_ERROR_PREFIXES = 64;

/** Counts one error reply under its prefix (`ERR`, `WRONGTYPE`, ...: the first word, if upper case). */
export function countErrorReply(stats: ConnectionStats, message: string): void {
  const space = message.indexOf(' ');
  const word = space < 0 ? message : message.slice(0, space);
  let prefix = /^[A-Z][A-Z_-]{0,31}$/.test(word) ? word : 'ERR';
  const map = stats.errorReplies;
  if (!map.has(prefix) && map.size >= MAX_ERROR_PREFIXES) prefix = 'OTHER';
  map.set(prefix, (map.get(prefix) ?? 0) + 1);
}

/** What the listener gives each connection. */
export interface ConnectionHost {
  readonly handler: RequestHandler;
  readonly server: ServerContext;
  /** The live configuration (read at each use: CONFIG SET applies at once). */
  readonly config: Readonly<Config>;
  readonly log: Logger;
  readonly stats: ConnectionStats;
  /** Called once, when the socket has closed. */
  closed(connection: Connection): void;
}

/** A reply slot behind an earlier Promise reply. */
interface Slot {
  reply: Reply | null;
}

/** How long a closing connection waits for the peer before destroying the socket. */
const CLOSE_LINGER_MS = 2000;

/** Output batched for one chunk of requests is written early once it reaches this size. */
const FLUSH_EARLY_BYTES = 64 * 1024;

const NO_LAST_COMMAND = Buffer.alloc(0);

export class Connection implements ClientSession, DecoderLimits {
  readonly id: number;
  readonly addr: string;
  readonly laddr: string;
  readonly createdAtMs: number;
  protocol: Protocol = 2;
  authenticated: boolean;
  name = '';
  libName = '';
  libVersion = '';
  db = 0;
  lastActivityMs: number;
  closeAfterReply = false;
  /** Blocked commands waiting to hear that the client left (ClientSession.onClose). */
  private readonly closeListeners = new Set<() => void>();
  private socketClosed = false;
  /** The client ended its side (FIN): close listeners have been told it left. */
  private peerEnded = false;

  private readonly socket: Socket;
  private readonly host: ConnectionHost;
  private readonly ctx: CommandContext;
  private readonly decoder: RequestDecoder;
  private readonly out = new OutputBuffer();
  /** Replies waiting for an earlier Promise reply, oldest first (slots[head..]). */
  private slots: Slot[] = [];
  private head = 0;
  private lastCommandRaw: Buffer = NO_LAST_COMMAND;
  private lastCommandText: string | null = '';
  /** No more requests are read (framing error, QUIT, kill, peer closed, shutdown). */
  private closing = false;
  private ended = false;
  private readingPaused = false;
  private outputPaused = false;
  private flushScheduled = false;
  private lingerTimer: NodeJS.Timeout | null = null;
  /** True while the handler runs one of this connection's requests. */
  private executing = false;

  constructor(socket: Socket, id: number, host: ConnectionHost) {
    this.socket = socket;
    this.id = id;
    this.host = host;
    this.addr = formatAddress(socket.remoteAddress, socket.remotePort);
    this.laddr = formatAddress(socket.localAddress, socket.localPort);
    this.createdAtMs = Date.now();
    this.lastActivityMs = this.createdAtMs;
    // Clients connected while no password is set stay authenticated if one is set later (Redis).
    this.authenticated = host.config.requirePass === null;
    this.decoder = new RequestDecoder(this);
    this.ctx = { session: this, server: host.server };
    this.applyIdleTimeout();
    // Redis's tcp-keepalive default: probe idle peers every 300 s so dead ones get closed.
    socket.setKeepAlive(true, TCP_KEEPALIVE_SECONDS * 1000);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onDrain());
    socket.on('end', () => this.onPeerEnd());
    socket.on('timeout', () => this.onIdle());
    socket.on('error', (err) => this.onSocketError(err));
    socket.on('close', () => this.onSocketClose());
  }

  // ---- DecoderLimits: read at every request header, so CONFIG SET and AUTH apply at once.

  get protoMaxBulkLen(): number {
    return this.host.config.protoMaxBulkLen;
  }

  get authRequired(): boolean {
    return !this.authenticated && this.host.config.requirePass !== null;
  }

  // ---- ClientSession

  /** Lower-case name of the last command, converted only when someone reads it. */
  get lastCommand(): string {
    if (this.lastCommandText === null)
      this.lastCommandText = this.lastCommandRaw.toString('latin1').toLowerCase();
    return this.lastCommandText;
  }

  set lastCommand(name: string) {
    this.lastCommandText = name;
  }

  queryBufferBytes(): number {
    return this.decoder.bufferedBytes();
  }

  outputBufferBytes(): number {
    return this.out.length + this.socket.writableLength;
  }

  /** Requests executed or waiting behind a Promise reply (not yet encoded). */
  pendingReplies(): number {
    return this.slots.length - this.head;
  }

  /** Applies the current `timeout` (seconds, 0 = never) to the socket. */
  applyIdleTimeout(): void {
    this.socket.setTimeout(this.host.config.timeoutSeconds * 1000);
  }

  /**
   * Stops reading, lets the pending replies go out, then closes (CLIENT KILL, SHUTDOWN).
   * Returns false if the connection was already closing.
   */
  close(): boolean {
    if (this.closing) return false;
    if (this.executing) {
      // Killed by its own command (CLIENT KILL of itself): that command's reply goes out first.
      this.closeAfterReply = true;
      return true;
    }
    this.closing = true;
    this.closeWhenDone();
    return true;
  }

  /** Closes at once, dropping pending output (limits exceeded, socket errors). */
  destroy(): void {
    this.closing = true;
    this.socket.destroy();
  }

  // ---- input

  private onData(chunk: Buffer): void {
    this.host.stats.totalNetInputBytes += chunk.length;
    if (this.closing) return;
    this.lastActivityMs = Date.now();
    this.decoder.feed(chunk);
    if (this.decoder.heldBytes() > this.host.config.clientQueryBufferLimit) {
      this.host.log.warn(
        { client: this.id, addr: this.addr, qbuf: this.decoder.heldBytes() },
        'closing client that reached max query buffer length',
      );
      this.destroy();
      return;
    }
    this.processInput();
    this.flush();
    this.settleLastCommand();
  }

  /** Converts the last command's name once per chunk, so no received chunk stays pinned by it. */
  private settleLastCommand(): void {
    if (this.lastCommandText === null) {
      this.lastCommandText = this.lastCommandRaw.toString('latin1').toLowerCase();
      this.lastCommandRaw = NO_LAST_COMMAND;
    }
  }

  /** Runs every complete request buffered, as far as the limits allow. */
  private processInput(): void {
    const maxInFlight = this.host.config.maxRequestsInFlight;
    while (!this.closing) {
      if (this.outputPaused || this.slots.length - this.head >= maxInFlight) {
        this.pauseReading();
        return;
      }
      const argv = this.decoder.next();
      if (argv === null) {
        const framingError = this.decoder.error;
        if (framingError !== null) {
          this.host.log.debug(
            { client: this.id, addr: this.addr, error: framingError.message },
            'protocol error',
          );
          this.closing = true;
          this.queue(error(framingError.message));
          this.closeWhenDone();
        }
        return;
      }
      this.run(argv);
      // Big replies go out as they come, so the pause check below sees them.
      if (this.out.length >= FLUSH_EARLY_BYTES) this.flush();
      if (this.closeAfterReply) {
        this.closing = true;
        this.closeWhenDone();
        return;
      }
    }
  }

  private run(argv: Buffer[]): void {
    this.host.stats.totalCommandsProcessed++;
    this.lastCommandRaw = argv[0]!;
    this.lastCommandText = null;
    let reply: ReplyOrPromise;
    this.executing = true;
    try {
      reply = this.host.handler.execute(this.ctx, argv);
    } catch (thrown) {
      reply = errorToReply(thrown, this.host.log);
    } finally {
      this.executing = false;
    }
    if (reply instanceof Promise) {
      const slot: Slot = { reply: null };
      this.slots.push(slot);
      reply.then(
        (value) => this.settle(slot, value),
        (thrown: unknown) => this.settle(slot, errorToReply(thrown, this.host.log)),
      );
    } else {
      this.queue(reply);
    }
  }

  /** A reply in request order: encoded now if nothing is pending ahead of it. */
  private queue(reply: Reply): void {
    if (reply.kind === 'error') countErrorReply(this.host.stats, reply.message);
    if (this.head === this.slots.length) encodeReply(this.out, reply, this.protocol);
    else this.slots.push({ reply });
  }

  private settle(slot: Slot, reply: Reply): void {
    if (reply.kind === 'error') countErrorReply(this.host.stats, reply.message);
    slot.reply = reply;
    const slots = this.slots;
    let head = this.head;
    while (head < slots.length) {
      const ready = slots[head]!.reply;
      if (ready === null) break;
      encodeReply(this.out, ready, this.protocol);
      head++;
    }
    if (head === slots.length) {
      this.slots = [];
      this.head = 0;
    } else {
      this.head = head;
      if (head > 1024) {
        this.slots = slots.slice(head);
        this.head = 0;
      }
    }
    this.scheduleFlush();
    if (this.closing) this.closeWhenDone();
    else if (this.readingPaused) this.resumeReading();
  }

  // ---- output

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.out.length === 0 || this.socket.destroyed) return;
    const chunks = this.out.take();
    const socket = this.socket;
    let bytes = 0;
    if (chunks.length === 1) {
      bytes = chunks[0]!.length;
      socket.write(chunks[0]!);
    } else {
      socket.cork();
      for (const chunk of chunks) {
        bytes += chunk.length;
        socket.write(chunk);
      }
      socket.uncork();
    }
    this.host.stats.totalNetOutputBytes += bytes;
    const unsent = socket.writableLength;
    if (unsent > this.host.config.clientOutputBufferLimit) {
      this.host.log.warn(
        { client: this.id, addr: this.addr, omem: unsent },
        'closing client for overcoming of output buffer limits',
      );
      this.destroy();
      return;
    }
    if (unsent > this.host.config.clientOutputPauseBytes && !this.outputPaused) {
      this.outputPaused = true;
      this.pauseReading();
    }
  }

  private onDrain(): void {
    if (!this.outputPaused) return;
    this.outputPaused = false;
    if (this.closing) this.closeWhenDone();
    else this.resumeReading();
  }

  private pauseReading(): void {
    if (this.readingPaused) return;
    this.readingPaused = true;
    this.socket.pause();
  }

  private resumeReading(): void {
    if (this.closing || this.outputPaused) return;
    if (this.slots.length - this.head >= this.host.config.maxRequestsInFlight) return;
    this.readingPaused = false;
    // Requests already buffered run first; they may pause reading again.
    this.processInput();
    this.flush();
    if (!this.readingPaused && !this.closing) this.socket.resume();
  }

  // ---- closing

  /** Ends the socket once every pending reply is encoded and handed to it. */
  private closeWhenDone(): void {
    if (this.ended || this.head !== this.slots.length || this.socket.destroyed) return;
    this.flush();
    this.ended = true;
    this.socket.end();
    // Discard whatever the client still sends; destroy if it never closes its side.
    this.socket.resume();
    this.lingerTimer = setTimeout(() => this.socket.destroy(), CLOSE_LINGER_MS);
    this.lingerTimer.unref();
  }

  private onPeerEnd(): void {
    // The client sent everything it will send: answer what is pending, then close. A blocked
    // request (LOCK ... WAIT) gives up now, as Redis frees a blocked client that disconnects:
    // otherwise it would hold its place in a queue until its WAIT ran out.
    this.closing = true;
    this.peerEnded = true;
    this.notifyCloseListeners();
    this.closeWhenDone();
  }

  private notifyCloseListeners(): void {
    const listeners = [...this.closeListeners];
    this.closeListeners.clear();
    for (const listener of listeners) listener();
  }

  private onIdle(): void {
    if (this.host.config.timeoutSeconds <= 0) return;
    this.host.log.debug({ client: this.id, addr: this.addr }, 'closing idle client');
    this.destroy();
  }

  private onSocketError(err: Error): void {
    this.host.log.debug({ client: this.id, addr: this.addr, err: err.message }, 'client socket error');
  }

  private onSocketClose(): void {
    this.closing = true;
    this.socketClosed = true;
    if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
    this.slots = [];
    this.head = 0;
    this.notifyCloseListeners();
    this.host.closed(this);
  }

  onClose(listener: () => void): () => void {
    if (this.socketClosed || this.peerEnded) {
      listener();
      return () => undefined;
    }
    this.closeListeners.add(listener);
    return () => void this.closeListeners.delete(listener);
  }
}

function formatAddress(address: string | undefined, port: number | undefined): string {
  if (address === undefined) return '?:0';
  const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
  return `${plain}:${port ?? 0}`;
}
