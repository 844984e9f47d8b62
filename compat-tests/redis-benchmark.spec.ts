/**
 * redis-benchmark (Debian's redis-tools) as a client: it asks `CONFIG GET save` and
 * `CONFIG GET appendonly` first, then floods pipelined PING (inline and multibulk), SET, GET,
 * INCR and MSET from several connections, and exits at the first error reply. A smoke test of
 * compatibility, not a measurement (bench/ measures). Runs against Concord, or against
 * redis-server with COMPAT_TARGET=redis.
 */
import { execFile } from 'node:child_process';
import { expect } from 'chai';
import { HOST, redisCli, startTarget, TARGET } from './harness.js';
import type { ServerHandle } from './harness.js';

interface Run {
  stdout: string;
  stderr: string;
  code: number | null;
}

function redisBenchmark(port: number, args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      'redis-benchmark',
      ['-h', HOST, '-p', String(port), ...args],
      { timeout: 30_000, killSignal: 'SIGKILL', encoding: 'utf8', maxBuffer: 4 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolve({ stdout, stderr, code });
      },
    );
  });
}

describe(`redis-benchmark against ${TARGET}`, function () {
  let server: ServerHandle;

  before(async function () {
    server = await startTarget();
  });

  after(async function () {
    await server.stop();
  });

  it('runs PING, SET, GET, INCR, MSET pipelined from 4 connections without an error', async function () {
    const run = await redisBenchmark(server.port, [
      '-n',
      '4000',
      '-c',
      '4',
      '-P',
      '8',
      '-t',
      'ping,set,get,incr,mset',
      '-q',
      '--csv',
    ]);
    expect(run.stderr, 'stderr').to.equal('');
    expect(run.code).to.equal(0);
    const rows = run.stdout.trim().split('\n');
    expect(rows[0]).to.match(/^"test","rps",/);
    const tests = rows.slice(1).map((row) => row.split(',').map((cell) => cell.replace(/^"|"$/g, '')));
    expect(tests.map(([name]) => name)).to.deep.equal([
      'PING_INLINE',
      'PING_MBULK',
      'SET',
      'GET',
      'INCR',
      'MSET (10 keys)',
    ]);
    for (const [name, rps] of tests) expect(Number(rps), `${name} requests per second`).to.be.greaterThan(0);
    // The INCR test increments one key (counter:__rand_int__ without -r): every request counted.
    expect((await redisCli(server.port, ['GET', 'counter:__rand_int__'])).stdout).to.equal('4000\n');
  });

  it('stops at the first error reply and prints it', async function () {
    const run = await redisBenchmark(server.port, ['-n', '100', '-c', '1', '-q', 'NOSUCHCMD']);
    expect(run.code).to.equal(1);
    expect(run.stderr).to.include("Error from server: ERR unknown command 'NOSUCHCMD'");
  });
});
