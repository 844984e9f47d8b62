import { expect } from 'chai';
import fc from 'fast-check';
import { ConfChangeType, decodeConfChange, encodeConfChange, type ConfChange } from './messages.js';

describe('raft/messages ConfChange codec', () => {
  const types = fc.constantFrom(ConfChangeType.AddVoter, ConfChangeType.AddLearner, ConfChangeType.RemoveNode);

  it('round-trips changes with and without a context', () => {
    fc.assert(
      fc.property(types, fc.string({ minLength: 1 }), fc.option(fc.string(), { nil: undefined }), (type, node, context) => {
        const cc: ConfChange = context === undefined ? { type, node } : { type, node, context };
        expect(decodeConfChange(encodeConfChange(cc))).to.deep.equal(cc);
      }),
    );
  });

  it('decodes the original format (type byte, then the id) written by older logs', () => {
    const old = new Uint8Array([ConfChangeType.AddLearner, ...new TextEncoder().encode('n4')]);
    expect(decodeConfChange(old)).to.deep.equal({ type: ConfChangeType.AddLearner, node: 'n4' });
    const noContext = encodeConfChange({ type: ConfChangeType.RemoveNode, node: 'n2' });
    expect([...noContext]).to.deep.equal([ConfChangeType.RemoveNode, ...new TextEncoder().encode('n2')]);
  });

  it('rejects a bad type and a truncated context form', () => {
    expect(() => decodeConfChange(new Uint8Array([7, 65]))).to.throw(/bad conf change type/);
    expect(() => decodeConfChange(new Uint8Array([0x80, 0, 9, 65]))).to.throw(/truncated/);
  });
});
