/**
 * Cluster-aware clients against a real three-node Concord cluster: CLUSTER SLOTS/NODES/INFO as
 * ioredis `Cluster`, node-redis `createCluster` and `redis-cli -c` read them, those clients
 * writing and reading through any node, and following the leader after RAFT.TRANSFER-LEADER;
 * RAFT.NODE / RAFT.INFO / INFO raft on live nodes; and, with `cluster-redirect yes`, the
 * -MOVED reply a follower gives to keyed commands.
 *
 * Owns the three processes it starts (free loopback ports, a temp data dir) and ends them by
 * pid in `after`. Polls with deadlines, never sleeps a fixed time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { Cluster, Redis } from 'ioredis';
import { createCluster } from 'redis';
import { CONCORD_MAIN, HOST, freePort, redisCli, waitFor, within } from './harness.js';

const SECRET = 'cluster-clients-spec-secret-0123456789';
const DEADLINE_MS = 20_000;
const sha1 = (s: string): string => createHash('sha1').update(s).digest('hex');

interface Node {
  readonly id: string;
  readonly port: number;
  readonly peerPort: number;
  child: ChildProcess | null;
  exited: Promise<void>;
  stderr: string;
}

describe('cluster-aware clients against three Concord nodes', function () {
  this.timeout(120_000);
  const ids = ['n1', 'n2', 'n3'];
  const nodes = new Map<string, Node>();
  const admin = new Map<string, Redis>();
  let dir = '';

  function start(id: string, extra: readonly string[]): void {
    const node = nodes.get(id)!;
    const bootstrap = ids
      .map((m) => `${m}=${HOST}:${nodes.get(m)!.port}@${nodes.get(m)!.peerPort}`)
      .join(',');
    const child = spawn(
      process.execPath,
      [
        CONCORD_MAIN,
        'server',
        '--node-id',
        id,
        '--port',
        String(node.port),
        '--peer-port',
        String(node.peerPort),
        '--data-dir',
        path.join(dir, id),
        '--cluster-secret',
        SECRET,
        '--tick-ms',
        '50',
        ...extra,
        ...(extra.includes('--join') ? [] : ['--bootstrap', bootstrap]),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    node.child = child;
    node.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.stderr?.on('data', (chunk: Buffer) => {
      node.stderr = (node.stderr + chunk.toString('utf8')).slice(-100_000);
    });
  }

  function client(id: string): Redis {
    let c = admin.get(id);
    if (c === undefined) {
      c = new Redis({
        host: HOST,
        port: nodes.get(id)!.port,
        maxRetriesPerRequest: 1,
        enableReadyCheck: false,
        retryStrategy: (times) => (times > 400 ? null : 50),
      });
      c.on('error', () => undefined);
      admin.set(id, c);
    }
    return c;
  }

  /** The leader every live node agrees on (by RAFT.INFO), once they all agree. */
  async function agreedLeader(live: readonly string[] = ids, not?: string): Promise<string> {
    return waitFor(
      'every node to agree on a leader',
      async () => {
        const seen = new Set<string>();
        for (const id of live) {
          const text = (await client(id).call('RAFT.INFO')) as string;
          seen.add(/raft_leader_id:(.*)\r\n/.exec(text)?.[1] ?? '');
        }
        const [only] = [...seen];
        return seen.size === 1 && only !== undefined && only !== '' && only !== not ? only : undefined;
      },
      DEADLINE_MS,
    );
  }

  before(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), 'concord-cluster-clients-'));
    for (const id of ids) {
      nodes.set(id, {
        id,
        port: await freePort(),
        peerPort: await freePort(),
        child: null,
        exited: Promise.resolve(),
        stderr: '',
      });
    }
    for (const id of ids) start(id, []);
    await agreedLeader();
  });

  afterEach(function () {
    if (this.currentTest?.state !== 'failed') return;
    for (const node of nodes.values()) {
      process.stderr.write(`--- ${node.id} stderr (tail) ---\n${node.stderr.slice(-3000)}\n`);
    }
  });

  after(async () => {
    for (const c of admin.values()) c.disconnect();
    for (const node of nodes.values()) {
      const child = node.child;
      if (child === null || child.exitCode !== null || child.signalCode !== null) continue;
      process.kill(child.pid!, 'SIGTERM');
      const stopped = await Promise.race([
        node.exited.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000)),
      ]);
      if (!stopped) process.kill(child.pid!, 'SIGKILL');
    }
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('every node describes the same topology: the leader as master of 0-16383', async () => {
    const leader = await agreedLeader();
    // A node knows the leader's address once the bootstrap membership is applied: poll for it.
    for (const id of ids) {
      await waitFor(
        `${id} to list the slots`,
        async () => {
          const slots = (await client(id).call('CLUSTER', 'SLOTS')) as unknown[];
          return slots.length > 0 ? true : undefined;
        },
        DEADLINE_MS,
      );
    }
    for (const id of ids) {
      const slots = (await client(id).call('CLUSTER', 'SLOTS')) as unknown[][];
      expect(slots, id).to.have.length(1);
      const [start, end, master, ...replicas] = slots[0]!;
      expect([start, end]).to.deep.equal([0, 16383]);
      expect((master as unknown[]).slice(0, 3)).to.deep.equal([HOST, nodes.get(leader)!.port, sha1(leader)]);
      expect(replicas).to.have.length(2);
      const text = (await client(id).call('CLUSTER', 'NODES')) as string;
      const lines = text.trimEnd().split('\n');
      expect(lines).to.have.length(3);
      const mine = lines.find((l) => l.startsWith(sha1(id)))!;
      expect(mine.split(' ')[2]).to.match(/^myself,(master|slave)$/);
      const masterLine = lines.find((l) => l.split(' ')[2]!.includes('master'))!;
      expect(masterLine).to.match(
        new RegExp(`^${sha1(leader)} ${HOST}:${nodes.get(leader)!.port}@\\d+ .* 0-16383$`),
      );
      expect(await client(id).call('CLUSTER', 'MYID')).to.equal(sha1(id));
      const info = (await client(id).call('CLUSTER', 'INFO')) as string;
      expect(info).to.include('cluster_state:ok\r\n');
      expect(info).to.include('cluster_known_nodes:3\r\n');
    }
    const raft = await client(leader).info('raft');
    expect(raft).to.include('raft_role:leader');
    expect(raft).to.match(/raft_node0:id=n\d,addr=.*,voter=yes,match_index=\d+,lag=\d+,reachable=yes/);
  });

  it('ioredis Cluster, seeded with a follower, writes and reads through the leader', async () => {
    const leader = await agreedLeader();
    const follower = ids.find((id) => id !== leader)!;
    const cluster = new Cluster([{ host: HOST, port: nodes.get(follower)!.port }], {
      redisOptions: { maxRetriesPerRequest: 2 },
      clusterRetryStrategy: (times) => (times > 50 ? null : 100),
    });
    try {
      for (let i = 0; i < 50; i++) expect(await cluster.set(`ioc:${i}`, String(i))).to.equal('OK');
      expect(await cluster.get('ioc:49')).to.equal('49');
      expect(await cluster.incr('ioc:counter')).to.equal(1);
      const masters = cluster.nodes('master').map((n) => n.options.port);
      expect(masters).to.deep.equal([nodes.get(leader)!.port]);
      // Every write reached the replicated state: a plain client on another node reads it.
      expect(await client(follower).get('ioc:7')).to.equal('7');
    } finally {
      cluster.disconnect();
    }
  });

  it('node-redis createCluster writes and reads through any node', async () => {
    const leader = await agreedLeader();
    const follower = ids.find((id) => id !== leader)!;
    const cluster = createCluster({
      rootNodes: [{ url: `redis://${HOST}:${nodes.get(follower)!.port}` }],
    });
    cluster.on('error', () => undefined);
    await cluster.connect();
    try {
      expect(await cluster.set('nrc:a', '1')).to.equal('OK');
      expect(await cluster.get('nrc:a')).to.equal('1');
      expect(await cluster.incr('nrc:n')).to.equal(1);
      expect(cluster.masters.map((m) => m.port)).to.deep.equal([nodes.get(leader)!.port]);
    } finally {
      await cluster.close();
    }
  });

  it('redis-cli -c against a follower', async () => {
    const leader = await agreedLeader();
    const follower = ids.find((id) => id !== leader)!;
    const set = await redisCli(nodes.get(follower)!.port, ['-c', 'SET', 'cli:c', 'v1']);
    expect(set.stdout.trim().split('\n').at(-1)).to.equal('OK');
    const get = await redisCli(nodes.get(follower)!.port, ['-c', 'GET', 'cli:c']);
    expect(get.stdout.trim().split('\n').at(-1)).to.equal('v1');
  });

  it('RAFT.TRANSFER-LEADER: every node then names the new leader; ioredis Cluster writes go on', async () => {
    const old = await agreedLeader();
    const target = ids.find((id) => id !== old)!;
    const cluster = new Cluster([{ host: HOST, port: nodes.get(old)!.port }], {
      redisOptions: { maxRetriesPerRequest: 2 },
      clusterRetryStrategy: (times) => (times > 50 ? null : 100),
    });
    try {
      expect(await cluster.set('move:before', '1')).to.equal('OK');
      // A follower refuses the transfer: it is a leader's job.
      const follower = ids.find((id) => id !== old && id !== target)!;
      let refused = '';
      try {
        await client(follower).call('RAFT.TRANSFER-LEADER', target);
      } catch (e) {
        refused = (e as Error).message;
      }
      expect(refused).to.match(/^TRYAGAIN/);
      expect(await client(old).call('RAFT.TRANSFER-LEADER', target)).to.equal('OK');
      expect(await agreedLeader()).to.equal(target);
      for (const id of ids) {
        const slots = (await client(id).call('CLUSTER', 'SLOTS')) as unknown[][];
        expect((slots[0]![2] as unknown[])[1], id).to.equal(nodes.get(target)!.port);
      }
      // Writes keep working from the client that learnt the old leader.
      expect(await cluster.set('move:after', '2')).to.equal('OK');
      expect(await client(follower).get('move:after')).to.equal('2');
    } finally {
      cluster.disconnect();
    }
  });

  it('cluster-redirect yes: a follower answers keyed commands with -MOVED <slot> <leader>', async function () {
    const leader = await agreedLeader();
    const follower = ids.find((id) => id !== leader)!;
    const f = client(follower);
    const param = (await f.config('GET', 'cluster-redirect')) as string[];
    if (param.length === 0) this.skip(); // the server has no cluster-redirect parameter yet
    for (const id of ids) await client(id).config('SET', 'cluster-redirect', 'yes');
    try {
      let moved = '';
      try {
        await f.set('foo', 'bar');
      } catch (e) {
        moved = (e as Error).message;
      }
      expect(moved).to.equal(`MOVED 12182 ${HOST}:${nodes.get(leader)!.port}`);
      expect(await f.ping()).to.equal('PONG'); // keyless: served here
      const cli = await redisCli(nodes.get(follower)!.port, ['-c', 'SET', 'foo', 'bar']);
      expect(cli.stdout.trim().split('\n').at(-1)).to.equal('OK');
      // READONLY lets this connection read from the follower.
      expect(await f.call('READONLY')).to.equal('OK');
      expect(await f.get('foo')).to.equal('bar');
      // ioredis Cluster seeded with a stale topology (the follower first) still lands.
      const cluster = new Cluster([{ host: HOST, port: nodes.get(follower)!.port }], {
        redisOptions: { maxRetriesPerRequest: 2 },
      });
      const nodeRedis = createCluster({ rootNodes: [{ url: `redis://${HOST}:${nodes.get(leader)!.port}` }] });
      nodeRedis.on('error', () => undefined);
      await nodeRedis.connect();
      try {
        expect(await cluster.set('redir:x', '1')).to.equal('OK');
        expect(await cluster.get('redir:x')).to.equal('1');
        expect(await nodeRedis.set('redir:y', '1')).to.equal('OK');
        // Leadership moves while the old leader stays up: its MOVED replies make both clients
        // refresh their slot table and send to the new leader.
        const target = ids.find((id) => id !== leader)!;
        expect(await client(leader).call('RAFT.TRANSFER-LEADER', target)).to.equal('OK');
        expect(await agreedLeader()).to.equal(target);
        const newPort = nodes.get(target)!.port;
        expect(await cluster.set('redir:x', '2')).to.equal('OK');
        expect(await nodeRedis.set('redir:y', '2')).to.equal('OK');
        await waitFor(
          'ioredis Cluster to route to the new leader',
          async () => {
            await cluster.get('redir:x');
            const masters = cluster.nodes('master').map((n) => n.options.port);
            return masters.length === 1 && masters[0] === newPort ? true : undefined;
          },
          DEADLINE_MS,
        );
        await waitFor(
          'node-redis to route to the new leader',
          async () => {
            await nodeRedis.get('redir:y');
            const masters = nodeRedis.masters.map((m) => m.port);
            return masters.length === 1 && masters[0] === newPort ? true : undefined;
          },
          DEADLINE_MS,
        );
        expect(await client(target).get('redir:y')).to.equal('2');
      } finally {
        cluster.disconnect();
        await nodeRedis.close();
      }
    } finally {
      for (const id of ids) await client(id).config('SET', 'cluster-redirect', 'no');
    }
  });

  it('RAFT.SNAPSHOT on a follower; RAFT.NODE refuses an unknown node and a follower', async () => {
    const leader = await agreedLeader();
    const follower = ids.find((id) => id !== leader)!;
    const index = (await client(follower).call('RAFT.SNAPSHOT')) as number;
    expect(index).to.be.a('number').and.greaterThan(0);
    const text = (await client(follower).call('RAFT.INFO')) as string;
    expect(Number(/raft_snapshot_last_index:(\d+)/.exec(text)?.[1])).to.be.at.least(index);
    const failure = async (...args: string[]): Promise<string> => {
      try {
        await client(args[0]!).call(args[1]!, ...args.slice(2));
        return '';
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(await failure(leader, 'RAFT.NODE', 'REMOVE', 'n9')).to.equal("ERR unknown node 'n9'");
    expect(await failure(follower, 'RAFT.NODE', 'ADD', 'n5', `${HOST}:1`)).to.match(
      /^TRYAGAIN not the leader/,
    );
    expect(await failure(leader, 'RAFT.NODE', 'ADD', 'n5', 'nohost')).to.match(/^ERR invalid address/);
  });

  it('RAFT.NODE ADD of a --join node makes it a learner, then a voter; REMOVE takes it out', async function () {
    const leader = await agreedLeader();
    const id = 'n4';
    nodes.set(id, {
      id,
      port: await freePort(),
      peerPort: await freePort(),
      child: null,
      exited: Promise.resolve(),
      stderr: '',
    });
    start(id, ['--join']);
    const n4 = nodes.get(id)!;
    let unknown = '';
    try {
      await client(leader).call('RAFT.NODE', 'REMOVE', 'n9');
    } catch (e) {
      unknown = (e as Error).message;
    }
    expect(unknown).to.equal("ERR unknown node 'n9'");
    expect(await client(leader).call('RAFT.NODE', 'ADD', id, `${HOST}:${n4.port}@${n4.peerPort}`)).to.equal(
      'OK',
    );
    await waitFor(
      'n4 to be promoted to voter',
      async () => {
        const text = (await client(leader).call('RAFT.INFO')) as string;
        return /raft_voters:.*n4/.test(text) ? true : undefined;
      },
      DEADLINE_MS,
    );
    // The leader has replicated its whole log to n4 (lag 0): nothing written before is missing.
    let lastInfo = '';
    const replicated = await waitFor(
      'n4 to catch up (lag 0 on the leader)',
      async () => {
        const text = (await client(leader).call('RAFT.INFO')) as string;
        lastInfo = text;
        const line = /raft_node\d+:(id=n4,[^\r]*)/.exec(text)?.[1];
        return line !== undefined && /,lag=0,/.test(line) ? line : undefined;
      },
      DEADLINE_MS,
    ).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}; the leader's RAFT.INFO:\n${lastInfo}`);
    });
    expect(replicated).to.match(/voter=yes,match_index=\d+,lag=0,reachable=yes/);
    // The new node serves clients like any other: a linearizable read of data written before it joined.
    const value = await waitFor(
      'n4 to serve a read',
      async () => ((await client(id).get('ioc:49')) === '49' ? true : undefined),
      DEADLINE_MS,
    );
    expect(value).to.equal(true);
    const nodesText = (await client(leader).call('CLUSTER', 'NODES')) as string;
    expect(nodesText).to.include(`${sha1(id)} ${HOST}:${n4.port}@${n4.peerPort} slave ${sha1(leader)}`);
    expect(await client(leader).call('RAFT.NODE', 'REMOVE', id)).to.equal('OK');
    const text = (await client(leader).call('RAFT.INFO')) as string;
    expect(text).to.not.match(/raft_voters:.*n4/);
    expect(await client(leader).call('RAFT.SNAPSHOT')).to.be.a('number');
  });
  it('kill -9 of the leader: ioredis Cluster writes go on, no acknowledged write lost', async () => {
    const old = await agreedLeader();
    const seed = ids.filter((id) => nodes.get(id)!.child?.exitCode === null);
    const ioCluster = new Cluster(
      seed.map((id) => ({ host: HOST, port: nodes.get(id)!.port })),
      {
        redisOptions: { maxRetriesPerRequest: 2 },
        clusterRetryStrategy: (times) => (times > 100 ? null : 100),
      },
    );
    const acknowledged: string[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        expect(await within(ioCluster.set(`kill:${i}`, String(i)), 10_000, `SET kill:${i}`)).to.equal('OK');
        acknowledged.push(`kill:${i}`);
      }
      admin.get(old)?.disconnect();
      admin.delete(old);
      const node = nodes.get(old)!;
      process.kill(node.child!.pid!, 'SIGKILL');
      await within(node.exited, 10_000, 'the killed leader to exit');
      const survivors = ids.filter((id) => id !== old);
      const leader = await agreedLeader(survivors, old);
      // ioredis retries until a surviving node takes the write (a follower forwards it to the new
      // leader; without cluster-redirect ioredis is not told to move, see docs/design.md); every
      // write it got OK for is then readable on every survivor. node-redis is not
      // tested here: it refreshes its table only on MOVED/ASK (node-redis issue #2806), which a
      // dead node cannot send, so it needs the application to rediscover, as with Redis Cluster.
      const ioOk = await waitFor(
        'an ioredis Cluster write after the failover',
        async () =>
          (await within(ioCluster.set('kill:after', 'io'), 5_000, 'ioredis SET').catch(() => null)) === 'OK'
            ? true
            : undefined,
        DEADLINE_MS,
      );
      expect(ioOk).to.equal(true);
      acknowledged.push('kill:after');
      for (const id of survivors) {
        const slots = (await client(id).call('CLUSTER', 'SLOTS')) as unknown[][];
        expect((slots[0]![2] as unknown[])[1], `master on ${id}`).to.equal(nodes.get(leader)!.port);
        for (const key of acknowledged)
          expect(await client(id).get(key), `${key} on ${id}`).to.not.equal(null);
      }
    } finally {
      ioCluster.disconnect();
    }
  });
});
