/**
 * A small TCP fault proxy for Raft peer links: it listens on a node's advertised peer port and
 * forwards each connection to the node's real peer port, adding delay and jitter, or cutting
 * the link (a blackhole: bytes are read and thrown away in both directions, so the dialer sees
 * a stalled connection, not a closed one, exactly like a network partition).
 *
 * The dialer of a peer connection is identified by the `from` field of its HELLO frame (the
 * first frame on every connection; raft/tcp-transport.ts), so policies are per source node and
 * work the same on loopback (where every connection comes from 127.0.0.1) and in namespaces.
 * Policy applies to both directions of the connections a source dialed: its Raft messages to
 * this node and this node's answers to its requests. (This node's own messages to the source
 * travel on the connection this node dialed, through the source's proxy.)
 *
 * Healing a cut destroys every connection that lost bytes while cut (the byte stream is
 * broken), so both sides redial, as after a real partition long enough to time out.
 *
 * Packet loss (`lossPercent`): a TCP proxy cannot drop bytes (that would corrupt the stream the
 * application reads). What an application sees of packet loss on TCP is the kernel's recovery:
 * a lost segment is sent again after the retransmission timeout (at least 200 ms on Linux,
 * doubling while the retransmissions are lost too), and every byte behind it waits (in-order
 * delivery: head-of-line blocking); when too many retransmissions in a row are lost, the
 * connection breaks. The proxy models exactly that, per chunk it forwards: with probability
 * lossPercent a chunk is "lost" and held back by one RTO (MIN_RTO_MS), each further loss of
 * the same chunk adds a doubled RTO (up to MAX_RTO_MS), chunks behind it wait, and a chunk
 * lost more than MAX_RETRANSMITS times in a row resets the connection (both sockets, with RST).
 * Every draw comes from the injected seeded PRNG, so a seed replays the same schedule for the
 * same sequence of chunks. See lossOutcome() and docs/faults.md.
 *
 * Owns: its listening socket and the connection pairs. Must never: reorder bytes within a
 * connection, buffer more than MAX_QUEUED_BYTES per direction (it pauses the reader instead),
 * or read anything from Math.random (jitter comes from the injected PRNG).
 */
import net from 'node:net';
import { decodeHello, FrameKind, PRE_AUTH_MAX_FRAME_BYTES } from '../raft/tcp-transport.js';

export interface LinkPolicy {
  cut: boolean;
  delayMs: number;
  jitterMs: number;
  /** Percent (0-100) of forwarded chunks "lost" and recovered as TCP would (see the header). */
  lossPercent: number;
}

export const NO_FAULT: LinkPolicy = { cut: false, delayMs: 0, jitterMs: 0, lossPercent: 0 };
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;
const FRAME_HEADER_BYTES = 4;

/** Linux's TCP_RTO_MIN: the first retransmission of a lost segment comes this late, at least. */
export const MIN_RTO_MS = 200;
/** The backoff's ceiling here (Linux allows 120 s; the peer transport gives up long before). */
export const MAX_RTO_MS = 3_200;
/** Losses of one chunk in a row after which the connection breaks (a compressed tcp_retries2). */
export const MAX_RETRANSMITS = 5;

/** What loss does to one chunk: nothing, a stall of `stallMs` before it may go, or a reset. */
export type LossOutcome = { kind: 'sent'; stallMs: number } | { kind: 'reset'; losses: number };

/**
 * Draws the fate of one chunk under `lossPercent` loss: every draw below it is one more lost
 * transmission, costing an RTO that doubles each time (200, 400, 800... ms up to MAX_RTO_MS);
 * more than MAX_RETRANSMITS losses in a row break the connection. Pure given `random`.
 */
export function lossOutcome(random: () => number, lossPercent: number): LossOutcome {
  if (lossPercent <= 0) return { kind: 'sent', stallMs: 0 };
  let stallMs = 0;
  let rto = MIN_RTO_MS;
  let losses = 0;
  while (random() * 100 < lossPercent) {
    losses++;
    if (losses > MAX_RETRANSMITS) return { kind: 'reset', losses };
    stallMs += rto;
    rto = Math.min(rto * 2, MAX_RTO_MS);
  }
  return { kind: 'sent', stallMs };
}

/** What the loss model did on one proxy (for tests and the run's notes). */
export interface LossStats {
  /** Chunks held back by at least one RTO. */
  heldBack: number;
  /** Connections reset because a chunk was lost more than MAX_RETRANSMITS times in a row. */
  resets: number;
}

/** One direction of a proxied connection: ordered, delayed delivery with a byte bound. */
class Pipe {
  private queued = 0;
  private lastDueMs = 0;
  /** Bytes thrown away while cut: the stream is broken and must be closed on heal. */
  lost = false;

  constructor(
    private readonly source: net.Socket,
    private readonly sink: net.Socket,
    private readonly policy: () => LinkPolicy,
    private readonly random: () => number,
    private readonly stats: LossStats,
    /** Breaks the connection (both sockets): a chunk's retransmissions were all lost. */
    private readonly reset: () => void,
  ) {}

  push(chunk: Buffer): void {
    const p = this.policy();
    if (p.cut) {
      this.lost = true;
      return;
    }
    if (p.delayMs === 0 && p.jitterMs === 0 && p.lossPercent === 0 && this.queued === 0) {
      this.sink.write(chunk);
      return;
    }
    const loss = lossOutcome(this.random, p.lossPercent);
    if (loss.kind === 'reset') {
      this.stats.resets++;
      this.reset();
      return;
    }
    if (loss.stallMs > 0) this.stats.heldBack++;
    // Delivery time never goes before the previous chunk's: jitter must not reorder the stream,
    // and a chunk held back by retransmissions holds back every chunk behind it, as TCP does.
    const now = performance.now();
    const due = Math.max(this.lastDueMs, now + loss.stallMs + p.delayMs + p.jitterMs * this.random());
    this.lastDueMs = due;
    this.queued += chunk.length;
    if (this.queued > MAX_QUEUED_BYTES) this.source.pause();
    setTimeout(() => {
      this.queued -= chunk.length;
      if (!this.sink.destroyed) this.sink.write(chunk);
      if (this.queued <= MAX_QUEUED_BYTES / 2 && this.source.isPaused()) this.source.resume();
    }, due - now);
  }
}

export class PeerProxy {
  private server: net.Server | undefined;
  private readonly pairs = new Set<{ from: string | undefined; a: Pipe; b: Pipe; client: net.Socket; upstream: net.Socket }>();
  private readonly policies = new Map<string, LinkPolicy>();
  private fallback: LinkPolicy = NO_FAULT;
  /** What the loss model did so far (counts only grow). */
  readonly lossStats: LossStats = { heldBack: 0, resets: 0 };

  constructor(
    private readonly target: { host: string; port: number },
    private readonly random: () => number,
  ) {}

  async listen(host: string, port: number): Promise<number> {
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy: no address');
    return address.port;
  }

  /** The policy for connections dialed by `from` (`*`: every source without its own). */
  setPolicy(from: string, policy: LinkPolicy): void {
    const wasCut = from === '*' ? this.fallback.cut : (this.policies.get(from) ?? this.fallback).cut;
    if (from === '*') this.fallback = policy;
    else this.policies.set(from, policy);
    if (wasCut && !policy.cut) this.dropBroken();
  }

  /** Every link back to no fault; connections that lost bytes are closed. */
  reset(): void {
    this.policies.clear();
    this.fallback = NO_FAULT;
    this.dropBroken();
  }

  private policyFor(from: string | undefined): LinkPolicy {
    return (from === undefined ? undefined : this.policies.get(from)) ?? this.fallback;
  }

  private dropBroken(): void {
    for (const pair of this.pairs) {
      if ((pair.a.lost || pair.b.lost) && !this.policyFor(pair.from).cut) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
    }
  }

  private accept(client: net.Socket): void {
    const upstream = net.connect(this.target.port, this.target.host);
    const pair = {
      from: undefined as string | undefined,
      client,
      upstream,
      a: undefined as unknown as Pipe,
      b: undefined as unknown as Pipe,
    };
    const policy = (): LinkPolicy => this.policyFor(pair.from);
    // A reset as the kernel gives up: RST both ways, so each side reads ECONNRESET.
    const reset = (): void => {
      for (const socket of [client, upstream]) {
        if (socket.destroyed) continue;
        if (socket.connecting) socket.destroy();
        else socket.resetAndDestroy();
      }
    };
    pair.a = new Pipe(client, upstream, policy, this.random, this.lossStats, reset);
    pair.b = new Pipe(upstream, client, policy, this.random, this.lossStats, reset);
    this.pairs.add(pair);
    let head: Buffer | undefined = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      if (head !== undefined) {
        // Learn the dialer from its HELLO before the first byte goes anywhere.
        head = Buffer.concat([head, chunk]);
        const from = helloFrom(head);
        if (from === undefined && head.length < FRAME_HEADER_BYTES + PRE_AUTH_MAX_FRAME_BYTES) return;
        pair.from = from ?? undefined;
        const buffered = head;
        head = undefined;
        pair.a.push(buffered);
        return;
      }
      pair.a.push(chunk);
    });
    upstream.on('data', (chunk: Buffer) => pair.b.push(chunk));
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('close', close);
    upstream.on('close', close);
    client.on('error', close);
    upstream.on('error', close);
  }

  async close(): Promise<void> {
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    const server = this.server;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/**
 * The `from` of a HELLO at the start of `head`; undefined while incomplete, null when the first
 * frame is not a well-formed HELLO (then the default policy applies).
 */
export function helloFrom(head: Buffer): string | null | undefined {
  if (head.length < FRAME_HEADER_BYTES) return undefined;
  const length = head.readUInt32BE(0);
  if (length === 0 || length > PRE_AUTH_MAX_FRAME_BYTES) return null;
  if (head.length < FRAME_HEADER_BYTES + length) return undefined;
  const frame = head.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length);
  if (frame[0] !== FrameKind.Hello) return null;
  try {
    return decodeHello(frame).from;
  } catch {
    return null; // Not a HELLO we understand: the proxy still forwards it, under the default policy.
  }
}
