/**
 * How a workload family (registers, locks, queues, the cache: faults/families/) plugs into the
 * fault runner: a Family makes a FamilyRun per run, which drives real clients against every
 * member while the nemeses act, records its own History on the run's clock, and at the end
 * reads what it needs from every node and returns one verdict per checker.
 *
 * Owns: the contract only. Must never: let a family decide validity outside its verdicts, or
 * use a clock other than `FamilyContext.now` (faults and operations must line up).
 */
import type { BaseOp, Endpoint } from './history.js';
import type { Prng } from './prng.js';

export interface CheckerVerdict {
  family: string;
  checker: string;
  valid: boolean;
  /** One line for the summary. */
  summary: string;
  /** A few lines describing violations (empty when valid). */
  details: string[];
  /** The checker's full verdict, written to verdict.json. */
  data: unknown;
}

export interface FamilyContext {
  /** The current members' client endpoints (changes with membership nemeses). */
  endpoints: () => readonly Endpoint[];
  prng: Prng;
  /** Prefix for every key the family touches (distinct per run and family). */
  prefix: string;
  /** Client processes to run. */
  processes: number;
  /** Bound on the history. */
  maxOps: number;
  commandTimeoutMs: number;
  /** The run's clock (ms). */
  now: () => number;
}

/** A fault as the runner recorded it, on the run's clock (ms). */
export interface FaultWindow {
  name: string;
  /** Before the nemesis started acting. */
  startMs: number;
  /** After its heal returned. */
  healMs: number;
}

/** What the runner knows at check time besides the family's own history. */
export interface CheckContext {
  /** Every fault injected (overlays included), in start order. */
  faults: readonly FaultWindow[];
}

export interface FamilyRun {
  readonly family: string;
  start(): void;
  /** Stops the clients; every operation has then completed or is recorded unknown. */
  stop(): Promise<void>;
  ops(): readonly BaseOp[];
  /**
   * After the cluster has healed and converged: final reads (or a drain) on `endpoints`, then
   * the checkers. Checkers that depend on real-time lease bounds use `context.faults` to tell
   * which stretches of the run had a node's clock skewed or running at another rate.
   */
  check(
    endpoints: readonly Endpoint[],
    context: CheckContext,
  ): Promise<{ verdicts: CheckerVerdict[]; files: Record<string, unknown> }>;
}

export interface Family {
  name: string;
  create(ctx: FamilyContext): FamilyRun;
}
