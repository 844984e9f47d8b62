/**
 * Durability checker: every acknowledged write survives the run, on every node.
 *
 * After the faults stop and the cluster has healed, the runner reads every key the workload
 * touched from every node (`finalReads`). For each register key (SET) the value read must be the
 * value of a write that may be the last one: an acknowledged or unknown write `w` such that no
 * acknowledged write to the key was invoked after `w` completed (that later write would have
 * replaced it). A key with an acknowledged write must not read back as missing. A value nobody
 * wrote is a violation too. Every node must read the same value (replicas converge). Counter
 * keys (INCR) are the counter checker's.
 *
 * Owns: nothing beyond one call. Must never: treat an unknown write as lost or as applied.
 */
import type { HistoryOp } from '../history.js';

export interface FinalRead {
  node: string;
  key: string;
  /** undefined: the node could not be read (down or unreachable at the end). */
  value: string | null | undefined;
}

export interface DurabilityViolation {
  key: string;
  node: string;
  found: string | null;
  why: string;
}

export interface DurabilityVerdict {
  checker: 'durability';
  valid: boolean;
  keysChecked: number;
  ackedWrites: number;
  /** Nodes that could not be read at the end: their keys are not checked (the verdict says so). */
  unreadNodes: string[];
  violations: DurabilityViolation[];
}

const MAX_REPORTED = 50;

export function checkDurability(history: readonly HistoryOp[], finalReads: readonly FinalRead[]): DurabilityVerdict {
  const writes = new Map<string, HistoryOp[]>();
  for (const op of history) {
    if (op.kind !== 'set' || op.result === 'fail') continue;
    let list = writes.get(op.key);
    if (list === undefined) writes.set(op.key, (list = []));
    list.push(op);
  }
  const violations: DurabilityViolation[] = [];
  const unread = new Set<string>();
  const note = (v: DurabilityViolation): void => {
    if (violations.length < MAX_REPORTED) violations.push(v);
  };
  const seenPerKey = new Map<string, Set<string | null>>();
  let ackedWrites = 0;
  for (const list of writes.values()) ackedWrites += list.filter((w) => w.result === 'ok').length;

  for (const read of finalReads) {
    const list = writes.get(read.key);
    if (list === undefined) continue;
    if (read.value === undefined) {
      unread.add(read.node);
      continue;
    }
    let seen = seenPerKey.get(read.key);
    if (seen === undefined) seenPerKey.set(read.key, (seen = new Set()));
    seen.add(read.value);
    const acked = list.filter((w) => w.result === 'ok');
    if (read.value === null) {
      if (acked.length > 0) {
        note({ key: read.key, node: read.node, found: null, why: `missing, but ${acked.length} write(s) were acknowledged` });
      }
      continue;
    }
    const candidates = list.filter((w) => w.value === read.value);
    if (candidates.length === 0) {
      note({ key: read.key, node: read.node, found: read.value, why: 'a value no client wrote to this key' });
      continue;
    }
    // `w` can be last unless an acknowledged write began after `w` ended. An unknown write has
    // no end: it may have landed at any time after its invocation, even after every other write.
    const canBeLast = candidates.some(
      (w) =>
        w.result === 'unknown' ||
        acked.every((later) => later === w || w.completeMs === undefined || later.invokeMs <= w.completeMs),
    );
    if (!canBeLast) {
      const newer = acked.find((later) => candidates.every((w) => w.completeMs !== undefined && later.invokeMs > w.completeMs));
      note({
        key: read.key,
        node: read.node,
        found: read.value,
        why: `stale: the acknowledged write of ${JSON.stringify(newer?.value)} (op #${String(newer?.id)}) began after this value's write ended, and is lost`,
      });
    }
  }
  for (const [key, seen] of seenPerKey) {
    if (seen.size > 1) {
      note({ key, node: '*', found: null, why: `nodes disagree at the end: ${JSON.stringify([...seen])}` });
    }
  }
  return {
    checker: 'durability',
    valid: violations.length === 0,
    keysChecked: seenPerKey.size,
    ackedWrites,
    unreadNodes: [...unread].sort(),
    violations,
  };
}
