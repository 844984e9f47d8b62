import { expect } from 'chai';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { arm, dropUnsynced, enableTracking, flipBit, resetFailpoints, truncateFile } from './failpoints.js';
import { LostEntriesError } from './errors.js';
import { FileStorage, LOST_ENTRIES_FILE, StorageError } from './file-storage.js';
import { EntryType } from './messages.js';
import type { ConfState, Entry, HardState, Snapshot } from './messages.js';
import { decodeSegmentState, encodeEntry, encodeSegmentHeader, scanSegment } from './segment.js';
import { MemoryStorage } from './storage.js';
import type { WritableStorage } from './storage.js';

const PEERS = { voters: ['a', 'b', 'c'] };

function ents(from: number, to: number, term: number, size = 8): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) {
    const data = new Uint8Array(size);
    for (let k = 0; k < size; k++) data[k] = (i * 31 + k + term) & 0xff;
    out.push({ term, index: i, type: EntryType.Normal, data });
  }
  return out;
}

/** Everything a reader can observe, for comparing a storage with another or with a model. */
function observe(s: WritableStorage & { getHardState(): HardState }): unknown {
  const first = s.firstIndex();
  const last = s.lastIndex();
  const snap = s.snapshot();
  return {
    first,
    last,
    compactTerm: s.term(first - 1),
    entries: last >= first ? s.entries(first, last + 1).map((e) => ({ ...e, data: [...e.data] })) : [],
    hardState: s.getHardState(),
    initial: s.initialState(),
    snapshot: { metadata: snap.metadata, data: [...snap.data] },
  };
}

async function expectStorageError(p: Promise<unknown>, pattern: RegExp): Promise<StorageError> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(StorageError);
    expect((e as Error).message).to.match(pattern);
    return e as StorageError;
  }
  expect.fail(`expected a StorageError matching ${String(pattern)}`);
}

describe('FileStorage', function () {
  this.timeout(60_000);
  let dir = '';
  const open: FileStorage[] = [];

  async function openStorage(options: { maxSegmentBytes?: number } = {}): Promise<FileStorage> {
    const s = await FileStorage.open(dir, { peers: PEERS, ...options });
    open.push(s);
    return s;
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'concord-fs-'));
  });

  afterEach(async () => {
    resetFailpoints();
    for (const s of open.splice(0)) await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('starts a fresh directory with the given membership', async () => {
    const s = await openStorage();
    expect(s.firstIndex()).to.equal(1);
    expect(s.lastIndex()).to.equal(0);
    expect(s.initialState()).to.deep.equal({
      hardState: { term: 0, vote: null, commit: 0 },
      confState: { voters: ['a', 'b', 'c'], learners: [] },
    });
    await s.close();
    const again = await openStorage();
    expect(observe(again)).to.deep.equal(observe(s));
  });

  it('locks the directory: a second open fails while the first is open; a stale LOCK is taken over', async () => {
    const s = await openStorage();
    await expectStorageError(FileStorage.open(dir), /already open in this process/);
    await s.close();
    await writeFile(join(dir, 'LOCK'), `${process.ppid}\n`); // a live process that is not us
    await expectStorageError(FileStorage.open(dir), new RegExp(`in use by process ${process.ppid}`));
    const gone = spawnSync('true').pid;
    await writeFile(join(dir, 'LOCK'), `${gone}\n`);
    const r = await openStorage();
    expect((await readFile(join(dir, 'LOCK'), 'utf8')).trim()).to.equal(String(process.pid));
    await r.close();
    expect(await readdir(dir)).to.not.include('LOCK');
  });

  it('round-trips entries, hard state, membership and snapshots across close and reopen', async () => {
    const s = await openStorage();
    s.append(ents(1, 100, 1));
    s.setHardState({ term: 2, vote: 'b', commit: 50 });
    s.setConfState({ voters: ['a', 'b'], learners: ['c'] });
    await s.sync();
    const before = observe(s);
    await s.close();
    let r = await openStorage();
    expect(observe(r)).to.deep.equal(before);
    expect(r.recovery.truncatedBytes).to.equal(0);

    const data = new TextEncoder().encode('machine state at 60');
    r.createSnapshot(60, { voters: ['a', 'b'], learners: ['c'] }, data);
    await r.sync();
    await r.close();
    r = await openStorage();
    expect(r.snapshot().metadata).to.deep.equal({
      index: 60,
      term: 1,
      confState: { voters: ['a', 'b'], learners: ['c'] },
    });
    expect(r.snapshot().data).to.deep.equal(data);
    expect(r.firstIndex()).to.equal(1); // createSnapshot keeps the log

    r.compact(60);
    await r.sync();
    await r.close();
    r = await openStorage();
    expect(r.firstIndex()).to.equal(61);
    expect(r.term(60)).to.equal(1);
    expect(r.entries(61, 101)).to.deep.equal(ents(61, 100, 1));

    const received: Snapshot = {
      metadata: { index: 500, term: 7, confState: { voters: ['a', 'b', 'c'], learners: [] } },
      data: new Uint8Array([1, 2, 3]),
    };
    r.applySnapshot(received);
    r.setHardState({ term: 7, vote: null, commit: 500 });
    await r.sync();
    await r.close();
    r = await openStorage();
    expect(r.firstIndex()).to.equal(501);
    expect(r.lastIndex()).to.equal(500);
    expect(r.snapshot()).to.deep.equal(received);
    expect(r.initialState()).to.deep.equal({
      hardState: { term: 7, vote: null, commit: 500 },
      confState: { voters: ['a', 'b', 'c'], learners: [] },
    });
    expect(await readdir(join(dir, 'snap'))).to.deep.equal([
      `${(500).toString(16).padStart(16, '0')}-${(7).toString(16).padStart(16, '0')}.snap`,
    ]);
  });

  it('writes a large snapshot in chunks, letting the event loop run, and reads it back intact', async () => {
    const s = await openStorage();
    s.append(ents(1, 10, 1));
    const data = new Uint8Array(16 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4096) data[i] = (i / 4096) & 0xff;
    s.createSnapshot(10, { voters: ['a', 'b', 'c'], learners: [] }, data);
    let turns = 0;
    let maxGapMs = 0;
    let last = performance.now();
    let running = true;
    const spin = (): void => {
      const now = performance.now();
      maxGapMs = Math.max(maxGapMs, now - last);
      last = now;
      turns++;
      if (running) setImmediate(spin);
    };
    setImmediate(spin);
    await s.sync();
    running = false;
    expect(turns).to.be.at.least(16); // at least one event-loop turn per MiB written
    expect(maxGapMs).to.be.below(1000);
    await s.close();
    const r = await openStorage();
    expect(r.snapshot().metadata.index).to.equal(10);
    expect(Buffer.from(r.snapshot().data).equals(Buffer.from(data))).to.equal(true);
  });

  it('prepareSnapshot writes the file ahead: the sync that records it writes only the record; an unreferenced one goes on open', async () => {
    const s = await openStorage();
    s.append(ents(1, 20, 1));
    await s.sync();
    const cs = { voters: ['a', 'b', 'c'], learners: [] };
    const data = new Uint8Array(4 * 1024 * 1024).fill(7);
    await s.prepareSnapshot(10, cs, data);
    const files = await readdir(join(dir, 'snap'));
    expect(files).to.have.length(1);
    const file = join(dir, 'snap', files[0]!);
    const before = await stat(file);
    s.createSnapshot(10, cs, data);
    s.compact(10);
    await s.sync();
    // The same file (same inode): recorded, not written again.
    expect((await stat(file)).ino).to.equal(before.ino);
    // Prepared, never recorded (the node stopped first): deleted at the next open.
    await s.prepareSnapshot(15, cs, new Uint8Array(1000).fill(9));
    expect(await readdir(join(dir, 'snap'))).to.have.length(2);
    await s.close();
    const r = await openStorage();
    expect(await readdir(join(dir, 'snap'))).to.deep.equal([files[0]]);
    expect(r.snapshot().metadata.index).to.equal(10);
    expect(Buffer.from(r.snapshot().data).equals(Buffer.from(data))).to.equal(true);
  });

  it('persists the truncation of a conflicting suffix', async () => {
    const s = await openStorage();
    s.append(ents(1, 10, 1));
    await s.sync();
    s.append(ents(6, 8, 2));
    await s.sync();
    expect(s.lastIndex()).to.equal(8);
    await s.close();
    const r = await openStorage();
    expect(r.lastIndex()).to.equal(8);
    expect(r.entries(1, 9)).to.deep.equal([...ents(1, 5, 1), ...ents(6, 8, 2)]);
  });

  it('rolls over to new segments and deletes fully compacted ones', async () => {
    const s = await openStorage({ maxSegmentBytes: 4096 });
    for (let i = 1; i <= 500; i += 10) {
      s.append(ents(i, i + 9, 1, 64));
      s.setHardState({ term: 1, vote: 'a', commit: i + 9 });
      await s.sync();
    }
    const files = await readdir(join(dir, 'wal'));
    expect(files.length).to.be.greaterThan(8);
    for (const f of s.segmentFiles()) expect((await stat(f)).size).to.be.below(4096 + 2000);
    const before = observe(s);
    await s.close();
    let r = await openStorage({ maxSegmentBytes: 4096 });
    expect(observe(r)).to.deep.equal(before);

    r.createSnapshot(400, { voters: ['a', 'b', 'c'], learners: [] }, new Uint8Array([4, 0, 0]));
    r.compact(400);
    await r.sync();
    const after = await readdir(join(dir, 'wal'));
    expect(after.length).to.be.lessThan(files.length / 3);
    expect(after[0]).to.not.equal(files[0]);
    // The first kept segment began before the compaction: replay must bridge the deleted entries.
    const firstKept = r.segmentFiles()[0]!;
    const head = scanSegment(await readFile(firstKept), firstKept, false).records[0]!;
    expect(decodeSegmentState(head.payload).compactIndex).to.be.below(400);
    const compacted = observe(r);
    await r.close();
    r = await openStorage({ maxSegmentBytes: 4096 });
    expect(observe(r)).to.deep.equal(compacted);
    expect(r.firstIndex()).to.equal(401);
    expect(r.entries(401, 501)).to.deep.equal(ents(401, 500, 1, 64));
  });

  it('truncates a torn record at the tail of the last segment and keeps every record before it', async () => {
    const s = await openStorage();
    s.append(ents(1, 20, 1));
    await s.sync();
    const path = s.segmentFiles()[0]!;
    const before = observe(s);
    await s.close();
    const size = (await stat(path)).size;
    const partial = encodeEntry(ents(21, 21, 1, 100)[0]!).subarray(0, 60);
    await writeFile(path, partial, { flag: 'a' });
    const r = await openStorage();
    expect(r.recovery.truncatedBytes).to.equal(60);
    expect(r.recovery.truncatedFile).to.equal(path);
    expect((await stat(path)).size).to.equal(size);
    expect(observe(r)).to.deep.equal(before);
    r.append(ents(21, 22, 1));
    await r.sync();
    await r.close();
    const again = await openStorage();
    expect(again.lastIndex()).to.equal(22);
    expect(again.recovery.truncatedBytes).to.equal(0);
  });

  it('a last segment cut inside its final record loses that record only', async () => {
    const s = await openStorage();
    s.append(ents(1, 10, 1));
    await s.sync();
    s.append(ents(11, 11, 1, 500));
    await s.sync();
    const path = s.segmentFiles()[0]!;
    await s.close();
    await truncateFile(path, (await stat(path)).size - 100);
    const r = await openStorage();
    expect(r.recovery.truncatedBytes).to.equal(12 + 1 + 17 + 500 - 100);
    expect(r.lastIndex()).to.equal(10);
    expect(r.entries(1, 11)).to.deep.equal(ents(1, 10, 1));
  });

  it('once told it lost acknowledged entries, refuses every later open with the same error', async () => {
    const s = await openStorage();
    s.append(ents(1, 10, 1));
    await s.sync();
    await s.recordLostEntries(new LostEntriesError(11, 14, { kind: 'leader', leader: 'a', term: 3 }));
    await s.close();
    open.splice(0);
    let error: unknown;
    try {
      await FileStorage.open(dir);
    } catch (e) {
      error = e;
    }
    expect(error).to.be.instanceOf(LostEntriesError);
    const lost = error as LostEntriesError;
    expect([lost.first, lost.last, lost.source]).to.deep.equal([
      11,
      14,
      { kind: 'leader', leader: 'a', term: 3 },
    ]);
    // The refusal released the directory lock; wiping the marker (with the directory) lets it open.
    await unlink(join(dir, LOST_ENTRIES_FILE));
    expect((await openStorage()).lastIndex()).to.equal(10);
  });

  it('refuses to start on a flipped bit in the middle of the log, naming the file and offset', async () => {
    const s = await openStorage({ maxSegmentBytes: 2048 });
    for (let i = 1; i <= 200; i += 10) {
      s.append(ents(i, i + 9, 1, 32));
      await s.sync();
    }
    const segs = s.segmentFiles();
    expect(segs.length).to.be.greaterThan(2);
    await s.close();
    for (const target of [segs[1]!, segs[segs.length - 1]!]) {
      const buf = await readFile(target);
      const records = scanSegment(buf, target, false).records;
      const victim = records[Math.floor(records.length / 2)]!;
      await flipBit(target, victim.offset + 20, 3);
      const err = await expectStorageError(FileStorage.open(dir), /corrupt .*at byte offset \d+/);
      expect(err.file).to.equal(target);
      expect(err.offset).to.equal(victim.offset);
      expect(err.message).to.contain(target).and.contain(`byte offset ${victim.offset}`);
      await flipBit(target, victim.offset + 20, 3); // repair: the next case starts clean
    }
    const ok = await openStorage({ maxSegmentBytes: 2048 });
    expect(ok.lastIndex()).to.equal(200);
  });

  it('refuses to start when a middle segment is missing', async () => {
    const s = await openStorage({ maxSegmentBytes: 1024 });
    for (let i = 1; i <= 100; i += 5) {
      s.append(ents(i, i + 4, 1, 32));
      await s.sync();
    }
    const segs = s.segmentFiles();
    expect(segs.length).to.be.greaterThan(3);
    await s.close();
    await unlink(segs[1]!);
    const err = await expectStorageError(FileStorage.open(dir), /missing/);
    expect(err.message).to.contain(segs[1]!);
  });

  it('refuses to start when the snapshot the log refers to is missing or corrupt', async () => {
    const s = await openStorage();
    s.append(ents(1, 10, 1));
    s.createSnapshot(5, { voters: ['a'], learners: [] }, new Uint8Array(100).fill(9));
    await s.sync();
    await s.close();
    const snap = join(dir, 'snap', (await readdir(join(dir, 'snap')))[0]!);
    await flipBit(snap, 80, 0);
    const err = await expectStorageError(FileStorage.open(dir), /corrupt snapshot/);
    expect(err.file).to.equal(snap);
    await unlink(snap);
    await expectStorageError(FileStorage.open(dir), /snapshot .* is missing/);
  });

  it('drops a last segment whose start never landed (crash during rollover)', async () => {
    const s = await openStorage({ maxSegmentBytes: 1024 });
    for (let i = 1; i <= 60; i += 5) {
      s.append(ents(i, i + 4, 1, 32));
      await s.sync();
    }
    const before = observe(s);
    const segs = s.segmentFiles();
    await s.close();
    const next = join(dir, 'wal', `${(segs.length + 1).toString(16).padStart(16, '0')}.wal`);
    await writeFile(next, encodeSegmentHeader({ seq: segs.length + 1, firstIndex: 61 }));
    const r = await openStorage({ maxSegmentBytes: 1024 });
    expect(r.recovery.truncatedFile).to.equal(next);
    expect(r.segmentFiles()).to.deep.equal(segs);
    expect(await readdir(join(dir, 'wal'))).to.have.length(segs.length);
    expect(observe(r)).to.deep.equal(before);
  });

  it('refuses to start on an out-of-sequence segment or a missing hard state file', async () => {
    const s = await openStorage({ maxSegmentBytes: 1024 });
    for (let i = 1; i <= 100; i += 5) {
      s.append(ents(i, i + 4, 1, 32));
      await s.sync();
    }
    const segs = s.segmentFiles();
    expect(segs.length).to.be.greaterThan(3);
    await s.close();
    const second = await readFile(segs[1]!);
    await writeFile(segs[1]!, await readFile(segs[2]!)); // segment 3's bytes under segment 2's name
    const err = await expectStorageError(FileStorage.open(dir), /header says segment 3/);
    expect(err.file).to.equal(segs[1]!);
    await writeFile(segs[1]!, second);
    await unlink(join(dir, 'hardstate'));
    await expectStorageError(FileStorage.open(dir), /hardstate is missing/);
  });

  it('a full disk while writing a snapshot stops the storage; a reopen keeps the previous state', async () => {
    const s = await openStorage();
    s.append(ents(1, 10, 1));
    await s.sync();
    const synced = observe(s);
    s.createSnapshot(8, { voters: ['a'], learners: [] }, new Uint8Array(1000).fill(1));
    arm('snapshot.write', 'enospc');
    await expectStorageError(s.sync(), /disk full/);
    expect(() => s.compact(8)).to.throw(StorageError);
    await s.close();
    resetFailpoints();
    const r = await openStorage();
    expect(observe(r)).to.deep.equal(synced);
    expect(await readdir(join(dir, 'snap'))).to.deep.equal([]);
  });

  it('on ENOSPC stops writing, acknowledges nothing unsynced, and a reopen shows exactly the synced state', async () => {
    const s = await openStorage();
    s.append(ents(1, 10, 1));
    s.setHardState({ term: 1, vote: 'a', commit: 5 });
    await s.sync();
    const synced = observe(s);
    const path = s.segmentFiles()[0]!;
    const size = (await stat(path)).size;
    s.append(ents(11, 40, 1, 200));
    s.setHardState({ term: 1, vote: 'a', commit: 20 });
    arm('wal.write', 'enospc');
    await expectStorageError(s.sync(), /disk full/);
    expect(() => s.append(ents(41, 41, 1))).to.throw(StorageError, /disk full/);
    expect(() => s.setHardState({ term: 2, vote: null, commit: 20 })).to.throw(StorageError, /disk full/);
    await expectStorageError(s.sync(), /disk full/);
    expect((await stat(path)).size).to.equal(size); // the half that landed was cut back
    await s.close();
    resetFailpoints();
    const r = await openStorage();
    expect(observe(r)).to.deep.equal(synced);
  });

  it('a crash before fsync loses only what was not yet synced', async () => {
    enableTracking();
    const s = await openStorage();
    s.append(ents(1, 10, 1));
    s.setHardState({ term: 1, vote: 'a', commit: 3 });
    await s.sync();
    const synced = observe(s);
    s.append(ents(11, 30, 1));
    s.setHardState({ term: 1, vote: 'a', commit: 12 });
    arm('wal.before-fsync', 'crash');
    await expectStorageError(s.sync(), /simulated crash/);
    await s.close();
    // Without a power cut the written bytes would survive; drop them as one would.
    const cut = await dropUnsynced();
    expect(cut.map((c) => c.path)).to.deep.equal(s.segmentFiles());
    expect(cut[0]!.droppedBytes).to.be.greaterThan(0);
    resetFailpoints();
    const r = await openStorage();
    expect(observe(r)).to.deep.equal(synced);
  });

  it('coalesces concurrent sync() calls into group commits', async () => {
    const s = await openStorage();
    const waits: Promise<void>[] = [];
    for (let i = 1; i <= 100; i++) {
      s.append(ents(i, i, 1));
      waits.push(s.sync());
    }
    await Promise.all(waits);
    const flushes = new Set(waits).size;
    expect(flushes).to.equal(2); // the first, then one shared by all that came while it ran
    await s.close();
    const r = await openStorage();
    expect(r.lastIndex()).to.equal(100);
  });
  it('shares flushes fairly among callers that keep syncing (no caller starves)', async () => {
    const s = await openStorage();
    const flushes = new Set<Promise<void>>();
    let next = 1;
    const caller = async (): Promise<number> => {
      for (let i = 0; i < 25; i++) {
        s.append(ents(next, next, 1));
        next++;
        const p = s.sync();
        flushes.add(p);
        await p;
      }
      return 25;
    };
    const done = await Promise.all(Array.from({ length: 8 }, caller));
    expect(done).to.deep.equal(new Array<number>(8).fill(25));
    // 200 syncs: fair group commit needs about one flush per round of the 8 callers.
    expect(flushes.size).to.be.at.most(60);
    expect(s.lastIndex()).to.equal(200);
  });

  it('property: after any sequence of writes and crash points, a reopen equals the model of the synced state', async () => {
    const CONFS: ConfState[] = [
      { voters: ['a', 'b', 'c'], learners: [] },
      { voters: ['a', 'b'], learners: ['c'] },
      { voters: ['a'], learners: [] },
    ];
    const VOTES = [null, 'a', 'b'] as const;
    const op = fc.record({ k: fc.nat(11), a: fc.nat(1000), b: fc.nat(1000), c: fc.nat(1000) });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 60 }), async (ops) => {
        const runDir = join(dir, `run-${run++}`);
        const seg = { maxSegmentBytes: 256 };
        enableTracking(); // keep the shadow of synced lengths from the start, for power cuts
        let s = await FileStorage.open(runDir, { peers: PEERS, ...seg });
        let model = new MemoryStorage(PEERS);
        let synced = observe(model) as Observed;
        // The membership set by setConfState (null: the snapshot's), as the model holds it privately.
        let conf: ConfState | null = null;
        let syncedConf: ConfState | null = null;
        let termCounter = 1;
        try {
          for (const { k, a, b, c } of ops) {
            const first = model.firstIndex();
            const last = model.lastIndex();
            const snapIndex = model.snapshot().metadata.index;
            const bytes = new Uint8Array(c % 40).map((_, i) => (a + i * b) & 0xff);
            switch (k) {
              case 0:
              case 1:
              case 2: {
                if (c % 3 === 0) termCounter++;
                // Raft never truncates at or below a snapshot (it covers applied, committed entries).
                const lo = Math.max(first, snapIndex + 1);
                const start = lo + (a % (last - lo + 2));
                const batch = ents(start, start + (b % 4), termCounter, c % 40);
                s.append(batch);
                model.append(batch);
                break;
              }
              case 3: {
                const hs = model.getHardState();
                const next = {
                  term: Math.max(hs.term, termCounter),
                  vote: VOTES[a % 3]!,
                  commit: Math.min(last, hs.commit + (b % 5)),
                };
                s.setHardState(next);
                model.setHardState(next);
                break;
              }
              case 4:
                if (last > snapIndex) {
                  const index = snapIndex + 1 + (a % (last - snapIndex));
                  s.createSnapshot(index, CONFS[c % 3]!, bytes);
                  model.createSnapshot(index, CONFS[c % 3]!, bytes);
                }
                break;
              case 5:
                if (snapIndex > first - 1) {
                  const index = first + (a % (snapIndex - first + 1));
                  s.compact(index);
                  model.compact(index);
                }
                break;
              case 6: {
                termCounter += b % 2;
                const snap = {
                  metadata: { index: snapIndex + 1 + (a % 20), term: termCounter, confState: CONFS[c % 3]! },
                  data: bytes,
                };
                s.applySnapshot(snap);
                model.applySnapshot(snap);
                conf = null;
                break;
              }
              case 7:
                s.setConfState(CONFS[a % 3]!);
                model.setConfState(CONFS[a % 3]!);
                conf = CONFS[a % 3]!;
                break;
              case 8:
                await s.sync();
                synced = observe(model) as Observed;
                syncedConf = conf;
                break;
              case 9:
              case 10: {
                // A crash: (0) with writes staged only, (1) after the log write but before its
                // fsync, power cut; (2) the disk fills during the log write.
                const mode = a % 3;
                if (mode === 1) arm('wal.before-fsync', 'crash');
                if (mode === 2) arm('wal.write', 'enospc');
                let expected = synced;
                let expectedConf: ConfState | null = syncedConf;
                if (mode !== 0) {
                  try {
                    await s.sync();
                    expected = observe(model) as Observed; // nothing for the log to write: it succeeded
                    expectedConf = conf;
                  } catch (e) {
                    expect(e).to.be.instanceOf(StorageError);
                    // The hard state file is replaced before the log is written: term and vote are durable.
                    const hs = model.getHardState();
                    expected = {
                      ...synced,
                      hardState: { ...synced.hardState, term: hs.term, vote: hs.vote },
                    };
                    expected = { ...expected, initial: { ...synced.initial, hardState: expected.hardState } };
                  }
                }
                await s.close();
                await dropUnsynced();
                resetFailpoints();
                enableTracking();
                s = await FileStorage.open(runDir, seg);
                expect(observe(s)).to.deep.equal(expected);
                model = rebuild(expected, expectedConf);
                synced = expected;
                conf = syncedConf = expectedConf;
                break;
              }
              case 11:
                // What the driver does: snapshot the applied state, compact behind it, sync.
                if (last > snapIndex) {
                  const index = snapIndex + 1 + (a % (last - snapIndex));
                  s.createSnapshot(index, CONFS[c % 3]!, bytes);
                  model.createSnapshot(index, CONFS[c % 3]!, bytes);
                  const to = index - (b % 4);
                  if (to > first - 1) {
                    s.compact(to);
                    model.compact(to);
                  }
                  await s.sync();
                  synced = observe(model) as Observed;
                  syncedConf = conf;
                }
                break;
              default:
                throw new Error(`op ${k}`);
            }
            expect(observe(s)).to.deep.equal(observe(model));
          }
          await s.sync();
          await s.close();
          s = await FileStorage.open(runDir, seg);
          expect(observe(s)).to.deep.equal(observe(model));
        } finally {
          resetFailpoints();
          await s.close();
          await rm(runDir, { recursive: true, force: true });
        }
      }),
      { numRuns: Number(process.env['FS_PROPERTY_RUNS'] ?? 60) },
    );
  });
});

interface Observed {
  first: number;
  last: number;
  compactTerm: number;
  entries: (Omit<Entry, 'data'> & { data: number[] })[];
  hardState: HardState;
  initial: { hardState: HardState; confState: ConfState };
  snapshot: { metadata: Snapshot['metadata']; data: number[] };
}

/** A MemoryStorage holding an observed state (the model after a crash). */
function rebuild(o: Observed, conf: ConfState | null): MemoryStorage {
  const snap = o.snapshot.metadata;
  const cs = snap.confState;
  const m = o.first - 1 === 0 ? new MemoryStorage(cs) : new MemoryStorage();
  if (o.first - 1 > 0) {
    m.applySnapshot({
      metadata: { index: o.first - 1, term: o.compactTerm, confState: cs },
      data: snap.index === o.first - 1 ? new Uint8Array(o.snapshot.data) : new Uint8Array(0),
    });
  }
  m.append(o.entries.map((e) => ({ ...e, data: new Uint8Array(e.data) })));
  if (snap.index > o.first - 1) m.createSnapshot(snap.index, cs, new Uint8Array(o.snapshot.data));
  m.setHardState(o.hardState);
  if (conf !== null) m.setConfState(conf);
  return m;
}
