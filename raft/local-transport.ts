/**
 * An in-process peer transport (the `Transport` contract of transport.ts) for driver and
 * integration tests: a LocalNetwork connects LocalTransports by node id and delivers each
 * message and request asynchronously (a later event-loop turn, as a socket would), with fault
 * injection: one-way or two-way link cuts, isolation, partitions and a random drop rate.
 *
 * Owns the links, their bounded in-flight queues and the pending requests. Must never deliver
 * or report inside send() (the driver would re-enter the core mid-Ready), deliver across a cut
 * link (a message in flight when the link is cut is lost, as on a stalled TCP connection), or
 * grow without bound.
 */
import type { Message, NodeId } from './messages.js';
import {
  PeerUnreachableError,
  RemoteRequestError,
  RequestTimeoutError,
  TransportClosedError,
} from './transport.js';
import type { Transport } from './transport.js';

export interface LocalNetworkOptions {
  /** Messages in flight per directed link, at most; more are dropped and reported (default 4096). */
  maxInFlightPerLink?: number;
  /** Requests in flight per transport, at most (default 1024). */
  maxRequestsInFlight?: number;
  /** Probability in [0,1) of dropping each message (default 0). Requests are never dropped. */
  dropRate?: number;
  /** Randomness for drops (default Math.random). */
  random?: () => number;
}

export interface LocalNetworkStats {
  sent: number;
  delivered: number;
  dropped: number;
}

export class LocalNetwork {
  private readonly endpoints = new Map<NodeId, LocalTransport>();
  /** Directed cut links "from\u0000to". */
  private readonly cut = new Set<string>();
  private readonly inFlight = new Map<string, number>();
  private readonly maxInFlight: number;
  readonly maxRequestsInFlight: number;
  private readonly random: () => number;
  dropRate: number;
  readonly stats: LocalNetworkStats = { sent: 0, delivered: 0, dropped: 0 };

  constructor(options: LocalNetworkOptions = {}) {
    this.maxInFlight = options.maxInFlightPerLink ?? 4096;
    this.maxRequestsInFlight = options.maxRequestsInFlight ?? 1024;
    this.dropRate = options.dropRate ?? 0;
    this.random = options.random ?? Math.random;
  }

  /** A transport for `id`, replacing (and closing) any earlier one: a restarted node reconnects. */
  connect(id: NodeId): LocalTransport {
    void this.endpoints.get(id)?.close();
    const t = new LocalTransport(this, id);
    this.endpoints.set(id, t);
    return t;
  }

  /** Cuts both directions between `a` and `b` (or only a -> b if `oneWay`). */
  cutLink(a: NodeId, b: NodeId, oneWay = false): void {
    this.cut.add(linkKey(a, b));
    if (!oneWay) this.cut.add(linkKey(b, a));
  }

  /** Cuts `id` off from every node of `all`, in both directions. */
  isolate(id: NodeId, all: readonly NodeId[]): void {
    for (const other of all) if (other !== id) this.cutLink(id, other);
  }

  /** Splits the nodes into groups that only reach their own group. */
  partition(...groups: readonly (readonly NodeId[])[]): void {
    for (const g of groups)
      for (const h of groups) {
        if (g === h) continue;
        for (const a of g) for (const b of h) this.cut.add(linkKey(a, b));
      }
  }

  /** Restores every link. */
  heal(): void {
    this.cut.clear();
  }

  /** Whether `from` can currently reach `to` (a live endpoint, link not cut). */
  reachable(from: NodeId, to: NodeId): boolean {
    return this.endpoints.has(to) && !this.cut.has(linkKey(from, to));
  }

  /** @internal Called by LocalTransport.send: false if the message was dropped at once. */
  route(m: Message, sender: LocalTransport): boolean {
    this.stats.sent++;
    const key = linkKey(m.from, m.to);
    const queued = this.inFlight.get(key) ?? 0;
    if (queued >= this.maxInFlight) {
      this.stats.dropped++;
      return false;
    }
    if (this.cut.has(key) || (this.dropRate > 0 && this.random() < this.dropRate)) {
      this.stats.dropped++;
      return true;
    }
    this.inFlight.set(key, queued + 1);
    setImmediate(() => {
      const left = (this.inFlight.get(key) ?? 1) - 1;
      if (left === 0) this.inFlight.delete(key);
      else this.inFlight.set(key, left);
      const target = this.endpoints.get(m.to);
      if (target === undefined || this.cut.has(key) || this.endpoints.get(m.from) !== sender) {
        this.stats.dropped++;
        return;
      }
      this.stats.delivered++;
      target.deliver(m);
    });
    return true;
  }

  /** Whether a transport is connected for `id`. */
  hasEndpoint(id: NodeId): boolean {
    return this.endpoints.has(id);
  }

  /** @internal The endpoint currently registered for `id`, if its link from `from` is up. */
  endpointFor(from: NodeId, to: NodeId): LocalTransport | undefined {
    return this.cut.has(linkKey(from, to)) ? undefined : this.endpoints.get(to);
  }

  /** @internal */
  detach(t: LocalTransport): void {
    if (this.endpoints.get(t.id) === t) this.endpoints.delete(t.id);
  }
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}\u0000${to}`;
}

interface PendingRequest {
  readonly peer: NodeId;
  readonly timer: NodeJS.Timeout;
  readonly reject: (error: Error) => void;
}

export class LocalTransport implements Transport {
  private handler: ((m: Message) => void) | null = null;
  private unreachableHandler: ((peer: NodeId) => void) | null = null;
  private requestHandler: ((from: NodeId, payload: Buffer) => Promise<Uint8Array>) | null = null;
  /** Peers to report unreachable at the next turn (at most once per peer per turn). */
  private readonly toReport = new Set<NodeId>();
  private readonly removed = new Set<NodeId>();
  private readonly requests = new Set<PendingRequest>();
  private closed = false;

  constructor(
    private readonly network: LocalNetwork,
    readonly id: NodeId,
  ) {}

  /** Never blocks or throws; drops when closed, cut, removed or the link's queue is full. */
  send(m: Message): void {
    if (this.closed || this.removed.has(m.to)) return;
    if (!this.network.route(m, this)) this.reportLater(m.to);
  }

  /** Nothing to do: each message is already on its way (delivered on a later turn). */
  flush(): void {}

  onMessage(handler: (m: Message) => void): void {
    this.handler = handler;
  }

  onUnreachable(handler: (peer: NodeId) => void): void {
    this.unreachableHandler = handler;
  }

  onRequest(handler: (from: NodeId, payload: Buffer) => Promise<Uint8Array>): void {
    this.requestHandler = handler;
  }

  /** Delivers `payload` to the peer's request handler (copied, as over a wire) and its answer back. */
  request(peer: NodeId, payload: Uint8Array, timeoutMs: number): Promise<Buffer> {
    if (this.closed) return Promise.reject(new TransportClosedError());
    if (this.removed.has(peer)) return Promise.reject(new PeerUnreachableError(peer, 'removed'));
    if (this.requests.size >= this.network.maxRequestsInFlight) {
      return Promise.reject(new PeerUnreachableError(peer, 'too many requests in flight'));
    }
    // An unknown peer fails at once; a cut link stalls until the timeout (as TCP would).
    if (!this.network.hasEndpoint(peer))
      return Promise.reject(new PeerUnreachableError(peer, 'unknown peer'));
    const body = Buffer.from(payload);
    return new Promise<Buffer>((resolve, reject) => {
      const pending: PendingRequest = {
        peer,
        reject,
        timer: setTimeout(() => {
          this.requests.delete(pending);
          reject(new RequestTimeoutError(peer, timeoutMs));
        }, timeoutMs),
      };
      this.requests.add(pending);
      const finish = (fn: () => void): void => {
        if (!this.requests.delete(pending)) return;
        clearTimeout(pending.timer);
        fn();
      };
      setImmediate(() => {
        const target = this.network.endpointFor(this.id, peer);
        if (target === undefined) return; // lost in the network: the requester times out
        target.serve(this.id, body).then(
          (answer) => {
            if (this.network.endpointFor(peer, this.id) !== this) return;
            setImmediate(() => finish(() => resolve(Buffer.from(answer))));
          },
          (error: unknown) => {
            if (this.network.endpointFor(peer, this.id) !== this) return;
            const text = error instanceof Error ? error.message : String(error);
            setImmediate(() => finish(() => reject(new RemoteRequestError(peer, text))));
          },
        );
      });
    });
  }

  /** Peers are addressed by id on the LocalNetwork: the address is ignored. */
  addPeer(id: NodeId, address: string): void {
    void address;
    this.removed.delete(id);
  }

  removePeer(id: NodeId): void {
    this.removed.add(id);
    for (const r of this.requests) {
      if (r.peer !== id) continue;
      this.requests.delete(r);
      clearTimeout(r.timer);
      r.reject(new TransportClosedError(`peer ${id} removed`));
    }
  }

  /** Stops sending and receiving; messages in flight to or from it are lost. Idempotent. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.handler = null;
    this.requestHandler = null;
    for (const r of this.requests) {
      clearTimeout(r.timer);
      r.reject(new TransportClosedError());
    }
    this.requests.clear();
    this.network.detach(this);
    return Promise.resolve();
  }

  /** @internal */
  deliver(m: Message): void {
    if (!this.closed) this.handler?.(m);
  }

  /** @internal Runs this endpoint's request handler. */
  serve(from: NodeId, payload: Buffer): Promise<Uint8Array> {
    const handler = this.requestHandler;
    if (this.closed || handler === null) return Promise.reject(new Error('no request handler'));
    return handler(from, payload);
  }

  private reportLater(peer: NodeId): void {
    if (this.toReport.size === 0) {
      setImmediate(() => {
        const peers = [...this.toReport];
        this.toReport.clear();
        if (this.closed) return;
        for (const p of peers) this.unreachableHandler?.(p);
      });
    }
    this.toReport.add(peer);
  }
}
