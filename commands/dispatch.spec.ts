import { expect } from 'chai';
import { Dispatcher } from './dispatch.js';
import { LocalExecutor, type Executor } from './executor.js';
import { StateMachine, type Operation, type Result } from './state-machine.js';
import { Harness, plain } from './testing.js';
import type { Reply } from './reply.js';

/** An executor that answers through Promises, as the Raft-backed one will. */
class DeferredExecutor implements Executor {
  readonly inner = new LocalExecutor({ clock: () => 1000 });
  readonly waiters = this.inner.waiters;
  write(op: Operation): Promise<Result> {
    return Promise.resolve().then(() => this.inner.write(op));
  }
  read<A, T>(query: (sm: StateMachine, arg: A, nowMs: number) => T, arg: A): Promise<T> {
    return Promise.resolve().then(() => this.inner.read(query, arg));
  }
  readLocal<A, T>(query: (sm: StateMachine, arg: A, nowMs: number) => T, arg: A): T {
    return this.inner.readLocal(query, arg);
  }
}

class NotLeader extends Error {}

/** An executor whose writes fail with an operating error (as a lost leadership would). */
class FailingExecutor extends LocalExecutor {
  override write(): Result {
    throw new NotLeader('not the leader');
  }
}

describe('Dispatcher', () => {
  let h: Harness;
  beforeEach(() => {
    h = new Harness();
  });

  it('looks commands up case-insensitively', () => {
    expect(plain(h.runSync('PING'))).to.equal('PONG');
    expect(plain(h.runSync('ping'))).to.equal('PONG');
    expect(plain(h.runSync('PiNg', 'hello'))).to.equal('hello');
  });

  it('answers unknown commands as Redis does, quoting at most 128 bytes of arguments', () => {
    expect(plain(h.runSync('NOPE', 'a', 'b'))).to.deep.equal({
      error: "ERR unknown command 'NOPE', with args beginning with: 'a' 'b' ",
    });
    expect(plain(h.runSync('nope'))).to.deep.equal({
      error: "ERR unknown command 'nope', with args beginning with: ",
    });
    const long = 'x'.repeat(300);
    const message = (plain(h.runSync('nope', long, 'more')) as { error: string }).error;
    expect(message).to.equal(`ERR unknown command 'nope', with args beginning with: '${'x'.repeat(128)}' `);
    expect((plain(h.runSync('no\r\npe')) as { error: string }).error).not.to.match(/[\r\n]/);
  });

  it('checks arity before running anything', () => {
    expect(plain(h.runSync('GET'))).to.deep.equal({
      error: "ERR wrong number of arguments for 'get' command",
    });
    expect(plain(h.runSync('GET', 'a', 'b'))).to.deep.equal({
      error: "ERR wrong number of arguments for 'get' command",
    });
    expect(plain(h.runSync('PING', 'a', 'b'))).to.deep.equal({
      error: "ERR wrong number of arguments for 'ping' command",
    });
    expect(plain(h.runSync('CLIENT', 'SETNAME'))).to.deep.equal({
      error: "ERR wrong number of arguments for 'client|setname' command",
    });
  });

  it('resolves subcommands and names the container in errors', () => {
    expect(plain(h.runSync('client', 'ID'))).to.equal(1n);
    expect(plain(h.runSync('CLIENT', 'bogus'))).to.deep.equal({
      error: "ERR unknown subcommand 'bogus'. Try CLIENT HELP.",
    });
    expect(plain(h.runSync('CONFIG'))).to.deep.equal({
      error: "ERR wrong number of arguments for 'config' command",
    });
    expect(plain(h.runSync('COMMAND', 'nope'))).to.deep.equal({
      error: "ERR unknown subcommand 'nope'. Try COMMAND HELP.",
    });
    expect(h.runSync('COMMAND').kind).to.equal('array');
  });

  it('requires AUTH when a password is set, except for no_auth commands', () => {
    h.password = 'secret';
    h.session.authenticated = false;
    expect(plain(h.runSync('GET', 'a'))).to.deep.equal({ error: 'NOAUTH Authentication required.' });
    expect(plain(h.runSync('PING'))).to.deep.equal({ error: 'NOAUTH Authentication required.' });
    // Unknown commands and arity are reported first, as in Redis.
    expect(plain(h.runSync('NOPE')))
      .to.have.property('error')
      .that.match(/^ERR unknown command/);
    expect(plain(h.runSync('AUTH', 'wrong'))).to.deep.equal({
      error: 'WRONGPASS invalid username-password pair or user is disabled.',
    });
    expect(plain(h.runSync('AUTH', 'secret'))).to.equal('OK');
    expect(plain(h.runSync('GET', 'a'))).to.equal(null);
  });

  it('returns Promises only when the executor does, in both directions', async () => {
    const deferred = new Dispatcher({ executor: new DeferredExecutor(), requirePass: () => null });
    const ctx = h.ctx;
    const set = deferred.execute(
      ctx,
      ['SET', 'k', 'v'].map((s) => Buffer.from(s)),
    );
    expect(set).to.be.instanceOf(Promise);
    expect(plain(await set)).to.equal('OK');
    const get = deferred.execute(
      ctx,
      ['GET', 'k'].map((s) => Buffer.from(s)),
    );
    expect(get).to.be.instanceOf(Promise);
    expect(plain(await get)).to.equal('v');
    // Parse errors never reach the executor and answer at once.
    const bad = deferred.execute(
      ctx,
      ['SET', 'k', 'v', 'EX', 'x'].map((s) => Buffer.from(s)),
    );
    expect(bad).not.to.be.instanceOf(Promise);
    // INFO's keyspace figures are a local view with no barrier (they answer on a node with no
    // leader, as on a Redis replica): synchronous even when the executor's reads are not.
    const info = deferred.execute(
      ctx,
      ['INFO', 'keyspace'].map((s) => Buffer.from(s)),
    );
    expect(info).not.to.be.instanceOf(Promise);
    expect(plain(info as Reply)).to.equal('# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n');
  });

  it('lets operating errors propagate to the server', () => {
    const failing = new Dispatcher({ executor: new FailingExecutor(), requirePass: () => null });
    expect(() =>
      failing.execute(
        h.ctx,
        ['SET', 'k', 'v'].map((s) => Buffer.from(s)),
      ),
    ).to.throw(NotLeader);
  });

  it('dispatchers sharing an executor share its state machine', () => {
    const sm = new StateMachine();
    const executor = new LocalExecutor({ stateMachine: sm, clock: () => 5 });
    const a = new Dispatcher({ executor, requirePass: () => null });
    const b = new Dispatcher({ executor, requirePass: () => null });
    const set = a.execute(
      h.ctx,
      ['SET', 'x', '1'].map((s) => Buffer.from(s)),
    );
    const get = b.execute(
      h.ctx,
      ['GET', 'x'].map((s) => Buffer.from(s)),
    );
    if (set instanceof Promise || get instanceof Promise)
      expect.fail('the local executor answered asynchronously');
    expect(plain(set)).to.equal('OK');
    expect(plain(get)).to.equal('1');
    expect(sm.lastAppliedIndex).to.equal(1);
  });
});
