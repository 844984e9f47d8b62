/**
 * The coherent cache's guarantee as a checker over a recorded history (used by the agent spec
 * and the cluster tests in compat-tests/cache/): no CGET returns a value older than a CSET that
 * completed before the CGET began.
 *
 * Every write stores a value unique to it, so a read names the write it saw. A read is stale
 * when some write W completed before the read began (W.end < read.start) and the write it saw
 * is ordered before W in real time (it completed before W started), or the read saw nothing
 * (nil) although W had completed. W is taken as the completed write that started last: the
 * strongest witness. Writes whose outcome is unknown (an error) never serve as witnesses, and
 * a read of one is never judged older than anything (its end is unknown).
 *
 * Owns nothing but the check; never reads a clock.
 */

export interface HistoryOp {
  readonly kind: 'w' | 'r';
  readonly key: string;
  /** The value written, or read (null: nil). */
  readonly value: string | null;
  /** Invoke and completion times, in one clock for the whole history. */
  readonly start: number;
  readonly end: number;
  /** False when the operation errored or timed out (outcome unknown). */
  readonly ok: boolean;
}

export function findStaleReads(history: readonly HistoryOp[]): string[] {
  const out: string[] = [];
  const writesByKey = new Map<string, HistoryOp[]>();
  const byValue = new Map<string, HistoryOp>();
  for (const op of history) {
    if (op.kind !== 'w' || op.value === null) continue;
    byValue.set(op.value, op);
    if (!op.ok) continue;
    const list = writesByKey.get(op.key) ?? [];
    list.push(op);
    writesByKey.set(op.key, list);
  }
  for (const r of history) {
    if (r.kind !== 'r' || !r.ok) continue;
    let witness: HistoryOp | undefined;
    for (const w of writesByKey.get(r.key) ?? [])
      if (w.end < r.start && (witness === undefined || w.start > witness.start)) witness = w;
    if (r.value === null) {
      if (witness !== undefined)
        out.push(
          `CGET ${r.key} at ${r.start} returned nil after CSET ${witness.value} completed at ${witness.end}`,
        );
      continue;
    }
    const source = byValue.get(r.value);
    if (source === undefined || source.key !== r.key) {
      out.push(`CGET ${r.key} returned ${r.value}, which no CSET of the key wrote`);
      continue;
    }
    if (witness !== undefined && source !== witness && source.ok && source.end < witness.start)
      out.push(
        `CGET ${r.key} at ${r.start} returned ${r.value} (written by ${source.start}-${source.end}) after CSET ${witness.value} (${witness.start}-${witness.end}) completed`,
      );
  }
  return out;
}
