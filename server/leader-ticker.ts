/**
 * The leader's ticker: makes time pass inside the replicated state machine when no client
 * writes. While this node leads, it checks every `intervalMs` whether the state machine has
 * anything due (StateMachine.nextDeadlineMs: a key's TTL, a lock lease, a visibility timeout, a
 * blocked request's wait) and, if so, proposes one sys.tick entry. Its leader-stamped time makes
 * every node apply the same expiries at the same log index.
 *
 * Owns: the timer and the one tick proposal in flight. Must never: decide an expiry itself
 * (the state machine does, at the entry's time), or have more than one tick in flight.
 */
import { encodeOperation } from '../commands/codec.js';

export interface TickerNode {
  readonly isLeader: boolean;
  propose(payload: Uint8Array): Promise<unknown>;
}

export interface LeaderTickerOptions {
  node: TickerNode;
  /** When the replicated state next changes on its own, in leader time (ms). */
  nextDeadlineMs: () => number;
  /** How often the leader looks (ms): the granularity of leases and timeouts. */
  intervalMs: number;
  clock?: () => number;
  /** A tick proposal that failed (leadership lost, node stopping): logged, not fatal. */
  onError?: (error: unknown) => void;
}

const TICK_PAYLOAD = encodeOperation({ type: 'sys.tick' });

export class LeaderTicker {
  private timer: NodeJS.Timeout | null = null;
  private inFlight = false;
  private ticks = 0;

  constructor(private readonly options: LeaderTickerOptions) {}

  /** Ticks proposed so far. */
  get proposed(): number {
    return this.ticks;
  }

  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.check(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Proposes a tick if this node leads, none is in flight and something is due. */
  check(): void {
    const { node, nextDeadlineMs, clock = Date.now } = this.options;
    if (this.inFlight || !node.isLeader || nextDeadlineMs() > clock()) return;
    this.inFlight = true;
    this.ticks++;
    node.propose(TICK_PAYLOAD).then(
      () => {
        this.inFlight = false;
      },
      (error: unknown) => {
        this.inFlight = false;
        this.options.onError?.(error);
      },
    );
  }
}
