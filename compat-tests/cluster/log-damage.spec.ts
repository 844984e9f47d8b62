/**
 * Damaged Raft log files on a stopped follower (data-dir/raft/wal/*.wal, the layout in
 * raft/segment.ts: a 32-byte header, then records `length u32 | crc u32 | header crc u32 |
 * type u8 | payload`, length counting type + payload):
 *   - half a record appended at the end (a torn write): the node starts, truncates it and
 *     catches up with every acknowledged write;
 *   - one byte flipped inside a record in the middle: the node refuses to start, exits non-zero
 *     and names the file and the record's byte offset on stderr.
 */
import { readFile, readdir, writeFile, appendFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { within } from '../harness.js';
import {
  Cluster,
  WriteLoad,
  skipUnlessClusterSupported,
  verifyWrites,
  type ClusterNode,
} from './cluster-harness.js';

const SEGMENT_HEADER_BYTES = 32;
const RECORD_HEADER_BYTES = 12;

interface RecordSpan {
  offset: number;
  bytes: number;
}

/** The newest segment of a node's log and its records' spans (walking the length fields). */
async function lastSegment(
  node: ClusterNode,
): Promise<{ file: string; data: Buffer; records: RecordSpan[] }> {
  const walDir = path.join(node.dataDir, 'raft', 'wal');
  const names = (await readdir(walDir)).filter((n) => n.endsWith('.wal')).sort();
  const name = names[names.length - 1];
  if (name === undefined) throw new Error(`no segment in ${walDir}`);
  const file = path.join(walDir, name);
  const data = await readFile(file);
  const records: RecordSpan[] = [];
  let offset = SEGMENT_HEADER_BYTES;
  while (offset + RECORD_HEADER_BYTES <= data.length) {
    const length = data.readUInt32BE(offset);
    const bytes = RECORD_HEADER_BYTES + length;
    if (offset + bytes > data.length) break;
    records.push({ offset, bytes });
    offset += bytes;
  }
  return { file, data, records };
}

/** Writes `count` keys through the leader (bounded) and returns the load's records. */
async function writeSome(c: Cluster, prefix: string, count: number): Promise<WriteLoad> {
  const load = new WriteLoad({
    ports: () => c.running().map((n) => n.port),
    writers: 2,
    maxWritesPerWriter: count / 2,
    maxDurationMs: 15_000,
    prefix,
  });
  await load.finish();
  return load;
}

describe('cluster: damaged log files', function () {
  this.timeout(90_000);
  let cluster: Cluster | undefined;

  before(async function () {
    await skipUnlessClusterSupported(this);
  });

  afterEach(async function () {
    await cluster?.destroy();
    cluster = undefined;
  });

  it('a torn tail (half a record appended) is truncated at start: the follower recovers and catches up', async function () {
    const c = (cluster = await Cluster.start({ size: 3, tickMs: 50, electionTicks: 10 }));
    const leader = await c.waitForLeader();
    await c.waitUntilServing();
    const follower = c.nodes.find((n) => n !== leader);
    if (follower === undefined) throw new Error('no follower');
    const first = await writeSome(c, 'torn-a', 200);
    expect(first.acked().length, first.errors.join('\n')).to.be.at.least(180);
    await c.waitForApplied(await leader.raftNumber('raft_commit_index'), c.nodes);
    await follower.kill9();

    const { file, data, records } = await lastSegment(follower);
    const last = records[records.length - 1];
    if (last === undefined) throw new Error(`no record in ${file}`);
    const half = data.subarray(last.offset, last.offset + Math.max(1, Math.floor(last.bytes / 2)));
    await appendFile(file, half);

    const second = await writeSome(c, 'torn-b', 100);
    expect(second.acked().length, second.errors.join('\n')).to.be.at.least(90);
    await follower.start();
    const commit = await leader.raftNumber('raft_commit_index');
    await c.waitForApplied(commit, [follower]);
    for (const load of [first, second]) {
      expect(await verifyWrites(follower.port, load.records)).to.deep.equal([]);
    }
    // The torn bytes are gone: the file no longer ends with them after the repair.
    const repaired = await lastSegment(follower);
    expect(
      repaired.data
        .subarray(last.offset, last.offset + last.bytes)
        .equals(data.subarray(last.offset, last.offset + last.bytes)),
    ).to.equal(true);
  });

  it('a flipped byte in a middle record: the node refuses to start and names the file and offset', async function () {
    const c = (cluster = await Cluster.start({ size: 3, tickMs: 50, electionTicks: 10 }));
    const leader = await c.waitForLeader();
    await c.waitUntilServing();
    const follower = c.nodes.find((n) => n !== leader);
    if (follower === undefined) throw new Error('no follower');
    const load = await writeSome(c, 'flip', 200);
    expect(load.acked().length, load.errors.join('\n')).to.be.at.least(180);
    await c.waitForApplied(await leader.raftNumber('raft_commit_index'), c.nodes);
    await follower.stop();

    const { file, data, records } = await lastSegment(follower);
    expect(records.length, `records in ${file}`).to.be.greaterThan(10);
    const victim = records[Math.floor(records.length / 2)];
    if (victim === undefined) throw new Error('no middle record');
    const at = victim.offset + RECORD_HEADER_BYTES + Math.floor((victim.bytes - RECORD_HEADER_BYTES) / 2);
    const damaged = Buffer.from(data);
    damaged[at] = (damaged[at] ?? 0) ^ 0x10;
    await writeFile(file, damaged);

    const proc = follower.spawn('bootstrap');
    const status = await within(proc.exited, 20_000, `${follower.id} to refuse to start`);
    const stderr = proc.stderr();
    expect(status.code, `exit status; stderr: ${stderr.slice(-2000)}`)
      .to.be.a('number')
      .and.not.equal(0);
    expect(proc.stdout()).to.not.include('Concord listening on');
    expect(stderr).to.include(file);
    expect(stderr).to.match(new RegExp(`offset ${victim.offset}\\b`));
    expect(stderr).to.include('corrupt');
  });
});
