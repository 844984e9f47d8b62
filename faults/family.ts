/**
 * How a workload family (registers now; locks, queues, the cache as they land) plugs into the
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

export interface FamilyRun {
  readonly family: string;
  start(): void;
  /** Stops the clients; every operation has then completed or is recorded unknown. */
  stop(): Promise<void>;
  ops(): readonly BaseOp[];
  /** After the cluster has healed and converged: final reads on `endpoints`, then the checkers. */
  check(endpoints: readonly Endpoint[]): Promise<{ verdicts: CheckerVerdict[]; files: Record<string, unknown> }>;
}

export interface Family {
  name: string;
  create(ctx: FamilyContext): FamilyRun;
}
