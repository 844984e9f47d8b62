/**
 * The MESI line state machine of a node's near-cache, as pure functions: every transition a
 * line can make is one function of (line, event) -> line, with no I/O, clock or randomness
 * (times are arguments), so each is unit-tested by name (near-cache.spec.ts).
 *
 *   I --exclusive miss--> E        I --shared miss--> S
 *   E --silent local write--> M    S/I --local write--> M (after the leader's invalidation round)
 *   M/E --remote read--> S         S --remote write (update policy)--> S, new value
 *   any --remote write--> I        any --lease expiry / value expiry / eviction / flush--> I
 *
 * A line never goes back in time: a fill or update older (`asOf`) than what the line holds
 * is ignored, and an invalidation only drops lines older than the write it announces.
 *
 * Owns: the Line type and its transitions. Must never: decide coherence (the leader's
 * directory and the agent in server/cache/ do), hold state, or read a clock.
 */

export type LineState = 'M' | 'E' | 'S' | 'I';

export interface Line {
  readonly state: LineState;
  /** The cached value; null caches "no such key". */
  readonly value: Buffer | null;
  /** State-machine index the value is known to be current at (a newer write invalidates). */
  readonly asOf: number;
  /** Index of the write that stored the value (0: none), for CSTATE. */
  readonly version: number;
  /** Node-local monotonic ms at which the lease ends: no hit at or after it. */
  readonly leaseUntil: number;
  /** Node-local monotonic ms at which the value's own expiry (PX) makes it unservable. */
  readonly expiresAt: number;
  /** The leader's registration of this line (for eviction notices), 0 when none. */
  readonly regId: number;
}

export const INVALID_LINE: Line = Object.freeze({
  state: 'I',
  value: null,
  asOf: 0,
  version: 0,
  leaseUntil: 0,
  expiresAt: 0,
  regId: 0,
});

/** What the leader granted on a fetch or a write. */
export interface Grant {
  readonly value: Buffer | null;
  readonly asOf: number;
  readonly version: number;
  readonly leaseUntil: number;
  readonly expiresAt: number;
  readonly regId: number;
}

/** Whether `line` may answer a read at local time `nowMs` with no network round trip. */
export function isHit(line: Line, nowMs: number): boolean {
  return line.state !== 'I' && nowMs < line.leaseUntil && nowMs < line.expiresAt;
}

function granted(state: LineState, g: Grant): Line {
  return {
    state,
    value: g.value,
    asOf: g.asOf,
    version: g.version,
    leaseUntil: g.leaseUntil,
    expiresAt: g.expiresAt,
    regId: g.regId,
  };
}

/** I->E on an exclusive miss: the leader found no other holder. */
export function exclusiveMiss(line: Line, g: Grant): Line {
  if (line.state !== 'I' && line.asOf > g.asOf) return line;
  return granted('E', g);
}

/** I->S on a shared miss: other nodes hold the key (they were downgraded to S). */
export function sharedMiss(line: Line, g: Grant): Line {
  if (line.state !== 'I' && line.asOf > g.asOf) return line;
  return granted('S', g);
}

/**
 * E->M on a silent local write (no other holder: no invalidation round), and S->M or I->M
 * once the leader's round has invalidated every other holder. `shared` (the update policy
 * kept other holders) makes it S instead.
 */
export function localWrite(line: Line, g: Grant, shared = false): Line {
  if (line.state !== 'I' && line.asOf > g.asOf) return line;
  return granted(shared ? 'S' : 'M', g);
}

/** M->S and E->S on a remote read (another node fetched the key); S and I unchanged. */
export function remoteRead(line: Line): Line {
  if (line.state === 'M' || line.state === 'E') return { ...line, state: 'S' };
  return line;
}

/** any->I on a remote write: the write at `version` supersedes any line older than it. */
export function remoteWrite(line: Line, version: number): Line {
  if (line.state === 'I' || line.asOf >= version) return line;
  return INVALID_LINE;
}

/**
 * S->S on a remote write under the update policy: the line takes the new value and keeps its
 * lease (an update renews nothing: the holder did not ask). Holders in M/E become S; I stays I
 * (no lease to serve it under).
 */
export function remoteUpdate(line: Line, value: Buffer, version: number): Line {
  if (line.state === 'I' || line.asOf >= version) return line;
  return { ...line, state: 'S', value, asOf: version, version };
}

/** any->I on lease expiry (or the value's own expiry): at or after the end, nothing is served. */
export function leaseExpiry(line: Line, nowMs: number): Line {
  if (line.state === 'I' || isHit(line, nowMs)) return line;
  return INVALID_LINE;
}

/** any->I on eviction (the LRU needed the room). */
export function eviction(_line: Line): Line {
  return INVALID_LINE;
}

/** any->I on a flush (a new leader took office and knows no directory yet). */
export function flush(_line: Line): Line {
  return INVALID_LINE;
}
