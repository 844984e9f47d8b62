/**
 * Failpoints for the durable storage: named places in raft/file-storage.ts where a test (or an
 * operator rehearsing failures with CONCORD_FAILPOINTS) makes I/O fail, plus helpers that damage
 * files the way crashes and bad disks do.
 *
 * Owns: the table of armed failpoints, and the shadow of how many bytes of each tracked file are
 * known to be fsynced (so `dropUnsynced` can simulate a power cut: everything written but not
 * yet fsynced is lost). Inert unless enabled: `armed()` is a Map lookup on an empty Map, and no
 * shadow is kept. Must never be armed in production by anything but the env variable.
 *
 * CONCORD_FAILPOINTS syntax: `name=action[,name=action...]`, action `enospc`, `eio` or `crash`,
 * e.g. `CONCORD_FAILPOINTS=wal.write=enospc`. Points used by FileStorage:
 *   wal.write          the group-commit write of the log (enospc: half the bytes land first)
 *   wal.before-fsync   after the log write, before its fsync (crash: nothing fsynced)
 *   snapshot.write     writing a snapshot file
 *   hardstate.write    writing the hard state file
 *
 * CONCORD_POWER_CUT_SIGNAL (read by server/main.ts, tests only): `SIGUSR1` or `SIGUSR2`. The
 * node keeps the synced-length shadow from its start, and on that signal simulates a power
 * cut: it truncates every tracked log file to the bytes last fsynced (synchronously, so no
 * other write of this process runs in between) and kills itself with SIGKILL. The fault suite
 * (faults/nemeses.ts) uses it for "a crash that loses every byte not yet fsynced".
 */
import { openSync, closeSync, fstatSync, ftruncateSync } from 'node:fs';
import { open, truncate } from 'node:fs/promises';

export type FailAction = 'enospc' | 'eio' | 'crash';

/** Thrown by a `crash` failpoint: the simulated process died at that point. */
export class SimulatedCrashError extends Error {
  override readonly name = 'SimulatedCrashError';
  constructor(readonly point: string) {
    super(`failpoint ${point}: simulated crash`);
  }
}

const points = new Map<string, FailAction>();
/** path -> bytes known durable; kept only while enabled. Bounded by the files a test tracks. */
const synced = new Map<string, number>();
let tracking = false;

function parseEnv(spec: string | undefined): void {
  if (spec === undefined || spec === '') return;
  tracking = true;
  for (const part of spec.split(',')) {
    const [name, action] = part.split('=');
    if (
      name === undefined ||
      name === '' ||
      (action !== 'enospc' && action !== 'eio' && action !== 'crash')
    ) {
      throw new Error(`CONCORD_FAILPOINTS: bad entry '${part}' (want name=enospc|eio|crash)`);
    }
    points.set(name, action);
  }
}
parseEnv(process.env['CONCORD_FAILPOINTS']);

/** Arms `name`: its next and every later hit fails with `action` until disarmed. Enables tracking. */
export function arm(name: string, action: FailAction): void {
  tracking = true;
  points.set(name, action);
}

export function disarm(name: string): void {
  points.delete(name);
}

/** Disarms everything and forgets the shadow; tests call it in afterEach. */
export function resetFailpoints(): void {
  points.clear();
  synced.clear();
  tracking = false;
}

/** Starts keeping the synced-length shadow without arming any point. */
export function enableTracking(): void {
  tracking = true;
}

/** The action armed at `name`, or undefined (the production path). */
export function armed(name: string): FailAction | undefined {
  return points.size === 0 ? undefined : points.get(name);
}

/** A Node-style I/O error as fs would raise it. */
export function ioError(action: 'enospc' | 'eio', point: string): NodeJS.ErrnoException {
  const code = action === 'enospc' ? 'ENOSPC' : 'EIO';
  const e: NodeJS.ErrnoException = new Error(
    `${code}: ${action === 'enospc' ? 'no space left on device' : 'i/o error'}, failpoint ${point}`,
  );
  e.code = code;
  return e;
}

/** Records that `path` is durable up to `length` bytes (called after each fsync). */
export function noteSynced(path: string, length: number): void {
  if (tracking) synced.set(path, length);
}

/** Forgets a file (deleted or renamed away). */
export function forget(path: string): void {
  if (tracking) synced.delete(path);
}

/**
 * Power cut: truncates every tracked file to the length last fsynced, dropping bytes that were
 * written but never made durable. Returns the files cut and by how much.
 */
export async function dropUnsynced(): Promise<{ path: string; droppedBytes: number }[]> {
  const cut: { path: string; droppedBytes: number }[] = [];
  for (const [path, length] of synced) {
    const fh = await open(path, 'r+');
    try {
      const { size } = await fh.stat();
      if (size > length) {
        await fh.truncate(length);
        cut.push({ path, droppedBytes: size - length });
      }
    } finally {
      await fh.close();
    }
  }
  return cut;
}

/** The synchronous dropUnsynced, for a signal handler that must finish before anything else runs. */
export function dropUnsyncedSync(): { path: string; droppedBytes: number }[] {
  const cut: { path: string; droppedBytes: number }[] = [];
  for (const [path, length] of synced) {
    const fd = openSync(path, 'r+');
    try {
      const { size } = fstatSync(fd);
      if (size > length) {
        ftruncateSync(fd, length);
        cut.push({ path, droppedBytes: size - length });
      }
    } finally {
      closeSync(fd);
    }
  }
  return cut;
}

/**
 * Arms a power cut on `signal` (see CONCORD_POWER_CUT_SIGNAL above): must be called before the
 * storage opens its files, so that every file is tracked from the start.
 */
export function installPowerCut(signal: 'SIGUSR1' | 'SIGUSR2'): void {
  tracking = true;
  process.on(signal, () => {
    const cut = dropUnsyncedSync();
    process.stderr.write(
      `concord: simulated power cut: dropped unsynced bytes ${JSON.stringify(cut)}\n`,
    );
    process.kill(process.pid, 'SIGKILL');
  });
}

/** Flips bit `bit` (0-7) of the byte at `offset` in `path` (bit rot, a bad sector). */
export async function flipBit(path: string, offset: number, bit = 0): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    const { bytesRead } = await fh.read(b, 0, 1, offset);
    if (bytesRead !== 1) throw new Error(`flipBit: ${path} has no byte at ${offset}`);
    b[0] = b[0]! ^ (1 << bit);
    await fh.write(b, 0, 1, offset);
  } finally {
    await fh.close();
  }
}

/** Cuts `path` to `length` bytes (a torn write, a lost tail). */
export async function truncateFile(path: string, length: number): Promise<void> {
  await truncate(path, length);
}
