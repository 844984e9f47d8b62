/**
 * The follower -> leader wire format: a WRITE_BATCH carries its operations and answers one
 * status and body per write, in order; malformed bytes are a BAD_REQUEST, nothing proposed.
 */
import { expect } from 'chai';
import { encodeOperation } from '../commands/codec.js';
import type { Result } from '../commands/state-machine.js';
import { ProposalDroppedError } from '../raft/errors.js';
import {
  decodeBatchResponse,
  decodeForwardResponse,
  encodeForwardRequest,
  encodeWriteBatch,
  ForwardKind,
  ForwardStatus,
  serveForwarded,
} from './forward.js';
import type { ForwardTarget } from './forward.js';

const incr = (delta: bigint): Buffer =>
  encodeOperation({ type: 'keys.incrby', key: Buffer.from('n'), delta });

function target(proposed: Buffer[], fail: (i: number) => Error | null): ForwardTarget {
  return {
    isLeader: true,
    leaderId: 'a',
    propose: (payload) => {
      const i = proposed.push(Buffer.from(payload)) - 1;
      const error = fail(i);
      return error === null
        ? Promise.resolve<Result>({ type: 'integer', value: BigInt(i) })
        : Promise.reject(error);
    },
    leaderTimeMs: () => 0,
    learnPeers: () => undefined,
  };
}

describe('server/forward: WRITE_BATCH', () => {
  it('proposes every write in order, at once, and answers each in order', async () => {
    const proposed: Buffer[] = [];
    const ops = [incr(1n), incr(2n), incr(3n)];
    const answer = serveForwarded(
      target(proposed, (i) => (i === 1 ? new ProposalDroppedError('full') : null)),
      encodeForwardRequest(ForwardKind.WriteBatch, encodeWriteBatch(ops)),
    );
    // Proposed before the handler's first await: a batch keeps its place among other requests.
    expect(proposed).to.deep.equal(ops);
    const response = decodeForwardResponse(Buffer.from(await answer));
    expect(response.status).to.equal(ForwardStatus.Ok);
    const items = decodeBatchResponse(response.body);
    expect(items.map((it) => it.status)).to.deep.equal([
      ForwardStatus.Ok,
      ForwardStatus.Dropped,
      ForwardStatus.Ok,
    ]);
    expect(items[1]!.body.toString()).to.contain('full');
  });

  it('a write that does not decode is a BAD_REQUEST for it alone; a torn batch for all, nothing proposed', async () => {
    const proposed: Buffer[] = [];
    const mixed = await serveForwarded(
      target(proposed, () => null),
      encodeForwardRequest(
        ForwardKind.WriteBatch,
        encodeWriteBatch([incr(1n), Buffer.from([0xff]), incr(2n)]),
      ),
    );
    const items = decodeBatchResponse(decodeForwardResponse(Buffer.from(mixed)).body);
    expect(items.map((it) => it.status)).to.deep.equal([
      ForwardStatus.Ok,
      ForwardStatus.BadRequest,
      ForwardStatus.Ok,
    ]);
    expect(proposed).to.have.length(2);
    const body = encodeWriteBatch([incr(1n), incr(2n)]);
    const torn = await serveForwarded(
      target(proposed, () => null),
      encodeForwardRequest(ForwardKind.WriteBatch, body.subarray(0, body.length - 1)),
    );
    expect(decodeForwardResponse(Buffer.from(torn)).status).to.equal(ForwardStatus.BadRequest);
    expect(proposed).to.have.length(2);
  });

  it('on a node that is not the leader, nothing is proposed and the leader is named', async () => {
    const proposed: Buffer[] = [];
    const follower = { ...target(proposed, () => null), isLeader: false, leaderId: 'c' };
    const answer = await serveForwarded(
      follower,
      encodeForwardRequest(ForwardKind.WriteBatch, encodeWriteBatch([incr(1n)])),
    );
    const response = decodeForwardResponse(Buffer.from(answer));
    expect(response.status).to.equal(ForwardStatus.NotLeader);
    expect(response.body.toString()).to.equal('c');
    expect(proposed).to.have.length(0);
  });
});
