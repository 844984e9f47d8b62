/**
 * The register family: SET / GET on register keys and INCR / GET on counter keys (the
 * RegisterWorkload of ../history.ts), checked by the linearizability checker (per key), the
 * durability checker (every acknowledged SET survives on every node) and the counter checker
 * (no lost or duplicated INCR).
 *
 * Owns: nothing beyond its run. Must never: call a history valid that a checker rejected.
 */
import { checkCounters } from '../checkers/counter.js';
import { checkDurability } from '../checkers/durability.js';
import { checkLinearizable } from '../checkers/linearizable.js';
import type { CheckContext, CheckerVerdict, Family, FamilyContext, FamilyRun } from '../family.js';
import { finalReads, RegisterWorkload, type Endpoint } from '../history.js';

export const registersFamily: Family = {
  name: 'registers',
  create(ctx: FamilyContext): FamilyRun {
    const workload = new RegisterWorkload({
      endpoints: ctx.endpoints,
      processes: ctx.processes,
      registerKeys: 4,
      counterKeys: 2,
      // About 300 ops per key before the keys rotate, so each key's search stays small.
      opsPerGeneration: 1_800,
      maxOps: ctx.maxOps,
      commandTimeoutMs: ctx.commandTimeoutMs,
      prng: ctx.prng,
      prefix: ctx.prefix,
      now: ctx.now,
    });
    return {
      family: 'registers',
      start: () => workload.start(),
      stop: () => workload.stop(),
      ops: () => workload.history.ops,
      async check(endpoints: readonly Endpoint[], _context: CheckContext) {
        const history = workload.history.ops;
        const reads = await finalReads(endpoints, [...workload.touchedKeys].sort());
        const lin = checkLinearizable(history);
        const dur = checkDurability(history, reads);
        const ctr = checkCounters(history, reads);
        const verdicts: CheckerVerdict[] = [
          {
            family: 'registers',
            checker: 'linearizable',
            valid: lin.valid,
            summary: `${lin.keys.length} keys, ${lin.violations.length} violations, ${lin.timedOut.length} timed out`,
            details: lin.violations.slice(0, 5).map((v) => `${v.key}: ${v.detail ?? ''}`),
            data: lin,
          },
          {
            family: 'registers',
            checker: 'durability',
            valid: dur.valid,
            summary:
              `${dur.keysChecked} keys, ${dur.ackedWrites} acked writes` +
              (dur.unreadNodes.length > 0 ? `, unread: ${dur.unreadNodes.join(',')}` : ''),
            details: dur.violations.slice(0, 5).map((v) => `${v.key}@${v.node}: ${v.why}`),
            data: dur,
          },
          {
            family: 'registers',
            checker: 'counter',
            valid: ctr.valid,
            summary: `${ctr.keys.length} keys, ${ctr.keys.reduce((n, k) => n + k.acked, 0)} acked INCRs`,
            details: ctr.violations.slice(0, 5).map((v) => `${v.key}: ${v.why}`),
            data: ctr,
          },
        ];
        return { verdicts, files: { 'registers-history.json': history, 'registers-final-reads.json': reads } };
      },
    };
  },
};
