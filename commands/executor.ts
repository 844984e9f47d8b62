/**
 * The executor: how commands reach the state machine. Commands call only this interface, so
 * the Raft-backed executor the server runs (server/raft-executor.ts: propose, wait for commit
 * + apply, resolve by index/term; reads after a ReadIndex barrier) and the in-memory
 * LocalExecutor the command specs use are interchangeable without touching any command.
 *
 * Must never: be bypassed by a command (no command holds the state machine), or turn a
 * synchronous answer into a Promise (the synchronous path matters for throughput).
 */
import { StateMachine, type Operation, type Result } from './state-machine.js';
import { WaiterRegistry } from './waiters.js';

export interface Executor {
  /**
   * Replicates and applies `op`; resolves with its result once applied. Results come back in
   * the order the operations were applied. Rejects/throws only with operating errors
   * (not leader, outcome unknown, timeout), never with client errors (those are Results).
   */
  write(op: Operation): Result | Promise<Result>;
  /**
   * Runs `query(sm, arg, nowMs)` against a state machine that reflects every write
   * acknowledged before the call (linearizable). `query` must not change state; `nowMs` is
   * the time to judge expiry by. `arg` is passed through so callers need no closure.
   */
  read<A, T>(query: (sm: StateMachine, arg: A, nowMs: number) => T, arg: A): T | Promise<T>;
  /**
   * Runs `query` at once against this node's state machine, with no barrier: a possibly stale
   * local view, for diagnostics only (INFO's keyspace figures), so that they answer on a node
   * that has no leader, as Redis's INFO does on a replica. Never use it to serve data.
   */
  readLocal<A, T>(query: (sm: StateMachine, arg: A, nowMs: number) => T, arg: A): T;
  /**
   * This node's blocked requests (commands/waiters.ts): a blocking command registers a waiter
   * here before write(), and awaits it when the write's result is `blocked`.
   */
  readonly waiters: WaiterRegistry;
}

/** In memory, for specs: applies at once, stamping entries with the local clock. */
export class LocalExecutor implements Executor {
  readonly stateMachine: StateMachine;
  readonly waiters = new WaiterRegistry('local');
  private readonly clock: () => number;

  constructor(options: { stateMachine?: StateMachine; clock?: () => number } = {}) {
    this.stateMachine = options.stateMachine ?? new StateMachine();
    this.clock = options.clock ?? Date.now;
    this.stateMachine.onWakeUp((id, result) => this.waiters.wake(id, result));
  }

  /** What the leader's ticker does on a cluster: applies a sys.tick if anything is due now. */
  tick(): void {
    if (this.stateMachine.nextDeadlineMs() <= this.clock()) this.write({ type: 'sys.tick' });
  }

  write(op: Operation): Result {
    const sm = this.stateMachine;
    return sm.apply({ index: sm.lastAppliedIndex + 1, timeMs: this.clock(), op });
  }

  read<A, T>(query: (sm: StateMachine, arg: A, nowMs: number) => T, arg: A): T {
    const sm = this.stateMachine;
    return query(sm, arg, sm.readTime(this.clock()));
  }

  readLocal<A, T>(query: (sm: StateMachine, arg: A, nowMs: number) => T, arg: A): T {
    return this.read(query, arg);
  }
}
