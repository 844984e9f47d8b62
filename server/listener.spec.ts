import { expect } from 'chai';
import net from 'node:net';
import { Dispatcher } from '../commands/dispatch.js';
import type { CommandContext } from '../commands/context.js';
import { LocalExecutor } from '../commands/executor.js';
import { NIL, OK, PONG, bulk, error, type Reply } from '../commands/reply.js';
import { DEFAULT_CONFIG, ServerConfig, type Config } from './config.js';
import type { RequestHandler } from './connection.js';
import {
  MAX_CLIENTS_ERROR,
  PROTECTED_MODE_ERROR,
  RespServer,
  admissionRefusal,
  isLoopback,
} from './listener.js';
import { silentLogger } from './log.js';

/**
 * A small command set for driving the connection: each reply is computed from the request.
 * LATER x answers x only when the test releases it, so replies can settle out of order.
 */
class ScriptedHandler implements RequestHandler {
  readonly waiting: (() => void)[] = [];
  executed = 0;

  execute(ctx: CommandContext, argv: Buffer[]): Reply | Promise<Reply> {
    this.executed++;
    const name = argv[0]!.toString('latin1').toLowerCase();
    switch (name) {
      case 'ping':
        return PONG;
      case 'echo':
        return bulk(argv[1] ?? '');
      case 'later':
        return new Promise<Reply>((resolve) => this.waiting.push(() => resolve(bulk(argv[1] ?? ''))));
      case 'fail-later':
        return Promise.reject(new Error('boom'));
      case 'throw':
        throw new Error('boom');
      case 'quit':
        ctx.session.closeAfterReply = true;
        return OK;
      case 'big':
        return bulk(Buffer.alloc(Number(argv[1]!.toString()), 120));
      case 'nil':
        return NIL;
      case 'hello3':
        ctx.session.protocol = 3;
        return OK;
      case 'kill':
        return ctx.server.killClient(Number(argv[1]!.toString())) ? OK : error('ERR No such client');
      default:
        return error(`ERR unknown command '${name}'`);
    }
  }

  releaseAll(order: 'fifo' | 'reverse'): void {
    const all = this.waiting.splice(0);
    if (order === 'reverse') all.reverse();
    for (const release of all) release();
  }
}

async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A raw TCP client that records everything received and whether the server closed. */
class RawClient {
  readonly socket: net.Socket;
  private chunks: Buffer[] = [];
  receivedBytes = 0;
  closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.receivedBytes += chunk.length;
    });
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => {});
  }

  get received(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  text(): string {
    return this.received.toString('latin1');
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  async waitFor(text: string): Promise<void> {
    await until(() => this.text().includes(text), JSON.stringify(text));
  }

  async waitClosed(): Promise<void> {
    await until(() => this.closed, 'the server to close the connection');
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function command(...args: string[]): string {
  return `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('');
}

describe('listener and connection (loopback)', function () {
  this.timeout(20000);
  let server: RespServer;
  let handler: ScriptedHandler;
  let clients: RawClient[];

  async function start(overrides: Partial<Config> = {}, useDispatcher = false): Promise<number> {
    const config = new ServerConfig({ ...DEFAULT_CONFIG, port: 0, bind: '127.0.0.1', ...overrides });
    handler = new ScriptedHandler();
    const requestHandler: RequestHandler = useDispatcher
      ? new Dispatcher({ executor: new LocalExecutor(), requirePass: () => config.current.requirePass })
      : handler;
    server = new RespServer({ config, handler: requestHandler, log: silentLogger(), shutdownGraceMs: 2000 });
    const address = await server.listen();
    return address.port;
  }

  async function connect(port: number): Promise<RawClient> {
    const client = await RawClient.connect(port);
    clients.push(client);
    return client;
  }

  beforeEach(() => {
    clients = [];
  });

  afterEach(async () => {
    for (const client of clients) client.destroy();
    await server.close('test over');
  });

  it('answers PING through the real dispatcher, pipelined and sent byte by byte', async () => {
    const port = await start({}, true);
    const client = await connect(port);
    const input = Buffer.from(command('PING') + 'PING\r\n' + command('ping', 'hello'));
    for (const byte of input) client.send(Buffer.from([byte]));
    await client.waitFor('$5\r\nhello\r\n');
    expect(client.text()).to.equal('+PONG\r\n+PONG\r\n$5\r\nhello\r\n');
  });

  it('keeps replies in request order when promises settle in reverse', async () => {
    const port = await start();
    const client = await connect(port);
    client.send(command('LATER', 'a') + command('ECHO', 'b') + command('LATER', 'c') + command('ECHO', 'd'));
    await until(() => handler.waiting.length === 2, 'two pending requests');
    // Nothing may overtake the first pending reply.
    expect(client.text()).to.equal('');
    handler.releaseAll('reverse');
    await client.waitFor('$1\r\nd\r\n');
    expect(client.text()).to.equal('$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n');
  });

  it('maps thrown and rejected operating errors to -ERR internal error and keeps the connection', async () => {
    const port = await start();
    const client = await connect(port);
    client.send(command('THROW') + command('FAIL-LATER') + command('PING'));
    await client.waitFor('+PONG\r\n');
    expect(client.text()).to.equal('-ERR internal error\r\n-ERR internal error\r\n+PONG\r\n');
    expect(client.closed).to.equal(false);
  });

  it('sends the framing error after earlier replies, closes that client only', async () => {
    const port = await start();
    const bad = await connect(port);
    const good = await connect(port);
    bad.send('PING\r\n*1\r\n$4\r\nPING\r\n*abc\r\nPING\r\n');
    await bad.waitClosed();
    expect(bad.text()).to.equal('+PONG\r\n+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n');
    good.send('PING\r\n');
    await good.waitFor('+PONG\r\n');
    expect(good.closed).to.equal(false);
  });

  it('answers unbalanced quotes with the Redis error and closes', async () => {
    const port = await start();
    const client = await connect(port);
    client.send('ECHO "abc\r\n');
    await client.waitClosed();
    expect(client.text()).to.equal('-ERR Protocol error: unbalanced quotes in request\r\n');
  });

  it('limits unauthenticated clients when a password is set, not after AUTH-free connects', async () => {
    const port = await start({ requirePass: 'secret' }, true);
    const many = await connect(port);
    many.send('*11\r\n');
    await many.waitClosed();
    expect(many.text()).to.equal('-ERR Protocol error: unauthenticated multibulk length\r\n');
    const big = await connect(port);
    big.send('*1\r\n$16385\r\n');
    await big.waitClosed();
    expect(big.text()).to.equal('-ERR Protocol error: unauthenticated bulk length\r\n');
    const polite = await connect(port);
    polite.send(command('PING'));
    await polite.waitFor('\r\n');
    expect(polite.text()).to.equal('-NOAUTH Authentication required.\r\n');
  });

  it('QUIT-style closeAfterReply: replies, then closes, ignoring later requests', async () => {
    const port = await start();
    const client = await connect(port);
    client.send(command('QUIT') + command('PING'));
    await client.waitClosed();
    expect(client.text()).to.equal('+OK\r\n');
  });

  it('switches the encoding when the session protocol changes', async () => {
    const port = await start();
    const client = await connect(port);
    client.send(command('NIL') + command('HELLO3') + command('NIL'));
    await client.waitFor('_\r\n');
    expect(client.text()).to.equal('$-1\r\n+OK\r\n_\r\n');
  });

  it('refuses clients beyond maxclients with the Redis error and counts them', async () => {
    const port = await start({ maxClients: 2 });
    const first = await connect(port);
    const second = await connect(port);
    await until(() => server.stats().connectedClients === 2, 'two clients');
    const third = await connect(port);
    await third.waitClosed();
    expect(third.text()).to.equal(MAX_CLIENTS_ERROR);
    expect(server.stats().rejectedConnections).to.equal(1);
    first.send('PING\r\n');
    second.send('PING\r\n');
    await first.waitFor('+PONG');
    await second.waitFor('+PONG');
  });

  it('stops executing a client at maxRequestsInFlight and resumes when replies drain', async () => {
    const port = await start({ maxRequestsInFlight: 10 });
    const client = await connect(port);
    let pipeline = '';
    for (let i = 0; i < 200; i++) pipeline += command('LATER', String(i));
    client.send(pipeline);
    await until(() => handler.waiting.length === 10, 'ten pending requests');
    // The limit holds: the rest stay unexecuted in the input buffer.
    expect(handler.executed).to.equal(10);
    while (handler.executed < 200 || handler.waiting.length > 0) {
      await until(() => handler.waiting.length > 0, 'more pending requests');
      expect(handler.waiting.length).to.be.at.most(10);
      handler.releaseAll('reverse');
    }
    await client.waitFor('$3\r\n199\r\n');
    const expected = Array.from({ length: 200 }, (_, i) => `$${String(i).length}\r\n${i}\r\n`).join('');
    expect(client.text()).to.equal(expected);
  });

  it('pauses reading while a slow reader has too much unsent output, then catches up', async () => {
    const port = await start({ clientOutputPauseBytes: 256 * 1024 });
    const client = await connect(port);
    client.socket.pause();
    let pipeline = '';
    for (let i = 0; i < 400; i++) pipeline += command('BIG', String(64 * 1024));
    client.send(pipeline);
    // Executed requests stop well short of 400 while nobody reads (socket buffers hold a few MB).
    await until(() => handler.executed > 0, 'some requests executed');
    let last = -1;
    await until(() => {
      const stable = handler.executed === last;
      last = handler.executed;
      return stable;
    }, 'execution to stop');
    expect(handler.executed).to.be.below(400);
    const sessions = server.clients();
    expect(sessions[0]!.outputBufferBytes()).to.be.above(0);
    client.socket.resume();
    const total = 400 * (64 * 1024 + `$${64 * 1024}\r\n`.length + 2);
    await until(() => client.receivedBytes >= total, 'all replies', 15000);
    expect(handler.executed).to.equal(400);
    expect(client.receivedBytes).to.equal(total);
  });

  it('closes a client whose unsent output exceeds the hard limit', async () => {
    const port = await start({ clientOutputPauseBytes: 64 * 1024, clientOutputBufferLimit: 1024 * 1024 });
    const client = await connect(port);
    client.socket.pause();
    client.send(command('BIG', String(8 * 1024 * 1024)));
    await until(() => server.stats().connectedClients === 0, 'the client to be dropped');
    client.socket.resume();
    await client.waitClosed();
    expect(client.receivedBytes).to.be.below(8 * 1024 * 1024);
  });

  it('closes a client whose unprocessed input exceeds client-query-buffer-limit', async () => {
    const port = await start({ clientQueryBufferLimit: 64 * 1024 });
    const client = await connect(port);
    client.send('*2\r\n$4\r\nECHO\r\n$1000000\r\n' + 'x'.repeat(100 * 1024));
    await client.waitClosed();
    expect(client.text()).to.equal('');
  });

  it('counts a huge request fed in tiny arguments against client-query-buffer-limit', async () => {
    const port = await start({ clientQueryBufferLimit: 256 * 1024 });
    const client = await connect(port);
    client.send('*2000000000\r\n');
    const tiny = '$1\r\nx\r\n'.repeat(1000);
    // 1000 arguments per write: the limit (with per-argument overhead) is passed within ~5 writes.
    for (let i = 0; i < 50 && !client.closed; i++) {
      client.send(tiny);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await client.waitClosed();
    expect(client.text()).to.equal('');
  });

  it('kills a client by id after its current reply', async () => {
    const port = await start();
    const victim = await connect(port);
    const killer = await connect(port);
    victim.send('PING\r\n');
    await victim.waitFor('+PONG');
    const victimId = server.clients()[0]!.id;
    killer.send(command('KILL', String(victimId)) + command('KILL', '999'));
    await killer.waitFor('-ERR No such client\r\n');
    expect(killer.text()).to.equal('+OK\r\n-ERR No such client\r\n');
    await victim.waitClosed();
    expect(killer.closed).to.equal(false);
  });

  it('a client killing itself still gets its reply', async () => {
    const port = await start();
    const client = await connect(port);
    await until(() => server.clients().length === 1, 'the client');
    client.send(command('KILL', String(server.clients()[0]!.id)));
    await client.waitClosed();
    expect(client.text()).to.equal('+OK\r\n');
  });

  it('graceful close: in-flight replies finish, then sockets close, new clients are refused', async () => {
    const port = await start();
    const client = await connect(port);
    client.send(command('LATER', 'last') + command('PING'));
    await until(() => handler.waiting.length === 1, 'a pending request');
    const closed = server.close('test');
    // Late pipelined requests are not read any more.
    client.send(command('ECHO', 'too-late'));
    handler.releaseAll('fifo');
    await closed;
    await client.waitClosed();
    expect(client.text()).to.equal('$4\r\nlast\r\n+PONG\r\n');
    let refused = false;
    await RawClient.connect(port).then(
      (late) => late.destroy(),
      () => {
        refused = true;
      },
    );
    expect(refused).to.equal(true);
  });

  it('answers what a half-closed client sent, then closes', async () => {
    const port = await start();
    const client = await connect(port);
    client.send(command('LATER', 'x') + command('ECHO', 'y'));
    client.socket.end();
    await until(() => handler.waiting.length === 1, 'the pending request');
    handler.releaseAll('fifo');
    await client.waitClosed();
    expect(client.text()).to.equal('$1\r\nx\r\n$1\r\ny\r\n');
  });

  it('closes idle clients after `timeout` seconds, and CONFIG SET timeout applies to open ones', async () => {
    const port = await start();
    const client = await connect(port);
    client.send('PING\r\n');
    await client.waitFor('+PONG');
    const started = Date.now();
    server.config.set('timeout', '1');
    await client.waitClosed();
    expect(Date.now() - started).to.be.within(900, 4000);
  });

  it('tracks per-client stats for CLIENT LIST and INFO', async () => {
    const port = await start();
    const client = await connect(port);
    client.send(command('ECHO', 'abc') + 'PING\r\n');
    await client.waitFor('+PONG');
    const [session] = server.clients();
    expect(session!.lastCommand).to.equal('ping');
    expect(session!.addr).to.match(/^127\.0\.0\.1:\d+$/);
    expect(session!.laddr).to.equal(`127.0.0.1:${port}`);
    expect(session!.queryBufferBytes()).to.equal(0);
    const stats = server.stats();
    expect(stats.totalCommandsProcessed).to.equal(2);
    expect(stats.totalConnectionsReceived).to.equal(1);
    expect(stats.totalNetInputBytes).to.equal(Buffer.byteLength(command('ECHO', 'abc') + 'PING\r\n'));
    expect(stats.totalNetOutputBytes).to.equal('$3\r\nabc\r\n+PONG\r\n'.length);
  });
});

describe('protected mode', () => {
  it('recognises loopback peers as Redis does', () => {
    for (const address of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1'])
      expect(isLoopback(address), address).to.equal(true);
    for (const address of ['10.0.0.1', '192.168.1.5', '::ffff:10.0.0.1', 'fe80::1', undefined]) {
      expect(isLoopback(address), String(address)).to.equal(false);
    }
  });

  it('refuses non-loopback peers only while protected mode is on and no password is set', () => {
    const on = { maxClients: 10, protectedMode: true, requirePass: null };
    expect(admissionRefusal(on, 0, '10.1.2.3')).to.equal(PROTECTED_MODE_ERROR);
    expect(admissionRefusal(on, 0, '127.0.0.1')).to.equal(null);
    expect(admissionRefusal({ ...on, requirePass: 'pw' }, 0, '10.1.2.3')).to.equal(null);
    expect(admissionRefusal({ ...on, protectedMode: false }, 0, '10.1.2.3')).to.equal(null);
    // maxclients is checked first, for every peer.
    expect(admissionRefusal(on, 10, '127.0.0.1')).to.equal(MAX_CLIENTS_ERROR);
    expect(admissionRefusal(on, 10, '10.1.2.3')).to.equal(MAX_CLIENTS_ERROR);
  });

  it('carries the -DENIED text clients recognise', () => {
    expect(PROTECTED_MODE_ERROR.startsWith('-DENIED ')).to.equal(true);
    expect(PROTECTED_MODE_ERROR.endsWith('\r\n')).to.equal(true);
    expect(PROTECTED_MODE_ERROR.slice(0, -2)).to.not.match(/[\r\n]/);
  });
});
