/**
 * ioredis (RESP2) against a real server process: every command of the compatibility list,
 * a 10,000-command pipeline and 10,000 concurrent commands with replies in order, binary and
 * UTF-8 values, error replies as rejected promises, reconnect after CLIENT KILL, SHUTDOWN and
 * SIGTERM. Runs against Concord, or against redis-server with COMPAT_TARGET=redis.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import { ALL_BYTES, byteLength, ERRORS, uniqueKey, UTF8_TEXT } from './fixtures.js';
import { HOST, rawConnection, startTarget, TARGET, waitFor, within } from './harness.js';
import type { ServerHandle } from './harness.js';

const PASSWORD = 'compat-s3cret';
/** CLIENT SETINFO came with Redis 7.2; Debian's redis-server (the COMPAT_TARGET=redis check) is 7.0. */
const HAS_CLIENT_SETINFO = TARGET === 'concord';

/** Every ioredis client made here, closed in `after` hooks even when a test fails. */
const clients = new Set<Redis>();

function connect(port: number, options: RedisOptions = {}): Redis {
  // Bounded waits: a server that never answers fails the test quickly instead of hanging it.
  const client = new Redis({
    host: HOST,
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 3,
    connectTimeout: 5_000,
    commandTimeout: 10_000,
    ...options,
  });
  // Connection errors are asserted through command promises; keep them off the console.
  client.on('error', () => undefined);
  clients.add(client);
  return client;
}

async function ready(port: number, options: RedisOptions = {}): Promise<Redis> {
  const client = connect(port, options);
  await within(client.connect(), 10_000, 'the client to connect');
  return client;
}

function closeAll(): void {
  for (const client of clients) client.disconnect();
  clients.clear();
}

/** The rejection of `promise`, or a failure when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    const value = await promise;
    throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('expected a rejection')) throw err;
    expect(err).to.be.instanceOf(Error);
    return err as Error;
  }
}

/** Parses a CLIENT INFO / CLIENT LIST line into its fields. */
function clientFields(line: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const pair of line.trim().split(' ')) {
    const eq = pair.indexOf('=');
    if (eq > 0) fields.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return fields;
}

describe(`ioredis against ${TARGET}`, function () {
  let server: ServerHandle;
  let client: Redis;

  before(async function () {
    server = await startTarget();
    client = await ready(server.port);
  });

  after(async function () {
    closeAll();
    await server.stop();
  });

  describe('connection commands', function () {
    it('connects through the INFO ready check', function () {
      expect(client.status).to.equal('ready');
    });

    it('PING and ECHO', async function () {
      expect(await client.ping()).to.equal('PONG');
      expect(await client.ping('hello')).to.equal('hello');
      expect(await client.echo('echoed')).to.equal('echoed');
      expect(await client.echo('')).to.equal('');
    });

    it('HELLO 2 with SETNAME replies the server map as a flat array and names the client', async function () {
      const other = await ready(server.port);
      const reply = (await other.call('HELLO', '2', 'SETNAME', 'io-hello')) as unknown[];
      expect(reply.length % 2).to.equal(0);
      const fields = new Map<unknown, unknown>();
      for (let i = 0; i < reply.length; i += 2) fields.set(reply[i], reply[i + 1]);
      expect(fields.get('proto')).to.equal(2);
      expect(fields.get('id')).to.equal(await other.client('ID'));
      for (const key of ['server', 'version', 'mode', 'role', 'modules'])
        expect(fields.has(key), key).to.equal(true);
      expect(await other.client('GETNAME')).to.equal('io-hello');
      const bad = await rejection(other.call('HELLO', '4'));
      expect(bad.message).to.equal('NOPROTO unsupported protocol version');
    });

    it('AUTH without a configured password is refused with the text ioredis looks for', async function () {
      const refused = await rejection(client.auth('anything'));
      expect(refused.message).to.equal(ERRORS.authWithoutPassword);
      expect(refused.message).to.include('without any password configured for the default user');
    });

    it('SELECT 0', async function () {
      expect(await client.select(0)).to.equal('OK');
    });

    it('QUIT replies OK and closes the connection', async function () {
      const other = await ready(server.port);
      expect(await other.quit()).to.equal('OK');
      await waitFor('ioredis to end', () => (other.status === 'end' ? true : undefined));
    });

    it('RESET clears the connection state', async function () {
      const other = await ready(server.port);
      await other.client('SETNAME', 'before-reset');
      expect(await other.call('RESET')).to.equal('RESET');
      expect(await other.client('GETNAME')).to.equal(null);
      expect(await other.ping()).to.equal('PONG');
    });
  });

  describe('CLIENT', function () {
    it('ID, SETNAME, GETNAME, SETINFO, INFO', async function () {
      const other = await ready(server.port);
      const id = await other.client('ID');
      expect(id).to.be.a('number').and.greaterThan(0);
      expect(await other.client('GETNAME')).to.equal(null);
      expect(await other.client('SETNAME', 'io-named')).to.equal('OK');
      expect(await other.client('GETNAME')).to.equal('io-named');
      if (HAS_CLIENT_SETINFO) {
        expect(await other.call('CLIENT', 'SETINFO', 'LIB-NAME', 'compat-lib')).to.equal('OK');
        expect(await other.call('CLIENT', 'SETINFO', 'LIB-VER', '1.2.3')).to.equal('OK');
      }
      const info = clientFields(String(await other.client('INFO')));
      expect(info.get('id')).to.equal(String(id));
      expect(info.get('name')).to.equal('io-named');
      if (HAS_CLIENT_SETINFO) {
        expect(info.get('lib-name')).to.equal('compat-lib');
        expect(info.get('lib-ver')).to.equal('1.2.3');
      }
      expect(info.get('addr')).to.equal(`127.0.0.1:${String(other.stream.localPort)}`);
      expect(info.get('laddr')).to.equal(`127.0.0.1:${server.port}`);
      const spaces = await rejection(other.client('SETNAME', 'has space'));
      expect(spaces.message).to.equal(
        'ERR Client names cannot contain spaces, newlines or special characters.',
      );
    });

    it('LIST shows every connection with its id and name', async function () {
      const other = await ready(server.port, { connectionName: 'io-listed' });
      const id = await other.client('ID');
      const lines = String(await client.client('LIST'))
        .split('\n')
        .filter((line) => line !== '');
      const mine = lines.map(clientFields).find((fields) => fields.get('id') === String(id));
      expect(mine, 'our connection in CLIENT LIST').to.not.equal(undefined);
      expect(mine!.get('name')).to.equal('io-listed');
      expect(lines.length).to.be.at.least(2);
    });

    it('KILL by ID and by address; unknown clients', async function () {
      const victim = await ready(server.port, { retryStrategy: () => null });
      const victimId = await victim.client('ID');
      expect(await client.client('KILL', 'ID', String(victimId))).to.equal(1);
      await waitFor('the killed client to end', () => (victim.status === 'end' ? true : undefined));
      expect(await client.client('KILL', 'ID', '999999999')).to.equal(0);

      const byAddr = await ready(server.port, { retryStrategy: () => null });
      const addr = `127.0.0.1:${String(byAddr.stream.localPort)}`;
      expect(await client.client('KILL', addr)).to.equal('OK');
      await waitFor('the killed client to end', () => (byAddr.status === 'end' ? true : undefined));
      const none = await rejection(client.client('KILL', '127.0.0.1:1'));
      expect(none.message).to.equal('ERR No such client');
    });

    it('reconnects after CLIENT KILL and restores its name', async function () {
      const victim = await ready(server.port, { connectionName: 'io-victim', retryStrategy: () => 10 });
      const before = await victim.client('ID');
      let reconnects = 0;
      victim.on('reconnecting', () => (reconnects += 1));
      expect(await client.client('KILL', 'ID', String(before))).to.equal(1);
      // Commands sent while disconnected wait in ioredis's offline queue and go out on reconnect.
      expect(await victim.ping()).to.equal('PONG');
      const after = await victim.client('ID');
      expect(after).to.not.equal(before);
      expect(reconnects).to.be.at.least(1);
      expect(await victim.client('GETNAME')).to.equal('io-victim');
    });
  });

  describe('resend after reconnect', function () {
    it('20,000 SETs in flight around a CLIENT KILL all succeed (those unanswered are resent after the reconnect)', async function () {
      const victim = await ready(server.port, { retryStrategy: () => 10 });
      const id = await victim.client('ID');
      let reconnects = 0;
      victim.on('reconnecting', () => (reconnects += 1));
      const prefix = uniqueKey('resend');
      const keys = Array.from({ length: 20_000 }, (_, i) => `${prefix}:${i}`);
      // SET is idempotent, so a resent command that had already been applied does no harm.
      const pending = keys.map((key, i) => victim.set(key, `v${i}`));
      await pending[0];
      expect(await client.client('KILL', 'ID', String(id))).to.equal(1);
      const replies = await Promise.all(pending);
      expect(replies.every((reply) => reply === 'OK')).to.equal(true);
      // Whether the kill lands mid-flight depends on timing; the reconnect happens either way.
      await waitFor('the reconnect', () => (reconnects > 0 && victim.status === 'ready' ? true : undefined));
      expect(await victim.client('ID')).to.not.equal(id);
      const values = await client.mget(...keys);
      expect(values.every((value, i) => value === `v${i}`)).to.equal(true);
    });
  });

  describe('server commands', function () {
    it('INFO and INFO <section>', async function () {
      const all = await client.info();
      expect(all).to.include('# Server');
      expect(all).to.match(/^redis_version:\S+/m);
      expect(all).to.include('# Clients');
      expect(all).to.match(/^connected_clients:\d+/m);
      const serverOnly = await client.info('server');
      expect(serverOnly).to.include('# Server');
      expect(serverOnly).to.match(/^tcp_port:(\d+)/m);
      expect(/^tcp_port:(\d+)/m.exec(serverOnly)![1]).to.equal(String(server.port));
      expect(serverOnly).to.not.include('# Clients');
    });

    it('CONFIG GET and CONFIG SET', async function () {
      const save = (await client.config('GET', 'save')) as string[];
      expect(save).to.have.length(2);
      expect(save[0]).to.equal('save');
      const two = (await client.call('CONFIG', 'GET', 'save', 'appendonly')) as string[];
      expect(two).to.have.length(4);
      expect(two.filter((_, i) => i % 2 === 0).sort()).to.deep.equal(['appendonly', 'save']);
      expect(await client.config('SET', 'timeout', '120')).to.equal('OK');
      expect(await client.config('GET', 'timeout')).to.deep.equal(['timeout', '120']);
      expect(await client.config('SET', 'timeout', '0')).to.equal('OK');
      expect(await client.config('GET', 'no-such-parameter')).to.deep.equal([]);
      const bad = await rejection(client.config('SET', 'no-such-parameter', '1'));
      expect(bad.message).to.equal(
        "ERR Unknown option or number of arguments for CONFIG SET - 'no-such-parameter'",
      );
    });

    it('TIME is close to the local clock', async function () {
      const [seconds, micros] = await client.time();
      expect(Number(micros)).to.be.lessThan(1_000_000);
      const serverMs = Number(seconds) * 1000 + Number(micros) / 1000;
      expect(Math.abs(serverMs - Date.now())).to.be.lessThan(5_000);
    });

    it('DBSIZE counts keys', async function () {
      const before = await client.dbsize();
      const key = uniqueKey('dbsize');
      await client.set(key, 'v');
      expect(await client.dbsize()).to.equal(before + 1);
      await client.del(key);
      expect(await client.dbsize()).to.equal(before);
    });

    it('COMMAND, COMMAND COUNT, COMMAND INFO, COMMAND DOCS', async function () {
      const all = (await client.call('COMMAND')) as unknown[][];
      const count = (await client.call('COMMAND', 'COUNT')) as number;
      expect(all).to.have.length(count);
      const names = new Set(all.map((entry) => entry[0]));
      for (const name of [
        'ping',
        'echo',
        'hello',
        'auth',
        'select',
        'quit',
        'reset',
        'client',
        'info',
        'config',
      ]) {
        expect(names.has(name), name).to.equal(true);
      }
      for (const name of [
        'time',
        'dbsize',
        'shutdown',
        'command',
        'get',
        'set',
        'del',
        'exists',
        'incr',
        'incrby',
      ]) {
        expect(names.has(name), name).to.equal(true);
      }
      expect(names.has('mget') && names.has('mset')).to.equal(true);
      const info = await client.command('INFO', 'get', 'set', 'no-such-command');
      expect(info).to.have.length(3);
      const [get, set, missing] = info as [unknown[], unknown[], null];
      expect(get.slice(0, 2)).to.deep.equal(['get', 2]);
      expect(get.slice(3, 6)).to.deep.equal([1, 1, 1]);
      expect(set.slice(0, 2)).to.deep.equal(['set', -3]);
      expect(missing).to.equal(null);
      const docs = await client.command('DOCS', 'set');
      expect(docs[0]).to.equal('set');
      const fields = docs[1] as unknown[];
      const keys = fields.filter((_, i) => i % 2 === 0);
      expect(keys).to.include.members(['summary', 'since', 'group', 'arguments']);
      const argumentsIndex = fields.indexOf('arguments');
      const argumentNames = (fields[argumentsIndex + 1] as unknown[][]).map(
        (arg) => arg[arg.indexOf('name') + 1],
      );
      expect(argumentNames).to.include.members(['key', 'value']);
    });
  });

  describe('keys', function () {
    it('SET and GET, with NX, XX, GET, EX', async function () {
      const key = uniqueKey('set');
      expect(await client.get(key)).to.equal(null);
      expect(await client.set(key, 'one', 'XX')).to.equal(null);
      expect(await client.set(key, 'one', 'NX')).to.equal('OK');
      expect(await client.set(key, 'two', 'NX')).to.equal(null);
      expect(await client.get(key)).to.equal('one');
      expect(await client.set(key, 'three', 'XX')).to.equal('OK');
      expect(await client.set(key, 'four', 'GET')).to.equal('three');
      expect(await client.set(uniqueKey('set'), 'x', 'GET')).to.equal(null);
      expect(await client.set(key, 'five', 'EX', 100)).to.equal('OK');
      expect(await client.get(key)).to.equal('five');
      const zero = await rejection(client.set(key, 'x', 'EX', 0));
      expect(zero.message).to.equal("ERR invalid expire time in 'set' command");
      const both = await rejection(client.call('SET', key, 'x', 'NX', 'XX'));
      expect(both.message).to.equal(ERRORS.syntax);
      const notNumber = await rejection(client.call('SET', key, 'x', 'EX', 'soon'));
      expect(notNumber.message).to.equal(ERRORS.notInteger);
    });

    it('SET PX expires the key, not before its time', async function () {
      const key = uniqueKey('px');
      const sentAt = Date.now();
      expect(await client.set(key, 'short-lived', 'PX', 150)).to.equal('OK');
      await waitFor(
        'the key to expire',
        async () => ((await client.get(key)) === null ? true : undefined),
        5_000,
      );
      expect(Date.now() - sentAt).to.be.at.least(145);
    });

    it('DEL and EXISTS count keys (EXISTS counts repeats)', async function () {
      const a = uniqueKey('del');
      const b = uniqueKey('del');
      await client.mset(a, '1', b, '2');
      expect(await client.exists(a, a, b, uniqueKey('missing'))).to.equal(3);
      expect(await client.del(a, b, uniqueKey('missing'))).to.equal(2);
      expect(await client.exists(a, b)).to.equal(0);
    });

    it('INCR and INCRBY, and their errors', async function () {
      const key = uniqueKey('incr');
      expect(await client.incr(key)).to.equal(1);
      expect(await client.incrby(key, 41)).to.equal(42);
      expect(await client.incrby(key, -50)).to.equal(-8);
      expect(await client.get(key)).to.equal('-8');
      await client.set(key, 'not a number');
      expect((await rejection(client.incr(key))).message).to.equal(ERRORS.notInteger);
      await client.set(key, '9223372036854775807');
      expect((await rejection(client.incr(key))).message).to.equal(
        'ERR increment or decrement would overflow',
      );
      expect((await rejection(client.call('INCRBY', key, 'x'))).message).to.equal(ERRORS.notInteger);
    });

    it('MSET and MGET', async function () {
      const [a, b] = [uniqueKey('m'), uniqueKey('m')];
      expect(await client.mset(a, 'va', b, 'vb')).to.equal('OK');
      expect(await client.mget(a, uniqueKey('missing'), b)).to.deep.equal(['va', null, 'vb']);
      expect((await rejection(client.call('MSET', a, 'va', b))).message).to.equal(ERRORS.wrongArity('mset'));
    });
  });

  describe('errors', function () {
    it('unknown command and wrong arity reject with Redis messages; the connection stays usable', async function () {
      const unknown = await rejection(client.call('NOSUCHCMD', 'a', 'b'));
      expect(unknown.message).to.equal(ERRORS.unknownCommand('NOSUCHCMD', 'a', 'b'));
      expect(unknown.name).to.equal('ReplyError');
      expect((await rejection(client.call('GET'))).message).to.equal(ERRORS.wrongArity('get'));
      expect((await rejection(client.call('SET', 'k'))).message).to.equal(ERRORS.wrongArity('set'));
      expect((await rejection(client.call('CLIENT', 'NOSUCHSUB'))).message).to.match(
        /^ERR unknown subcommand 'NOSUCHSUB'\. Try CLIENT HELP\.$/,
      );
      expect(await client.ping()).to.equal('PONG');
    });
  });

  describe('10,000 commands at once', function () {
    it('a pipeline of 10,000 mixed commands replies in order', async function () {
      const prefix = uniqueKey('pipe');
      const counter = `${prefix}:counter`;
      const pipeline = client.pipeline();
      for (let i = 0; i < 10_000; i++) {
        if (i % 4 === 0) pipeline.set(`${prefix}:${i}`, `value-${i}`);
        else if (i % 4 === 1) pipeline.get(`${prefix}:${i - 1}`);
        else if (i % 4 === 2) pipeline.incr(counter);
        else pipeline.call('NOSUCHCMD', String(i));
      }
      const results = (await pipeline.exec())!;
      expect(results).to.have.length(10_000);
      results.forEach(([err, value], i) => {
        if (i % 4 === 0) expect([err, value]).to.deep.equal([null, 'OK']);
        else if (i % 4 === 1) expect([err, value]).to.deep.equal([null, `value-${i - 1}`]);
        else if (i % 4 === 2) expect([err, value]).to.deep.equal([null, (i - 2) / 4 + 1]);
        else expect(err?.message).to.equal(ERRORS.unknownCommand('NOSUCHCMD', String(i)));
      });
    });

    it('10,000 concurrent commands without a pipeline resolve in order', async function () {
      const replies = await Promise.all(Array.from({ length: 10_000 }, (_, i) => client.echo(`n${i}`)));
      expect(replies).to.deep.equal(Array.from({ length: 10_000 }, (_, i) => `n${i}`));
    });
  });

  describe('auto-pipelining', function () {
    it('enableAutoPipelining: 10,000 calls in flight, replies in order, queue drained', async function () {
      const auto = await ready(server.port, { enableAutoPipelining: true });
      const key = uniqueKey('auto');
      const replies = await Promise.all(Array.from({ length: 10_000 }, () => auto.incr(key)));
      expect(replies).to.deep.equal(Array.from({ length: 10_000 }, (_, i) => i + 1));
      expect(auto.autoPipelineQueueSize).to.equal(0);
    });
  });

  describe('binary and UTF-8 values', function () {
    it('keys and values with all 256 byte values round-trip as Buffers', async function () {
      const key = Buffer.concat([Buffer.from(uniqueKey('bin')), ALL_BYTES]);
      expect(await client.set(key, ALL_BYTES)).to.equal('OK');
      expect((await client.getBuffer(key))!.equals(ALL_BYTES)).to.equal(true);
      expect(await client.exists(key)).to.equal(1);
      expect((await client.echoBuffer(ALL_BYTES)).equals(ALL_BYTES)).to.equal(true);
      const other = Buffer.concat([key, Buffer.from([0])]);
      await client.mset(other, Buffer.from([0, 13, 10, 255]));
      const [first, second] = await client.mgetBuffer(key, other);
      expect(first!.equals(ALL_BYTES)).to.equal(true);
      expect(second!.equals(Buffer.from([0, 13, 10, 255]))).to.equal(true);
      expect(await client.del(key, other)).to.equal(2);
    });

    it('a 1 MiB binary value round-trips', async function () {
      const big = Buffer.alloc(1024 * 1024);
      for (let i = 0; i < big.length; i++) big[i] = (i * 7919 + (i >> 8)) & 0xff;
      const key = uniqueKey('big');
      await client.set(key, big);
      expect((await client.getBuffer(key))!.equals(big)).to.equal(true);
      await client.del(key);
    });

    it('multi-byte UTF-8 keys and values keep their bytes; lengths are byte lengths', async function () {
      const key = `${uniqueKey('utf8')}:ключ:鍵`;
      expect(UTF8_TEXT.length).to.not.equal(byteLength(UTF8_TEXT));
      await client.set(key, UTF8_TEXT);
      expect(await client.get(key)).to.equal(UTF8_TEXT);
      expect(await client.echo(UTF8_TEXT)).to.equal(UTF8_TEXT);
      expect(await client.mget(key)).to.deep.equal([UTF8_TEXT]);
      const raw = await rawConnection(server.port);
      try {
        const reply = await raw.call('GET', key);
        expect(reply.raw.toString('latin1', 0, reply.raw.indexOf('\r\n'))).to.equal(
          `$${byteLength(UTF8_TEXT)}`,
        );
        expect(reply.value).to.equal(UTF8_TEXT);
      } finally {
        raw.close();
      }
    });
  });

  describe('AUTH (requirepass)', function () {
    let secured: ServerHandle;

    before(async function () {
      secured = await startTarget({ requirepass: PASSWORD });
    });

    after(async function () {
      closeAll();
      await secured.stop();
    });

    it('without a password: -NOAUTH, and the ready check fails', async function () {
      const anonymous = await ready(secured.port, { enableReadyCheck: false });
      expect((await rejection(anonymous.get('k'))).message).to.equal(ERRORS.noAuth);
      expect(await anonymous.call('PING').catch((err: Error) => err.message)).to.equal(ERRORS.noAuth);
      const checked = connect(secured.port, { retryStrategy: () => null });
      const errors: string[] = [];
      checked.on('error', (err: Error) => errors.push(err.message));
      await rejection(within(checked.connect(), 10_000, 'the connection to fail'));
      expect(errors).to.include(ERRORS.noAuth);
    });

    it('a wrong password: -WRONGPASS; the right one unlocks the connection', async function () {
      const anonymous = await ready(secured.port, { enableReadyCheck: false });
      expect((await rejection(anonymous.auth('wrong'))).message).to.equal(ERRORS.wrongPass);
      expect((await rejection(anonymous.auth('default', 'wrong'))).message).to.equal(ERRORS.wrongPass);
      expect(await anonymous.auth(PASSWORD)).to.equal('OK');
      expect(await anonymous.auth('default', PASSWORD)).to.equal('OK');
      expect(await anonymous.set('k', 'v')).to.equal('OK');
    });

    it('the password option authenticates before the ready check', async function () {
      const withPassword = await ready(secured.port, { password: PASSWORD });
      expect(withPassword.status).to.equal('ready');
      expect(await withPassword.ping()).to.equal('PONG');
      const withUser = await ready(secured.port, { username: 'default', password: PASSWORD });
      expect(await withUser.ping()).to.equal('PONG');
    });

    it('HELLO 2 AUTH authenticates and SETNAME names the connection', async function () {
      const anonymous = await ready(secured.port, { enableReadyCheck: false });
      const bad = await rejection(anonymous.call('HELLO', '2', 'AUTH', 'default', 'wrong'));
      expect(bad.message).to.equal(ERRORS.wrongPass);
      const reply = (await anonymous.call(
        'HELLO',
        '2',
        'AUTH',
        'default',
        PASSWORD,
        'SETNAME',
        'io-auth',
      )) as unknown[];
      expect(reply[reply.indexOf('proto') + 1]).to.equal(2);
      expect(await anonymous.client('GETNAME')).to.equal('io-auth');
    });
  });

  describe('process lifecycle', function () {
    it('SHUTDOWN makes the process exit cleanly', async function () {
      const doomed = await startTarget();
      const victim = await ready(doomed.port, { retryStrategy: () => null });
      // The server closes the connection instead of replying.
      await victim.shutdown().catch((err: unknown) => err);
      const status = await within(doomed.exited, 15_000, 'the process to exit');
      expect(status).to.deep.equal({ code: 0, signal: null });
    });

    it('SIGTERM: exit code 0 and every reply already started is delivered whole, in order', async function () {
      const doomed = await startTarget();
      const victim = await ready(doomed.port, { retryStrategy: () => null, maxRetriesPerRequest: 0 });
      const key = uniqueKey('sigterm');
      const pending = Array.from({ length: 2_000 }, () => victim.incr(key));
      await pending[0];
      doomed.kill('SIGTERM');
      const settled = await Promise.allSettled(pending);
      const delivered = settled.findIndex((result) => result.status === 'rejected');
      const count = delivered === -1 ? settled.length : delivered;
      expect(count).to.be.at.least(1);
      settled
        .slice(0, count)
        .forEach((result, i) => expect(result).to.deep.equal({ status: 'fulfilled', value: i + 1 }));
      expect(settled.slice(count).every((result) => result.status === 'rejected')).to.equal(true);
      expect(await within(doomed.exited, 15_000, 'the process to exit')).to.deep.equal({
        code: 0,
        signal: null,
      });
    });

    it('SIGTERM with a raw socket: no truncated reply, then a clean close', async function () {
      const doomed = await startTarget();
      const raw = await rawConnection(doomed.port);
      const key = uniqueKey('sigterm-raw');
      let batch = '';
      for (let i = 0; i < 2_000; i++) batch += `*2\r\n$4\r\nINCR\r\n$${key.length}\r\n${key}\r\n`;
      raw.write(batch);
      expect((await raw.readReply()).value).to.equal(1);
      doomed.kill('SIGTERM');
      let expected = 2;
      while (!raw.isClosed() || raw.pending().length > 0) {
        let reply;
        try {
          reply = await raw.readReply();
        } catch {
          break;
        }
        expect(reply.value).to.equal(expected);
        expected += 1;
      }
      expect(raw.pending().length, 'bytes of a truncated reply').to.equal(0);
      expect(await within(doomed.exited, 15_000, 'the process to exit')).to.deep.equal({
        code: 0,
        signal: null,
      });
    });
  });
});
