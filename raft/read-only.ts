/**
 * Pending linearizable reads at the leader (thesis §6.4 ReadIndex; etcd-io/raft
 * `read_only.go`). For each request the leader records its commit index, then confirms it is
 * still the leader by a heartbeat round carrying the request's context; once a majority of
 * voters echoed that context, that request and every earlier one are safe to serve at their
 * recorded index.
 *
 * Owns: the queue of pending requests and their acknowledgements. Must never: grow beyond
 * `maxPending` (extra requests are refused; the client times out and retries), count learners,
 * or import I/O.
 */
import type { NodeId } from './messages.js';

export interface ReadRequest {
  /** The node that asked (the leader itself, or a follower that forwarded it). */
  readonly from: NodeId;
  readonly context: Uint8Array;
}

interface Pending {
  readonly index: number;
  readonly request: ReadRequest;
  readonly acks: Set<NodeId>;
}

/** A compact string key for a context (hex); contexts are small request ids. */
export function contextKey(context: Uint8Array): string {
  let s = '';
  for (let i = 0; i < context.length; i++) s += (context[i]! + 0x100).toString(16).slice(1);
  return s;
}

export class ReadOnly {
  private readonly pending = new Map<string, Pending>();
  /** Keys in arrival order (Map keeps insertion order; this is the FIFO). */

  constructor(private readonly maxPending: number) {}

  get size(): number {
    return this.pending.size;
  }

  /**
   * Records a request with the commit index at arrival. Returns false if refused: full, or a
   * request with the same context is already pending (contexts must be unique).
   */
  add(index: number, request: ReadRequest): boolean {
    const key = contextKey(request.context);
    if (this.pending.has(key) || this.pending.size >= this.maxPending) return false;
    this.pending.set(key, { index, request, acks: new Set() });
    return true;
  }

  /** A heartbeat response echoed `context` from `from`; returns the number of acks (0 if unknown). */
  recvAck(from: NodeId, context: Uint8Array): Set<NodeId> | null {
    const p = this.pending.get(contextKey(context));
    if (p === undefined) return null;
    p.acks.add(from);
    return p.acks;
  }

  /**
   * The request with `context` is confirmed: removes and returns it with every request queued
   * before it (each confirmed by the same, later, heartbeat round), oldest first.
   */
  advance(context: Uint8Array): { index: number; request: ReadRequest }[] {
    const key = contextKey(context);
    if (!this.pending.has(key)) return [];
    const out: { index: number; request: ReadRequest }[] = [];
    for (const [k, p] of this.pending) {
      this.pending.delete(k);
      out.push({ index: p.index, request: p.request });
      if (k === key) break;
    }
    return out;
  }

  /** The context of the newest pending request (heartbeats carry it), or null. */
  lastPendingContext(): Uint8Array | null {
    let last: Pending | null = null;
    for (const p of this.pending.values()) last = p;
    return last === null ? null : last.request.context;
  }

  reset(): void {
    this.pending.clear();
  }
}
