/**
 * An in-process peer transport for driver tests: a LocalNetwork connects LocalTransports by
 * node id and delivers each message asynchronously (a later event-loop turn, as a socket
 * would), with fault injection: one-way or two-way link cuts, isolation, partitions, and a
 * seeded random drop rate.
 *
 * Owns the links and their bounded in-flight queues. Must never deliver synchronously inside
 * send() (the driver would re-enter the core), deliver across a cut link (a message in flight
 * when the link is cut is lost, as on a stalled TCP connection), or grow without bound.
 */
import type { Message, NodeId } from './messages.js';
import type { PeerTransport } from './node.js';

export interface LocalNetworkOptions {
  /** Messages in flight per directed link, at most; more are dropped and reported (default 4096). */
  maxInFlightPerLink?: number;
  /** Probability in [0,1) of dropping each message (default 0). */
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
  private readonly random: () => number;
  dropRate: number;
  readonly stats: LocalNetworkStats = { sent: 0, delivered: 0, dropped: 0 };

  constructor(options: LocalNetworkOptions = {}) {
    this.maxInFlight = options.maxInFlightPerLink ?? 4096;
    this.dropRate = options.dropRate ?? 0;
    this.random = options.random ?? Math.random;
  }

  /** A transport for `id`, replacing any earlier one (a restarted node reconnects). */
  connect(id: NodeId): LocalTransport {
    this.endpoints.get(id)?.close();
    const t = new LocalTransport(this, id);
    this.endpoints.set(id, t);
    return t;
  }

  /** Cuts both directions between `a` and `b` (or only a -> b if `oneWay`). */
  cutLink(a: NodeId, b: NodeId, oneWay = false): void {
    this.cut.add(linkKey(a, b));
    if (!oneWay) this.cut.add(linkKey(b, a));
  }

  /** Cuts `id` off from every other node, in both directions. */
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

  /** @internal Called by LocalTransport.send. */
  route(m: Message, sender: LocalTransport): void {
    this.stats.sent++;
    const key = linkKey(m.from, m.to);
    const queued = this.inFlight.get(key) ?? 0;
    if (this.cut.has(key) || queued >= this.maxInFlight) {
      this.stats.dropped++;
      if (queued >= this.maxInFlight) sender.unreachable(m.to);
      return;
    }
    if (this.dropRate > 0 && this.random() < this.dropRate) {
      this.stats.dropped++;
      return;
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
  }

  /** @internal */
  detach(t: LocalTransport): void {
    if (this.endpoints.get(t.id) === t) this.endpoints.delete(t.id);
  }
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}\u0000${to}`;
}

export class LocalTransport implements PeerTransport {
  private handler: ((m: Message) => void) | null = null;
  private unreachableHandler: ((peer: NodeId) => void) | null = null;
  private closed = false;

  constructor(
    private readonly network: LocalNetwork,
    readonly id: NodeId,
  ) {}

  /** Never blocks or throws; drops when closed, cut or the link's queue is full. */
  send(m: Message): void {
    if (this.closed) return;
    this.network.route(m, this);
  }

  onMessage(handler: (m: Message) => void): void {
    this.handler = handler;
  }

  onUnreachable(handler: (peer: NodeId) => void): void {
    this.unreachableHandler = handler;
  }

  /** Stops sending and receiving; messages in flight to or from it are lost. */
  close(): void {
    this.closed = true;
    this.handler = null;
    this.network.detach(this);
  }

  /** @internal */
  deliver(m: Message): void {
    if (!this.closed) this.handler?.(m);
  }

  /** @internal */
  unreachable(peer: NodeId): void {
    this.unreachableHandler?.(peer);
  }
}
