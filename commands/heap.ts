/**
 * A binary min-heap under a caller's order. The queue store keeps its timers (leases, delays,
 * waits) and returned message ids in these, the lock store its lease and wait deadlines, the
 * cache store its expiries.
 *
 * Heaps are derived state: a node restored from a snapshot builds a different heap shape than
 * the node that captured it. So either the order must be TOTAL (no two distinct live items
 * compare equal: then items come out in the same order whatever the shape; the queue store),
 * or the caller must not depend on the order of equal items (it takes all of them and sorts,
 * or treats them alike; the lock and cache stores). Must never hold behaviour beyond ordering.
 */
export class MinHeap<T> {
  private items: T[] = [];

  constructor(private readonly less: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(a[i]!, a[parent]!)) break;
      [a[i], a[parent]] = [a[parent]!, a[i]!];
      i = parent;
    }
  }

  pop(): T | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  /** The items in heap order (not sorted): for a caller's size and staleness checks. */
  values(): readonly T[] {
    return this.items;
  }

  /** Keeps only the items `keep` accepts (O(n) heapify): how stale items are dropped. */
  retain(keep: (item: T) => boolean): void {
    this.reset(this.items.filter(keep));
  }

  /** Replaces the contents (O(n) heapify). */
  reset(items: T[]): void {
    this.items = items;
    for (let i = (items.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  private siftDown(start: number): void {
    const a = this.items;
    const n = a.length;
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.less(a[l]!, a[m]!)) m = l;
      if (r < n && this.less(a[r]!, a[m]!)) m = r;
      if (m === i) return;
      [a[i], a[m]] = [a[m]!, a[i]!];
      i = m;
    }
  }
}
