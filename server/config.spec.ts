import { expect } from 'chai';
import {
  DEFAULT_CONFIG,
  ServerConfig,
  formatMemberAddress,
  globMatch,
  parseAdvertise,
  parseBootstrap,
  parseMemberAddress,
  parseMemory,
} from './config.js';
import { ConfigError } from './errors.js';

function expectConfigError(run: () => void, message: string): void {
  try {
    run();
  } catch (thrown) {
    expect(thrown).to.be.instanceOf(ConfigError);
    expect((thrown as Error).message).to.equal(message);
    return;
  }
  expect.fail('no ConfigError thrown');
}

describe('config', () => {
  it('answers CONFIG GET with glob patterns, case-insensitively', () => {
    const config = new ServerConfig({ ...DEFAULT_CONFIG });
    expect(config.get('maxclients')).to.deep.equal([['maxclients', '10000']]);
    expect(config.get('MAXCLIENTS')).to.deep.equal([['maxclients', '10000']]);
    expect(config.get('save')).to.deep.equal([['save', '']]);
    expect(config.get('appendonly')).to.deep.equal([['appendonly', 'no']]);
    expect(config.get('databases')).to.deep.equal([['databases', '1']]);
    expect(config.get('proto-*').map(([name]) => name)).to.deep.equal(['proto-max-bulk-len']);
    expect(
      config
        .get('*max*')
        .map(([name]) => name)
        .sort(),
    ).to.deep.equal(['cache-max-bytes', 'cache-max-entries', 'maxclients', 'proto-max-bulk-len']);
    expect(config.get('nosuch')).to.deep.equal([]);
    expect(config.get('*').length).to.be.at.least(12);
  });

  it('sets mutable parameters and tells listeners', () => {
    const config = new ServerConfig({ ...DEFAULT_CONFIG });
    const seen: string[] = [];
    config.onChange((name) => seen.push(name));
    config.set('maxclients', '5');
    config.set('TIMEOUT', '30');
    config.set('proto-max-bulk-len', '2mb');
    config.set('protected-mode', 'no');
    config.set('loglevel', 'debug');
    config.set('requirepass', 'secret');
    expect(config.current.maxClients).to.equal(5);
    expect(config.current.timeoutSeconds).to.equal(30);
    expect(config.current.protoMaxBulkLen).to.equal(2 * 1024 * 1024);
    expect(config.current.protectedMode).to.equal(false);
    expect(config.current.logLevel).to.equal('debug');
    expect(config.current.requirePass).to.equal('secret');
    expect(config.get('requirepass')).to.deep.equal([['requirepass', 'secret']]);
    config.set('requirepass', '');
    expect(config.current.requirePass).to.equal(null);
    expect(seen).to.deep.equal([
      'maxclients',
      'timeout',
      'proto-max-bulk-len',
      'protected-mode',
      'loglevel',
      'requirepass',
      'requirepass',
    ]);
  });

  it("refuses with Redis 7's error texts", () => {
    const config = new ServerConfig({ ...DEFAULT_CONFIG });
    expectConfigError(
      () => config.set('port', '1'),
      "ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config",
    );
    expectConfigError(
      () => config.set('foo', '1'),
      "ERR Unknown option or number of arguments for CONFIG SET - 'foo'",
    );
    expectConfigError(
      () => config.set('maxclients', 'abc'),
      "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer",
    );
    expectConfigError(
      () => config.set('timeout', '-1'),
      "ERR CONFIG SET failed (possibly related to argument 'timeout') - argument must be between 0 and 2147483647 inclusive",
    );
    expectConfigError(
      () => config.set('protected-mode', 'maybe'),
      "ERR CONFIG SET failed (possibly related to argument 'protected-mode') - argument must be 'yes' or 'no'",
    );
    expect(config.current.maxClients).to.equal(DEFAULT_CONFIG.maxClients);
  });

  it('parses memory values like redis.conf', () => {
    expect(parseMemory('512mb')).to.equal(512 * 1024 * 1024);
    expect(parseMemory('1k')).to.equal(1000);
    expect(parseMemory('1KB')).to.equal(1024);
    expect(parseMemory('1gb')).to.equal(1024 ** 3);
    expect(parseMemory('123')).to.equal(123);
    expect(parseMemory('12x')).to.equal(null);
    expect(parseMemory('-1')).to.equal(null);
  });

  it('matches globs like Redis stringmatch', () => {
    expect(globMatch('a*c', 'abbbc')).to.equal(true);
    expect(globMatch('a?c', 'abc')).to.equal(true);
    expect(globMatch('a?c', 'ac')).to.equal(false);
    expect(globMatch('[ab]x', 'bx')).to.equal(true);
    expect(globMatch('[^ab]x', 'bx')).to.equal(false);
    expect(globMatch('[a-c]x', 'cx')).to.equal(true);
    expect(globMatch('a\\*', 'a*')).to.equal(true);
    expect(globMatch('a\\*', 'ab')).to.equal(false);
    expect(globMatch('*', '')).to.equal(true);
    expect(globMatch('*a*a*a*a*b', 'a'.repeat(200))).to.equal(false);
  });

  it('parses member addresses: host:port gets peer port + 10000, @peerport overrides, IPv6 in brackets', () => {
    expect(parseMemberAddress('127.0.0.1:7001')).to.deep.equal({
      host: '127.0.0.1',
      port: 7001,
      peerPort: 17001,
    });
    expect(parseMemberAddress('db1.example:6379@16400')).to.deep.equal({
      host: 'db1.example',
      port: 6379,
      peerPort: 16400,
    });
    expect(parseMemberAddress('[::1]:7001')).to.deep.equal({ host: '::1', port: 7001, peerPort: 17001 });
    expect(formatMemberAddress({ host: '::1', port: 7001, peerPort: 17001 })).to.equal('[::1]:7001@17001');
    for (const bad of ['7001', 'host:', 'host:0', 'host:70000', 'host:60000', 'a b:1', 'host:1@x']) {
      expect(parseMemberAddress(bad), bad).to.equal(null);
    }
  });

  it('parses --advertise: host, host:port, host:port@peerport, IPv6; refuses wildcards and bad ports', () => {
    expect(parseAdvertise('concord1')).to.deep.equal({ host: 'concord1', port: null, peerPort: null });
    expect(parseAdvertise('10.0.0.4:6379')).to.deep.equal({ host: '10.0.0.4', port: 6379, peerPort: null });
    expect(parseAdvertise('10.0.0.4:6379@16000')).to.deep.equal({
      host: '10.0.0.4',
      port: 6379,
      peerPort: 16000,
    });
    expect(parseAdvertise('fe80::1')).to.deep.equal({ host: 'fe80::1', port: null, peerPort: null });
    expect(parseAdvertise('[::1]:7001')).to.deep.equal({ host: '::1', port: 7001, peerPort: null });
    for (const bad of [
      '0.0.0.0',
      '::',
      '[::]:7001',
      '0.0.0.0:7001',
      'h:0',
      'h:70000',
      'h:1@99999',
      'a b',
      '',
    ]) {
      expect(() => parseAdvertise(bad), bad).to.throw(Error);
    }
  });

  it('parses --bootstrap lists and names what is wrong', () => {
    expect(parseBootstrap('n1=127.0.0.1:7001, n2=127.0.0.1:7002@9002')).to.deep.equal([
      { id: 'n1', host: '127.0.0.1', port: 7001, peerPort: 17001 },
      { id: 'n2', host: '127.0.0.1', port: 7002, peerPort: 9002 },
    ]);
    expect(() => parseBootstrap('n1=127.0.0.1:7001,n1=127.0.0.1:7002')).to.throw(/given twice/);
    expect(() => parseBootstrap('127.0.0.1:7001')).to.throw(/not id=host:port/);
    expect(() => parseBootstrap('n1=nowhere')).to.throw(/not host:port/);
    expect(() => parseBootstrap(' , ')).to.throw(/no members/);
  });
});
