/**
 * Specs for the benchmark helpers that decide what a figure means: HTTP response framing (whole
 * and byte by byte), the nearest-rank percentile, INFO raft role parsing, and the HTTP load
 * generator against a real loopback server (counts, errors, closed connections).
 * Not part of `npm test` (bench/ is outside .mocharc.json's spec glob): run with
 * `npx mocha --no-config --timeout 60000 dist/bench/peers.spec.js`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import {
  cpuProfileHotspots,
  cpuSeconds,
  httpLoad,
  parseRaftRole,
  parseResponses,
  percentile,
} from './peers.js';

function response(status: number, body: string): string {
  return `HTTP/1.1 ${status} OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

describe('bench/peers parseResponses', () => {
  const two = Buffer.from(response(200, '{"a":1}') + response(404, 'nope'));

  it('parses back-to-back responses whole', () => {
    const parsed = parseResponses(two);
    expect(parsed.statuses).to.deep.equal([200, 404]);
    expect(parsed.bodies.map((b) => b.toString())).to.deep.equal(['{"a":1}', 'nope']);
    expect(parsed.consumed).to.equal(two.length);
  });

  it('parses them fed byte by byte, consuming only whole responses', () => {
    let pending = Buffer.alloc(0);
    const statuses: number[] = [];
    for (let i = 0; i < two.length; i++) {
      pending = Buffer.concat([pending, two.subarray(i, i + 1)]);
      const parsed = parseResponses(pending);
      statuses.push(...parsed.statuses);
      pending = pending.subarray(parsed.consumed);
    }
    expect(statuses).to.deep.equal([200, 404]);
    expect(pending.length).to.equal(0);
  });

  it('refuses a response without Content-Length and a bad status line', () => {
    expect(() =>
      parseResponses(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')),
    ).to.throw(/Content-Length/);
    expect(() => parseResponses(Buffer.from('SPDY 200\r\n\r\n'))).to.throw(/status line/);
  });
});

describe('bench/peers percentile and parseRaftRole', () => {
  it('nearest-rank percentile', () => {
    const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(sorted, 50)).to.equal(50);
    expect(percentile(sorted, 99)).to.equal(99);
    expect(percentile(sorted, 100)).to.equal(100);
    expect(percentile(Float64Array.of(7), 99)).to.equal(7);
  });

  it('finds the role in an INFO raft section', () => {
    expect(parseRaftRole('# Raft\r\nraft_node_id:n1\r\nraft_role:leader\r\n')).to.equal('leader');
    expect(parseRaftRole('# Raft\r\nrole:Follower\r\n')).to.equal('follower');
    expect(parseRaftRole('# Raft\r\nleader_id:n2\r\n')).to.equal(undefined);
  });

  it('reads this process CPU time from /proc', () => {
    const before = cpuSeconds(process.pid);
    const until = Date.now() + 200;
    let spin = 0;
    while (Date.now() < until) spin++;
    expect(spin).to.be.greaterThan(0);
    expect(cpuSeconds(process.pid)).to.be.greaterThan(before);
  });
});

describe('bench/peers httpLoad', () => {
  let server: http.Server;
  let port = 0;
  let served = 0;
  let failFrom = Infinity;
  let closeFrom = Infinity;

  before(async () => {
    server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        served++;
        if (served >= closeFrom) {
          req.socket.destroy();
          return;
        }
        const status = served >= failFrom ? 500 : 200;
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': 11 });
        res.end('{"ok":true}');
      });
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  beforeEach(() => {
    served = 0;
    failFrom = Infinity;
    closeFrom = Infinity;
  });

  it('sends exactly the requested number of requests and reports latency', async () => {
    const result = await httpLoad({
      port,
      method: 'POST',
      path: '/x',
      body: '{}',
      connections: 7,
      requests: 500,
    });
    expect(served).to.equal(500);
    expect(result.requests).to.equal(500);
    expect(result.opsPerSec).to.be.greaterThan(0);
    expect(result.p50LatencyMs).to.be.greaterThan(0);
    expect(result.p99LatencyMs).to.be.at.least(result.p50LatencyMs);
    expect(result.maxLatencyMs).to.be.at.least(result.p99LatencyMs);
  });

  it('fails the run on a non-2xx status', async () => {
    failFrom = 50;
    let error: unknown;
    await httpLoad({ port, method: 'POST', path: '/x', body: '{}', connections: 4, requests: 200 }).catch(
      (err: unknown) => {
        error = err;
      },
    );
    expect(String(error)).to.match(/HTTP 500/);
  });

  it('fails the run when the server closes a connection with a request in flight', async () => {
    closeFrom = 30;
    let error: unknown;
    await httpLoad({
      port,
      method: 'POST',
      path: '/x',
      body: '{}',
      connections: 4,
      requests: 200,
      timeoutMs: 10_000,
    }).catch((err: unknown) => {
      error = err;
    });
    expect(String(error)).to.match(/closed a connection|socket/);
  });
});

describe('bench/peers cpuProfileHotspots', () => {
  it('ranks self time over busy samples and names the project caller of a native frame', () => {
    const frame = (functionName: string, url: string, lineNumber = 0) => ({ functionName, url, lineNumber });
    const profile = {
      startTime: 0,
      endTime: 2_000_000,
      nodes: [
        { id: 1, callFrame: frame('(root)', ''), children: [2, 3, 6] },
        { id: 2, callFrame: frame('(idle)', '') },
        { id: 3, callFrame: frame('handleReady', 'file:///repo/dist/raft/node.js', 9), children: [4] },
        { id: 4, callFrame: frame('writeGeneric', 'node:internal/stream_base_commons'), children: [5] },
        { id: 5, callFrame: frame('writeBuffer', '') },
        { id: 6, callFrame: frame('(garbage collector)', '') },
      ],
      samples: [2, 2, 2, 2, 3, 5, 5, 5, 6, 3],
    };
    const summary = cpuProfileHotspots(JSON.stringify(profile), 10, '/repo');
    expect(summary.durationSeconds).to.equal(2);
    expect(summary.busyPercent).to.equal(60);
    expect(summary.hotspots.map((h) => [h.where, h.selfPercentOfBusy])).to.deep.equal([
      ['(writeBuffer)', 50],
      ['dist/raft/node.js:10 handleReady', 33.33],
      ['(garbage collector)', 16.67],
    ]);
    expect(summary.hotspots[0]?.callers).to.deep.equal([
      { where: 'dist/raft/node.js:10 handleReady', percentOfBusy: 50 },
    ]);
  });
});
