import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
  port: number;
}

const children = new Set<ChildProcess>();

/** Starts `main.js server ...` and waits for its one stdout line. */
async function startMain(args: string[], env: Record<string, string> = {}): Promise<Running> {
  const child = spawn(process.execPath, [MAIN, 'server', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  const deadline = Date.now() + 10000;
  let match: RegExpExecArray | null;
  while ((match = /^Concord listening on 127\.0\.0\.1:(\d+)\n/.exec(out)) === null) {
    if (Date.now() > deadline || child.exitCode !== null) {
      throw new Error(`server did not start: stdout=${out} stderr=${err}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { child, stdout: () => out, stderr: () => err, exited, port: Number(match[1]) };
}

/** Sends one inline command and returns the raw reply bytes (read until `done` says so). */
async function ask(port: number, request: string, done: (text: string) => boolean): Promise<string> {
  const socket = net.connect({ host: '127.0.0.1', port });
  let text = '';
  return await new Promise<string>((resolve, reject) => {
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (done(text)) {
        socket.destroy();
        resolve(text);
      }
    });
    socket.on('close', () => resolve(text));
    socket.write(request);
  });
}

/** CONFIG GET name -> value, through the real server. */
async function configGet(port: number, name: string): Promise<string> {
  const reply = await ask(port, `CONFIG GET ${name}\r\n`, (t) => t.split('\r\n').length >= 6);
  return reply.split('\r\n')[4]!;
}

describe('main (the concord server process)', function () {
  this.timeout(30000);
  let dataRoot: string;

  before(() => {
    dataRoot = mkdtempSync(join(tmpdir(), 'concord-main-spec-'));
  });

  after(() => {
    for (const child of children) child.kill('SIGKILL');
    rmSync(dataRoot, { recursive: true, force: true });
  });

  it('flag beats environment beats default; SIGTERM stops it with exit code 0', async () => {
    const running = await startMain(
      ['--port', '0', '--data-dir', join(dataRoot, 'a'), '--maxclients', '33'],
      {
        CONCORD_PORT: '1',
        CONCORD_MAXCLIENTS: '44',
        CONCORD_TIMEOUT: '55',
      },
    );
    expect(await configGet(running.port, 'maxclients')).to.equal('33');
    expect(await configGet(running.port, 'timeout')).to.equal('55');
    expect(await configGet(running.port, 'proto-max-bulk-len')).to.equal(String(512 * 1024 * 1024));
    expect(await configGet(running.port, 'dir')).to.equal(join(dataRoot, 'a'));
    running.child.kill('SIGTERM');
    expect(await running.exited).to.equal(0);
    // stdout carries exactly the one line; logs (quiet by default) go to stderr.
    expect(running.stdout()).to.equal(`Concord listening on 127.0.0.1:${running.port}\n`);
  });

  it('SHUTDOWN replies OK, closes and exits 0', async () => {
    const running = await startMain(['--port', '0', '--data-dir', join(dataRoot, 'b')]);
    const reply = await ask(running.port, 'SHUTDOWN\r\n', () => false);
    expect(reply).to.equal('+OK\r\n');
    expect(await running.exited).to.equal(0);
  });

  it('requirepass from the environment applies', async () => {
    const running = await startMain(['--port', '0', '--data-dir', join(dataRoot, 'c')], {
      CONCORD_REQUIREPASS: 'pw',
    });
    expect(await ask(running.port, 'PING\r\n', (t) => t.endsWith('\r\n'))).to.equal(
      '-NOAUTH Authentication required.\r\n',
    );
    running.child.kill('SIGINT');
    expect(await running.exited).to.equal(0);
  });

  it('refuses a bad flag value with a message and a non-zero exit', async () => {
    const child = spawn(process.execPath, [MAIN, 'server', '--port', 'abc'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).to.not.equal(0);
    expect(err).to.include('not an integer');
  });

  it('--log-level info: every log line carries nodeId, term and role', async () => {
    const running = await startMain([
      '--port',
      '0',
      '--data-dir',
      join(dataRoot, 'logs'),
      '--node-id',
      'logs1',
      '--log-level',
      'info',
    ]);
    const deadline = Date.now() + 10000;
    while (!running.stderr().includes('"role":"leader"')) {
      if (Date.now() > deadline) throw new Error(`no leader line: ${running.stderr()}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    running.child.kill('SIGTERM');
    expect(await running.exited).to.equal(0);
    const lines = running
      .stderr()
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { nodeId?: unknown; term?: unknown; role?: unknown; msg?: string });
    expect(lines.length).to.be.at.least(3);
    for (const line of lines) {
      expect(line.nodeId, JSON.stringify(line)).to.equal('logs1');
      expect(line.term, JSON.stringify(line)).to.be.a('number');
      expect(line.role, JSON.stringify(line)).to.be.a('string');
    }
    // Term and role are read when each line is written: the last line is the leader's.
    const stopped = lines.find((l) => l.msg === 'stopped');
    expect(stopped).to.include({ role: 'leader' });
    expect(stopped!.term).to.be.at.least(1);
  });

  it('--help names every environment variable', async () => {
    const child = spawn(process.execPath, [MAIN, 'server', '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    await new Promise((resolve) => child.on('exit', resolve));
    const flat = out.replace(/\s+/g, ' ');
    for (const name of [
      'CONCORD_PORT',
      'CONCORD_BIND',
      'CONCORD_DATA_DIR',
      'CONCORD_REQUIREPASS',
      'CONCORD_MAXCLIENTS',
      'CONCORD_LOG_LEVEL',
      'CONCORD_PROTECTED_MODE',
      'CONCORD_PROTO_MAX_BULK_LEN',
      'CONCORD_CLIENT_QUERY_BUFFER_LIMIT',
    ]) {
      expect(flat, name).to.include(name);
    }
  });
});
