/**
 * A bounded trace of the last simulation events, formatted only when a run fails: the tail
 * printed with the failing seed and invariant. Keeps at most `capacity` events (a ring).
 * Messages are stored by reference and described lazily, so tracing costs no string work per
 * step. This module must never grow without bound or format on the hot path.
 */
import type { Message } from '../messages.js';

type Event = string | Message;

export class Trace {
  private readonly times: number[];
  private readonly steps: number[];
  private readonly events: Event[];
  private next = 0;
  private size = 0;
  /** The runner's step counter, stamped on each event. */
  step = 0;

  constructor(readonly capacity: number) {
    this.times = new Array<number>(capacity).fill(0);
    this.steps = new Array<number>(capacity).fill(0);
    this.events = new Array<Event>(capacity).fill('');
  }

  add(now: number, text: string): void {
    this.push(now, text);
  }

  addMessage(now: number, m: Message): void {
    this.push(now, m);
  }

  private push(now: number, e: Event): void {
    this.times[this.next] = now;
    this.steps[this.next] = this.step;
    this.events[this.next] = e;
    this.next = (this.next + 1) % this.capacity;
    if (this.size < this.capacity) this.size++;
  }

  /** The last `n` events, oldest first, as lines. */
  tail(n: number, describe: (m: Message) => string): string[] {
    const count = Math.min(n, this.size);
    const lines: string[] = [];
    for (let k = count; k > 0; k--) {
      const i = (this.next - k + this.capacity) % this.capacity;
      const e = this.events[i] as Event;
      const text = typeof e === 'string' ? e : `deliver ${describe(e)}`;
      lines.push(`step ${this.steps[i]} t=${this.times[i]}: ${text}`);
    }
    return lines;
  }
}
