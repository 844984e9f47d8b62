/**
 * node-redis v5 (the `redis` package) against a real server process, once with RESP2 and once
 * with RESP3 (`createClient({ RESP: 3 })`, which connects with HELLO 3 and CLIENT SETINFO):
 * every command of the compatibility list through the client's typed methods, 10,000
 * commands as a pipeline and as concurrent calls with replies in order, binary and UTF-8
 * values, error replies as rejected promises, reconnect after CLIENT KILL, SHUTDOWN.
 * Runs against Concord, or against redis-server with COMPAT_TARGET=redis.
 */
import { expect } from 'chai';
import { createClient, RESP_TYPES } from 'redis';
import type { RedisClientOptions } from 'redis';
import { ALL_BYTES, byteLength, ERRORS, uniqueKey, UTF8_TEXT } from './fixtures.js';
import { HOST, rawConnection, startTarget, TARGET, waitFor, within } from './harness.js';
import type { ServerHandle } from './harness.js';

const PASSWORD = 'compat-s3cret';
/** CLIENT SETINFO came with Redis 7.2; Debian's redis-server (the COMPAT_TARGET=redis check) is 7.0. */
const HAS_CLIENT_SETINFO = TARGET === 'concord';

type Protocol = 2 | 3;
type ExtraOptions = Omit<RedisClientOptions, 'socket' | 'RESP'> & {
  reconnect?: boolean;
  explicitResp?: boolean;
};

/**
 * RESP2 is node-redis's default: without a RESP option it connects with AUTH and CLIENT
 * SETNAME and never sends HELLO. `explicitResp` passes `RESP: 2` instead, which makes it
 * connect with HELLO 2 [AUTH] [SETNAME]. RESP3 always connects with HELLO 3.
 */
function makeClient(port: number, RESP: Protocol, extra: ExtraOptions = {}) {
  const { reconnect = true, explicitResp = false, ...options } = extra;
  return createClient({
    // Bounded waits: a server that never answers fails the test quickly instead of hanging it.
    commandOptions: { timeout: 10_000 },
    ...options,
    ...(RESP === 3 || explicitResp ? { RESP } : {}),
    socket: {
      connectTimeout: 5_000,
      host: HOST,
      port,
      reconnectStrategy: reconnect ? (retries: number) => Math.min(10 * (retries + 1), 200) : false,
    },
  });
}
type Client = ReturnType<typeof makeClient>;

/** Every client made here, destroyed in `after` hooks even when a test fails. */
const clients = new Set<Client>();

function newClient(
  port: number,
  RESP: Protocol,
  extra: ExtraOptions = {},
): { client: Client; errors: Error[] } {
  const client = makeClient(port, RESP, extra);
  const errors: Error[] = [];
  // Socket errors are asserted through command promises; record them instead of crashing.
  client.on('error', (err: Error) => errors.push(err));
  clients.add(client);
  return { client, errors };
}

async function open(port: number, RESP: Protocol, extra: ExtraOptions = {}): Promise<Client> {
  const { client } = newClient(port, RESP, extra);
  await within(client.connect(), 10_000, 'the client to connect');
  return client;
}

function destroyAll(): void {
  for (const client of clients) {
    if (client.isOpen) client.destroy();
  }
  clients.clear();
}

/** The rejection of `promise`, or a failure when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  let value: unknown;
  try {
    value = await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(Error);
    return err as Error;
  }
  throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
}

/** A plain copy of a reply object (RESP3 maps decode to null-prototype objects). */
function plain(value: unknown): Record<string, unknown> {
  return { ...(value as Record<string, unknown>) };
}

for (const RESP of [2, 3] as const) {
  describe(`node-redis (RESP${RESP}) against ${TARGET}`, function () {
    let server: ServerHandle;
    let client: Client;

    before(async function () {
      server = await startTarget();
      client = await open(server.port, RESP, { name: `nr-main-${RESP}` });
    });

    after(async function () {
      destroyAll();
      await server.stop();
    });

    describe('connection commands', function () {
      it(`connects with its handshake (${RESP === 3 ? 'HELLO 3 SETNAME' : 'CLIENT SETNAME'}, CLIENT SETINFO)`, async function () {
        expect(client.isReady).to.equal(true);
        const info = await client.clientInfo();
        expect(info.name).to.equal(`nr-main-${RESP}`);
        if (HAS_CLIENT_SETINFO) {
          expect(info.libName).to.equal('node-redis');
          expect(info.libVer).to.match(/^\d+\.\d+\.\d+/);
        }
        const hello = plain(await client.hello(RESP));
        expect(hello.proto).to.equal(RESP);
        expect(hello.id).to.equal(info.id);
      });

      it('PING and ECHO', async function () {
        expect(await client.ping()).to.equal('PONG');
        expect(await client.ping('hi')).to.equal('hi');
        expect(await client.echo('echoed')).to.equal('echoed');
      });

      it(`HELLO ${RESP} with SETNAME names the connection; HELLO 4 is refused`, async function () {
        const other = await open(server.port, RESP);
        const hello = plain(await other.hello(RESP, { SETNAME: 'nr-hello' }));
        expect(hello.proto).to.equal(RESP);
        expect(hello.id).to.equal(await other.clientId());
        for (const key of ['server', 'version', 'mode', 'role', 'modules'])
          expect(hello, key).to.have.property(key);
        expect(await other.clientGetName()).to.equal('nr-hello');
        const bad = await rejection(other.sendCommand(['HELLO', '4']));
        expect(bad.message).to.equal('NOPROTO unsupported protocol version');
      });

      it('AUTH without a configured password is refused', async function () {
        const refused = await rejection(client.auth({ password: 'anything' }));
        expect(refused.message).to.equal(ERRORS.authWithoutPassword);
      });

      it('SELECT 0', async function () {
        await client.select(0);
        expect(await client.sendCommand(['SELECT', '0'])).to.equal('OK');
        const zero = await open(server.port, RESP, { database: 0 });
        expect(await zero.ping()).to.equal('PONG');
      });

      it('QUIT replies OK and closes the connection', async function () {
        const other = await open(server.port, RESP);
        expect(await other.quit()).to.equal('OK');
        expect(other.isOpen).to.equal(false);
      });

      it('RESET clears the connection state', async function () {
        const other = await open(server.port, RESP);
        await other.clientSetName('before-reset');
        expect(await other.sendCommand(['RESET'])).to.equal('RESET');
        expect(await other.clientGetName()).to.equal(null);
      });
    });

    describe('CLIENT', function () {
      it('ID, SETNAME, GETNAME, SETINFO, INFO', async function () {
        const other = await open(server.port, RESP, { disableClientInfo: true });
        const id = await other.clientId();
        expect(id).to.be.a('number').and.greaterThan(0);
        expect(await other.clientGetName()).to.equal(null);
        expect(await other.clientSetName('nr-named')).to.equal('OK');
        expect(await other.clientGetName()).to.equal('nr-named');
        if (HAS_CLIENT_SETINFO) {
          expect(await other.sendCommand(['CLIENT', 'SETINFO', 'LIB-NAME', 'compat-lib'])).to.equal('OK');
          expect(await other.sendCommand(['CLIENT', 'SETINFO', 'LIB-VER', '9.9.9'])).to.equal('OK');
        }
        const info = await other.clientInfo();
        expect(info.id).to.equal(id);
        expect(info.name).to.equal('nr-named');
        expect(info.laddr).to.equal(`127.0.0.1:${server.port}`);
        expect(info.addr).to.match(/^127\.0\.0\.1:\d+$/);
        if (HAS_CLIENT_SETINFO) {
          expect(info.libName).to.equal('compat-lib');
          expect(info.libVer).to.equal('9.9.9');
        }
      });

      it('LIST shows every connection with its id and name', async function () {
        const other = await open(server.port, RESP, { name: 'nr-listed' });
        const id = await other.clientId();
        const list = await client.clientList();
        const mine = list.find((entry) => entry.id === id);
        expect(mine, 'our connection in CLIENT LIST').to.not.equal(undefined);
        expect(mine!.name).to.equal('nr-listed');
        expect(list.length).to.be.at.least(2);
      });

      it('KILL by ID, by ADDR and for an unknown client', async function () {
        const { client: victim, errors } = newClient(server.port, RESP, { reconnect: false });
        await within(victim.connect(), 10_000, 'the client to connect');
        const victimInfo = await victim.clientInfo();
        expect(await client.clientKill({ filter: 'ID', id: victimInfo.id })).to.equal(1);
        await waitFor('the killed client to notice', () => (victim.isOpen ? undefined : true));
        expect(errors.length).to.be.at.least(1);
        expect(await client.clientKill({ filter: 'ID', id: 999_999_999 })).to.equal(0);
        const { client: byAddr } = newClient(server.port, RESP, { reconnect: false });
        await within(byAddr.connect(), 10_000, 'the client to connect');
        const addr = (await byAddr.clientInfo()).addr;
        expect(await client.clientKill({ filter: 'ADDR', address: addr as `${string}:${number}` })).to.equal(
          1,
        );
        await waitFor('the killed client to notice', () => (byAddr.isOpen ? undefined : true));
      });

      it('reconnects after CLIENT KILL, replays its handshake, and runs queued commands', async function () {
        const { client: victim } = newClient(server.port, RESP, { name: 'nr-victim' });
        await within(victim.connect(), 10_000, 'the client to connect');
        const before = await victim.clientId();
        let reconnects = 0;
        victim.on('reconnecting', () => (reconnects += 1));
        expect(await client.clientKill({ filter: 'ID', id: before })).to.equal(1);
        await waitFor('a reconnect', () => (reconnects > 0 ? true : undefined));
        // Sent while reconnecting: waits in the offline queue.
        expect(await victim.ping()).to.equal('PONG');
        const after = await victim.clientId();
        expect(after).to.not.equal(before);
        expect(await victim.clientGetName()).to.equal('nr-victim');
      });
    });

    describe('server commands', function () {
      it('INFO and INFO <section>', async function () {
        const all = await client.info();
        expect(all).to.include('# Server');
        expect(all).to.match(/^redis_version:\S+/m);
        expect(all).to.match(/^connected_clients:\d+/m);
        const serverOnly = await client.info('server');
        expect(/^tcp_port:(\d+)/m.exec(serverOnly)?.[1]).to.equal(String(server.port));
        expect(serverOnly).to.not.include('# Clients');
      });

      it('CONFIG GET and CONFIG SET', async function () {
        expect(Object.keys(plain(await client.configGet('save')))).to.deep.equal(['save']);
        expect(Object.keys(plain(await client.configGet(['save', 'appendonly']))).sort()).to.deep.equal([
          'appendonly',
          'save',
        ]);
        expect(await client.configSet('timeout', '77')).to.equal('OK');
        expect(plain(await client.configGet('timeout'))).to.deep.equal({ timeout: '77' });
        expect(await client.configSet({ timeout: '0' })).to.equal('OK');
        expect(plain(await client.configGet('no-such-parameter'))).to.deep.equal({});
        const bad = await rejection(client.configSet('no-such-parameter', '1'));
        expect(bad.message).to.equal(
          "ERR Unknown option or number of arguments for CONFIG SET - 'no-such-parameter'",
        );
      });

      it('TIME is close to the local clock', async function () {
        const [seconds, micros] = await client.time();
        expect(Number(micros)).to.be.lessThan(1_000_000);
        expect(Math.abs(Number(seconds) * 1000 + Number(micros) / 1000 - Date.now())).to.be.lessThan(5_000);
      });

      it('DBSIZE counts keys', async function () {
        const before = await client.dbSize();
        const key = uniqueKey('dbsize');
        await client.set(key, 'v');
        expect(await client.dbSize()).to.equal(before + 1);
        await client.del(key);
        expect(await client.dbSize()).to.equal(before);
      });

      it('COMMAND, COMMAND COUNT, COMMAND INFO, COMMAND DOCS', async function () {
        const all = await client.command();
        expect(all).to.have.length(await client.commandCount());
        const names = new Set(all.map((entry) => entry.name));
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
          'time',
        ]) {
          expect(names.has(name), name).to.equal(true);
        }
        for (const name of [
          'dbsize',
          'shutdown',
          'command',
          'get',
          'set',
          'del',
          'exists',
          'incr',
          'incrby',
          'mget',
          'mset',
        ]) {
          expect(names.has(name), name).to.equal(true);
        }
        const [get, set, missing] = await client.commandInfo(['get', 'set', 'no-such-command']);
        expect(get).to.deep.include({ name: 'get', arity: 2, firstKeyIndex: 1, lastKeyIndex: 1, step: 1 });
        expect(set).to.deep.include({ name: 'set', arity: -3, firstKeyIndex: 1 });
        expect(missing).to.equal(null);
        const docs = await client.sendCommand(['COMMAND', 'DOCS', 'set']);
        let setDocs: Record<string, unknown>;
        if (RESP === 3) {
          setDocs = plain(plain(docs).set);
        } else {
          const [name, fields] = docs as unknown as [string, unknown[]];
          expect(name).to.equal('set');
          setDocs = Object.fromEntries(
            fields.flatMap((field, i): [string, unknown][] =>
              i % 2 === 0 ? [[String(field), fields[i + 1]]] : [],
            ),
          );
        }
        expect(setDocs).to.include.keys('summary', 'since', 'group', 'arguments');
        const argumentNames = (setDocs.arguments as unknown[]).map((arg) =>
          RESP === 3 ? plain(arg).name : (arg as unknown[])[(arg as unknown[]).indexOf('name') + 1],
        );
        expect(argumentNames).to.include.members(['key', 'value']);
      });
    });

    describe('keys', function () {
      it('SET and GET, with NX, XX, GET, EX, PX', async function () {
        const key = uniqueKey('set');
        expect(await client.get(key)).to.equal(null);
        expect(await client.set(key, 'one', { condition: 'XX' })).to.equal(null);
        expect(await client.set(key, 'one', { condition: 'NX' })).to.equal('OK');
        expect(await client.set(key, 'two', { condition: 'NX' })).to.equal(null);
        expect(await client.set(key, 'three', { condition: 'XX' })).to.equal('OK');
        expect(await client.set(key, 'four', { GET: true })).to.equal('three');
        expect(await client.set(key, 'five', { expiration: { type: 'EX', value: 100 } })).to.equal('OK');
        expect(await client.get(key)).to.equal('five');
        const zero = await rejection(client.set(key, 'x', { expiration: { type: 'PX', value: 0 } }));
        expect(zero.message).to.equal("ERR invalid expire time in 'set' command");
        const sentAt = Date.now();
        expect(await client.set(key, 'brief', { expiration: { type: 'PX', value: 150 } })).to.equal('OK');
        await waitFor(
          'the key to expire',
          async () => ((await client.get(key)) === null ? true : undefined),
          5_000,
        );
        expect(Date.now() - sentAt).to.be.at.least(145);
        expect((await rejection(client.sendCommand(['SET', key, 'x', 'XX', 'NX']))).message).to.equal(
          ERRORS.syntax,
        );
      });

      it('DEL, EXISTS, INCR, INCRBY, MSET, MGET', async function () {
        const [a, b, missing] = [uniqueKey('k'), uniqueKey('k'), uniqueKey('missing')];
        expect(await client.mSet([a, '10', b, 'text'])).to.equal('OK');
        expect(await client.mSet({ [a]: '10', [b]: 'text' })).to.equal('OK');
        expect(await client.mGet([a, missing, b])).to.deep.equal(['10', null, 'text']);
        expect(await client.exists([a, a, missing])).to.equal(2);
        expect(await client.incr(a)).to.equal(11);
        expect(await client.incrBy(a, 31)).to.equal(42);
        expect((await rejection(client.incr(b))).message).to.equal(ERRORS.notInteger);
        expect(await client.del([a, b, missing])).to.equal(2);
        expect(await client.exists([a, b])).to.equal(0);
        expect(await client.incrBy(missing, -5)).to.equal(-5);
      });
    });

    describe('errors', function () {
      it('unknown command and wrong arity reject with Redis messages; the connection stays usable', async function () {
        const unknown = await rejection(client.sendCommand(['NOSUCHCMD', 'a', 'b']));
        expect(unknown.message).to.equal(ERRORS.unknownCommand('NOSUCHCMD', 'a', 'b'));
        expect(unknown.constructor.name).to.equal('SimpleError');
        expect((await rejection(client.sendCommand(['GET']))).message).to.equal(ERRORS.wrongArity('get'));
        expect((await rejection(client.sendCommand(['MSET', 'a']))).message).to.equal(
          ERRORS.wrongArity('mset'),
        );
        expect((await rejection(client.sendCommand(['INCRBY', 'a', '1.5']))).message).to.equal(
          ERRORS.notInteger,
        );
        expect(await client.ping()).to.equal('PONG');
      });
    });

    describe('10,000 commands at once', function () {
      it('a pipeline (multi().execAsPipeline()) of 10,000 commands replies in order', async function () {
        const prefix = uniqueKey('pipe');
        // Each call queues on the same multi object (and returns it, re-typed).
        const batch = client.multi();
        for (let i = 0; i < 10_000; i++) {
          if (i % 3 === 0) batch.set(`${prefix}:${i}`, `value-${i}`);
          else if (i % 3 === 1) batch.get(`${prefix}:${i - 1}`);
          else batch.incr(`${prefix}:counter`);
        }
        const replies: unknown[] = await batch.execAsPipeline();
        expect(replies).to.have.length(10_000);
        replies.forEach((reply, i) => {
          if (i % 3 === 0) expect(reply).to.equal('OK');
          else if (i % 3 === 1) expect(reply).to.equal(`value-${i - 1}`);
          else expect(reply).to.equal((i + 1) / 3);
        });
      });

      it('10,000 concurrent commands resolve in order, errors in their place', async function () {
        const replies = await Promise.allSettled(
          Array.from({ length: 10_000 }, (_, i) =>
            i % 100 === 99 ? client.sendCommand(['NOSUCHCMD']) : client.echo(`n${i}`),
          ),
        );
        replies.forEach((reply, i) => {
          if (i % 100 === 99) {
            expect(reply.status).to.equal('rejected');
          } else {
            expect(reply).to.deep.equal({ status: 'fulfilled', value: `n${i}` });
          }
        });
      });
    });

    describe('binary and UTF-8 values', function () {
      it('keys and values with all 256 byte values round-trip as Buffers', async function () {
        const binary = client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
        const key = Buffer.concat([Buffer.from(uniqueKey('bin')), ALL_BYTES]);
        expect(await binary.set(key, ALL_BYTES)).to.equal('OK');
        const value = await binary.get(key);
        expect(Buffer.isBuffer(value) && value.equals(ALL_BYTES)).to.equal(true);
        const echoed = await binary.echo(ALL_BYTES);
        expect(Buffer.isBuffer(echoed) && echoed.equals(ALL_BYTES)).to.equal(true);
        const [got] = await binary.mGet([key]);
        expect(Buffer.isBuffer(got) && got.equals(ALL_BYTES)).to.equal(true);
        expect(await binary.del(key)).to.equal(1);
      });

      it('multi-byte UTF-8 keys and values keep their bytes; lengths are byte lengths', async function () {
        const key = `${uniqueKey('utf8')}:clé:键`;
        await client.set(key, UTF8_TEXT);
        expect(await client.get(key)).to.equal(UTF8_TEXT);
        expect(await client.echo(UTF8_TEXT)).to.equal(UTF8_TEXT);
        const raw = await rawConnection(server.port);
        try {
          const reply = await raw.call('GET', key);
          expect(reply.raw.subarray(0, reply.raw.indexOf('\r\n')).toString()).to.equal(
            `$${byteLength(UTF8_TEXT)}`,
          );
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
        destroyAll();
        await secured.stop();
      });

      it('the password option authenticates the handshake', async function () {
        const authed = await open(secured.port, RESP, { password: PASSWORD, name: 'nr-authed' });
        expect(await authed.ping()).to.equal('PONG');
        expect(await authed.clientGetName()).to.equal('nr-authed');
        const withUser = await open(secured.port, RESP, { username: 'default', password: PASSWORD });
        expect(await withUser.ping()).to.equal('PONG');
      });

      if (RESP === 2) {
        it('RESP: 2 set explicitly connects with HELLO 2 AUTH ... SETNAME', async function () {
          const hello2 = await open(secured.port, 2, {
            explicitResp: true,
            password: PASSWORD,
            name: 'nr-hello2',
          });
          expect(plain(await hello2.hello(2)).proto).to.equal(2);
          expect(await hello2.clientGetName()).to.equal('nr-hello2');
        });
      }

      it('a wrong password fails the connection with WRONGPASS', async function () {
        const { client: wrong } = newClient(secured.port, RESP, { password: 'wrong', reconnect: false });
        expect((await rejection(within(wrong.connect(), 10_000, 'the connection to fail'))).message).to.equal(
          ERRORS.wrongPass,
        );
      });

      it('without a password: -NOAUTH; AUTH with a wrong then the right password', async function () {
        const anonymous = await open(secured.port, 2, { disableClientInfo: true });
        expect((await rejection(anonymous.get('k'))).message).to.equal(ERRORS.noAuth);
        expect((await rejection(anonymous.auth({ password: 'wrong' }))).message).to.equal(ERRORS.wrongPass);
        expect(await anonymous.auth({ password: PASSWORD })).to.equal('OK');
        expect(await anonymous.auth({ username: 'default', password: PASSWORD })).to.equal('OK');
        expect(await anonymous.set('k', 'v')).to.equal('OK');
      });

      it('HELLO 3 without AUTH is refused with NOAUTH; HELLO 3 AUTH ... SETNAME works', async function () {
        const raw = await rawConnection(secured.port);
        try {
          const refused = await raw.call('HELLO', '3');
          expect(refused.isError).to.equal(true);
          expect(String(refused.raw)).to.match(/^-NOAUTH /);
          const wrong = await raw.call('HELLO', '3', 'AUTH', 'default', 'wrong');
          expect(String(wrong.raw)).to.equal(`-${ERRORS.wrongPass}\r\n`);
          const hello = await raw.call('HELLO', '3', 'AUTH', 'default', PASSWORD, 'SETNAME', 'raw-hello');
          expect(hello.raw[0]).to.equal('%'.charCodeAt(0));
          expect((hello.value as Map<unknown, unknown>).get('proto')).to.equal(3);
          expect((await raw.call('CLIENT', 'GETNAME')).value).to.equal('raw-hello');
        } finally {
          raw.close();
        }
      });
    });

    describe('process lifecycle', function () {
      it('SHUTDOWN makes the process exit cleanly', async function () {
        const doomed = await startTarget();
        const victim = await open(doomed.port, RESP, { reconnect: false });
        // node-redis v5 has no typed SHUTDOWN. Redis closes the connection without a reply;
        // Concord replies +OK first (docs/compatibility.md). Either way the client sees it end.
        const outcome = await victim.sendCommand(['SHUTDOWN']).then(
          (reply) => reply,
          (err: Error) => err.constructor.name,
        );
        expect(outcome).to.be.oneOf(['OK', 'SocketClosedUnexpectedlyError']);
        expect(await within(doomed.exited, 15_000, 'the process to exit')).to.deep.equal({
          code: 0,
          signal: null,
        });
        await waitFor('the client to see the connection end', () => (victim.isOpen ? undefined : true));
      });
    });
  });
}
