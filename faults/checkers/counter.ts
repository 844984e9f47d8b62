/**
 * Counter checker for INCR keys: no increment is lost, none is applied twice.
 *
 * Per counter key, with A acknowledged INCRs and U of unknown outcome (the key starts missing
 * and only INCR touches it):
 *   - every acknowledged INCR returned a distinct value (two clients never saw the same count);
 *   - an acknowledged INCR that completed before another began returned a smaller value;
 *   - every returned value and every read lies in [1, A + U] (above: an increment applied
 *     twice, e.g. a resend after a reconnect; reads: below 0 or above the bound);
 *   - the final value read on each node lies in [A, A + U] (below: an acknowledged increment
 *     was lost), and all nodes agree.
 *
 * Owns: nothing beyond one call. Must never: count an unknown INCR as lost or as applied.
 */
import type { HistoryOp } from '../history.js';
import type { FinalRead } from './durability.js';

export interface CounterViolation {
  key: string;
  why: string;
}

export interface CounterVerdict {
  checker: 'counter';
  valid: boolean;
  keys: { key: string; acked: number; unknown: number; final: string | null | undefined }[];
  violations: CounterViolation[];
}

const MAX_REPORTED = 50;

function asCount(value: string | number | null | undefined): bigint | undefined {
  if (value === null) return 0n;
  if (typeof value === 'number') return BigInt(value);
  if (value === undefined || !/^-?\d+$/.test(value)) return undefined;
  return BigInt(value);
}

export function checkCounters(history: readonly HistoryOp[], finalReads: readonly FinalRead[]): CounterVerdict {
  const counterKeys = new Set(history.filter((op) => op.kind === 'incr').map((op) => op.key));
  const violations: CounterViolation[] = [];
  const note = (key: string, why: string): void => {
    if (violations.length < MAX_REPORTED) violations.push({ key, why });
  };
  const keys: CounterVerdict['keys'] = [];
  for (const key of [...counterKeys].sort()) {
    const ops = history.filter((op) => op.key === key);
    const incrs = ops.filter((op) => op.kind === 'incr');
    const acked = incrs.filter((op) => op.result === 'ok');
    const unknown = incrs.filter((op) => op.result === 'unknown').length;
    const upper = BigInt(acked.length + unknown);
    if (ops.some((op) => op.kind === 'set' && op.result !== 'fail')) note(key, 'a SET touched a counter key');

    const byValue = new Map<bigint, HistoryOp>();
    for (const op of acked) {
      const v = asCount(op.output);
      if (v === undefined) {
        note(key, `INCR #${op.id} returned ${JSON.stringify(op.output)}, not an integer`);
        continue;
      }
      const other = byValue.get(v);
      if (other !== undefined) note(key, `INCR #${other.id} and #${op.id} both returned ${v}`);
      byValue.set(v, op);
      if (v < 1n || v > upper) note(key, `INCR #${op.id} returned ${v}, outside [1, ${upper}] (a duplicate increment?)`);
    }
    // Real-time order: sort by completion, and compare each with the largest value returned by
    // any INCR that completed before this one was invoked.
    const sorted = acked
      .map((op) => ({ op, v: asCount(op.output) }))
      .filter((x): x is { op: HistoryOp; v: bigint } => x.v !== undefined);
    for (const later of sorted) {
      for (const earlier of sorted) {
        if (earlier.op.completeMs !== undefined && earlier.op.completeMs < later.op.invokeMs && earlier.v >= later.v) {
          note(key, `INCR #${later.op.id} returned ${later.v} after INCR #${earlier.op.id} had returned ${earlier.v}`);
        }
      }
    }
    for (const op of ops) {
      if (op.kind !== 'get' || op.result !== 'ok') continue;
      const v = asCount(op.output);
      if (v === undefined || v < 0n || v > upper) note(key, `GET #${op.id} read ${JSON.stringify(op.output)}, outside [0, ${upper}]`);
    }
    const finals = finalReads.filter((r) => r.key === key && r.value !== undefined);
    const distinct = new Set(finals.map((r) => r.value));
    if (distinct.size > 1) note(key, `nodes disagree at the end: ${JSON.stringify([...distinct])}`);
    for (const read of finals) {
      const v = asCount(read.value);
      if (v === undefined) note(key, `${read.node} reads ${JSON.stringify(read.value)} at the end, not an integer`);
      else if (v < BigInt(acked.length)) note(key, `${read.node} reads ${v} at the end but ${acked.length} INCRs were acknowledged (lost increment)`);
      else if (v > upper) note(key, `${read.node} reads ${v} at the end, above ${upper} = acknowledged + unknown (duplicate increment)`);
    }
    keys.push({ key, acked: acked.length, unknown, final: finals[0]?.value });
  }
  return { checker: 'counter', valid: violations.length === 0, keys, violations };
}
