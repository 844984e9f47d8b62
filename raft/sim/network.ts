/**
 * The simulated network between Raft nodes: loss, delay, reordering, duplication and
 * symmetric or asymmetric partitions, all decided by a seeded Prng in sim time.
 *
 * Raft assumes an asynchronous network that may lose, delay, duplicate and reorder messages
 * (paper §5.1, thesis §3.2); nothing it does for safety may depend on delivery. This module
 * owns the in-flight messages. It must never deliver a message to a node itself (the cluster
 * does) and never keep more than `maxInFlight` messages: beyond that, sends are dropped.
 */
import type { Message, NodeId } from '../messages.js';
import type { Prng } from './prng.js';

export interface NetworkOptions {
  /** Probability that a sent message is dropped. */
  lossRate: number;
  /** Probability that a sent (and not lost) message is delivered twice. */
  duplicateRate: number;
  /**
   * Probability that a delivery takes a random due message instead of the oldest one. 0 with
   * a constant delay keeps every link FIFO (like TCP); 1 shuffles everything (like UDP).
   */
  reorderRate: number;
  /** Delivery delay in ticks, uniform in [minDelayTicks, maxDelayTicks]. */
  minDelayTicks: number;
  maxDelayTicks: number;
  /** Bound on messages in flight; sends beyond it are dropped (a full socket buffer). */
  maxInFlight: number;
}

export interface NetworkStats {
  sent: number;
  lost: number;
  duplicated: number;
  delivered: number;
  /** Dropped at delivery time because the link was cut, or because an endpoint crashed. */
  cut: number;
  overflow: number;
}

export class SimNetwork {
  options: NetworkOptions;
  readonly stats: NetworkStats = { sent: 0, lost: 0, duplicated: 0, delivered: 0, cut: 0, overflow: 0 };
  /** Messages whose delivery time has come, oldest first from `head`. */
  private due: Message[] = [];
  private head = 0;
  /** Messages still delayed, by delivery tick. */
  private delayed = new Map<number, Message[]>();
  private delayedCount = 0;
  /** Directed cut links, keyed `from>to`. */
  private cut = new Set<string>();
  private now = 0;

  constructor(
    private readonly prng: Prng,
    options: NetworkOptions,
  ) {
    this.options = { ...options };
  }

  get inFlight(): number {
    return this.due.length - this.head + this.delayedCount;
  }

  get dueCount(): number {
    return this.due.length - this.head;
  }

  /** Hands a message to the network. Loss and duplication are decided here, cuts at delivery. */
  send(m: Message): void {
    this.stats.sent++;
    if (this.options.lossRate > 0 && this.prng.chance(this.options.lossRate)) {
      this.stats.lost++;
      return;
    }
    this.enqueue(m);
    if (this.options.duplicateRate > 0 && this.prng.chance(this.options.duplicateRate)) {
      this.stats.duplicated++;
      this.enqueue(m);
    }
  }

  private enqueue(m: Message): void {
    if (this.inFlight >= this.options.maxInFlight) {
      this.stats.overflow++;
      return;
    }
    const { minDelayTicks, maxDelayTicks } = this.options;
    const delay =
      maxDelayTicks > minDelayTicks ? this.prng.range(minDelayTicks, maxDelayTicks) : minDelayTicks;
    if (delay <= 0) {
      this.due.push(m);
      return;
    }
    const at = this.now + delay;
    const bucket = this.delayed.get(at);
    if (bucket === undefined) this.delayed.set(at, [m]);
    else bucket.push(m);
    this.delayedCount++;
  }

  /** Moves messages whose delay has expired at time `now` into the due pool. */
  advanceTo(now: number): void {
    for (let t = this.now + 1; t <= now; t++) {
      const bucket = this.delayed.get(t);
      if (bucket === undefined) continue;
      this.delayed.delete(t);
      this.delayedCount -= bucket.length;
      for (const m of bucket) this.due.push(m);
    }
    this.now = Math.max(this.now, now);
  }

  /**
   * Removes and returns one due message, or undefined if none is due: the oldest, or with
   * probability reorderRate a random one. Messages over a cut link are dropped here.
   */
  takeDue(): Message | undefined {
    while (this.head < this.due.length) {
      const n = this.due.length - this.head;
      if (n > 1 && this.options.reorderRate > 0 && this.prng.chance(this.options.reorderRate)) {
        const i = this.head + this.prng.int(n);
        const picked = this.due[i] as Message;
        this.due[i] = this.due[this.head] as Message;
        this.due[this.head] = picked;
      }
      const m = this.due[this.head] as Message;
      this.head++;
      if (this.head >= 1024 && this.head * 2 >= this.due.length) {
        this.due = this.due.slice(this.head);
        this.head = 0;
      } else if (this.head === this.due.length) {
        this.due.length = 0;
        this.head = 0;
      }
      if (this.cut.size > 0 && this.cut.has(linkKey(m.from, m.to))) {
        this.stats.cut++;
        continue;
      }
      this.stats.delivered++;
      return m;
    }
    return undefined;
  }

  /** Cuts the directed link from -> to (an asymmetric partition when only one side is cut). */
  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(linkKey(from, to));
  }

  /** Symmetric partition: every link between different groups is cut both ways. */
  partition(groups: readonly (readonly NodeId[])[]): void {
    for (let g = 0; g < groups.length; g++) {
      for (let h = 0; h < groups.length; h++) {
        if (g === h) continue;
        for (const a of groups[g] ?? []) for (const b of groups[h] ?? []) this.cutLink(a, b);
      }
    }
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cut.has(linkKey(from, to));
  }

  get cutLinks(): number {
    return this.cut.size;
  }

  /** Restores every link. */
  healLinks(): void {
    this.cut.clear();
  }

  /** Drops every in-flight message from or to `node` (it crashed: its sockets are gone). */
  dropNode(node: NodeId): void {
    const keep = (m: Message): boolean => m.from !== node && m.to !== node;
    const pending = this.due.slice(this.head);
    this.due = pending.filter(keep);
    this.head = 0;
    this.stats.cut += pending.length - this.due.length;
    for (const [at, bucket] of this.delayed) {
      const kept = bucket.filter(keep);
      this.stats.cut += bucket.length - kept.length;
      this.delayedCount -= bucket.length - kept.length;
      if (kept.length === 0) this.delayed.delete(at);
      else this.delayed.set(at, kept);
    }
  }
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}>${to}`;
}
