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
}

export const NO_FAULT: LinkPolicy = { cut: false, delayMs: 0, jitterMs: 0 };
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;
const FRAME_HEADER_BYTES = 4;

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
  ) {}

  push(chunk: Buffer): void {
    const p = this.policy();
    if (p.cut) {
      this.lost = true;
      return;
    }
    if (p.delayMs === 0 && p.jitterMs === 0 && this.queued === 0) {
      this.sink.write(chunk);
      return;
    }
    // Delivery time never goes before the previous chunk's: jitter must not reorder the stream.
    const now = performance.now();
    const due = Math.max(this.lastDueMs, now + p.delayMs + p.jitterMs * this.random());
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
    pair.a = new Pipe(client, upstream, policy, this.random);
    pair.b = new Pipe(upstream, client, policy, this.random);
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
