import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStorage } from './file-storage.js';
import type { Entry } from './messages.js';

const moduleUrl = new URL('./file-storage.js', import.meta.url).href;

/** Payload of entry i, the same in the child and here. */
function payload(i: number): Uint8Array {
  return new TextEncoder().encode(`entry-${i}-`.repeat((i % 7) + 1));
}

/**
 * The child: opens the storage, then appends batches of 1-8 entries, syncs, and prints the last
 * index once sync() resolved (the acknowledgement). Snapshots and compacts now and then.
 */
const CHILD = `
import { FileStorage } from '${moduleUrl}';
const dir = process.argv[1];
const payload = (i) => new TextEncoder().encode(\`entry-\${i}-\`.repeat((i % 7) + 1));
const s = await FileStorage.open(dir, { peers: { voters: ['n1'] }, maxSegmentBytes: 8192 });
let term = s.getHardState().term + 1;
s.setHardState({ term, vote: 'n1', commit: s.getHardState().commit });
for (let round = 0; ; round++) {
  const from = s.lastIndex() + 1;
  const n = 1 + (round % 8);
  const batch = [];
  for (let i = from; i < from + n; i++) batch.push({ term, index: i, type: 0, data: payload(i) });
  s.append(batch);
  s.setHardState({ term, vote: 'n1', commit: from + n - 1 });
  if (round % 50 === 49) {
    const at = s.lastIndex() - 20;
    if (at > s.snapshot().metadata.index) {
      s.createSnapshot(at, { voters: ['n1'], learners: [] }, payload(at));
      s.compact(at - 5);
    }
  }
  await s.sync();
  process.stdout.write(s.lastIndex() + '\\n');
}
`;

/** Runs the child until it has acknowledged `acks` syncs, SIGKILLs it, returns the last index acknowledged. */
function runAndKill(dir: string, acks: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let lastAck = 0;
    let seen = 0;
    let buffered = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000); // bound: a stuck child still ends
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 10_000) stderr += d.toString();
    });
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const l of lines) {
        lastAck = Number(l);
        if (++seen === acks) child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL' || seen < acks)
        reject(new Error(`child ended early (${String(signal)}): ${stderr}`));
      else resolve(lastAck);
    });
  });
}

describe('FileStorage under SIGKILL', function () {
  this.timeout(120_000);
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'concord-fs-kill-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps every acknowledged entry across repeated kills mid-write (rollover, snapshots, compaction)', async () => {
    let prevTerm = 0;
    for (let round = 0; round < 4; round++) {
      const lastAck = await runAndKill(dir, 200 + round * 37);
      const s = await FileStorage.open(dir);
      try {
        expect(s.lastIndex(), `round ${round}`).to.be.at.least(lastAck);
        expect(s.getHardState().term).to.be.greaterThan(prevTerm);
        prevTerm = s.getHardState().term;
        const first = s.firstIndex();
        expect(first).to.be.greaterThan(1); // compaction ran
        const got: Entry[] = s.entries(first, s.lastIndex() + 1);
        got.forEach((e, k) => {
          expect(e.index).to.equal(first + k);
          expect(e.data).to.deep.equal(payload(e.index));
        });
        const snap = s.snapshot();
        expect(snap.data).to.deep.equal(payload(snap.metadata.index));
      } finally {
        await s.close();
      }
    }
  });
});
