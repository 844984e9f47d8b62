/**
 * Cache checker: the coherent cache's guarantee (docs/cache.md) over a CSET/CGET history from
 * every node (faults/families/cache.ts), by the cache's own checker,
 * commands/cache/coherence-check.ts (no CGET returns a value older than a CSET of the key that
 * completed before the CGET began; no CGET returns a value no CSET of the key wrote, nor nil
 * after a completed CSET), plus two checks that guarantee implies and that checker does not make:
 *   - future read: a CGET returned the value of a CSET invoked after the CGET completed;
 *   - final agreement: after the faults, the cluster converged and one lease passed with no
 *     write in flight, every node's CGET of a key returns the same value.
 *
 * Outcomes: an `ok` CSET is a completed write; an `unknown` one may or may not have applied (it
 * never serves as a witness and is never judged older than anything; coherence-check.ts's
 * rules); a `fail` CSET certainly did not apply and is left out, so a read of its value is a
 * read of a value nobody wrote. Unknown and failed CGETs say nothing and are left out.
 *
 * Owns: the mapping to coherence-check.ts's history. Must never: copy that checker's rules.
 */
import { findStaleReads, type HistoryOp as CoherenceOp } from '../../commands/cache/coherence-check.js';
import type { BaseOp } from '../history.js';

export interface CacheOp extends BaseOp {
  kind: 'cset' | 'cget';
  key: string;
  /** cset: the value written (unique to the write). */
  value?: string;
  /** cset: INVALIDATE or UPDATE. */
  policy?: string;
  /** cget: the value read (null: nil). */
  output?: string | null;
  /** A read made at the end, after the faults. */
  final?: boolean;
}

export interface CacheVerdict {
  checker: 'cache';
  valid: boolean;
  keys: number;
  writes: { ok: number; unknown: number; fail: number };
  reads: { ok: number; unknown: number };
  finalReads: number;
  /** All of them; `staleReads` lists the first few. */
  staleReadCount: number;
  staleReads: string[];
  futureReads: string[];
  disagreements: string[];
}

const MAX_REPORTED = 50;

export function toCoherenceHistory(history: readonly CacheOp[]): CoherenceOp[] {
  const out: CoherenceOp[] = [];
  for (const op of history) {
    if (op.result === 'fail') continue;
    const end = op.completeMs ?? Number.POSITIVE_INFINITY;
    if (op.kind === 'cset') {
      out.push({
        kind: 'w',
        key: op.key,
        value: op.value ?? null,
        start: op.invokeMs,
        end,
        ok: op.result === 'ok',
      });
    } else {
      out.push({
        kind: 'r',
        key: op.key,
        value: op.output ?? null,
        start: op.invokeMs,
        end,
        ok: op.result === 'ok',
      });
    }
  }
  return out;
}

export function checkCache(history: readonly CacheOp[]): CacheVerdict {
  const writes = { ok: 0, unknown: 0, fail: 0 };
  const reads = { ok: 0, unknown: 0 };
  const writeOf = new Map<string, CacheOp>();
  const keys = new Set<string>();
  let finalReads = 0;
  for (const op of history) {
    keys.add(op.key);
    if (op.kind === 'cset') {
      writes[op.result]++;
      if (op.result !== 'fail' && op.value !== undefined) writeOf.set(op.value, op);
    } else if (op.result === 'ok') {
      reads.ok++;
      if (op.final === true) finalReads++;
    } else reads.unknown++;
  }
  const staleReads = findStaleReads(toCoherenceHistory(history));

  const futureReads: string[] = [];
  const finals = new Map<string, Set<string>>();
  for (const op of history) {
    if (op.kind !== 'cget' || op.result !== 'ok') continue;
    const value = op.output ?? null;
    if (value !== null) {
      const w = writeOf.get(value);
      if (w !== undefined && w.invokeMs > op.completeMs! && futureReads.length < MAX_REPORTED) {
        futureReads.push(
          `CGET ${op.key} (${op.invokeMs.toFixed(1)}..${op.completeMs!.toFixed(1)} ms on ${op.node}) returned ${value}, written by a CSET invoked later, at ${w.invokeMs.toFixed(1)} ms`,
        );
      }
    }
    if (op.final === true) {
      let seen = finals.get(op.key);
      if (seen === undefined) finals.set(op.key, (seen = new Set()));
      seen.add(value === null ? '(nil)' : value);
    }
  }
  const disagreements: string[] = [];
  for (const [key, seen] of finals) {
    if (seen.size > 1 && disagreements.length < MAX_REPORTED)
      disagreements.push(`${key}: nodes read ${[...seen].join(', ')} at the end`);
  }
  return {
    checker: 'cache',
    valid: staleReads.length === 0 && futureReads.length === 0 && disagreements.length === 0,
    keys: keys.size,
    writes,
    reads,
    finalReads,
    staleReadCount: staleReads.length,
    staleReads: staleReads.slice(0, MAX_REPORTED),
    futureReads,
    disagreements,
  };
}
