/**
 * How the register workload classifies outcomes, with a real ioredis client against small
 * scripted RESP servers on loopback: an answer is ok; a command never written (no connection)
 * is fail; a refused command (`ERR value is not an integer`) is fail; a timeout, a connection
 * dropped after the write, -TRYAGAIN and -CLUSTERDOWN are unknown, never fail; and the process
 * that saw an unknown outcome is retired.
 */
import { expect } from 'chai';
import net from 'node:net';
import { classifyError, History, RegisterWorkload, type HistoryOp } from './history.js';
import { Prng } from './prng.js';

type Scripted = { send: string } | 'silent' | 'close';

/** A RESP server answering every command as `reply(argv)` says: send bytes, stay silent, or hang up. */
async function scripted(reply: (argv: string[]) => Scripted): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    let buffer = '';
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      // Parse complete arrays of bulk strings (what ioredis sends).
      while (true) {
        const m = /^\*(\d+)\r\n/.exec(buffer);
        if (m === null) return;
        let at = m[0].length;
        const argv: string[] = [];
        for (let i = 0; i < Number(m[1]); i++) {
          const b = /^\$(\d+)\r\n/.exec(buffer.slice(at));
          if (b === null) return;
          const len = Number(b[1]);
          const start = at + b[0].length;
          if (buffer.length < start + len + 2) return;
          argv.push(buffer.slice(start, start + len));
          at = start + len + 2;
        }
        buffer = buffer.slice(at);
        const r = reply(argv);
        if (r === 'close') socket.destroy();
        else if (r !== 'silent') socket.write(r.send);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function runWorkload(port: number | undefined, ops: number): Promise<HistoryOp[]> {
  const target = port ?? 1; // port 1 on loopback: connection refused
  const w = new RegisterWorkload({
    endpoints: () => [{ node: 'n1', host: '127.0.0.1', port: target }],
    processes: 1,
    registerKeys: 1,
    counterKeys: 1,
    opsPerGeneration: 1_000,
    maxOps: ops,
    commandTimeoutMs: 300,
    prng: new Prng(3),
    prefix: 't',
  });
  w.start();
  const until = Date.now() + 15_000;
  while (!w.history.full() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
  await w.stop();
  return w.history.ops;
}

describe('faults/history: outcomes', function () {
  this.timeout(30_000);

  it('classifies error messages: only unsent or refused commands fail', () => {
    expect(classifyError("Stream isn't writeable and enableOfflineQueue options is false")).to.equal('fail');
    expect(classifyError('ERR value is not an integer or out of range')).to.equal('fail');
    expect(classifyError('WRONGTYPE Operation against a key holding the wrong kind of value')).to.equal('fail');
    expect(classifyError('Command timed out')).to.equal('unknown');
    expect(classifyError('Connection is closed.')).to.equal('unknown');
    expect(classifyError('Reached the max retries per request limit (which is 0).')).to.equal('unknown');
    expect(classifyError('TRYAGAIN outcome unknown: leadership lost')).to.equal('unknown');
    expect(classifyError('TRYAGAIN not the leader, try n2')).to.equal('unknown');
    expect(classifyError('CLUSTERDOWN No leader: no leader within 1500 ms')).to.equal('unknown');
  });

  it('records answers as ok with their output, and -TRYAGAIN as unknown with a new process', async () => {
    let n = 0;
    const server = await scripted((argv) => {
      const cmd = argv[0]!.toUpperCase();
      if (cmd === 'INCR') return { send: n++ % 2 === 0 ? `:${n}\r\n` : '-TRYAGAIN outcome unknown: leadership lost\r\n' };
      if (cmd === 'GET') return { send: '$1\r\nx\r\n' };
      return { send: '+OK\r\n' };
    });
    try {
      const ops = await runWorkload(server.port, 60);
      const ok = ops.filter((o) => o.result === 'ok');
      const tryagain = ops.filter((o) => o.error?.startsWith('TRYAGAIN'));
      expect(ok.length).to.be.greaterThan(10);
      expect(ok.filter((o) => o.kind === 'get').every((o) => o.output === 'x')).to.equal(true);
      expect(tryagain.length).to.be.greaterThan(0);
      expect(tryagain.every((o) => o.result === 'unknown' && o.completeMs === undefined)).to.equal(true);
      // Each unknown outcome retires its process: later ops come from a new one.
      for (const t of tryagain) expect(ops.filter((o) => o.process === t.process && o.id > t.id)).to.deep.equal([]);
    } finally {
      await server.close();
    }
  });

  it('records timeouts and hang-ups after the write as unknown, never fail', async () => {
    let n = 0;
    // ioredis's own CLIENT SETINFO on connect is answered; workload commands get no answer, or a hang-up.
    const server = await scripted((argv) =>
      argv[0]!.toUpperCase() === 'CLIENT' ? { send: '+OK\r\n' } : n++ % 2 === 0 ? 'silent' : 'close',
    );
    try {
      const ops = await runWorkload(server.port, 6);
      expect(ops.length, JSON.stringify(ops.map((o) => o.error))).to.equal(6);
      expect(ops.map((o) => o.result)).to.deep.equal(['unknown', 'unknown', 'unknown', 'unknown', 'unknown', 'unknown']);
      expect(ops.some((o) => o.error === 'Command timed out')).to.equal(true);
      // ioredis's words for a command lost with its connection (maxRetriesPerRequest 0).
      expect(ops.some((o) => o.error?.startsWith('Reached the max retries per request limit'))).to.equal(true);
    } finally {
      await server.close();
    }
  });

  it('History is bounded and stamps invocation and completion on its clock', () => {
    let t = 0;
    const h = new History<HistoryOp>(2, () => t);
    const a = h.invoke({ process: 0, node: 'n1', kind: 'get', key: 'k' });
    t = 5;
    h.complete(a, 'ok', 'v');
    expect(a).to.include({ invokeMs: 0, completeMs: 5, result: 'ok', output: 'v' });
    h.invoke({ process: 0, node: 'n1', kind: 'get', key: 'k' });
    expect(h.full()).to.equal(true);
  });
});
