/**
 * The TCP peer transport: Raft messages and opaque application requests between the nodes of
 * one cluster, over length-prefixed binary frames.
 *
 * Wire: every frame is `u32 BE length | u8 kind | body` (length counts kind + body, at most
 * `maxFrameBytes`; before authentication at most PRE_AUTH_MAX_FRAME_BYTES). Each node dials
 * one outbound connection per peer and carries on it its Raft messages and requests to that
 * peer; the peer answers requests on the same connection. Inbound connections are accepted on
 * the listening port and bound to the peer id proven in the handshake.
 *
 * Handshake (both sides prove the shared cluster secret without sending it; HMAC-SHA256 over
 * the cluster id, both node ids and both nonces, with a distinct label per direction so a MAC
 * cannot be reflected):
 *   dialer   -> HELLO     version, cluster id, from, to, 32-byte nonce Nc
 *   acceptor -> CHALLENGE 32-byte nonce Ns, HMAC(secret, "server" | cluster | from | to | Nc | Ns)
 *   dialer   -> PROOF     HMAC(secret, "client" | cluster | from | to | Nc | Ns)
 *   acceptor -> ACCEPT    (or REJECT with a reason, then close)
 * The dialer sends nothing of its own before it verified the acceptor's MAC; the acceptor
 * delivers nothing before it verified the dialer's. A failure is logged and the socket closed.
 * The secret authenticates peers; it does not encrypt or sign frames after the handshake (an
 * on-path attacker could still read or inject: use a private network or TLS underneath).
 *
 * Liveness: a partitioned TCP connection does not fail, it stalls. Each side sends a PING when
 * it has written nothing for `heartbeatIntervalMs`; a connection on which nothing arrived for
 * `idleTimeoutMs` (`handshakeTimeoutMs` before it is open) is closed, and an outbound one is
 * redialled with exponential backoff and jitter (from the injected `random`).
 *
 * Flow: `send` encodes into one Buffer and appends to the peer's queue, bounded by count and
 * bytes (a full queue drops and reports the peer unreachable). A Snap message is not one frame
 * but a stream (one per peer; a newer Snap replaces it): SNAP_BEGIN (stream id, data length,
 * the message without its data), SNAP_CHUNK frames of at most `snapshotChunkBytes`, written one
 * batch per event-loop turn after whatever else is queued (heartbeats are not held behind it),
 * and SNAP_END with the CRC-32C of the data. The receiver assembles the data (at most
 * `maxSnapshotBytes`), checks the length and the checksum, and only then delivers the message;
 * a lost connection or a bad checksum drops the stream (Raft resends the snapshot). Queued frames leave in one
 * socket write per event-loop turn (batching); when `socket.write` returns false nothing more
 * is written until 'drain' (backpressure), and messages queue up to the bound meanwhile.
 *
 * Owns: the listening socket, every peer connection, the send queues and pending requests.
 * Must never: block or throw in `send`, deliver a frame from an unauthenticated socket, log
 * the secret or payloads, or grow anything without a bound.
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { CodecError, decodeMessage, encodedMessageSize, encodeMessageInto } from './codec.js';
import { crc32c } from './crc32c.js';
import type { Message, NodeId } from './messages.js';
import {
  ConnectionLostError,
  PeerUnreachableError,
  RemoteRequestError,
  RequestTimeoutError,
  silentTransportLogger,
  TransportClosedError,
} from './transport.js';
import type { Transport, TransportLogger } from './transport.js';

/** Version of the frame protocol and handshake, sent in HELLO. */
export const TRANSPORT_PROTOCOL_VERSION = 1;

/** Permanent frame kinds. Append only. */
export const FrameKind = {
  Hello: 1,
  Challenge: 2,
  Proof: 3,
  Accept: 4,
  Reject: 5,
  Message: 6,
  Ping: 7,
  Request: 8,
  Response: 9,
  /**
   * An unsolicited notice from a node to a peer, on whichever open connection joins them (the
   * peer's inbound one too): today "you were removed from the cluster" (etcd's 410 Gone), sent
   * to a peer that is no longer a member and so has no outbound connection of ours.
   */
  Notice: 10,
  /** A Snap message, streamed: begin (header), chunks of its data, end (checksum). */
  SnapBegin: 11,
  SnapChunk: 12,
  SnapEnd: 13,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

/** Frames before authentication are small: an unauthenticated socket cannot make us buffer much. */
export const PRE_AUTH_MAX_FRAME_BYTES = 1024;
/** Node and cluster ids, so that a HELLO always fits a pre-authentication frame. */
export const MAX_ID_BYTES = 255;

function validId(id: string): boolean {
  const n = Buffer.byteLength(id, 'utf8');
  return n > 0 && n <= MAX_ID_BYTES;
}
const FRAME_HEADER_BYTES = 4;
const NONCE_BYTES = 32;
const MAC_BYTES = 32;
const RESPONSE_OK = 0;
const RESPONSE_ERROR = 1;

export interface TcpTransportOptions {
  id: NodeId;
  /** Names the cluster; part of every handshake MAC, so two clusters sharing a secret stay apart. */
  clusterId: string;
  /** The shared cluster secret (at least 16 bytes). Never sent, never logged. */
  secret: string | Uint8Array;
  /** Where to accept peer connections; port 0 picks a free port (see `address()`). */
  listen: { host: string; port: number };
  log?: TransportLogger;
  /** Jitter source in [0, 1) for reconnect backoff. Default Math.random. */
  random?: () => number;
  /**
   * Largest frame (kind + body) sent or accepted after the handshake. Default 64 MiB. A Snap
   * message streams in chunks, so a snapshot may be larger (up to `maxSnapshotBytes`).
   */
  maxFrameBytes?: number;
  /** Bytes of snapshot data per SNAP_CHUNK frame. Default 1 MiB (at most maxFrameBytes - 5). */
  snapshotChunkBytes?: number;
  /** Largest snapshot accepted from a peer (its data is assembled in memory). Default 2 GiB. */
  maxSnapshotBytes?: number;
  /**
   * Per-peer send queue bounds. Defaults 4096 messages, 16 MiB. One message larger than the
   * byte bound (a big snapshot) is still taken when the queue is empty.
   */
  maxQueueMessages?: number;
  maxQueueBytes?: number;
  /** Bytes handed to one socket write. Default 1 MiB. */
  maxBatchBytes?: number;
  /** PING after this long without writing. Default 200 ms. */
  heartbeatIntervalMs?: number;
  /** Close an open connection on which nothing arrived for this long. Default 1000 ms. */
  idleTimeoutMs?: number;
  /** Close a connection not open (connect + handshake) after this long. Default 1000 ms. */
  handshakeTimeoutMs?: number;
  /** Reconnect backoff: base * 2^attempt, capped, with half of it jittered. Defaults 50 ms, 2000 ms. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Requests in flight per peer (outbound) and per connection (inbound). Default 256. */
  maxInflightRequests?: number;
  /** Inbound connections still in the handshake. Default 64. */
  maxPendingHandshakes?: number;
}

export interface TcpTransportStats {
  messagesSent: number;
  messagesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  /** Messages dropped: queue full, unknown peer, or larger than a frame. */
  dropped: number;
  /** Outbound connections that completed the handshake. */
  connects: number;
  /** Handshakes refused because a MAC did not verify (either direction). */
  authFailures: number;
  /** Open connections closed by the read deadline. */
  stalls: number;
  /** Connections closed for a framing or protocol error. */
  protocolErrors: number;
  /** Messages dropped because they did not decode, or were misaddressed. */
  badMessages: number;
}

export interface PeerState {
  id: NodeId;
  address: string;
  /** Our connection to it is open (handshake done). */
  connected: boolean;
  /** Its connection to us is open. */
  inboundConnected: boolean;
  queuedMessages: number;
  queuedBytes: number;
  inflightRequests: number;
  /** Connection attempts since the last one that opened. */
  failedDials: number;
}

/** A framing or handshake violation: the connection is closed. */
export class FrameError extends Error {
  override readonly name = 'FrameError';
}

/** A frame: `u32 length | u8 kind | body`, as one Buffer. */
export function encodeFrame(kind: FrameKind, body: Uint8Array = new Uint8Array(0)): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 1 + body.byteLength);
  frame.writeUInt32BE(1 + body.byteLength, 0);
  frame[4] = kind;
  frame.set(body, 5);
  return frame;
}

/**
 * Splits a byte stream into frames. `push` calls `onFrame(frame)` with each complete frame
 * (kind byte first) while it returns true; the frame is a view of the reader's input, valid
 * only during the call. Throws FrameError on a length of 0 or above the current maximum.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes the frame at the head needs (header included), or 0 while its header is incomplete. */
  private need = 0;

  constructor(public maxFrameBytes: number) {}

  /** Bytes held for an incomplete frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer, onFrame: (frame: Buffer) => boolean): void {
    let buf: Buffer;
    if (this.buffered === 0) {
      buf = chunk;
    } else {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.need !== 0 && this.buffered < this.need) return;
      buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
      this.chunks = [];
      this.buffered = 0;
      this.need = 0;
    }
    let at = 0;
    while (buf.length - at >= FRAME_HEADER_BYTES) {
      const length = this.checkedLength(buf, at);
      const end = at + FRAME_HEADER_BYTES + length;
      if (end > buf.length) break;
      const frame = buf.subarray(at + FRAME_HEADER_BYTES, end);
      at = end;
      if (!onFrame(frame)) return;
    }
    if (at < buf.length) {
      const rest = buf.subarray(at);
      this.chunks = [rest];
      this.buffered = rest.length;
      this.need = rest.length >= FRAME_HEADER_BYTES ? FRAME_HEADER_BYTES + this.checkedLength(rest, 0) : 0;
    }
  }

  private checkedLength(buf: Buffer, at: number): number {
    const length = buf.readUInt32BE(at);
    if (length === 0) throw new FrameError('raft transport: empty frame');
    if (length > this.maxFrameBytes) {
      throw new FrameError(
        `raft transport: frame of ${length} bytes exceeds the maximum of ${this.maxFrameBytes}`,
      );
    }
    return length;
  }
}

function u16String(s: string): Buffer {
  const bytes = Buffer.from(s, 'utf8');
  assert.ok(bytes.length <= 0xffff, 'raft transport: string too long');
  const out = Buffer.allocUnsafe(2 + bytes.length);
  out.writeUInt16BE(bytes.length, 0);
  bytes.copy(out, 2);
  return out;
}

/**
 * The handshake MAC. `role` says who proves: the acceptor ('server') or the dialer ('client').
 * Every field is length-prefixed so no two transcripts share bytes.
 */
export function handshakeMac(
  secret: string | Uint8Array,
  role: 'client' | 'server',
  clusterId: string,
  clientId: NodeId,
  serverId: NodeId,
  clientNonce: Uint8Array,
  serverNonce: Uint8Array,
): Buffer {
  return createHmac('sha256', secret)
    .update(u16String(`concord-raft-v${TRANSPORT_PROTOCOL_VERSION} ${role}`))
    .update(u16String(clusterId))
    .update(u16String(clientId))
    .update(u16String(serverId))
    .update(clientNonce)
    .update(serverNonce)
    .digest();
}

export interface Hello {
  version: number;
  clusterId: string;
  from: NodeId;
  to: NodeId;
  nonce: Buffer;
}

export function encodeHello(h: Hello): Buffer {
  assert.equal(h.nonce.length, NONCE_BYTES);
  return encodeFrame(
    FrameKind.Hello,
    Buffer.concat([
      Buffer.from([h.version]),
      u16String(h.clusterId),
      u16String(h.from),
      u16String(h.to),
      h.nonce,
    ]),
  );
}

/** Parses a HELLO frame (kind byte first). Throws FrameError if malformed. */
export function decodeHello(frame: Buffer): Hello {
  let at = 1;
  const str = (): string => {
    if (at + 2 > frame.length) throw new FrameError('raft transport: malformed HELLO');
    const n = frame.readUInt16BE(at);
    if (at + 2 + n > frame.length) throw new FrameError('raft transport: malformed HELLO');
    const s = frame.toString('utf8', at + 2, at + 2 + n);
    at += 2 + n;
    return s;
  };
  if (frame.length < 2) throw new FrameError('raft transport: malformed HELLO');
  const version = frame[at++]!;
  const clusterId = str();
  const from = str();
  const to = str();
  if (frame.length - at !== NONCE_BYTES) throw new FrameError('raft transport: malformed HELLO');
  return { version, clusterId, from, to, nonce: Buffer.from(frame.subarray(at)) };
}

/**
 * Delay before redial number `attempt` (0 = first after a loss): base * 2^attempt capped at
 * `maxMs`, of which the upper half is jittered by `random` ("equal jitter"), so peers that lost
 * a node together do not redial it in lockstep, and no redial comes sooner than half the step.
 */
export function backoffDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const step = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return step / 2 + (step / 2) * random();
}

/** Parses "host:port" or "[v6]:port". */
export function parseAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(address);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || !(port > 0 && port < 65536)) {
    throw new Error(`raft transport: bad peer address '${address}' (expected host:port)`);
  }
  return { host: m[1] ?? m[2]!, port };
}

type LinkState =
  | 'connecting' // dialer: TCP connect in progress
  | 'hello-sent' // dialer: waiting for CHALLENGE
  | 'proof-sent' // dialer: waiting for ACCEPT
  | 'await-hello' // acceptor: waiting for HELLO
  | 'await-proof' // acceptor: waiting for PROOF
  | 'open'
  | 'closing' // REJECT sent, waiting for the peer to close
  | 'closed';

/** One TCP connection, in either direction. */
class Link {
  state: LinkState;
  /** The peer: known from the start when dialling, from HELLO when accepting (proven only once open). */
  peer: NodeId | null;
  readonly reader = new FrameReader(PRE_AUTH_MAX_FRAME_BYTES);
  lastReadAt: number;
  lastWriteAt: number;
  /** socket.write returned false; waiting for 'drain'. */
  blocked = false;
  /** Acceptor: requests being handled for this connection. */
  inflight = 0;
  localNonce: Buffer = Buffer.alloc(0);
  remoteNonce: Buffer = Buffer.alloc(0);
  /** Logged a misaddressed message already (once per connection). */
  warnedMisaddressed = false;
  /** Completed the handshake at some point (state may be 'closed' by now). */
  opened = false;
  /** Acceptor: counted in pendingHandshakes until open or closed. */
  holdsHandshakeSlot = false;
  /** A snapshot stream being received on this connection. */
  snapIn: InboundSnapStream | null = null;

  constructor(
    readonly socket: net.Socket,
    readonly outbound: boolean,
    peer: NodeId | null,
    now: number,
  ) {
    this.state = outbound ? 'connecting' : 'await-hello';
    this.peer = peer;
    this.lastReadAt = now;
    this.lastWriteAt = now;
  }

  write(frame: Buffer, now: number): void {
    this.lastWriteAt = now;
    if (!this.socket.write(frame)) this.blocked = true;
  }

  destroy(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.socket.destroy();
  }
}

/** A Snap message being streamed to a peer (outbound). */
interface OutboundSnapStream {
  readonly id: number;
  readonly message: Message;
  readonly data: Uint8Array;
  /** Next data byte to send; -1 before SNAP_BEGIN went out. */
  offset: number;
  crc: number;
}

/** A Snap message being assembled from its stream (inbound). */
interface InboundSnapStream {
  readonly id: number;
  readonly message: Message;
  readonly data: Buffer;
  received: number;
  crc: number;
}

interface PendingRequest {
  resolve: (b: Buffer) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  /** Written to a socket: a lost connection makes the outcome unknown. */
  sent: boolean;
}

/** An outbound peer: its address, send queue, connection and requests. */
class Peer {
  host: string;
  port: number;
  link: Link | null = null;
  /** Queue of encoded frames from `head`; `requestIds[i]` is 0 for a Raft message. */
  frames: (Buffer | undefined)[] = [];
  requestIds: number[] = [];
  head = 0;
  queueBytes = 0;
  attempt = 0;
  reconnectTimer: NodeJS.Timeout | null = null;
  readonly pending = new Map<number, PendingRequest>();
  nextRequestId = 1;
  /** Was ever open: a loss is worth a warning, a failed redial only a debug line. */
  everOpen = false;
  /** The Snap being streamed to this peer, if any (at most one; see the module header). */
  snapOut: OutboundSnapStream | null = null;
  nextSnapStreamId = 1;

  constructor(
    readonly id: NodeId,
    address: string,
  ) {
    ({ host: this.host, port: this.port } = parseAddress(address));
  }

  get queued(): number {
    return this.frames.length - this.head;
  }

  enqueue(frame: Buffer, requestId: number): void {
    this.frames.push(frame);
    this.requestIds.push(requestId);
    this.queueBytes += frame.length;
  }

  /** Drops consumed slots once they are the larger half (amortized O(1)). */
  compact(): void {
    if (this.head === this.frames.length) {
      this.frames = [];
      this.requestIds = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.frames.length) {
      this.frames = this.frames.slice(this.head);
      this.requestIds = this.requestIds.slice(this.head);
      this.head = 0;
    }
  }

  clearQueue(): void {
    this.frames = [];
    this.requestIds = [];
    this.head = 0;
    this.queueBytes = 0;
    this.snapOut = null;
  }
}

const PING_FRAME = encodeFrame(FrameKind.Ping);
const ACCEPT_FRAME = encodeFrame(FrameKind.Accept);

export class TcpTransport implements Transport {
  readonly id: NodeId;
  private readonly clusterId: string;
  private readonly secret: string | Uint8Array;
  private readonly log: TransportLogger;
  private readonly random: () => number;
  private readonly maxFrameBytes: number;
  private readonly snapshotChunkBytes: number;
  private readonly maxSnapshotBytes: number;
  private readonly maxQueueMessages: number;
  private readonly maxQueueBytes: number;
  private readonly maxBatchBytes: number;
  private readonly heartbeatIntervalMs: number;
  private readonly idleTimeoutMs: number;
  private readonly handshakeTimeoutMs: number;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  private readonly maxInflightRequests: number;
  private readonly maxPendingHandshakes: number;

  private readonly server: net.Server;
  private readonly peers = new Map<NodeId, Peer>();
  /** Authenticated inbound connections, one per peer (the newest wins). */
  private readonly inbound = new Map<NodeId, Link>();
  private readonly links = new Set<Link>();
  private pendingHandshakes = 0;
  private readonly tickTimer: NodeJS.Timeout;
  private readonly tickMs: number;
  private lastTickAt: number;

  private messageHandler: (m: Message) => void = () => undefined;
  private unreachableHandler: (peer: NodeId) => void = () => undefined;
  private requestHandler: ((from: NodeId, payload: Buffer) => Promise<Uint8Array>) | null = null;
  private noticeHandler: (from: NodeId, body: Buffer) => void = () => undefined;

  private readonly dirty = new Set<Peer>();
  private flushScheduled: NodeJS.Immediate | null = null;
  private readonly unreachable = new Set<NodeId>();
  private reportScheduled: NodeJS.Immediate | null = null;
  private lastAuthWarnAt = -Infinity;
  private suppressedAuthWarnings = 0;
  private closed = false;

  private readonly counters: TcpTransportStats = {
    messagesSent: 0,
    messagesReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    dropped: 0,
    connects: 0,
    authFailures: 0,
    stalls: 0,
    protocolErrors: 0,
    badMessages: 0,
  };

  private constructor(options: TcpTransportOptions, server: net.Server) {
    this.id = options.id;
    this.clusterId = options.clusterId;
    this.secret = options.secret;
    this.log = options.log ?? silentTransportLogger;
    this.random = options.random ?? Math.random;
    this.maxFrameBytes = options.maxFrameBytes ?? 64 * 1024 * 1024;
    this.snapshotChunkBytes = Math.max(
      1,
      Math.min(options.snapshotChunkBytes ?? 1024 * 1024, this.maxFrameBytes - 5),
    );
    this.maxSnapshotBytes = options.maxSnapshotBytes ?? 2 * 1024 * 1024 * 1024;
    this.maxQueueMessages = options.maxQueueMessages ?? 4096;
    this.maxQueueBytes = options.maxQueueBytes ?? 16 * 1024 * 1024;
    this.maxBatchBytes = options.maxBatchBytes ?? 1024 * 1024;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 200;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 1000;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? 1000;
    this.backoffBaseMs = options.backoffBaseMs ?? 50;
    this.backoffMaxMs = options.backoffMaxMs ?? 2000;
    this.maxInflightRequests = options.maxInflightRequests ?? 256;
    this.maxPendingHandshakes = options.maxPendingHandshakes ?? 64;
    assert.ok(
      this.heartbeatIntervalMs < this.idleTimeoutMs,
      'raft transport: heartbeat must be shorter than idle timeout',
    );
    assert.ok(this.maxFrameBytes >= PRE_AUTH_MAX_FRAME_BYTES, 'raft transport: maxFrameBytes too small');
    this.server = server;
    server.on('connection', (socket) => this.accept(socket));
    server.on('error', (err) => this.log.warn({ err }, 'raft transport: listener error'));
    this.tickMs = Math.max(
      5,
      Math.min(this.heartbeatIntervalMs, this.idleTimeoutMs, this.handshakeTimeoutMs) / 4,
    );
    this.lastTickAt = performance.now();
    this.tickTimer = setInterval(() => this.tick(), this.tickMs);
  }

  /** Listens on `options.listen` and returns the transport once the port is bound. */
  static async listen(options: TcpTransportOptions): Promise<TcpTransport> {
    const secretBytes =
      typeof options.secret === 'string' ? Buffer.byteLength(options.secret) : options.secret.byteLength;
    if (secretBytes < 16) throw new Error('raft transport: the cluster secret must be at least 16 bytes');
    if (!validId(options.id) || !validId(options.clusterId))
      throw new Error(`raft transport: node and cluster ids must be 1 to ${MAX_ID_BYTES} bytes`);
    const server = net.createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.listen.port, options.listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new TcpTransport(options, server);
  }

  /** The bound listening address, as "host:port" for a peer's `addPeer`. */
  address(): string {
    const a = this.server.address();
    assert.ok(a !== null && typeof a === 'object', 'raft transport: not listening');
    return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  }

  stats(): Readonly<TcpTransportStats> {
    return { ...this.counters };
  }

  /** Queued frames and bytes for `peer` (for tests and INFO). */
  queueDepth(peer: NodeId): { messages: number; bytes: number } {
    const p = this.peers.get(peer);
    return p === undefined ? { messages: 0, bytes: 0 } : { messages: p.queued, bytes: p.queueBytes };
  }

  /** Each outbound peer: address, connection state, queue and requests in flight (for INFO). */
  peerStates(): PeerState[] {
    return [...this.peers.values()].map((p) => ({
      id: p.id,
      address: `${p.host}:${p.port}`,
      connected: p.link?.state === 'open',
      inboundConnected: this.inbound.has(p.id),
      queuedMessages: p.queued,
      queuedBytes: p.queueBytes,
      inflightRequests: p.pending.size,
      failedDials: p.attempt,
    }));
  }

  /** Whether the outbound connection to `peer` has completed its handshake. */
  isConnected(peer: NodeId): boolean {
    return this.peers.get(peer)?.link?.state === 'open';
  }

  onMessage(handler: (m: Message) => void): void {
    this.messageHandler = handler;
  }

  onUnreachable(handler: (peer: NodeId) => void): void {
    this.unreachableHandler = handler;
  }

  onRequest(handler: (from: NodeId, payload: Buffer) => Promise<Uint8Array>): void {
    this.requestHandler = handler;
  }

  /** The one handler of notices (FrameKind.Notice) from authenticated peers. */
  onNotice(handler: (from: NodeId, body: Buffer) => void): void {
    this.noticeHandler = handler;
  }

  /**
   * Sends a small notice to `peer` on an open connection that joins us: its inbound one (a
   * node we no longer list as a peer may still dial us) or our outbound one. Fire-and-forget:
   * returns false when no connection is open (nothing sent). Bounded like `respond`.
   */
  notice(peer: NodeId, body: Uint8Array): boolean {
    if (this.closed || 1 + body.byteLength > Math.min(this.maxFrameBytes, 64 * 1024)) return false;
    const inbound = this.inbound.get(peer);
    const link = inbound?.state === 'open' ? inbound : this.peers.get(peer)?.link;
    if (link === undefined || link === null || link.state !== 'open') return false;
    if (link.socket.writableLength > this.maxQueueBytes) return false;
    link.write(encodeFrame(FrameKind.Notice, body), performance.now());
    return true;
  }

  addPeer(id: NodeId, address: string): void {
    // The membership includes this node: wiring it as a peer is a no-op, not an error.
    if (this.closed || id === this.id) return;
    const existing = this.peers.get(id);
    if (existing !== undefined) {
      const { host, port } = parseAddress(address);
      if (host === existing.host && port === existing.port) return;
      existing.host = host;
      existing.port = port;
      existing.link?.destroy();
      return;
    }
    if (!validId(id)) throw new Error(`raft transport: peer id must be 1 to ${MAX_ID_BYTES} bytes`);
    const peer = new Peer(id, address);
    this.peers.set(id, peer);
    this.connect(peer);
  }

  removePeer(id: NodeId): void {
    const peer = this.peers.get(id);
    if (peer !== undefined) {
      this.peers.delete(id);
      this.dirty.delete(peer);
      if (peer.reconnectTimer !== null) clearTimeout(peer.reconnectTimer);
      peer.reconnectTimer = null;
      peer.clearQueue();
      peer.link?.destroy();
      this.rejectAll(peer, () => new TransportClosedError(`peer ${id} removed`));
    }
    this.inbound.get(id)?.destroy();
  }

  send(m: Message): void {
    if (this.closed) return;
    const peer = this.peers.get(m.to);
    if (peer === undefined) {
      this.drop(m.to, 'unknown peer');
      return;
    }
    if (m.snapshot !== null) {
      this.streamSnapshot(peer, m);
      return;
    }
    if (peer.queued >= this.maxQueueMessages) {
      this.drop(m.to, 'queue full');
      return;
    }
    const size = encodedMessageSize(m);
    const frameBytes = FRAME_HEADER_BYTES + 1 + size;
    if (1 + size > this.maxFrameBytes) {
      this.log.warn(
        { peer: m.to, type: m.type, bytes: 1 + size },
        'raft transport: message larger than a frame, dropped',
      );
      this.drop(m.to, 'too large');
      return;
    }
    if (peer.queueBytes + frameBytes > this.maxQueueBytes && peer.queued > 0) {
      this.drop(m.to, 'queue full');
      return;
    }
    const frame = Buffer.allocUnsafe(frameBytes);
    frame.writeUInt32BE(1 + size, 0);
    frame[4] = FrameKind.Message;
    encodeMessageInto(m, frame, 5, size);
    peer.enqueue(frame, 0);
    this.markDirty(peer);
  }

  request(peerId: NodeId, payload: Uint8Array, timeoutMs: number): Promise<Buffer> {
    if (this.closed) return Promise.reject(new TransportClosedError());
    const peer = this.peers.get(peerId);
    if (peer === undefined) return Promise.reject(new PeerUnreachableError(peerId, 'unknown peer'));
    if (peer.pending.size >= this.maxInflightRequests) {
      return Promise.reject(
        new PeerUnreachableError(peerId, `${this.maxInflightRequests} requests in flight`),
      );
    }
    const frameBytes = FRAME_HEADER_BYTES + 1 + 4 + payload.byteLength;
    if (frameBytes - FRAME_HEADER_BYTES > this.maxFrameBytes) {
      return Promise.reject(new PeerUnreachableError(peerId, 'request larger than a frame'));
    }
    if (
      peer.queued >= this.maxQueueMessages ||
      (peer.queued > 0 && peer.queueBytes + frameBytes > this.maxQueueBytes)
    ) {
      return Promise.reject(new PeerUnreachableError(peerId, 'queue full'));
    }
    let id = peer.nextRequestId;
    peer.nextRequestId = id === 0xffff_ffff ? 1 : id + 1;
    while (peer.pending.has(id)) id = id === 0xffff_ffff ? 1 : id + 1;
    const frame = Buffer.allocUnsafe(frameBytes);
    frame.writeUInt32BE(frameBytes - FRAME_HEADER_BYTES, 0);
    frame[4] = FrameKind.Request;
    frame.writeUInt32BE(id, 5);
    frame.set(payload, 9);
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (peer.pending.get(id)?.timer !== timer) return;
        peer.pending.delete(id);
        reject(new RequestTimeoutError(peerId, timeoutMs));
      }, timeoutMs);
      peer.pending.set(id, { resolve, reject, timer, sent: false });
      peer.enqueue(frame, id);
      this.markDirty(peer);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.tickTimer);
    if (this.flushScheduled !== null) clearImmediate(this.flushScheduled);
    if (this.reportScheduled !== null) clearImmediate(this.reportScheduled);
    for (const id of [...this.peers.keys()]) this.removePeer(id);
    for (const link of this.links) link.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- sending ---------------------------------------------------------------------------

  /**
   * Starts streaming a Snap message to `peer` (replacing one in progress: the newer snapshot
   * supersedes it). The data is referenced, not copied; chunks are cut as they are written.
   */
  private streamSnapshot(peer: Peer, m: Message): void {
    const snapshot = m.snapshot!;
    if (snapshot.data.byteLength > this.maxSnapshotBytes) {
      this.log.warn(
        { peer: m.to, bytes: snapshot.data.byteLength, max: this.maxSnapshotBytes },
        'raft transport: snapshot larger than maxSnapshotBytes, dropped',
      );
      this.drop(m.to, 'snapshot too large');
      return;
    }
    const id = peer.nextSnapStreamId;
    peer.nextSnapStreamId = id === 0xffff_ffff ? 1 : id + 1;
    // The header message carries the metadata only; its data follows in chunks.
    const header: Message = { ...m, snapshot: { metadata: snapshot.metadata, data: new Uint8Array(0) } };
    peer.snapOut = { id, message: header, data: snapshot.data, offset: -1, crc: 0 };
    this.markDirty(peer);
  }

  /** The next frames of the peer's snapshot stream, up to about `budget` bytes. */
  private snapFrames(peer: Peer, budget: number): Buffer[] {
    const st = peer.snapOut;
    if (st === null) return [];
    const out: Buffer[] = [];
    let bytes = 0;
    if (st.offset < 0) {
      const size = encodedMessageSize(st.message);
      const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 1 + 4 + 8 + size);
      frame.writeUInt32BE(1 + 4 + 8 + size, 0);
      frame[4] = FrameKind.SnapBegin;
      frame.writeUInt32BE(st.id, 5);
      frame.writeUInt32BE(Math.floor(st.data.byteLength / 0x1_0000_0000), 9);
      frame.writeUInt32BE(st.data.byteLength >>> 0, 13);
      encodeMessageInto(st.message, frame, 17, size);
      out.push(frame);
      bytes += frame.length;
      st.offset = 0;
    }
    while (st.offset < st.data.byteLength && (bytes === 0 || bytes < budget)) {
      const end = Math.min(st.data.byteLength, st.offset + this.snapshotChunkBytes);
      const chunk = st.data.subarray(st.offset, end);
      st.crc = crc32c(chunk, st.crc);
      const head = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 1 + 4);
      head.writeUInt32BE(1 + 4 + chunk.byteLength, 0);
      head[4] = FrameKind.SnapChunk;
      head.writeUInt32BE(st.id, 5);
      out.push(head, Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      bytes += head.length + chunk.byteLength;
      st.offset = end;
    }
    if (st.offset >= st.data.byteLength) {
      const end = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 1 + 4 + 4);
      end.writeUInt32BE(1 + 4 + 4, 0);
      end[4] = FrameKind.SnapEnd;
      end.writeUInt32BE(st.id, 5);
      end.writeUInt32BE(st.crc >>> 0, 9);
      out.push(end);
      peer.snapOut = null;
      this.counters.messagesSent++;
    }
    return out;
  }

  private drop(peer: NodeId, reason: string): void {
    this.counters.dropped++;
    this.log.debug({ peer, reason }, 'raft transport: message dropped');
    this.reportUnreachable(peer);
  }

  private reportUnreachable(peer: NodeId): void {
    this.unreachable.add(peer);
    this.reportScheduled ??= setImmediate(() => {
      this.reportScheduled = null;
      const peers = [...this.unreachable];
      this.unreachable.clear();
      if (this.closed) return;
      for (const p of peers) this.unreachableHandler(p);
    });
  }

  /** Transport.flush: writes every dirty peer's queue now (one socket write per peer). */
  flush(): void {
    if (this.dirty.size === 0) return;
    const peers = [...this.dirty];
    this.dirty.clear();
    for (const p of peers) this.flush1(p);
  }

  private markDirty(peer: Peer): void {
    if (peer.link?.state !== 'open') return;
    this.dirty.add(peer);
    this.flushScheduled ??= setImmediate(() => {
      this.flushScheduled = null;
      const peers = [...this.dirty];
      this.dirty.clear();
      for (const p of peers) this.flush1(p);
    });
  }

  /** Writes up to maxBatchBytes of the peer's queue in one socket write. */
  private flush1(peer: Peer): void {
    const link = peer.link;
    if (link === null || link.state !== 'open' || link.blocked) return;
    if (peer.queued === 0 && peer.snapOut === null) return;
    const batch: Buffer[] = [];
    let bytes = 0;
    while (peer.head < peer.frames.length && (bytes === 0 || bytes < this.maxBatchBytes)) {
      const frame = peer.frames[peer.head]!;
      const requestId = peer.requestIds[peer.head]!;
      peer.frames[peer.head] = undefined;
      peer.head++;
      peer.queueBytes -= frame.length;
      if (requestId !== 0) {
        const pending = peer.pending.get(requestId);
        if (pending === undefined) continue; // timed out while queued: never sent
        pending.sent = true;
      } else {
        this.counters.messagesSent++;
      }
      batch.push(frame);
      bytes += frame.length;
    }
    peer.compact();
    // The snapshot stream gets what the batch has left (at least one chunk): queued messages
    // go first, so heartbeats and appends are never held behind a large snapshot.
    if (peer.snapOut !== null && bytes < this.maxBatchBytes) {
      for (const f of this.snapFrames(peer, this.maxBatchBytes - bytes)) {
        batch.push(f);
        bytes += f.length;
      }
    }
    if (batch.length === 0) return;
    this.counters.bytesSent += bytes;
    link.lastWriteAt = performance.now();
    let ok: boolean;
    if (batch.length === 1) {
      ok = link.socket.write(batch[0]!);
    } else if (bytes <= 256 * 1024) {
      ok = link.socket.write(Buffer.concat(batch, bytes));
    } else {
      // Large frames: no copy; cork so they still leave in one writev.
      link.socket.cork();
      ok = true;
      for (const b of batch) ok = link.socket.write(b) && ok;
      link.socket.uncork();
    }
    if (!ok) link.blocked = true;
    else if (peer.queued > 0 || peer.snapOut !== null) this.markDirty(peer);
  }

  // ---- connections -----------------------------------------------------------------------

  private connect(peer: Peer): void {
    peer.reconnectTimer = null;
    if (this.closed || this.peers.get(peer.id) !== peer) return;
    const socket = net.connect({ host: peer.host, port: peer.port, noDelay: true });
    const link = new Link(socket, true, peer.id, performance.now());
    peer.link = link;
    this.links.add(link);
    socket.on('connect', () => {
      if (link.state !== 'connecting') return;
      socket.setNoDelay(true);
      link.localNonce = randomBytes(NONCE_BYTES);
      link.state = 'hello-sent';
      link.write(
        encodeHello({
          version: TRANSPORT_PROTOCOL_VERSION,
          clusterId: this.clusterId,
          from: this.id,
          to: peer.id,
          nonce: link.localNonce,
        }),
        performance.now(),
      );
    });
    this.wire(link);
  }

  private accept(socket: net.Socket): void {
    if (this.closed || this.pendingHandshakes >= this.maxPendingHandshakes) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const link = new Link(socket, false, null, performance.now());
    this.pendingHandshakes++;
    link.holdsHandshakeSlot = true;
    this.links.add(link);
    this.wire(link);
  }

  private wire(link: Link): void {
    const { socket } = link;
    socket.on('data', (chunk: Buffer) => this.onData(link, chunk));
    socket.on('drain', () => {
      link.blocked = false;
      if (link.outbound) {
        const peer = this.peers.get(link.peer!);
        if (peer !== undefined && peer.link === link) this.flush1(peer);
      }
    });
    socket.on('error', (err) => {
      this.log.debug({ peer: link.peer, err: err.message }, 'raft transport: socket error');
    });
    socket.on('close', () => this.onClose(link));
  }

  private onData(link: Link, chunk: Buffer): void {
    if (link.state === 'closed') return;
    link.lastReadAt = performance.now();
    if (link.state === 'open') this.counters.bytesReceived += chunk.length;
    try {
      link.reader.push(chunk, (frame) => {
        this.onFrame(link, frame);
        return link.state !== 'closed' && link.state !== 'closing';
      });
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      this.counters.protocolErrors++;
      // Only an authenticated peer's errors are worth a warning; anyone can send garbage.
      const fields = {
        peer: link.peer,
        remote: link.socket.remoteAddress,
        state: link.state,
        err: err.message,
      };
      if (link.opened) this.log.warn(fields, 'raft transport: protocol error, closing connection');
      else this.log.debug(fields, 'raft transport: protocol error, closing connection');
      link.destroy();
    }
  }

  private onFrame(link: Link, frame: Buffer): void {
    const kind = frame[0]!;
    switch (link.state) {
      case 'await-hello':
        if (kind !== FrameKind.Hello)
          throw new FrameError(`raft transport: expected HELLO, got frame kind ${kind}`);
        this.onHello(link, decodeHello(frame));
        return;
      case 'await-proof':
        if (kind !== FrameKind.Proof || frame.length !== 1 + MAC_BYTES) {
          throw new FrameError(`raft transport: expected PROOF, got frame kind ${kind}`);
        }
        this.onProof(link, frame.subarray(1));
        return;
      case 'hello-sent':
        if (kind === FrameKind.Reject) return this.onReject(link, frame);
        if (kind !== FrameKind.Challenge || frame.length !== 1 + NONCE_BYTES + MAC_BYTES) {
          throw new FrameError(`raft transport: expected CHALLENGE, got frame kind ${kind}`);
        }
        this.onChallenge(link, frame);
        return;
      case 'proof-sent':
        if (kind === FrameKind.Reject) return this.onReject(link, frame);
        if (kind !== FrameKind.Accept)
          throw new FrameError(`raft transport: expected ACCEPT, got frame kind ${kind}`);
        this.onAccept(link);
        return;
      case 'open':
        this.onOpenFrame(link, kind, frame);
        return;
      case 'connecting':
        throw new FrameError('raft transport: data before connect');
      case 'closing':
      case 'closed':
        return;
      default: {
        const unknown: never = link.state;
        throw new Error(`raft transport: unknown link state ${String(unknown)}`);
      }
    }
  }

  /** Acceptor, step 1: check the HELLO, answer with our nonce and our proof. */
  private onHello(link: Link, hello: Hello): void {
    let reason: string | null = null;
    if (hello.version !== TRANSPORT_PROTOCOL_VERSION) {
      reason = `protocol version ${hello.version} unsupported (this node speaks ${TRANSPORT_PROTOCOL_VERSION})`;
    } else if (hello.clusterId !== this.clusterId) reason = 'cluster id mismatch';
    else if (hello.to !== this.id) reason = `this node is not ${hello.to}`;
    else if (hello.from === this.id || hello.from === '') reason = 'bad node id';
    if (reason !== null) {
      this.refuse(link, reason, { claimed: hello.from });
      return;
    }
    link.peer = hello.from;
    link.remoteNonce = hello.nonce;
    link.localNonce = randomBytes(NONCE_BYTES);
    const mac = handshakeMac(
      this.secret,
      'server',
      this.clusterId,
      hello.from,
      this.id,
      hello.nonce,
      link.localNonce,
    );
    link.state = 'await-proof';
    link.write(encodeFrame(FrameKind.Challenge, Buffer.concat([link.localNonce, mac])), performance.now());
  }

  /** Acceptor, step 2: verify the dialer's MAC; only then is anything it sends delivered. */
  private onProof(link: Link, mac: Buffer): void {
    const peer = link.peer!;
    const expected = handshakeMac(
      this.secret,
      'client',
      this.clusterId,
      peer,
      this.id,
      link.remoteNonce,
      link.localNonce,
    );
    if (!timingSafeEqual(mac, expected)) {
      this.authFailed(link, peer, 'dialer');
      this.refuse(link, 'authentication failed', {});
      return;
    }
    link.state = 'open';
    link.opened = true;
    link.reader.maxFrameBytes = this.maxFrameBytes;
    link.holdsHandshakeSlot = false;
    this.pendingHandshakes--;
    this.inbound.get(peer)?.destroy();
    this.inbound.set(peer, link);
    link.write(ACCEPT_FRAME, performance.now());
    this.log.debug({ peer, remote: link.socket.remoteAddress }, 'raft transport: peer connected');
  }

  /** Dialer: verify the acceptor's MAC before sending anything of ours, then prove ourselves. */
  private onChallenge(link: Link, frame: Buffer): void {
    const peer = link.peer!;
    const nonce = Buffer.from(frame.subarray(1, 1 + NONCE_BYTES));
    const mac = frame.subarray(1 + NONCE_BYTES);
    const expected = handshakeMac(
      this.secret,
      'server',
      this.clusterId,
      this.id,
      peer,
      link.localNonce,
      nonce,
    );
    if (!timingSafeEqual(mac, expected)) {
      this.authFailed(link, peer, 'acceptor');
      link.destroy();
      return;
    }
    link.remoteNonce = nonce;
    link.state = 'proof-sent';
    const proof = handshakeMac(this.secret, 'client', this.clusterId, this.id, peer, link.localNonce, nonce);
    link.write(encodeFrame(FrameKind.Proof, proof), performance.now());
  }

  private onAccept(link: Link): void {
    const peer = this.peers.get(link.peer!);
    link.state = 'open';
    link.opened = true;
    link.reader.maxFrameBytes = this.maxFrameBytes;
    this.counters.connects++;
    if (peer === undefined || peer.link !== link) {
      link.destroy();
      return;
    }
    peer.attempt = 0;
    peer.everOpen = true;
    this.log.info(
      { peer: peer.id, address: `${peer.host}:${peer.port}` },
      'raft transport: connected to peer',
    );
    this.markDirty(peer);
  }

  private onReject(link: Link, frame: Buffer): void {
    const reason = frame.toString('utf8', 1, Math.min(frame.length, 257));
    this.log.warn({ peer: link.peer, reason }, 'raft transport: peer refused the connection');
    link.destroy();
  }

  private authFailed(link: Link, peer: NodeId, who: 'dialer' | 'acceptor'): void {
    this.counters.authFailures++;
    const now = performance.now();
    // Rate-limited: an attacker must not be able to flood the log.
    if (now - this.lastAuthWarnAt < 1000) {
      this.suppressedAuthWarnings++;
      return;
    }
    this.lastAuthWarnAt = now;
    this.log.warn(
      { peer, remote: link.socket.remoteAddress, failed: who, suppressed: this.suppressedAuthWarnings },
      `raft transport: ${who} failed authentication (wrong cluster secret?), closing connection`,
    );
    this.suppressedAuthWarnings = 0;
  }

  /** Acceptor: tell the dialer why, then close. */
  private refuse(link: Link, reason: string, fields: object): void {
    this.log.warn(
      { ...fields, remote: link.socket.remoteAddress, reason },
      'raft transport: refused a connection',
    );
    link.state = 'closing';
    link.socket.end(encodeFrame(FrameKind.Reject, Buffer.from(reason, 'utf8')));
  }

  private onOpenFrame(link: Link, kind: number, frame: Buffer): void {
    switch (kind) {
      case FrameKind.Ping:
        return;
      case FrameKind.Message:
        this.onMessageFrame(link, frame);
        return;
      case FrameKind.Request:
        this.onRequestFrame(link, frame);
        return;
      case FrameKind.Response:
        this.onResponseFrame(link, frame);
        return;
      case FrameKind.Notice:
        this.noticeHandler(link.peer!, Buffer.from(frame.subarray(1)));
        return;
      case FrameKind.SnapBegin:
      case FrameKind.SnapChunk:
      case FrameKind.SnapEnd:
        this.onSnapFrame(link, kind, frame);
        return;
      default:
        throw new FrameError(`raft transport: unexpected frame kind ${kind} on an open connection`);
    }
  }

  private onMessageFrame(link: Link, frame: Buffer): void {
    // One copy, so the message owns its bytes and pins no socket chunk.
    const owned = new Uint8Array(frame.length - 1);
    owned.set(frame.subarray(1));
    let m: Message;
    try {
      m = decodeMessage(owned);
    } catch (err) {
      if (!(err instanceof CodecError)) throw err;
      this.counters.badMessages++;
      this.log.warn({ peer: link.peer, err: err.message }, 'raft transport: undecodable message dropped');
      return;
    }
    if (m.from !== link.peer || m.to !== this.id) {
      this.counters.badMessages++;
      if (!link.warnedMisaddressed) {
        link.warnedMisaddressed = true;
        this.log.warn(
          { peer: link.peer, from: m.from, to: m.to },
          'raft transport: misaddressed message dropped (further ones on this connection not logged)',
        );
      }
      return;
    }
    this.counters.messagesReceived++;
    this.messageHandler(m);
  }

  /** Assembles a streamed Snap; delivers it once its length and checksum are right. */
  private onSnapFrame(link: Link, kind: number, frame: Buffer): void {
    if (frame.length < 5) throw new FrameError('raft transport: malformed snapshot frame');
    const id = frame.readUInt32BE(1);
    const bad = (why: string): void => {
      this.counters.badMessages++;
      link.snapIn = null;
      this.log.warn({ peer: link.peer, stream: id, why }, 'raft transport: snapshot stream dropped');
    };
    if (kind === FrameKind.SnapBegin) {
      if (frame.length < 13) throw new FrameError('raft transport: malformed SNAP_BEGIN');
      const total = frame.readUInt32BE(5) * 0x1_0000_0000 + frame.readUInt32BE(9);
      link.snapIn = null; // a newer stream supersedes an unfinished one
      if (total > this.maxSnapshotBytes) return bad(`snapshot of ${total} bytes over maxSnapshotBytes`);
      const owned = new Uint8Array(frame.length - 13);
      owned.set(frame.subarray(13));
      let m: Message;
      try {
        m = decodeMessage(owned);
      } catch (err) {
        if (!(err instanceof CodecError)) throw err;
        return bad(`undecodable header: ${err.message}`);
      }
      if (m.snapshot === null || m.from !== link.peer || m.to !== this.id) return bad('misaddressed header');
      link.snapIn = { id, message: m, data: Buffer.allocUnsafe(total), received: 0, crc: 0 };
      return;
    }
    const st = link.snapIn;
    if (st === null || st.id !== id) return; // the rest of a dropped or superseded stream
    if (kind === FrameKind.SnapChunk) {
      const chunk = frame.subarray(5);
      if (st.received + chunk.length > st.data.length) return bad('more data than announced');
      chunk.copy(st.data, st.received);
      st.crc = crc32c(chunk, st.crc);
      st.received += chunk.length;
      return;
    }
    if (frame.length !== 9) throw new FrameError('raft transport: malformed SNAP_END');
    link.snapIn = null;
    if (st.received !== st.data.length) return bad(`${st.received} of ${st.data.length} bytes`);
    if (frame.readUInt32BE(5) !== st.crc >>> 0) return bad('checksum mismatch');
    const m: Message = {
      ...st.message,
      snapshot: { metadata: st.message.snapshot!.metadata, data: st.data },
    };
    this.counters.messagesReceived++;
    this.messageHandler(m);
  }

  private onRequestFrame(link: Link, frame: Buffer): void {
    if (frame.length < 5) throw new FrameError('raft transport: malformed REQUEST');
    const id = frame.readUInt32BE(1);
    const from = link.peer!;
    const handler = this.requestHandler;
    if (handler === null) return this.respond(link, id, RESPONSE_ERROR, Buffer.from('no request handler'));
    if (link.inflight >= this.maxInflightRequests) {
      return this.respond(
        link,
        id,
        RESPONSE_ERROR,
        Buffer.from(`overloaded: ${link.inflight} requests in flight`),
      );
    }
    link.inflight++;
    const payload = Buffer.from(frame.subarray(5));
    let result: Promise<Uint8Array>;
    try {
      result = handler(from, payload);
    } catch (err) {
      result = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    result.then(
      (body) => {
        link.inflight--;
        if (1 + 5 + body.byteLength > this.maxFrameBytes) {
          this.respond(link, id, RESPONSE_ERROR, Buffer.from('response larger than a frame'));
        } else {
          this.respond(link, id, RESPONSE_OK, body);
        }
      },
      (err: unknown) => {
        link.inflight--;
        const text = err instanceof Error ? err.message : String(err);
        this.respond(link, id, RESPONSE_ERROR, Buffer.from(text.slice(0, 1024), 'utf8'));
      },
    );
  }

  private respond(link: Link, id: number, status: number, body: Uint8Array): void {
    if (link.state !== 'open') return;
    if (link.socket.writableLength > this.maxQueueBytes) {
      // The requester does not read its responses: do not buffer them without bound.
      this.log.warn(
        { peer: link.peer, buffered: link.socket.writableLength },
        'raft transport: peer does not read its responses, closing connection',
      );
      link.destroy();
      return;
    }
    const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 6 + body.byteLength);
    frame.writeUInt32BE(6 + body.byteLength, 0);
    frame[4] = FrameKind.Response;
    frame.writeUInt32BE(id, 5);
    frame[9] = status;
    frame.set(body, 10);
    link.write(frame, performance.now());
  }

  private onResponseFrame(link: Link, frame: Buffer): void {
    if (frame.length < 6) throw new FrameError('raft transport: malformed RESPONSE');
    const peer = this.peers.get(link.peer!);
    if (peer === undefined || peer.link !== link) return;
    const id = frame.readUInt32BE(1);
    const pending = peer.pending.get(id);
    if (pending === undefined) return; // timed out already
    peer.pending.delete(id);
    clearTimeout(pending.timer);
    const body = Buffer.from(frame.subarray(6));
    if (frame[5] === RESPONSE_OK) pending.resolve(body);
    else pending.reject(new RemoteRequestError(peer.id, body.toString('utf8')));
  }

  private onClose(link: Link): void {
    const wasOpen = link.opened;
    link.state = 'closed';
    this.links.delete(link);
    if (!link.outbound) {
      if (link.holdsHandshakeSlot) {
        link.holdsHandshakeSlot = false;
        this.pendingHandshakes--;
      }
      if (link.peer !== null && this.inbound.get(link.peer) === link) this.inbound.delete(link.peer);
      return;
    }
    const peer = this.peers.get(link.peer!);
    if (peer === undefined || peer.link !== link) return;
    peer.link = null;
    this.dirty.delete(peer);
    this.rejectAll(peer, () => new ConnectionLostError(peer.id), true);
    // A snapshot stream cut off starts over on the next connection (the receiver dropped it).
    if (peer.snapOut !== null) {
      peer.snapOut.offset = -1;
      peer.snapOut.crc = 0;
    }
    if (this.closed) return;
    if (wasOpen) {
      this.log.warn(
        { peer: peer.id, queued: peer.queued },
        'raft transport: connection to peer lost, reconnecting',
      );
      this.reportUnreachable(peer.id);
    }
    const delayMs = backoffDelayMs(peer.attempt, this.backoffBaseMs, this.backoffMaxMs, this.random);
    peer.attempt++;
    if (!wasOpen && peer.everOpen) {
      this.log.debug({ peer: peer.id, attempt: peer.attempt, delayMs }, 'raft transport: redial failed');
    }
    peer.reconnectTimer = setTimeout(() => this.connect(peer), delayMs);
  }

  /** Rejects the peer's requests; with `sentOnly`, only those already written (outcome unknown). */
  private rejectAll(peer: Peer, error: () => Error, sentOnly = false): void {
    for (const [id, p] of peer.pending) {
      if (sentOnly && !p.sent) continue;
      peer.pending.delete(id);
      clearTimeout(p.timer);
      p.reject(error());
    }
  }

  /** Read deadlines and heartbeats, every quarter of the shortest of them. */
  private tick(): void {
    const now = performance.now();
    // Timers run before pending socket reads after the event loop was blocked (a long GC, a
    // slow apply): time in which we could not read must not count as the peer's silence.
    const lagMs = now - this.lastTickAt - this.tickMs;
    this.lastTickAt = now;
    if (lagMs > this.tickMs) {
      for (const link of this.links) link.lastReadAt += lagMs;
    }
    for (const link of this.links) {
      if (link.state === 'closed') continue;
      const open = link.state === 'open';
      const limit = open ? this.idleTimeoutMs : this.handshakeTimeoutMs;
      if (now - link.lastReadAt > limit) {
        if (open) {
          this.counters.stalls++;
          this.log.warn(
            { peer: link.peer, silentMs: Math.round(now - link.lastReadAt) },
            'raft transport: nothing received within the read deadline (stalled connection), closing',
          );
        } else {
          this.log.debug({ peer: link.peer, state: link.state }, 'raft transport: handshake timed out');
        }
        link.destroy();
      } else if (open && !link.blocked && now - link.lastWriteAt >= this.heartbeatIntervalMs) {
        link.write(PING_FRAME, now);
      }
    }
  }
}
