import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  arm,
  armed,
  disarm,
  dropUnsynced,
  enableTracking,
  flipBit,
  noteSynced,
  resetFailpoints,
  truncateFile,
} from './failpoints.js';

const moduleUrl = new URL('./failpoints.js', import.meta.url).href;

function withEnv(spec: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { armed } from '${moduleUrl}'; console.log(armed('wal.write') ?? 'none');`,
    ],
    { env: { ...process.env, CONCORD_FAILPOINTS: spec }, encoding: 'utf8', timeout: 20_000 },
  );
  return { status: r.status, stdout: r.stdout.trim(), stderr: r.stderr };
}

describe('failpoints', function () {
  this.timeout(30_000);
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'concord-fp-'));
  });
  afterEach(async () => {
    resetFailpoints();
    await rm(dir, { recursive: true, force: true });
  });

  it('are inert until armed, and disarm', () => {
    expect(armed('wal.write')).to.equal(undefined);
    arm('wal.write', 'enospc');
    expect(armed('wal.write')).to.equal('enospc');
    expect(armed('wal.before-fsync')).to.equal(undefined);
    disarm('wal.write');
    expect(armed('wal.write')).to.equal(undefined);
  });

  it('are armed from CONCORD_FAILPOINTS, and a bad entry is refused', () => {
    expect(withEnv('wal.write=enospc,snapshot.write=crash').stdout).to.equal('enospc');
    expect(withEnv('').stdout).to.equal('none');
    const bad = withEnv('wal.write=explode');
    expect(bad.status).to.not.equal(0);
    expect(bad.stderr).to.contain("CONCORD_FAILPOINTS: bad entry 'wal.write=explode'");
  });

  it('dropUnsynced cuts each tracked file back to its last synced length', async () => {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    await writeFile(a, 'synced+unsynced');
    await writeFile(b, 'all synced');
    noteSynced(a, 6); // not tracking yet: ignored
    expect(await dropUnsynced()).to.deep.equal([]);
    enableTracking();
    noteSynced(a, 6);
    noteSynced(b, 10);
    expect(await dropUnsynced()).to.deep.equal([{ path: a, droppedBytes: 9 }]);
    expect(await readFile(a, 'utf8')).to.equal('synced');
    expect(await readFile(b, 'utf8')).to.equal('all synced');
  });

  it('installPowerCut: on the signal, the process cuts tracked files to their synced length and dies by SIGKILL', () => {
    const f = join(dir, 'wal');
    const script = [
      `import { installPowerCut, noteSynced } from '${moduleUrl}';`,
      `import { writeFileSync } from 'node:fs';`,
      `installPowerCut('SIGUSR2');`,
      `writeFileSync(${JSON.stringify(f)}, 'durable|lost');`,
      `noteSynced(${JSON.stringify(f)}, 7);`,
      `process.kill(process.pid, 'SIGUSR2');`,
      `setTimeout(() => console.log('survived'), 5000);`,
    ].join('\n');
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(r.signal).to.equal('SIGKILL');
    expect(r.stdout).to.not.include('survived');
    expect(r.stderr).to.include('simulated power cut');
    return readFile(f, 'utf8').then((text) => expect(text).to.equal('durable'));
  });

  it('flipBit flips exactly one bit; truncateFile cuts', async () => {
    const f = join(dir, 'f');
    await writeFile(f, Buffer.from([0, 0xff, 0x10]));
    await flipBit(f, 1, 7);
    await flipBit(f, 2, 4);
    expect([...(await readFile(f))]).to.deep.equal([0, 0x7f, 0x00]);
    await truncateFile(f, 1);
    expect([...(await readFile(f))]).to.deep.equal([0]);
    let threw = false;
    await flipBit(f, 5).catch(() => {
      threw = true;
    });
    expect(threw).to.equal(true);
  });
});
