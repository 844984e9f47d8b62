/**
 * Histories and the register workload of the fault suite.
 *
 * A history is a list of operations, each an invocation and (maybe) a completion recorded by
 * the runner with `performance.now()` (one clock for every client: they all run in this
 * process). The outcome of an operation is:
 *   ok       the server answered and the answer is recorded;
 *   fail     the operation certainly did not take effect (never sent, or a client error such as
 *            `ERR value is not an integer` that the server gives before changing anything);
 *   unknown  anything else: a timeout, a lost connection, -TRYAGAIN / -CLUSTERDOWN after the
 *            write was sent. A write may still have been applied, so checkers must let it take
 *            effect at any time after its invocation, or never. Never recorded as fail.
 *
 * RegisterWorkload runs `processes` client loops through ioredis, spread over every node (each
 * process talks to one node), each doing one operation at a time, chosen by a seeded PRNG:
 * SET unique values / GET on a few register keys, INCR / GET on a few counter keys. Keys rotate
 * every `opsPerGeneration` operations so each key's history stays small enough for the
 * linearizability search. A process whose operation ended unknown is retired and a fresh one
 * (new process id) takes its place, as in Jepsen: its operation may still be pending.
 *
 * Owns: its ioredis clients (closed by stop()). Must never: retry a write on its own (ioredis
 * resends are disabled), grow the history past `maxOps`, or classify an unsent-or-refused
 * failure as unknown or an unknown outcome as fail.
 */
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import type { Prng } from './prng.js';

export type Outcome = 'ok' | 'fail' | 'unknown';
export type OpKind = 'set' | 'get' | 'incr';

/** What every family's operations share: the runner counts and plots these fields. */
export interface BaseOp {
  id: number;
  process: number;
  node: string;
  kind: string;
  result: Outcome;
  error?: string;
  /** ms since the run began. */
  invokeMs: number;
  /** ms since the run began; absent while pending and for unknown outcomes that never ended. */
  completeMs?: number;
}

/** A register-family operation (SET / GET / INCR on a string key). */
export interface HistoryOp extends BaseOp {
  id: number;
  /** The logical client; a process that saw an unknown outcome never issues again. */
  process: number;
  /** The node the client talked to. */
  node: string;
  kind: OpKind;
  key: string;
  /** The SET argument. */
  value?: string | null;
  result: Outcome;
  /** GET: the value read (null = missing); INCR: the new value as decimal text. */
  output?: string | null;
  error?: string;
  /** ms since the run began. */
  invokeMs: number;
  /** ms since the run began; absent while pending and for unknown outcomes that never ended. */
  completeMs?: number;
}

/** Errors that mean the command never reached the server or was refused before any effect. */
const DEFINITE_FAILURE = [
  /Stream isn't writeable/i,
  /^ERR value is not an integer/,
  /^WRONGTYPE/,
  /^ERR wrong number of arguments/,
];

/**
 * Outcome of an operation that threw with `message`. With the offline queue off, ioredis
 * rejects a command it never wrote with "Stream isn't writeable"; "Connection is closed." is
 * NOT definite (ioredis also gives it to commands already written when the socket closes).
 * A failed read changed nothing either way; it is recorded unknown like any other (checkers
 * drop unknown reads).
 */
export function classifyError(message: string): Outcome {
  return DEFINITE_FAILURE.some((re) => re.test(message)) ? 'fail' : 'unknown';
}

/**
 * A bounded list of operations on the run's clock (`now`, shared by every family and by the
 * nemesis timeline so that faults and operations line up).
 */
export class History<Op extends BaseOp = HistoryOp> {
  readonly ops: Op[] = [];
  private nextId = 0;

  constructor(
    readonly maxOps: number,
    readonly now: () => number = runClock(),
  ) {}

  full(): boolean {
    return this.ops.length >= this.maxOps;
  }

  invoke(op: Omit<Op, 'id' | 'result' | 'invokeMs'>): Op {
    const record = { ...op, id: this.nextId++, result: 'unknown', invokeMs: this.now() } as Op;
    this.ops.push(record);
    return record;
  }

  /** Records the outcome; `output` (the reply) is stored as the op's `output` field. */
  complete(op: Op, result: Outcome, output?: unknown, error?: string): void {
    op.result = result;
    if (result !== 'unknown') op.completeMs = this.now();
    if (output !== undefined) (op as unknown as { output: unknown }).output = output;
    if (error !== undefined) op.error = error.slice(0, 200);
  }

  counts(): Record<Outcome, number> {
    const counts = { ok: 0, fail: 0, unknown: 0 };
    for (const op of this.ops) counts[op.result]++;
    return counts;
  }
}

/** A clock in ms from now (performance.now based, monotonic). */
export function runClock(): () => number {
  const origin = performance.now();
  return () => performance.now() - origin;
}

export interface Endpoint {
  node: string;
  host: string;
  port: number;
}

/**
 * A client for the workload: a bounded command timeout, no offline queue and no resends, so
 * every command is sent at most once and ends (with an answer or an error) within the timeout.
 */
export function workloadClient(endpoint: Endpoint, commandTimeoutMs: number): Redis {
  const redis = new Redis({
    host: endpoint.host,
    port: endpoint.port,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 1_000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    enableReadyCheck: false,
    retryStrategy: (times: number) => Math.min(50 * times, 300),
    lazyConnect: false,
  });
  redis.on('error', () => {
    // Connection errors are expected under faults; each command records its own.
  });
  return redis;
}

/**
 * A workload client connected to `endpoint` within `timeoutMs`, tracked in `clients` while it
 * lives (the caller removes it when it drops it); undefined when it could not connect in time
 * (the client is then closed and untracked).
 */
export async function connectWorkloadClient(
  endpoint: Endpoint,
  timeoutMs: number,
  clients: Set<Redis>,
): Promise<Redis | undefined> {
  const redis = workloadClient(endpoint, timeoutMs);
  clients.add(redis);
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  if (ready) return redis;
  clients.delete(redis);
  redis.disconnect();
  return undefined;
}

export interface RegisterWorkloadOptions {
  endpoints: () => readonly Endpoint[];
  processes: number;
  registerKeys: number;
  counterKeys: number;
  /** Operations (all keys together) before the keys rotate. */
  opsPerGeneration: number;
  maxOps: number;
  commandTimeoutMs: number;
  prng: Prng;
  /** Key prefix (distinct per run). */
  prefix: string;
  /** The run's clock. */
  now?: () => number;
}

export class RegisterWorkload {
  readonly history: History;
  private stopped = false;
  private done: Promise<void> = Promise.resolve();
  private nextProcess = 0;
  private issued = 0;
  private readonly clients = new Set<Redis>();
  readonly touchedKeys = new Set<string>();

  constructor(readonly options: RegisterWorkloadOptions) {
    this.history = new History(options.maxOps, options.now);
  }

  start(): void {
    const loops = Array.from({ length: this.options.processes }, (_, slot) => this.loop(slot));
    this.done = Promise.all(loops).then(() => undefined);
  }

  private keyFor(counter: boolean, index: number): string {
    const generation = Math.floor(this.issued / this.options.opsPerGeneration);
    return `${this.options.prefix}:${counter ? 'ctr' : 'reg'}:${generation}:${index}`;
  }

  /** Connects a client to the next endpoint; undefined when it could not connect in time. */
  private async connect(endpoint: Endpoint): Promise<Redis | undefined> {
    return connectWorkloadClient(endpoint, this.options.commandTimeoutMs, this.clients);
  }

  private async loop(slot: number): Promise<void> {
    const prng = this.options.prng;
    let process = this.nextProcess++;
    let redis: Redis | undefined;
    let endpoint: Endpoint | undefined;
    let rotation = slot;
    let seq = 0;
    const drop = (): void => {
      if (redis !== undefined) {
        this.clients.delete(redis);
        redis.disconnect();
      }
      redis = undefined;
    };
    try {
      while (!this.stopped && !this.history.full()) {
        if (redis === undefined) {
          const endpoints = this.options.endpoints();
          endpoint = endpoints[rotation++ % endpoints.length];
          if (endpoint === undefined) return;
          redis = await this.connect(endpoint);
          if (redis === undefined) {
            // Down or unreachable: try the next node after a short pause (not a busy loop).
            await new Promise((resolve) => setTimeout(resolve, 50));
            continue;
          }
        }
        const counter = prng.below(this.options.registerKeys + this.options.counterKeys) >= this.options.registerKeys;
        const key = counter
          ? this.keyFor(true, prng.below(this.options.counterKeys))
          : this.keyFor(false, prng.below(this.options.registerKeys));
        this.touchedKeys.add(key);
        this.issued++;
        const read = prng.below(2) === 0;
        const kind: OpKind = read ? 'get' : counter ? 'incr' : 'set';
        const value = kind === 'set' ? `p${process}-${seq++}` : undefined;
        const op = this.history.invoke({
          process,
          node: endpoint!.node,
          kind,
          key,
          ...(value !== undefined ? { value } : {}),
        });
        try {
          if (kind === 'set') {
            const reply = await redis.set(key, value!);
            if (reply === 'OK') this.history.complete(op, 'ok');
            else this.history.complete(op, 'unknown', undefined, `unexpected reply ${String(reply)}`);
          } else if (kind === 'get') {
            this.history.complete(op, 'ok', await redis.get(key));
          } else {
            this.history.complete(op, 'ok', String(await redis.incr(key)));
          }
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          const outcome = classifyError(message);
          this.history.complete(op, outcome, undefined, message);
          // Retire a process whose op may still land (Jepsen's rule), and move to another node.
          if (outcome === 'unknown') process = this.nextProcess++;
          drop();
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    } finally {
      drop();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
    for (const redis of this.clients) redis.disconnect();
    this.clients.clear();
  }
}

/**
 * Reads every key on every endpoint after the run, from the node's own state machine
 * (READONLY, then MGET: a follower serves it after its read barrier). A node that cannot be
 * read gives `undefined` values.
 */
export async function finalReads(
  endpoints: readonly Endpoint[],
  keys: readonly string[],
  timeoutMs = 5_000,
): Promise<{ node: string; key: string; value: string | null | undefined }[]> {
  const out: { node: string; key: string; value: string | null | undefined }[] = [];
  await Promise.all(
    endpoints.map(async (endpoint) => {
      const redis = new Redis({
        host: endpoint.host,
        port: endpoint.port,
        commandTimeout: timeoutMs,
        connectTimeout: 2_000,
        maxRetriesPerRequest: 1,
        lazyConnect: false,
      });
      redis.on('error', () => {
        // Reported below as an unreadable node.
      });
      try {
        await redis.call('READONLY');
        const mine: typeof out = [];
        for (let i = 0; i < keys.length; i += 200) {
          const chunk = keys.slice(i, i + 200);
          const values = await redis.mget(...chunk);
          chunk.forEach((key, j) => mine.push({ node: endpoint.node, key, value: values[j] ?? null }));
        }
        out.push(...mine);
      } catch {
        for (const key of keys) out.push({ node: endpoint.node, key, value: undefined });
      } finally {
        redis.disconnect();
      }
    }),
  );
  return out;
}
