/**
 * Tests of the harness itself, against Debian's redis-server (always available, so these run
 * even while Concord's server is incomplete): process start/stop, raw RESP framing, redis-cli.
 */
import { expect } from 'chai';
import {
  encodeCommand,
  frameLength,
  rawConnection,
  redisCli,
  RespDouble,
  startRedisServer,
} from './harness.js';
import type { ServerHandle } from './harness.js';

describe('compat harness (against redis-server)', function () {
  let redis: ServerHandle;

  before(async function () {
    redis = await startRedisServer();
  });

  after(async function () {
    await redis.stop();
  });

  it('starts on a free loopback port and answers PING over a raw socket', async function () {
    const conn = await rawConnection(redis.port);
    const reply = await conn.call('PING');
    expect(reply.raw.toString()).to.equal('+PONG\r\n');
    expect(reply.value).to.equal('PONG');
    conn.close();
  });

  it('reads replies split at every byte and several replies in one chunk', async function () {
    const conn = await rawConnection(redis.port);
    const payload = Buffer.concat([
      encodeCommand(['SET', 'h:k', 'v']),
      encodeCommand(['GET', 'h:k']),
      encodeCommand(['NOPE']),
    ]);
    for (const byte of payload) conn.write(Buffer.from([byte]));
    expect((await conn.readReply()).value).to.equal('OK');
    expect((await conn.readReply()).value).to.equal('v');
    const error = await conn.readReply();
    expect(error.isError).to.equal(true);
    expect(String(error.raw)).to.match(/^-ERR unknown command/);
    conn.close();
  });

  it('decodes RESP3 replies after HELLO 3', async function () {
    const conn = await rawConnection(redis.port);
    const hello = await conn.call('HELLO', '3');
    expect(hello.value).to.be.instanceOf(Map);
    expect((hello.value as Map<unknown, unknown>).get('proto')).to.equal(3);
    const missing = await conn.call('GET', 'h:missing');
    expect(missing.raw.toString()).to.equal('_\r\n');
    expect(missing.value).to.equal(null);
    conn.close();
  });

  it('frames nested RESP3 values and waits for incomplete ones', function () {
    const whole = Buffer.from('%2\r\n+a\r\n,1.5\r\n+b\r\n*2\r\n#t\r\n$3\r\nxyz\r\n');
    expect(frameLength(whole, 0)).to.deep.equal({ end: whole.length, resp3: true });
    for (let cut = 0; cut < whole.length; cut++)
      expect(frameLength(whole.subarray(0, cut), 0)).to.equal(undefined);
    expect(new RespDouble(1.5).value).to.equal(1.5);
  });

  it('sees the connection close after QUIT', async function () {
    const conn = await rawConnection(redis.port);
    conn.send('QUIT');
    const rest = await conn.readUntilClosed();
    expect(rest.toString()).to.equal('+OK\r\n');
    expect(conn.isClosed()).to.equal(true);
  });

  it('runs redis-cli with arguments and with stdin', async function () {
    const set = await redisCli(redis.port, ['SET', 'h:cli', 'value']);
    expect(set).to.deep.include({ stdout: 'OK\n', code: 0 });
    const piped = await redisCli(redis.port, ['-x', 'SET', 'h:stdin'], 'from-stdin');
    expect(piped.code).to.equal(0);
    expect((await redisCli(redis.port, ['GET', 'h:stdin'])).stdout).to.equal('from-stdin\n');
  });

  it("fails fast, with the server's stderr, when the process exits before it is ready", async function () {
    const startedAt = Date.now();
    const failure = await startRedisServer({ args: ['--no-such-directive', 'x'] }).then(
      () => new Error('started'),
      (err: Error) => err,
    );
    expect(failure.message).to.match(/exited \(code 1/);
    expect(failure.message).to.include('no-such-directive');
    expect(Date.now() - startedAt).to.be.lessThan(10_000);
  });

  it('stops with SIGTERM and reports the exit', async function () {
    const other = await startRedisServer();
    await other.stop();
    expect(other.hasExited()).to.equal(true);
    const status = await other.exited;
    expect(status.code === 0 || status.signal === 'SIGTERM').to.equal(true);
  });
});
