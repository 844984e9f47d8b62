/**
 * Cluster smoke test: three real `concord server` processes founded with --bootstrap on free
 * loopback ports. A leader is elected; a write on a follower is read back on every node; INCR
 * goes through a follower; kill -9 of the leader gives a new leader within seconds with the
 * data intact; the killed node, restarted on its data directory, catches up.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Redis } from 'ioredis';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'main.js');
const SECRET = 'cluster-spec-secret-0123456789';
const DEADLINE_MS = 15_000;

interface Proc {
  readonly id: string;
  child: ChildProcess;
  stderr: string;
  exited: Promise<void>;
}

/** `n` distinct loopback ports that were free a moment ago (all held open while choosing). */
async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const server = net.createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

async function poll<T>(
  what: string,
  check: () => Promise<T | undefined>,
  deadlineMs = DEADLINE_MS,
): Promise<T> {
  const until = Date.now() + deadlineMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > until) {
      throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('cluster: three real processes', function () {
  this.timeout(90_000);
  const ids = ['n1', 'n2', 'n3'] as const;
  const ports = new Map<string, { port: number; peerPort: number }>();
  const procs = new Map<string, Proc>();
  const clients = new Map<string, Redis>();
  let dir = '';
  let bootstrap = '';

  function start(id: string): Proc {
    const { port } = ports.get(id)!;
    const child = spawn(
      process.execPath,
      [
        MAIN,
        'server',
        '--node-id',
        id,
        '--port',
        String(port),
        '--data-dir',
        path.join(dir, id),
        '--cluster-secret',
        SECRET,
        '--bootstrap',
        bootstrap,
        '--tick-ms',
        '50',
        '--log-level',
        'info',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const proc: Proc = {
      id,
      child,
      stderr: '',
      exited: new Promise((resolve) => child.once('exit', () => resolve())),
    };
    child.stderr?.on('data', (chunk: Buffer) => {
      proc.stderr = (proc.stderr + chunk.toString('utf8')).slice(-200_000);
    });
    procs.set(id, proc);
    return proc;
  }

  function client(id: string): Redis {
    let c = clients.get(id);
    if (c === undefined) {
      c = new Redis({
        port: ports.get(id)!.port,
        host: '127.0.0.1',
        lazyConnect: false,
        maxRetriesPerRequest: 1,
        enableReadyCheck: false,
        retryStrategy: (times) => (times > 200 ? null : 50),
      });
      c.on('error', () => undefined);
      clients.set(id, c);
    }
    return c;
  }

  /** The leader as the nodes' logs report it: the newest 'leader changed' line of a live node. */
  function reportedLeader(live: readonly string[]): string | undefined {
    let best: { term: number; leader: string } | undefined;
    for (const id of live) {
      const lines = procs
        .get(id)!
        .stderr.split('\n')
        .filter((l) => l.includes('"leader changed"'));
      const last = lines.at(-1);
      if (last === undefined) continue;
      const entry = JSON.parse(last) as { leader: string | null; term: number };
      if (entry.leader !== null && (best === undefined || entry.term > best.term)) {
        best = { term: entry.term, leader: entry.leader };
      }
    }
    return best !== undefined && live.includes(best.leader) ? best.leader : undefined;
  }

  async function kill9(id: string): Promise<void> {
    const proc = procs.get(id)!;
    clients.get(id)?.disconnect();
    clients.delete(id);
    process.kill(proc.child.pid!, 'SIGKILL');
    await proc.exited;
  }

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'concord-cluster-spec-'));
    const free = await freePorts(2 * ids.length);
    ids.forEach((id, i) => ports.set(id, { port: free[2 * i]!, peerPort: free[2 * i + 1]! }));
    bootstrap = ids
      .map((id) => `${id}=127.0.0.1:${ports.get(id)!.port}@${ports.get(id)!.peerPort}`)
      .join(',');
    for (const id of ids) start(id);
  });

  after(async () => {
    for (const c of clients.values()) c.disconnect();
    for (const proc of procs.values()) {
      if (proc.child.exitCode === null && proc.child.signalCode === null) {
        process.kill(proc.child.pid!, 'SIGTERM');
        await Promise.race([proc.exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
        if (proc.child.exitCode === null && proc.child.signalCode === null)
          process.kill(proc.child.pid!, 'SIGKILL');
      }
    }
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  let leader = '';

  afterEach(function () {
    if (this.currentTest?.state !== 'failed') return;
    for (const proc of procs.values()) {
      process.stderr.write(`--- ${proc.id} stderr (tail) ---\n${proc.stderr.slice(-4000)}\n`);
    }
  });

  it('elects a leader; a SET on a follower is read on every node; INCR through a follower', async () => {
    leader = await poll('a leader', () => Promise.resolve(reportedLeader(ids)));
    const follower = ids.find((id) => id !== leader)!;
    expect(
      await poll('a write', async () =>
        (await client(follower).set('greeting', 'hello')) === 'OK' ? true : undefined,
      ),
    ).to.equal(true);
    for (const id of ids) expect(await client(id).get('greeting')).to.equal('hello');
    expect(await client(follower).incr('counter')).to.equal(1);
    const other = ids.find((id) => id !== leader && id !== follower)!;
    expect(await client(other).incr('counter')).to.equal(2);
    for (const id of ids) expect(await client(id).get('counter')).to.equal('2');
  });

  it('kill -9 of the leader: a new leader within seconds, data intact, writes go on', async () => {
    const old = leader;
    await kill9(old);
    const survivors = ids.filter((id) => id !== old);
    const t0 = Date.now();
    const ok = await poll('a write after the failover', async () => {
      try {
        return (await client(survivors[0]!).set('after', 'failover')) === 'OK' ? true : undefined;
      } catch {
        return undefined;
      }
    });
    const failoverMs = Date.now() - t0;
    expect(ok).to.equal(true);
    expect(failoverMs).to.be.below(10_000);
    leader = await poll('a new leader', () => Promise.resolve(reportedLeader(survivors)));
    expect(leader).to.not.equal(old);
    for (const id of survivors) {
      expect(await client(id).get('greeting')).to.equal('hello');
      expect(await client(id).get('counter')).to.equal('2');
      expect(await client(id).get('after')).to.equal('failover');
    }
    expect(await client(survivors[1]!).incr('counter')).to.equal(3);
    // The killed node comes back on its data directory and catches up.
    start(old);
    const seen = await poll('the restarted node to catch up', async () => {
      const value = await client(old).get('counter');
      return value === '3' ? value : undefined;
    });
    expect(seen).to.equal('3');
    expect(await client(old).get('after')).to.equal('failover');
  });
});
