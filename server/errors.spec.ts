import { expect } from 'chai';
import { pino } from 'pino';
import {
  LeadershipLostError,
  NodeStoppedError,
  NotLeaderError,
  ProposalDroppedError,
  ProposalTimeoutError,
  ReadTimeoutError,
} from '../raft/errors.js';
import { ClusterAdminError } from './cluster-view.js';
import { ConfigError, errorToReply } from './errors.js';
import { ClusterDownError, OutcomeUnknownError } from './raft-executor.js';

function capturingLogger(): { log: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
  return { log, lines };
}

describe('errors', () => {
  it('turns a ConfigError into its Redis text without logging', () => {
    const { log, lines } = capturingLogger();
    const reply = errorToReply(
      new ConfigError("ERR Unknown option or number of arguments for CONFIG SET - 'x'"),
      log,
    );
    expect(reply).to.deep.equal({
      kind: 'error',
      message: "ERR Unknown option or number of arguments for CONFIG SET - 'x'",
    });
    expect(lines).to.deep.equal([]);
  });

  it('turns Raft leadership errors into retryable TRYAGAIN replies', () => {
    const { log } = capturingLogger();
    expect(errorToReply(new NotLeaderError(null), log)).to.deep.equal({
      kind: 'error',
      message: 'TRYAGAIN no leader elected yet',
    });
    expect(errorToReply(new NotLeaderError('n2'), log)).to.deep.equal({
      kind: 'error',
      message: 'TRYAGAIN not the leader, try n2',
    });
    const dropped = errorToReply(new ProposalDroppedError('leadership transfer'), log);
    expect(dropped.kind === 'error' && dropped.message.startsWith('TRYAGAIN ')).to.equal(true);
  });

  it('maps cluster errors: CLUSTERDOWN without a leader, TRYAGAIN outcome unknown, never OK', () => {
    const { log, lines } = capturingLogger();
    const text = (e: unknown): string => {
      const reply = errorToReply(e, log);
      return reply.kind === 'error' ? reply.message : 'not an error';
    };
    expect(text(new ClusterDownError('no leader elected within 2000 ms'))).to.equal(
      'CLUSTERDOWN No leader: no leader elected within 2000 ms',
    );
    for (const unknown of [
      new LeadershipLostError(7, 'n2'),
      new ProposalTimeoutError(3000),
      new OutcomeUnknownError('forwarded to n1: connection lost'),
    ]) {
      expect(text(unknown)).to.match(/^TRYAGAIN outcome unknown: /);
    }
    expect(text(new ReadTimeoutError(2000))).to.match(/^TRYAGAIN raft: read index not confirmed/);
    expect(text(new NodeStoppedError('shutdown'))).to.match(/^TRYAGAIN node stopping/);
    expect(text(new ClusterAdminError('ERR Unknown node n9'))).to.equal('ERR Unknown node n9');
    expect(lines).to.deep.equal([]);
  });

  it('hides anything unexpected behind -ERR internal error and logs it at error level', () => {
    const { log, lines } = capturingLogger();
    const reply = errorToReply(new TypeError('secret detail'), log);
    expect(reply).to.deep.equal({ kind: 'error', message: 'ERR internal error' });
    expect(lines).to.have.length(1);
    const entry = JSON.parse(lines[0]!) as { level: number; err: { message: string } };
    expect(entry.level).to.equal(50);
    expect(entry.err.message).to.equal('secret detail');
  });
});
