import { expect } from 'chai';
import { COMMANDS } from '../table.js';
import { Harness, TestConfigError, plain } from '../testing.js';

/** Parses INFO text into sections of field -> value, checking Redis's layout on the way. */
function parseInfo(text: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  const blocks = text.split('\r\n\r\n');
  for (const block of blocks) {
    const lines = block.split('\r\n').filter((l) => l !== '');
    const header = lines.shift()!;
    expect(header).to.match(/^# [A-Z][A-Za-z]*$/);
    const fields = new Map<string, string>();
    for (const line of lines) {
      expect(line).to.match(/^[a-z0-9_]+:[^\r\n]*$/);
      const colon = line.indexOf(':');
      fields.set(line.slice(0, colon), line.slice(colon + 1));
    }
    sections.set(header.slice(2), fields);
  }
  return sections;
}

describe('server commands', () => {
  let h: Harness;
  beforeEach(() => {
    h = new Harness();
  });

  describe('INFO', () => {
    it('gives every section in Redis format with real figures', () => {
      h.runSync('MSET', 'a', '1', 'b', '2');
      h.runSync('SET', 'c', '3', 'EX', '100');
      const reply = h.runSync('INFO');
      expect(reply.kind).to.equal('verbatim');
      const text = plain(reply) as string;
      expect(text.endsWith('\r\n')).to.equal(true);
      const info = parseInfo(text);
      expect([...info.keys()]).to.deep.equal([
        'Server',
        'Clients',
        'Memory',
        'Persistence',
        'Stats',
        'Replication',
        'CPU',
        'Keyspace',
      ]);
      const server = info.get('Server')!;
      expect(server.get('redis_version')).to.equal('7.2.0');
      expect(server.get('redis_mode')).to.equal('standalone');
      expect(server.get('process_id')).to.equal(String(process.pid));
      expect(server.get('tcp_port')).to.equal('6379');
      expect(server.get('concord_version')).to.match(/^\d+\.\d+\.\d+/);
      expect(info.get('Persistence')!.get('loading')).to.equal('0');
      expect(info.get('Replication')!.get('role')).to.equal('master');
      expect(info.get('Clients')!.get('connected_clients')).to.equal('1');
      expect(info.get('Clients')!.get('maxclients')).to.equal('10000');
      expect(Number(info.get('Memory')!.get('used_memory'))).to.be.greaterThan(0);
      expect(info.get('CPU')!.get('used_cpu_user')).to.match(/^\d+\.\d{6}$/);
      expect(info.get('Keyspace')!.get('db0')).to.equal('keys=3,expires=1,avg_ttl=0');
    });

    it('selects sections case-insensitively and ignores unknown ones', () => {
      const info = parseInfo(plain(h.runSync('INFO', 'persistence', 'SERVER', 'nope')) as string);
      expect([...info.keys()]).to.deep.equal(['Server', 'Persistence']);
      expect(plain(h.runSync('INFO', 'nope'))).to.equal('');
      // Keyspace is an empty section while there are no keys, as in Redis.
      expect(plain(h.runSync('INFO', 'keyspace'))).to.equal('# Keyspace\r\n');
    });
  });

  describe('CONFIG', () => {
    it('GET matches patterns, deduplicates, answers a map', () => {
      const reply = h.runSync('CONFIG', 'GET', 'max*', '*clients', 'timeout');
      expect(reply.kind).to.equal('map');
      expect(plain(reply)).to.deep.equal({ maxclients: '10000', timeout: '0' });
      expect(plain(h.runSync('CONFIG', 'GET', 'nothing'))).to.deep.equal({});
    });

    it('SET is all or nothing', () => {
      expect(plain(h.runSync('CONFIG', 'SET', 'timeout', '5', 'maxclients', '20'))).to.equal('OK');
      expect(plain(h.runSync('CONFIG', 'GET', 'timeout'))).to.deep.equal({ timeout: '5' });
      expect(() => h.runSync('CONFIG', 'SET', 'timeout', '7', 'maxclients', 'many')).to.throw(
        TestConfigError,
        /maxclients/,
      );
      expect(plain(h.runSync('CONFIG', 'GET', 'timeout'))).to.deep.equal({ timeout: '5' });
      expect(plain(h.runSync('CONFIG', 'SET', 'timeout', '1', 'TIMEOUT', '2'))).to.deep.equal({
        error: "ERR CONFIG SET failed (possibly related to argument 'timeout') - duplicate parameter",
      });
      expect(plain(h.runSync('CONFIG', 'SET', 'timeout', '1', 'maxclients'))).to.deep.equal({
        error: "ERR wrong number of arguments for 'config|set' command",
      });
    });

    it('RESETSTAT and REWRITE say honestly they are not supported', () => {
      expect(plain(h.runSync('CONFIG', 'RESETSTAT')))
        .to.have.property('error')
        .that.match(/^ERR CONFIG RESETSTAT is not supported/);
      expect(plain(h.runSync('CONFIG', 'REWRITE')))
        .to.have.property('error')
        .that.match(/^ERR CONFIG REWRITE is not supported/);
    });
  });

  it('TIME answers seconds and microseconds near the clock', () => {
    const [seconds, micros] = plain(h.runSync('TIME')) as [string, string];
    expect(Math.abs(Number(seconds) - Date.now() / 1000)).to.be.below(5);
    expect(Number(micros)).to.be.within(0, 999_999);
  });

  it('SHUTDOWN asks the server to stop; bad options are syntax errors', () => {
    expect(plain(h.runSync('SHUTDOWN', 'NOSAVE', 'SAVE'))).to.deep.equal({ error: 'ERR syntax error' });
    expect(plain(h.runSync('SHUTDOWN', 'ABORT'))).to.deep.equal({ error: 'ERR No shutdown in progress.' });
    expect(h.server.shutdownReasons).to.deep.equal([]);
    expect(plain(h.runSync('SHUTDOWN', 'nosave'))).to.equal('OK');
    expect(h.server.shutdownReasons).to.have.length(1);
  });

  describe('COMMAND', () => {
    it('COUNT, LIST and COMMAND agree with the table', () => {
      expect(plain(h.runSync('COMMAND', 'COUNT'))).to.equal(BigInt(COMMANDS.length));
      const all = plain(h.runSync('COMMAND')) as unknown[][];
      expect(all.map((c) => c[0])).to.deep.equal(COMMANDS.map((c) => c.name));
      const names = plain(h.runSync('COMMAND', 'LIST')) as string[];
      expect(names).to.include.members(['get', 'client', 'client|kill', 'config|get', 'command|docs']);
      expect(plain(h.runSync('COMMAND', 'LIST', 'FILTERBY', 'ACLCAT', 'string'))).to.include.members([
        'get',
        'set',
        'incr',
      ]);
      expect(plain(h.runSync('COMMAND', 'LIST', 'FILTERBY', 'PATTERN', 'client|*'))).to.include('client|id');
      expect(plain(h.runSync('COMMAND', 'LIST', 'FILTERBY', 'MODULE', 'x'))).to.deep.equal([]);
      expect(plain(h.runSync('COMMAND', 'LIST', 'FILTERBY', 'NOPE', 'x'))).to.deep.equal({
        error: 'ERR syntax error',
      });
    });

    it('INFO gives Redis 7 ten-element entries, nil for unknown names', () => {
      const [get, mset, clientKill, none] = plain(
        h.runSync('COMMAND', 'INFO', 'get', 'MSET', 'client|kill', 'nope'),
      ) as unknown[][];
      expect(get!.slice(0, 7)).to.deep.equal([
        'get',
        2n,
        ['readonly', 'fast'],
        1n,
        1n,
        1n,
        ['@read', '@string', '@fast'],
      ]);
      expect(mset!.slice(0, 6)).to.deep.equal(['mset', -3n, ['write', 'denyoom'], 1n, -1n, 2n]);
      expect(mset![8]).to.deep.equal([
        {
          flags: ['OW', 'update'],
          begin_search: { type: 'index', spec: { index: 1n } },
          find_keys: { type: 'range', spec: { lastkey: -1n, keystep: 2n, limit: 0n } },
        },
      ]);
      expect(clientKill![0]).to.equal('client|kill');
      expect(none).to.equal(null);
      const client = (plain(h.runSync('COMMAND', 'INFO', 'client')) as unknown[][])[0]!;
      expect((client[9] as unknown[][]).map((s) => s[0])).to.include('client|setname');
    });

    it('DOCS gives summary, since, group, complexity and arguments as redis-cli reads them', () => {
      const docs = plain(h.runSync('COMMAND', 'DOCS', 'set', 'nope', 'client')) as Record<
        string,
        Record<string, unknown>
      >;
      expect(Object.keys(docs)).to.deep.equal(['set', 'client']);
      const set = docs.set!;
      expect(set).to.include({ since: '1.0.0', group: 'string', complexity: 'O(1)' });
      const args = set.arguments as Record<string, unknown>[];
      expect(args[0]).to.deep.equal({ name: 'key', type: 'key', key_spec_index: 0n });
      expect(args[3]).to.deep.equal({
        name: 'get',
        type: 'pure-token',
        token: 'GET',
        since: '6.2.0',
        flags: ['optional'],
      });
      expect(Object.keys(docs.client!.subcommands as object)).to.include('client|list');
      // redis-cli requires "arguments" to be an array (it asserts it), never a set.
      const reply = h.runSync('COMMAND', 'DOCS', 'set');
      if (reply.kind !== 'map') expect.fail('not a map');
      const setDocs = reply.entries[0]![1];
      if (setDocs.kind !== 'map') expect.fail('not a map');
      const argsEntry = setDocs.entries.find(([k]) => plain(k) === 'arguments')!;
      expect(argsEntry[1].kind).to.equal('array');
    });

    it('GETKEYS and GETKEYSANDFLAGS find keys from the key positions', () => {
      expect(plain(h.runSync('COMMAND', 'GETKEYS', 'MSET', 'a', '1', 'b', '2'))).to.deep.equal(['a', 'b']);
      expect(plain(h.runSync('COMMAND', 'GETKEYS', 'set', 'k', 'v', 'EX', '5'))).to.deep.equal(['k']);
      expect(plain(h.runSync('COMMAND', 'GETKEYS', 'del', 'a', 'b', 'c'))).to.deep.equal(['a', 'b', 'c']);
      expect(plain(h.runSync('COMMAND', 'GETKEYSANDFLAGS', 'get', 'k'))).to.deep.equal([
        ['k', ['RO', 'access']],
      ]);
      expect(plain(h.runSync('COMMAND', 'GETKEYS', 'ping'))).to.deep.equal({
        error: 'ERR The command has no key arguments',
      });
      expect(plain(h.runSync('COMMAND', 'GETKEYS', 'nope', 'x'))).to.deep.equal({
        error: 'ERR Invalid command specified',
      });
      expect(plain(h.runSync('COMMAND', 'GETKEYS', 'get', 'a', 'b'))).to.deep.equal({
        error: 'ERR Invalid number of arguments specified for command',
      });
    });
  });
});
