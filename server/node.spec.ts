/**
 * ConcordApplication: operations reach the StateMachine with gap-free indexes whatever Raft
 * entries sit between them, membership entries fill the member table, and a snapshot carries
 * both (a node restored from it knows every member's addresses).
 */
import { expect } from 'chai';
import { encodeOperation } from '../commands/codec.js';
import { StateMachine } from '../commands/state-machine.js';
import { ConfChangeType, EntryType, encodeConfChange } from '../raft/messages.js';
import { ConcordApplication, MAX_REMOVED_IDS } from './node.js';

describe('server/node ConcordApplication', () => {
  it('applies operations around Empty and ConfChange entries and snapshots members with the state', async () => {
    let changed = 0;
    const app = new ConcordApplication(new StateMachine(), () => changed++);
    let index = 0;
    const conf = (type: ConfChangeType, node: string, context?: string): void => {
      const change = context === undefined ? { type, node } : { type, node, context };
      const payload = encodeConfChange(change);
      expect(app.apply({ index: ++index, term: 1, type: EntryType.ConfChange, timeMs: 0, payload })).to.equal(
        null,
      );
      app.applyConfChange(change, index);
    };
    conf(ConfChangeType.AddVoter, 'n1', '127.0.0.1:7001@17001');
    conf(ConfChangeType.AddVoter, 'n2', '127.0.0.1:7002@9002');
    expect(
      app.apply({ index: ++index, term: 2, type: EntryType.Empty, timeMs: 0, payload: new Uint8Array(0) }),
    ).to.equal(null);
    const op = { type: 'keys.incrby', key: Buffer.from('n'), delta: 2n } as const;
    const first = app.apply({
      index: ++index,
      term: 2,
      type: EntryType.Normal,
      timeMs: 1000,
      payload: encodeOperation(op),
    });
    const second = app.apply({
      index: ++index,
      term: 2,
      type: EntryType.Normal,
      timeMs: 2000,
      payload: encodeOperation(op),
    });
    expect([first, second]).to.deep.equal([
      { type: 'integer', value: 2n },
      { type: 'integer', value: 4n },
    ]);
    conf(ConfChangeType.AddLearner, 'n3', '10.0.0.3:7003@17003');
    conf(ConfChangeType.RemoveNode, 'n2');
    expect(changed).to.equal(4);
    expect([...app.members.keys()].sort()).to.deep.equal(['n1', 'n3']);
    expect([...app.removed]).to.deep.equal([['n2', index]]);

    const data = await app.snapshot();
    const restored = new ConcordApplication(new StateMachine());
    await restored.restore({
      metadata: { index, term: 2, confState: { voters: ['n1'], learners: ['n3'] } },
      data,
    });
    expect(Object.fromEntries(restored.members)).to.deep.equal({
      n1: { address: { host: '127.0.0.1', port: 7001, peerPort: 17001 }, voter: true },
      n3: { address: { host: '10.0.0.3', port: 7003, peerPort: 17003 }, voter: false },
    });
    expect([...restored.removed]).to.deep.equal([['n2', index]]);
    expect(restored.stateMachine.snapshot().equals(app.stateMachine.snapshot())).to.equal(true);
    expect(restored.appliedTimeMs()).to.equal(2000);
    const bad = await Promise.resolve()
      .then(() =>
        restored.restore({
          metadata: { index, term: 2, confState: { voters: [], learners: [] } },
          data: new Uint8Array(20),
        }),
      )
      .then(
        () => null,
        (error: unknown) => error,
      );
    expect(bad).to.be.instanceOf(Error);
    expect((bad as Error).message).to.match(/not a Concord node snapshot/);
  });

  it('keeps at most MAX_REMOVED_IDS removed ids (oldest forgotten), and a re-added id leaves the set', () => {
    const app = new ConcordApplication(new StateMachine());
    for (let i = 1; i <= MAX_REMOVED_IDS + 5; i++) {
      app.applyConfChange({ type: ConfChangeType.AddVoter, node: `r${i}` }, 2 * i - 1);
      app.applyConfChange({ type: ConfChangeType.RemoveNode, node: `r${i}` }, 2 * i);
    }
    expect(app.removed.size).to.equal(MAX_REMOVED_IDS);
    expect(app.removed.has('r5')).to.equal(false);
    expect(app.removed.get('r6')).to.equal(12);
    app.applyConfChange({ type: ConfChangeType.AddLearner, node: 'r6' }, 99_999);
    expect(app.removed.has('r6')).to.equal(false);
  });

  it('restores a version 1 snapshot (before removed ids were kept): no removed ids', async () => {
    const app = new ConcordApplication(new StateMachine());
    app.applyConfChange({ type: ConfChangeType.AddVoter, node: 'n1', context: '127.0.0.1:7001@17001' }, 1);
    const v2 = Buffer.from(await app.snapshot());
    const membersLength = v2.readUInt32BE(5);
    const removedLength = v2.readUInt32BE(9 + membersLength);
    const v1 = Buffer.concat([
      v2.subarray(0, 9 + membersLength),
      v2.subarray(9 + membersLength + 4 + removedLength),
    ]);
    v1.writeUInt8(1, 4);
    const restored = new ConcordApplication(new StateMachine());
    restored.removed.set('stale', 1);
    await restored.restore({
      metadata: { index: 1, term: 1, confState: { voters: ['n1'], learners: [] } },
      data: v1,
    });
    expect([...restored.members.keys()]).to.deep.equal(['n1']);
    expect(restored.removed.size).to.equal(0);
    expect(restored.stateMachine.snapshot().equals(app.stateMachine.snapshot())).to.equal(true);
  });

  it('restores a large state in slices: the event loop runs between them, the state swaps at the end', async () => {
    const source = new ConcordApplication(new StateMachine());
    const value = Buffer.alloc(64, 0x61);
    for (let i = 0; i < 200_000; i++) {
      source.stateMachine.apply({
        index: i + 1,
        timeMs: 1000,
        op: {
          type: 'keys.set',
          key: Buffer.from(`k${i}`),
          value,
          condition: 'always',
          expire: 'none',
          expireMs: 0,
          get: false,
        },
      });
    }
    const data = await source.snapshot();
    const target = new ConcordApplication(new StateMachine());
    const before = target.stateMachine.snapshot();
    let turns = 0;
    let unchangedMeanwhile = true;
    let done = false;
    const restoring = target
      .restore({ metadata: { index: 1, term: 1, confState: { voters: ['n1'], learners: [] } }, data })
      .then(() => {
        done = true;
      });
    const spin = (): void => {
      if (done) return;
      turns++;
      if (!target.stateMachine.snapshot().equals(before)) unchangedMeanwhile = false;
      setImmediate(spin);
    };
    setImmediate(spin);
    await restoring;
    expect(turns, 'event-loop turns while restoring').to.be.at.least(2);
    expect(unchangedMeanwhile).to.equal(true);
    expect(target.stateMachine.snapshot().equals(source.stateMachine.snapshot())).to.equal(true);
  });
});
