/**
 * Client processes for the lock, queue and cache workloads: each slot is one logical client
 * loop that talks to one member at a time (rotating over the current members), runs one command
 * at a time, and is retired (a new process id, a new connection to the next member) when an
 * operation's outcome is unknown, as in Jepsen: the old process's operation may still land, so
 * it must never issue again.
 *
 * `call` runs one command and turns its result into a recorded outcome with the same rules as
 * the register workload (history.ts): an answer is ok; "Stream isn't writeable" and the refusals
 * listed in history.ts are fail; a family may name more definite answers (`-FENCED` refuses a
 * write at apply, `-LOCKLOST`/`-LEASELOST` are answers about state); everything else (timeouts,
 * lost connections, -TRYAGAIN, -CLUSTERDOWN) is unknown and retires the process.
 *
 * Owns: its ioredis clients (closeAll). Must never: resend a command on its own, or record an
 * unknown outcome as fail.
 */
import type { Redis } from 'ioredis';
import {
  classifyError,
  connectWorkloadClient,
  type BaseOp,
  type Endpoint,
  type History,
  type Outcome,
} from '../history.js';

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class ClientPool {
  private nextProcess = 0;
  private readonly clients = new Set<Redis>();
  stopped = false;

  constructor(
    readonly endpoints: () => readonly Endpoint[],
    readonly commandTimeoutMs: number,
  ) {}

  newProcess(): number {
    return this.nextProcess++;
  }

  async connect(endpoint: Endpoint): Promise<Redis | undefined> {
    return connectWorkloadClient(endpoint, this.commandTimeoutMs, this.clients);
  }

  release(redis: Redis): void {
    this.clients.delete(redis);
    redis.disconnect();
  }

  closeAll(): void {
    this.stopped = true;
    for (const redis of this.clients) redis.disconnect();
    this.clients.clear();
  }
}

/** How a family reads an error reply: `ok` (an answer about state), `fail` (refused before any effect), or undefined (the default rules). */
export type ErrorRule = (message: string) => Outcome | undefined;

export class ClientSlot {
  process: number;
  private redis: Redis | undefined;
  private current: Endpoint | undefined;
  private rotation: number;

  constructor(
    private readonly pool: ClientPool,
    slot: number,
  ) {
    this.process = pool.newProcess();
    this.rotation = slot;
  }

  get node(): string {
    return this.current?.node ?? '?';
  }

  /** Connected (to the next member in rotation); false, after a short pause, when it could not be. */
  async ready(): Promise<boolean> {
    if (this.redis !== undefined) return true;
    const endpoints = this.pool.endpoints();
    const endpoint = endpoints[this.rotation++ % Math.max(1, endpoints.length)];
    if (endpoint === undefined) {
      await pause(50);
      return false;
    }
    this.current = endpoint;
    this.redis = await this.pool.connect(endpoint);
    if (this.redis === undefined) {
      // Down or unreachable: the next member after a short pause (not a busy loop).
      await pause(50);
      return false;
    }
    return true;
  }

  /** Drops the connection abruptly (a consumer that crashes, a client that moves on). */
  drop(): void {
    if (this.redis !== undefined) this.pool.release(this.redis);
    this.redis = undefined;
  }

  /** The last operation's outcome is unknown: this process never issues again. */
  retire(): void {
    this.process = this.pool.newProcess();
    this.drop();
  }

  /**
   * Runs `argv` for `op` (already invoked in `history`), records the outcome, and returns the
   * reply for an ok outcome. `onReply` stores what the reply says in the op (and may itself
   * decide the outcome: e.g. an unexpected reply is unknown). On an unknown outcome the process
   * is retired; on any error the connection is dropped (the next op goes to the next member).
   */
  async call<Op extends BaseOp>(
    history: History<Op>,
    op: Op,
    argv: readonly (string | number)[],
    onReply: (reply: unknown) => Outcome,
    rule: ErrorRule = () => undefined,
  ): Promise<{ outcome: Outcome; reply?: unknown; error?: string }> {
    const redis = this.redis;
    if (redis === undefined) throw new Error('ClientSlot.call before ready()');
    let reply: unknown;
    try {
      const [command, ...args] = argv.map(String);
      reply = await redis.call(command!, ...args);
    } catch (err) {
      const message = errorMessage(err);
      const ruled = rule(message);
      if (ruled !== undefined) {
        // An answer the family understands (-LOCKLOST, -FENCED ...): the connection is fine.
        if (ruled === 'ok') (op as { output?: unknown }).output = errorCode(message);
        history.complete(op, ruled, undefined, message);
        if (ruled === 'unknown') this.retire();
        return { outcome: ruled, error: message };
      }
      const outcome = classifyError(message);
      history.complete(op, outcome, undefined, message);
      if (outcome === 'unknown') this.retire();
      else this.drop();
      await pause(20);
      return { outcome, error: message };
    }
    const outcome = onReply(reply);
    history.complete(
      op,
      outcome,
      undefined,
      outcome === 'ok' ? undefined : `unexpected reply ${JSON.stringify(reply)}`,
    );
    if (outcome === 'unknown') this.retire();
    return { outcome, reply };
  }
}

/** The code of an error reply ("LOCKLOST", "LEASELOST", "FENCED", ...). */
export function errorCode(message: string): string {
  return /^[A-Z]+/.exec(message)?.[0] ?? message;
}
