/**
 * The operations HTTP endpoint on a real node (in process, real sockets and fsync):
 * /healthz, /readyz (member + known leader), /metrics figures that follow what clients did,
 * and the port rules (explicit port must bind; the derived default may be busy; 0 = off).
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CONFIG, HTTP_PORT_OFFSET, httpPortFor, type Config } from './config.js';
import { silentLogger } from './log.js';
import { ConcordNode } from './node.js';

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function get(
  port: number,
  path: string,
  method = 'GET',
): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The value of one sample line `name{labels} value` in a Prometheus text exposition. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const have = Object.fromEntries(
      (match[2] ?? '')
        .split(',')
        .filter((p) => p !== '')
        .map((p) => {
          const eq = p.indexOf('=');
          return [p.slice(0, eq), JSON.parse(p.slice(eq + 1)) as string];
        }),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(match[3]);
  }
  return undefined;
}

describe('server/http operations endpoint', function () {
  this.timeout(30_000);
  let root: string;
  const nodes: ConcordNode[] = [];
  const clients: Redis[] = [];
  let dirs = 0;

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'concord-http-spec-'));
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.disconnect();
    for (const n of nodes.splice(0)) await n.stop('test end');
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  function node(overrides: Partial<Config>): ConcordNode {
    const n = new ConcordNode({
      config: { ...DEFAULT_CONFIG, port: 0, dataDir: join(root, `d${dirs++}`), ...overrides },
      log: silentLogger(),
      shutdownGraceMs: 500,
    });
    nodes.push(n);
    return n;
  }

  it('healthz, readyz and metrics on a one-node cluster follow what clients do', async () => {
    const httpPort = await freePort();
    const n = node({ httpPort, nodeId: 'm1' });
    const resp = await n.start();
    expect(n.httpAddress()?.port).to.equal(httpPort);

    expect(await get(httpPort, '/healthz')).to.include({ status: 200, body: 'ok\n' });
    const ready = await until('readyz 200', async () => {
      const r = await get(httpPort, '/readyz');
      return r.status === 200 ? r : undefined;
    });
    expect(JSON.parse(ready.body)).to.include({ ready: true, leader: 'm1', role: 'leader' });

    const redis = new Redis({
      port: resp.port,
      host: '127.0.0.1',
      lazyConnect: true,
      maxRetriesPerRequest: 0,
    });
    clients.push(redis);
    await redis.connect();
    await redis.set('a', '1');
    await redis.set('b', '2', 'PX', 60_000);
    expect(await redis.get('a')).to.equal('1');
    await redis.call('NOSUCHCOMMAND').then(
      () => expect.fail('an unknown command must fail'),
      (e: Error) => expect(e.message).to.match(/^ERR unknown command/),
    );
    await redis.incr('a');
    // One figure of each family, the same as their INFO sections.
    expect(await redis.call('LOCK', 'l1', 'owner-1')).to.be.a('number');
    expect(await redis.call('QPUSH', 'q1', 'm1', 'm2')).to.have.length(2);
    await redis.call('CSET', 'c1', 'v');
    expect(await redis.call('CGET', 'c1')).to.equal('v');
    await redis.call('LPUSH', 'a', 'x').then(
      () => undefined,
      () => undefined,
    );

    const m = await get(httpPort, '/metrics');
    expect(m.status).to.equal(200);
    expect(m.type).to.match(/^text\/plain; version=0\.0\.4/);
    const text = m.body;
    const node1 = { node: 'm1' };
    expect(sample(text, 'concord_commands_total', { ...node1, command: 'set' })).to.equal(2);
    expect(sample(text, 'concord_commands_total', { command: 'get' })).to.equal(1);
    expect(sample(text, 'concord_commands_total', { command: 'incr' })).to.equal(1);
    expect(sample(text, 'concord_error_replies_total', { prefix: 'ERR' })).to.be.at.least(1);
    expect(sample(text, 'concord_keyspace_keys')).to.equal(2);
    expect(sample(text, 'concord_keyspace_expires')).to.equal(1);
    expect(sample(text, 'concord_locks_holders')).to.equal(1);
    expect(sample(text, 'concord_locks_grants_total')).to.equal(1);
    expect(sample(text, 'concord_queues_ready')).to.equal(2);
    expect(sample(text, 'concord_queues_pushed_total')).to.equal(2);
    expect(sample(text, 'concord_cache_hits_total')).to.be.at.least(1);
    expect(sample(text, 'concord_cache_lines')).to.equal(1);
    expect(sample(text, 'concord_connected_clients')).to.equal(1);
    expect(sample(text, 'concord_raft_role', { role: 'leader' })).to.equal(1);
    expect(sample(text, 'concord_raft_role', { role: 'follower' })).to.equal(0);
    expect(sample(text, 'concord_raft_term')).to.be.at.least(1);
    expect(sample(text, 'concord_raft_leader_known')).to.equal(1);
    expect(sample(text, 'concord_raft_member')).to.equal(1);
    // Every write was answered before the scrape: none in flight, none stuck.
    expect(sample(text, 'concord_executor_writes_in_flight')).to.equal(0);
    expect(sample(text, 'concord_executor_oldest_write_seconds')).to.equal(0);
    expect(sample(text, 'concord_raft_elections_total')).to.be.at.least(1);
    // Three writes went through Raft (SET, SET, INCR): each one proposal on this leader.
    expect(sample(text, 'concord_raft_proposals_total')).to.be.at.least(3);
    const applied = sample(text, 'concord_raft_applied_index')!;
    expect(applied).to.be.at.least(3);
    expect(sample(text, 'concord_raft_commit_index')).to.be.at.least(applied);
    const syncs = sample(text, 'concord_raft_fsync_duration_seconds_count')!;
    expect(syncs).to.be.at.least(3);
    expect(sample(text, 'concord_raft_fsyncs_total')).to.equal(syncs);
    expect(sample(text, 'concord_raft_fsync_duration_seconds_bucket', { le: '+Inf' })).to.equal(syncs);
    // Process figures: event-loop lag and memory.
    expect(sample(text, 'nodejs_eventloop_lag_seconds')).to.be.a('number');
    expect(sample(text, 'process_resident_memory_bytes')).to.be.above(0);
    expect(sample(text, 'nodejs_heap_size_used_bytes')).to.be.above(0);

    // The counters move with later requests: renderings are shared for at most a second.
    await redis.set('c', '3');
    const again = await until('a fresh rendering', async () => {
      const body = (await get(httpPort, '/metrics')).body;
      return sample(body, 'concord_commands_total', { command: 'set' }) === 3 ? body : undefined;
    });
    expect(sample(again, 'concord_keyspace_keys')).to.equal(3);

    expect((await get(httpPort, '/nope')).status).to.equal(404);
    expect((await get(httpPort, '/metrics', 'POST')).status).to.equal(405);
    expect((await get(httpPort, '/healthz', 'HEAD')).status).to.equal(200);

    await n.stop('test');
    await fetch(`http://127.0.0.1:${httpPort}/healthz`).then(
      () => expect.fail('the endpoint must close with the node'),
      (e: Error) => expect(e).to.be.an('error'),
    );
  });

  it('readyz is 503 on a node that is not a member yet (--join)', async () => {
    const httpPort = await freePort();
    const n = node({
      httpPort,
      nodeId: 'j1',
      join: true,
      clusterSecret: 'a-secret-of-enough-bytes',
      peerPort: 0,
    });
    await n.start();
    const r = await get(httpPort, '/readyz');
    expect(r.status).to.equal(503);
    expect(JSON.parse(r.body)).to.include({ ready: false, reason: 'not a member of the cluster (yet)' });
    expect((await get(httpPort, '/healthz')).status).to.equal(200);
    const text = (await get(httpPort, '/metrics')).body;
    expect(sample(text, 'concord_raft_member')).to.equal(0);
    expect(sample(text, 'concord_raft_leader_known')).to.equal(0);
  });

  it('an explicit busy port fails the start; a busy derived default runs without the endpoint', async function () {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const busy = (blocker.address() as net.AddressInfo).port;
    try {
      const explicit = node({ httpPort: busy });
      let failed: unknown = null;
      await explicit.start().catch((e: unknown) => (failed = e));
      expect(String(failed)).to.match(/EADDRINUSE/);

      // RESP port = busy - 1000, so the derived HTTP port is the busy one.
      const respPort = busy - HTTP_PORT_OFFSET;
      if (respPort < 1024) this.skip();
      const derived = node({ port: respPort, httpPort: null });
      try {
        await derived.start();
      } catch (e) {
        // The RESP port itself was taken by something else: nothing to learn here.
        if (String(e).includes('EADDRINUSE')) this.skip();
        throw e;
      }
      expect(derived.httpAddress()).to.equal(null);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it('httpPortFor: 0 is off, null derives port + 1000, off when RESP port is 0 or too high', () => {
    expect(httpPortFor({ httpPort: 0, port: 7001 })).to.equal(null);
    expect(httpPortFor({ httpPort: 9000, port: 7001 })).to.deep.equal({ port: 9000, derived: false });
    expect(httpPortFor({ httpPort: null, port: 7001 })).to.deep.equal({ port: 8001, derived: true });
    expect(httpPortFor({ httpPort: null, port: 0 })).to.equal(null);
    expect(httpPortFor({ httpPort: null, port: 65000 })).to.equal(null);
  });
});
