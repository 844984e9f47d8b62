/**
 * Where lease bounds hold: leases (locks, queue visibility) are measured in leader time, the
 * leader's wall clock stamped on each log entry. While a clock nemesis acts on a node, that
 * node's clock may jump (skew, and back again on heal) or run at another rate, so a lease may
 * end sooner in real time than its TTL, and checkers that compare real time with a TTL must not
 * count what happened then as a violation (fencing and delivery rules still apply: they do not
 * depend on clocks).
 *
 * Owns: the list of clock nemeses and the settle time after their heal. Must never: shrink a
 * window below the fault's own start..heal.
 */
import type { FaultWindow } from '../family.js';

export interface ClockWindow {
  name: string;
  startMs: number;
  endMs: number;
}

/** Nemeses that change a node's clock (faults/nemeses.ts). */
export const CLOCK_NEMESES: readonly string[] = ['clock-skew', 'clock-rate'];

/**
 * After heal: the skewed node re-reads its timestamp file once a second (libfaketime's cache),
 * so the jump back lands up to about a second after the heal returned.
 */
export const CLOCK_SETTLE_MS = 2_000;

export function clockWindows(faults: readonly FaultWindow[]): ClockWindow[] {
  return faults
    .filter((f) => CLOCK_NEMESES.includes(f.name))
    .map((f) => ({ name: f.name, startMs: f.startMs, endMs: f.healMs + CLOCK_SETTLE_MS }));
}

/** True when a clock window touches [lo, hi]. */
export function clockAffected(windows: readonly ClockWindow[], lo: number, hi: number): boolean {
  return windows.some((w) => w.startMs <= hi && w.endMs >= lo);
}
