/**
 * scripts/ensure-test-deps.mjs, run as a real process with a controlled PATH: nothing to do
 * when every tool is there; as root, `apt-get update` then one `apt-get install` of exactly
 * the missing packages (a stand-in apt-get on PATH records its calls and "installs" by linking
 * the real tools); a failed install or a non-root user ends non-zero with a clear message.
 * Never runs the real apt-get.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { REPO_ROOT } from './harness.js';

const SCRIPT = path.join(REPO_ROOT, 'scripts', 'ensure-test-deps.mjs');
const TOOLS = [
  'redis-cli',
  'redis-benchmark',
  'redis-server',
  'tmux',
  'iptables',
  'ip',
  'docker-compose',
  'nft',
  'faketime',
];
/** Where Debian puts each tool (iptables, ip and nft are administrators' commands). */
const realPath = (tool: string): string =>
  tool === 'iptables' || tool === 'ip' || tool === 'nft' ? `/usr/sbin/${tool}` : `/usr/bin/${tool}`;
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

interface Run {
  stdout: string;
  stderr: string;
  code: number | null;
}

/** Runs the script with only `pathDirs` on PATH, as user `uid` when given (root only). */
function runScript(pathDirs: string[], uid?: number): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [SCRIPT],
      {
        env: { PATH: pathDirs.join(path.delimiter) },
        timeout: 20_000,
        encoding: 'utf8',
        ...(uid !== undefined ? { uid, gid: uid } : {}),
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolve({ stdout, stderr, code });
      },
    );
  });
}

describe('scripts/ensure-test-deps.mjs', function () {
  let dir: string;
  let bin: string;
  let aptLog: string;

  beforeEach(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), 'concord-ensure-deps-'));
    bin = path.join(dir, 'bin');
    aptLog = path.join(dir, 'apt.log');
    await writeFile(aptLog, '');
  });

  afterEach(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  /** Links the real tool into the stand-in bin dir. */
  async function provide(...tools: string[]): Promise<void> {
    await mkdir(bin, { recursive: true });
    for (const tool of tools) await symlink(realPath(tool), path.join(bin, tool));
  }

  /** A stand-in apt-get: logs its arguments; `install` links the real tools (or fails). */
  async function fakeAptGet(fail = false): Promise<void> {
    const script = [
      '#!/bin/sh',
      `echo "$*" >> '${aptLog}'`,
      'if [ "$1" = install ]; then',
      fail
        ? '  exit 100'
        : `  for t in ${TOOLS.join(' ')}; do p=/usr/bin/$t; [ -e $p ] || p=/usr/sbin/$t; [ -e '${bin}'/$t ] || /bin/ln -s $p '${bin}'/$t; done`,
      'fi',
      'exit 0',
    ].join('\n');
    await mkdir(bin, { recursive: true });
    await writeFile(path.join(bin, 'apt-get'), `${script}\n`);
    await chmod(path.join(bin, 'apt-get'), 0o755);
  }

  it('does nothing when every tool is present, and says so in one line', async function () {
    await provide(...TOOLS);
    await fakeAptGet();
    const run = await runScript([bin]);
    expect(run.code).to.equal(0);
    expect(run.stdout).to.equal(
      'ensure-test-deps: nothing to do (redis-cli, redis-benchmark, redis-server, tmux, iptables, ip, docker-compose, nft, faketime present)\n',
    );
    expect(await readFile(aptLog, 'utf8')).to.equal('');
  });

  it('as root, installs exactly the missing packages with apt-get, non-interactively', async function () {
    if (!isRoot) this.skip();
    await provide('redis-server', 'ip', 'docker-compose');
    await fakeAptGet();
    const run = await runScript([bin]);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.equal(
      'ensure-test-deps: installed redis-tools tmux iptables nftables faketime (was missing redis-cli, redis-benchmark, tmux, iptables, nft, faketime)\n',
    );
    expect(await readFile(aptLog, 'utf8')).to.equal(
      'update\ninstall -y --no-install-recommends redis-tools tmux iptables nftables faketime\n',
    );
  });

  it('fails with the failing command when apt-get install fails', async function () {
    if (!isRoot) this.skip();
    await provide(
      'redis-cli',
      'redis-benchmark',
      'redis-server',
      'iptables',
      'ip',
      'docker-compose',
      'nft',
      'faketime',
    );
    await fakeAptGet(true);
    const run = await runScript([bin]);
    expect(run.code).to.equal(1);
    expect(run.stderr).to.include("'apt-get install -y --no-install-recommends tmux' failed (exit code 100)");
  });

  it('as another user, prints the command to run and fails without calling apt-get', async function () {
    if (!isRoot) this.skip();
    await provide(
      'redis-cli',
      'redis-benchmark',
      'tmux',
      'iptables',
      'ip',
      'docker-compose',
      'nft',
      'faketime',
    );
    await fakeAptGet();
    await chmod(dir, 0o755);
    const nobody = 65534;
    const run = await runScript([bin], nobody);
    expect(run.code).to.equal(1);
    expect(run.stderr).to.equal(
      "ensure-test-deps: missing redis-server; not root, so install them yourself: sudo sh -c 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server'\n",
    );
    expect(await readFile(aptLog, 'utf8')).to.equal('');
  });

  it('as root without apt-get, names the packages to install and fails', async function () {
    if (!isRoot) this.skip();
    await provide('tmux', 'iptables', 'ip', 'docker-compose', 'nft', 'faketime');
    const run = await runScript([bin]);
    expect(run.code).to.equal(1);
    expect(run.stderr).to.include(
      'missing redis-cli, redis-benchmark, redis-server and apt-get is not available',
    );
    expect(run.stderr).to.include('redis-tools redis-server');
  });
});
