import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { NotLeaderError } from '../../raft/errors.js';
import { Dispatcher } from '../dispatch.js';
import { LocalExecutor } from '../executor.js';
import type { Reply } from '../reply.js';
import { buildTable } from '../table.js';
import { Harness, MapConfigStore, plain } from '../testing.js';
import { ClusterTestServer, FakeCluster } from './testing.js';
import { isReadonly, movedReply } from './redirect.js';
import { keySlot } from './slot.js';

const sha1 = (s: string): string => createHash('sha1').update(s).digest('hex');

/** A dispatcher whose server context carries `cluster`, with one connected client. */
function setup(cluster: FakeCluster, redirect = 'no') {
  const config = new MapConfigStore({ maxclients: '10000', 'cluster-redirect': redirect });
  const server = new ClusterTestServer(cluster, config);
  const ctx = server.connect();
  const dispatcher = new Dispatcher({ executor: new LocalExecutor(), requirePass: () => null });
  const run = async (...words: string[]): Promise<Reply> =>
    dispatcher.execute(
      ctx,
      words.map((w) => Buffer.from(w)),
    );
  return { run, ctx, config };
}

/** INFO-style text -> field -> value. */
function fields(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) out.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return out;
}

describe('CLUSTER commands', () => {
  it('CLUSTER SLOTS: one range 0-16383, the leader as master, the others as replicas', async () => {
    const c = new FakeCluster('n2', ['n1', 'n2', 'n3'], 'n1');
    const { run } = setup(c);
    expect(plain(await run('CLUSTER', 'SLOTS'))).to.deep.equal([
      [
        0n,
        16383n,
        ['127.0.0.1', 7001n, sha1('n1'), {}],
        ['127.0.0.1', 7002n, sha1('n2'), {}],
        ['127.0.0.1', 7003n, sha1('n3'), {}],
      ],
    ]);
    c.leader = 'n3';
    const after = plain(await run('cluster', 'slots')) as unknown[][][];
    expect(after[0]![2]).to.deep.equal(['127.0.0.1', 7003n, sha1('n3'), {}]);
  });

  it('while no leader is known the answering node is named master; INFO says fail', async () => {
    const c = new FakeCluster('n2', ['n1', 'n2', 'n3'], null);
    const { run } = setup(c);
    const slots = plain(await run('CLUSTER', 'SLOTS')) as unknown[][];
    expect(slots).to.have.length(1);
    expect(slots[0]!.slice(0, 3)).to.deep.equal([0n, 16383n, ['127.0.0.1', 7002n, sha1('n2'), {}]]);
    expect(slots[0]!.slice(3).map((n) => (n as unknown[])[2])).to.deep.equal([sha1('n1'), sha1('n3')]);
    const shards = plain(await run('CLUSTER', 'SHARDS')) as Record<string, Record<string, unknown>[]>[];
    expect(shards[0]!.nodes!.map((n) => [n.id, n.role])).to.deep.equal([
      [sha1('n2'), 'master'],
      [sha1('n1'), 'replica'],
      [sha1('n3'), 'replica'],
    ]);
    const info = fields(plain(await run('CLUSTER', 'INFO')) as string);
    expect(info.get('cluster_state')).to.equal('fail');
    expect(info.get('cluster_slots_ok')).to.equal('0');
    expect(info.get('cluster_slots_fail')).to.equal('16384');
    expect(info.get('cluster_size')).to.equal('0');
    const nodes = (plain(await run('CLUSTER', 'NODES')) as string).trimEnd().split('\n');
    expect(nodes[1]).to.equal(`${sha1('n2')} 127.0.0.1:7002@17002 myself,master - 0 0 7 connected 0-16383`);
    // A leader whose address is not known yet counts as none.
    c.leader = 'n9';
    const again = plain(await run('CLUSTER', 'SLOTS')) as unknown[][];
    expect((again[0]![2] as unknown[])[2]).to.equal(sha1('n2'));
    expect(fields(plain(await run('INFO', 'replication')) as string).get('role')).to.equal('slave');
  });

  it('CLUSTER SHARDS: Redis 7 shape with roles, offsets and health', async () => {
    const c = new FakeCluster('n1', ['n1', 'n2', 'n3'], 'n1');
    c.members_[2]!.reachable = false;
    await c.addNode('n4', '10.0.0.4:7004@17100');
    const { run } = setup(c);
    const shards = plain(await run('CLUSTER', 'SHARDS')) as Record<string, unknown>[];
    expect(shards).to.have.length(1);
    expect(shards[0]!.slots).to.deep.equal([0n, 16383n]);
    const nodes = shards[0]!.nodes as Record<string, unknown>[];
    expect(nodes.map((n) => [n.id, n.role, n.health, n['replication-offset']])).to.deep.equal([
      [sha1('n1'), 'master', 'online', 120n],
      [sha1('n2'), 'replica', 'online', 119n],
      [sha1('n3'), 'replica', 'failed', 118n],
      [sha1('n4'), 'replica', 'loading', 0n],
    ]);
    expect(nodes[3]).to.include({ ip: '10.0.0.4', endpoint: '10.0.0.4', port: 7004n });
  });

  it('CLUSTER NODES: Redis Cluster lines, myself flag, replicas point at the leader', async () => {
    const c = new FakeCluster('n2', ['n1', 'n2', 'n3'], 'n1');
    c.members_[2]!.reachable = false;
    const { run } = setup(c);
    const reply = await run('CLUSTER', 'NODES');
    expect(reply.kind).to.equal('verbatim');
    const text = plain(reply) as string;
    expect(text.endsWith('\n')).to.equal(true);
    const lines = text.trimEnd().split('\n');
    expect(lines).to.deep.equal([
      `${sha1('n1')} 127.0.0.1:7001@17001 master - 0 0 7 connected 0-16383`,
      `${sha1('n2')} 127.0.0.1:7002@17002 myself,slave ${sha1('n1')} 0 0 7 connected`,
      `${sha1('n3')} 127.0.0.1:7003@17003 slave,fail? ${sha1('n1')} 0 0 7 disconnected`,
    ]);
    for (const line of lines) expect(line).to.match(/^[0-9a-f]{40} /);
  });

  it('CLUSTER INFO, MYID, KEYSLOT and HELP', async () => {
    const c = new FakeCluster('n3', ['n1', 'n2', 'n3'], 'n1');
    const { run } = setup(c);
    const info = fields(plain(await run('CLUSTER', 'INFO')) as string);
    expect(info.get('cluster_state')).to.equal('ok');
    expect(info.get('cluster_slots_assigned')).to.equal('16384');
    expect(info.get('cluster_slots_ok')).to.equal('16384');
    expect(info.get('cluster_known_nodes')).to.equal('3');
    expect(info.get('cluster_size')).to.equal('1');
    expect(info.get('cluster_current_epoch')).to.equal('7');
    expect(plain(await run('CLUSTER', 'MYID'))).to.equal(sha1('n3'));
    expect(plain(await run('CLUSTER', 'KEYSLOT', 'foo'))).to.equal(12182n);
    expect(plain(await run('CLUSTER', 'KEYSLOT', '{user1}.a'))).to.equal(
      BigInt(keySlot(Buffer.from('user1'))),
    );
    const help = plain(await run('CLUSTER', 'HELP')) as string[];
    expect(help[0]).to.match(/^CLUSTER <subcommand>/);
    expect(help).to.include('SLOTS');
    expect(plain(await run('CLUSTER', 'NOPE'))).to.deep.equal({
      error: "ERR unknown subcommand 'NOPE'. Try CLUSTER HELP.",
    });
  });

  it('without a cluster: the Redis "cluster support disabled" error (KEYSLOT still answers)', async () => {
    const h = new Harness();
    const disabled = { error: 'ERR This instance has cluster support disabled' };
    expect(plain(await h.run('CLUSTER', 'SLOTS'))).to.deep.equal(disabled);
    expect(plain(await h.run('CLUSTER', 'NODES'))).to.deep.equal(disabled);
    expect(plain(await h.run('RAFT.INFO'))).to.deep.equal(disabled);
    expect(plain(await h.run('RAFT.NODE', 'ADD', 'n4', '127.0.0.1:7004'))).to.deep.equal(disabled);
    expect(plain(await h.run('READONLY'))).to.deep.equal(disabled);
    expect(plain(await h.run('CLUSTER', 'KEYSLOT', 'bar'))).to.equal(5061n);
    // INFO without a cluster has neither a Cluster nor a Raft section.
    const text = plain(await h.run('INFO', 'all')) as string;
    expect(text).not.to.include('# Raft');
    expect(text).not.to.include('# Cluster');
  });
});

describe('INFO raft, RAFT.INFO and INFO replication', () => {
  it('reports role, term, indexes, log, snapshot, fsync and each peer', async () => {
    const c = new FakeCluster('n1', ['n1', 'n2', 'n3'], 'n1');
    c.members_[1]!.reachable = false;
    const { run } = setup(c);
    const text = plain(await run('INFO', 'raft')) as string;
    expect(text.startsWith('# Raft\r\n')).to.equal(true);
    const f = fields(text);
    expect(f.get('raft_node_id')).to.equal('n1');
    expect(f.get('raft_role')).to.equal('leader');
    expect(f.get('raft_current_term')).to.equal('7');
    expect(f.get('raft_leader_id')).to.equal('n1');
    expect(f.get('raft_commit_index')).to.equal('120');
    expect(f.get('raft_applied_index')).to.equal('119');
    expect(f.get('raft_log_first_index')).to.equal('101');
    expect(f.get('raft_log_last_index')).to.equal('120');
    expect(f.get('raft_log_entries')).to.equal('20');
    expect(f.get('raft_snapshot_last_index')).to.equal('100');
    expect(f.get('raft_voters')).to.equal('n1,n2,n3');
    expect(f.get('raft_fsync_count')).to.equal('42');
    expect(f.get('raft_fsync_p99_ms')).to.equal('0.900');
    expect(f.get('executor_handoff_idle')).to.equal('0');
    expect(f.get('executor_writes_in_flight')).to.equal('3');
    expect(f.get('executor_oldest_write_ms')).to.equal('1250');
    expect(f.get('executor_read_group_pending')).to.equal('2');
    expect(f.get('executor_forward_batches_in_flight')).to.equal('1');
    expect(f.get('executor_time_in_flight')).to.equal('0');
    expect(f.get('raft_node0')).to.equal(
      'id=n2,addr=127.0.0.1:7002@17002,voter=yes,match_index=119,lag=1,reachable=no',
    );
    expect(f.get('raft_node1')).to.equal(
      'id=n3,addr=127.0.0.1:7003@17003,voter=yes,match_index=118,lag=2,reachable=yes',
    );
    // RAFT.INFO is the same text.
    expect(plain(await run('RAFT.INFO'))).to.equal(text);
    // The default INFO includes Cluster and Raft before Keyspace.
    const all = plain(await run('INFO')) as string;
    const headers = all.split('\r\n').filter((l) => l.startsWith('# '));
    expect(headers.slice(-3)).to.deep.equal(['# Cluster', '# Raft', '# Keyspace']);
    expect(fields(all).get('cluster_enabled')).to.equal('1');
    expect(fields(all).get('role')).to.equal('master');
    expect(fields(all).get('connected_slaves')).to.equal('2');
  });

  it('on a follower: no match/lag, empty leader when none, replication role slave', async () => {
    const c = new FakeCluster('n2', ['n1', 'n2', 'n3'], 'n1');
    c.fsync = { count: 0, lastMs: null, p50Ms: null, p99Ms: null, maxMs: null };
    const { run } = setup(c);
    let f = fields(plain(await run('INFO', 'raft', 'replication')) as string);
    expect(f.get('raft_role')).to.equal('follower');
    expect(f.get('raft_node0')).to.equal('id=n1,addr=127.0.0.1:7001@17001,voter=yes,reachable=yes');
    expect(f.has('raft_fsync_p99_ms')).to.equal(false);
    expect(f.get('role')).to.equal('slave');
    expect(f.get('master_host')).to.equal('127.0.0.1');
    expect(f.get('master_port')).to.equal('7001');
    expect(f.get('master_link_status')).to.equal('up');
    c.leader = null;
    f = fields(plain(await run('INFO', 'raft', 'replication')) as string);
    expect(f.get('raft_leader_id')).to.equal('');
    expect(f.get('master_link_status')).to.equal('down');
  });
});

describe('RAFT.* administration', () => {
  it('RAFT.NODE ADD adds a learner; REMOVE removes; both check their arguments', async () => {
    const c = new FakeCluster('n1', ['n1', 'n2', 'n3'], 'n1');
    const { run } = setup(c);
    expect(plain(await run('RAFT.NODE', 'ADD', 'n4', '127.0.0.1:7004'))).to.equal('OK');
    expect(c.actions).to.deep.equal(['add n4 127.0.0.1:7004']);
    expect(c.members().find((m) => m.id === 'n4')).to.include({ voter: false, port: 7004, peerPort: 17004 });
    expect(plain(await run('RAFT.NODE', 'ADD', 'n4', '127.0.0.1:7005'))).to.deep.equal({
      error: "ERR node 'n4' already a member",
    });
    for (const bad of ['127.0.0.1', '127.0.0.1:0', 'h:70000', 'h:1@99999', 'a b:1']) {
      const r = plain(await run('RAFT.NODE', 'ADD', 'n5', bad)) as { error: string };
      expect(r.error, bad).to.match(/^ERR invalid address/);
    }
    expect((plain(await run('RAFT.NODE', 'ADD', 'bad id', 'h:1')) as { error: string }).error).to.match(
      /^ERR invalid node id/,
    );
    expect(plain(await run('RAFT.NODE', 'REMOVE', 'n9'))).to.deep.equal({ error: "ERR unknown node 'n9'" });
    expect(plain(await run('RAFT.NODE', 'REMOVE', 'n4'))).to.equal('OK');
    expect(c.members().map((m) => m.id)).to.deep.equal(['n1', 'n2', 'n3']);
    expect(plain(await run('RAFT.NODE', 'ADD', 'n5'))).to.deep.equal({
      error: "ERR wrong number of arguments for 'raft.node|add' command",
    });
    expect((plain(await run('RAFT.NODE', 'HELP')) as string[])[0]).to.match(/^RAFT.NODE <subcommand>/);
  });

  it('on a follower the admin actions reject with NotLeaderError (server/errors.ts maps it)', async () => {
    const c = new FakeCluster('n2', ['n1', 'n2', 'n3'], 'n1');
    const { run } = setup(c);
    for (const words of [
      ['RAFT.NODE', 'ADD', 'n4', '127.0.0.1:7004'],
      ['RAFT.NODE', 'REMOVE', 'n3'],
      ['RAFT.TRANSFER-LEADER', 'n3'],
    ]) {
      let thrown: unknown = null;
      try {
        await run(...words);
      } catch (e) {
        thrown = e;
      }
      expect(thrown, words.join(' ')).to.be.instanceOf(NotLeaderError);
      expect((thrown as NotLeaderError).leader).to.equal('n1');
    }
    expect(c.actions).to.deep.equal([]);
  });

  it('RAFT.TRANSFER-LEADER: to a named voter, or the reachable voter with the highest match', async () => {
    const c = new FakeCluster('n1', ['n1', 'n2', 'n3'], 'n1');
    c.members_[1]!.reachable = false; // n2 has the higher match index but is unreachable
    const { run } = setup(c);
    expect(plain(await run('RAFT.TRANSFER-LEADER', 'n1'))).to.equal('OK'); // already leader
    expect(c.actions).to.deep.equal([]);
    expect(plain(await run('RAFT.TRANSFER-LEADER', 'n7'))).to.deep.equal({ error: "ERR unknown node 'n7'" });
    await c.addNode('n4', '127.0.0.1:7004');
    expect(plain(await run('RAFT.TRANSFER-LEADER', 'n4'))).to.deep.equal({
      error: "ERR node 'n4' is a learner",
    });
    expect(plain(await run('RAFT.TRANSFER-LEADER'))).to.equal('OK');
    expect(c.actions.at(-1)).to.equal('transfer n3');
    expect(c.leaderId()).to.equal('n3');
  });

  it('RAFT.SNAPSHOT answers the snapshot index', async () => {
    const c = new FakeCluster('n2', ['n1', 'n2', 'n3'], 'n1');
    const { run } = setup(c);
    expect(plain(await run('RAFT.SNAPSHOT'))).to.equal(119n);
    expect(c.actions).to.deep.equal(['snapshot']);
  });
});

describe('-MOVED redirect (cluster-redirect)', () => {
  const table = buildTable();
  const specOf = (name: string) => table.get(name)!;
  const argv = (...w: string[]) => w.map((x) => Buffer.from(x));

  it('on a follower with cluster-redirect yes: keyed commands get MOVED <slot> <leader>', () => {
    const c = new FakeCluster('n2', ['n1', 'n2', 'n3'], 'n1');
    const { ctx } = setup(c, 'yes');
    expect(movedReply(ctx, specOf('set'), argv('SET', 'foo', '1'))).to.deep.equal({
      kind: 'error',
      message: 'MOVED 12182 127.0.0.1:7001',
    });
    expect(movedReply(ctx, specOf('get'), argv('GET', '{user1}.x'))).to.deep.equal({
      kind: 'error',
      message: `MOVED ${keySlot(Buffer.from('user1'))} 127.0.0.1:7001`,
    });
    // Keyless commands are answered here.
    expect(movedReply(ctx, specOf('ping'), argv('PING'))).to.equal(null);
    expect(movedReply(ctx, specOf('dbsize'), argv('DBSIZE'))).to.equal(null);
    // After a failover the redirect names the new leader.
    c.leader = 'n3';
    expect(movedReply(ctx, specOf('get'), argv('GET', 'foo'))).to.deep.equal({
      kind: 'error',
      message: 'MOVED 12182 127.0.0.1:7003',
    });
  });

  it('never on the leader, never while no leader is known, never with cluster-redirect no', () => {
    const leader = setup(new FakeCluster('n1', ['n1', 'n2'], 'n1'), 'yes');
    expect(movedReply(leader.ctx, specOf('set'), argv('SET', 'foo', '1'))).to.equal(null);
    const leaderless = setup(new FakeCluster('n2', ['n1', 'n2'], null), 'yes');
    expect(movedReply(leaderless.ctx, specOf('set'), argv('SET', 'foo', '1'))).to.equal(null);
    const off = setup(new FakeCluster('n2', ['n1', 'n2'], 'n1'), 'no');
    expect(movedReply(off.ctx, specOf('set'), argv('SET', 'foo', '1'))).to.equal(null);
    off.config.set('cluster-redirect', 'yes'); // CONFIG SET turns it on at once
    expect(movedReply(off.ctx, specOf('set'), argv('SET', 'foo', '1'))).to.not.equal(null);
    const h = new Harness(); // no cluster at all
    expect(movedReply(h.ctx, specOf('set'), argv('SET', 'foo', '1'))).to.equal(null);
  });

  it('READONLY lets a follower serve reads itself; writes are still redirected; READWRITE undoes it', async () => {
    const c = new FakeCluster('n2', ['n1', 'n2', 'n3'], 'n1');
    const { run, ctx } = setup(c, 'yes');
    expect(plain(await run('READONLY'))).to.equal('OK');
    expect(isReadonly(ctx.session)).to.equal(true);
    expect(movedReply(ctx, specOf('get'), argv('GET', 'foo'))).to.equal(null);
    expect(movedReply(ctx, specOf('set'), argv('SET', 'foo', '1'))).to.not.equal(null);
    expect(plain(await run('READWRITE'))).to.equal('OK');
    expect(movedReply(ctx, specOf('get'), argv('GET', 'foo'))).to.not.equal(null);
  });
});
