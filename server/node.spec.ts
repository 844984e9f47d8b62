/**
 * ConcordApplication: operations reach the StateMachine with gap-free indexes whatever Raft
 * entries sit between them, membership entries fill the member table, and a snapshot carries
 * both (a node restored from it knows every member's addresses).
 */
import { expect } from 'chai';
import { encodeOperation } from '../commands/codec.js';
import { StateMachine } from '../commands/state-machine.js';
import { ConfChangeType, EntryType, encodeConfChange } from '../raft/messages.js';
import { ConcordApplication } from './node.js';

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
      app.applyConfChange(change);
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

    const data = await app.snapshot();
    const restored = new ConcordApplication(new StateMachine());
    restored.restore({ metadata: { index, term: 2, confState: { voters: ['n1'], learners: ['n3'] } }, data });
    expect(Object.fromEntries(restored.members)).to.deep.equal({
      n1: { address: { host: '127.0.0.1', port: 7001, peerPort: 17001 }, voter: true },
      n3: { address: { host: '10.0.0.3', port: 7003, peerPort: 17003 }, voter: false },
    });
    expect(restored.stateMachine.snapshot().equals(app.stateMachine.snapshot())).to.equal(true);
    expect(restored.appliedTimeMs()).to.equal(2000);
    expect(() =>
      restored.restore({
        metadata: { index, term: 2, confState: { voters: [], learners: [] } },
        data: new Uint8Array(20),
      }),
    ).to.throw(/not a Concord node snapshot/);
  });
});
