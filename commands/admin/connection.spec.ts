import { expect } from 'chai';
import { Harness, plain } from '../testing.js';

describe('connection commands', () => {
  let h: Harness;
  beforeEach(() => {
    h = new Harness();
  });

  describe('HELLO', () => {
    it('switches protocol and answers the server map in it', () => {
      const reply = h.runSync('HELLO', '3');
      expect(reply.kind).to.equal('map');
      expect(h.session.protocol).to.equal(3);
      expect(plain(reply)).to.deep.equal({
        server: 'redis',
        version: '7.2.0',
        proto: 3n,
        id: 1n,
        mode: 'standalone',
        role: 'master',
        modules: [],
      });
      expect(plain(h.runSync('HELLO'))).to.have.property('proto', 3n);
      expect(plain(h.runSync('HELLO', '2'))).to.have.property('proto', 2n);
      expect(h.session.protocol).to.equal(2);
    });

    it('refuses other versions and bad options', () => {
      expect(plain(h.runSync('HELLO', '4'))).to.deep.equal({ error: 'NOPROTO unsupported protocol version' });
      expect(plain(h.runSync('HELLO', '1'))).to.deep.equal({ error: 'NOPROTO unsupported protocol version' });
      expect(plain(h.runSync('HELLO', 'x'))).to.deep.equal({
        error: 'ERR Protocol version is not an integer or out of range',
      });
      expect(plain(h.runSync('HELLO', '3', 'FOO'))).to.deep.equal({
        error: "ERR Syntax error in HELLO option 'FOO'",
      });
      expect(plain(h.runSync('HELLO', '3', 'AUTH', 'default'))).to.deep.equal({
        error: "ERR Syntax error in HELLO option 'AUTH'",
      });
      expect(plain(h.runSync('HELLO', '3', 'SETNAME', 'a b'))).to.deep.equal({
        error: 'ERR Client names cannot contain spaces, newlines or special characters.',
      });
      expect(h.session.protocol).to.equal(2);
    });

    it('authenticates and names the client, or refuses without credentials', () => {
      h.password = 'pw';
      expect(plain(h.runSync('HELLO', '3'))).to.deep.equal({
        error:
          'NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time',
      });
      expect(plain(h.runSync('HELLO', '3', 'AUTH', 'default', 'bad'))).to.deep.equal({
        error: 'WRONGPASS invalid username-password pair or user is disabled.',
      });
      expect(h.session.protocol).to.equal(2);
      expect(plain(h.runSync('HELLO', '3', 'AUTH', 'default', 'pw', 'SETNAME', 'worker-1'))).to.have.property(
        'proto',
        3n,
      );
      expect(h.session.authenticated).to.equal(true);
      expect(h.session.name).to.equal('worker-1');
    });
  });

  describe('AUTH', () => {
    it('without a configured password', () => {
      expect(plain(h.runSync('AUTH', 'x'))).to.deep.equal({
        error:
          'ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?',
      });
      expect(plain(h.runSync('AUTH', 'default', 'anything'))).to.equal('OK');
      expect(plain(h.runSync('AUTH', 'bob', 'anything'))).to.deep.equal({
        error: 'WRONGPASS invalid username-password pair or user is disabled.',
      });
      expect(plain(h.runSync('AUTH', 'a', 'b', 'c'))).to.deep.equal({ error: 'ERR syntax error' });
    });

    it('with a password, one or two arguments', () => {
      h.password = 'pw';
      expect(plain(h.runSync('AUTH', 'pw'))).to.equal('OK');
      h.session.authenticated = false;
      expect(plain(h.runSync('AUTH', 'default', 'pw'))).to.equal('OK');
      h.session.authenticated = false;
      expect(plain(h.runSync('AUTH', 'default', 'pw2'))).to.have.property('error');
      expect(h.session.authenticated).to.equal(false);
    });
  });

  it('ECHO, SELECT, QUIT, RESET', () => {
    expect(plain(h.runSync('ECHO', 'hi'))).to.equal('hi');
    expect(plain(h.runSync('SELECT', '0'))).to.equal('OK');
    expect(plain(h.runSync('SELECT', '1'))).to.deep.equal({ error: 'ERR DB index is out of range' });
    expect(plain(h.runSync('SELECT', 'x'))).to.deep.equal({
      error: 'ERR value is not an integer or out of range',
    });
    h.password = 'pw';
    h.runSync('AUTH', 'pw');
    h.runSync('HELLO', '3', 'SETNAME', 'n');
    expect(plain(h.runSync('RESET'))).to.equal('RESET');
    expect(h.session.protocol).to.equal(2);
    expect(h.session.name).to.equal('');
    expect(h.session.authenticated).to.equal(false);
    expect(plain(h.runSync('QUIT'))).to.equal('OK');
    expect(h.session.closeAfterReply).to.equal(true);
  });

  describe('CLIENT', () => {
    it('ID, SETNAME, GETNAME, SETINFO, INFO', () => {
      expect(plain(h.runSync('CLIENT', 'ID'))).to.equal(1n);
      expect(plain(h.runSync('CLIENT', 'GETNAME'))).to.equal(null);
      expect(plain(h.runSync('CLIENT', 'SETNAME', 'conn-a'))).to.equal('OK');
      expect(plain(h.runSync('CLIENT', 'GETNAME'))).to.equal('conn-a');
      expect(plain(h.runSync('CLIENT', 'SETNAME', 'bad name'))).to.deep.equal({
        error: 'ERR Client names cannot contain spaces, newlines or special characters.',
      });
      expect(plain(h.runSync('CLIENT', 'SETINFO', 'LIB-NAME', 'node-redis'))).to.equal('OK');
      expect(plain(h.runSync('CLIENT', 'SETINFO', 'lib-ver', '5.12.1'))).to.equal('OK');
      expect(plain(h.runSync('CLIENT', 'SETINFO', 'lib-foo', 'x'))).to.deep.equal({
        error: "ERR Unrecognized option 'lib-foo'",
      });
      expect(plain(h.runSync('CLIENT', 'SETINFO', 'lib-name', 'a b'))).to.deep.equal({
        error: 'ERR lib-name cannot contain spaces, newlines or special characters.',
      });
      const info = h.runSync('CLIENT', 'INFO');
      expect(h.session.lastCommand).to.equal('client|info');
      expect(info.kind).to.equal('verbatim');
      expect(plain(info)).to.match(
        /^id=1 addr=127\.0\.0\.1:40001 laddr=127\.0\.0\.1:6379 name=conn-a .* resp=2 lib-name=node-redis lib-ver=5\.12\.1\n$/,
      );
    });

    it('LIST with filters and KILL in both forms', () => {
      const other = h.server.connect().session;
      const list = plain(h.runSync('CLIENT', 'LIST')) as string;
      expect(list.split('\n').filter((l) => l !== '')).to.have.length(2);
      expect(plain(h.runSync('CLIENT', 'LIST', 'ID', String(other.id)))).to.match(/^id=2 /);
      expect(plain(h.runSync('CLIENT', 'LIST', 'TYPE', 'pubsub'))).to.equal('');
      expect(plain(h.runSync('CLIENT', 'LIST', 'ID', 'x'))).to.deep.equal({ error: 'ERR Invalid client ID' });
      expect(plain(h.runSync('CLIENT', 'KILL', other.addr))).to.equal('OK');
      expect(h.server.killed).to.deep.equal([2]);
      expect(plain(h.runSync('CLIENT', 'KILL', '1.2.3.4:5'))).to.deep.equal({ error: 'ERR No such client' });
      expect(plain(h.runSync('CLIENT', 'KILL', 'ID', '2'))).to.equal(1n);
      // SKIPME defaults to yes.
      expect(plain(h.runSync('CLIENT', 'KILL', 'ID', '1'))).to.equal(0n);
      expect(plain(h.runSync('CLIENT', 'KILL', 'ID', '1', 'SKIPME', 'no'))).to.equal(1n);
      expect(plain(h.runSync('CLIENT', 'KILL', 'ID', '0'))).to.deep.equal({
        error: 'ERR client-id should be greater than 0',
      });
      expect(plain(h.runSync('CLIENT', 'KILL', 'ID'))).to.deep.equal({ error: 'ERR No such client' });
      expect(plain(h.runSync('CLIENT', 'KILL', 'ID', '1', 'SKIPME'))).to.deep.equal({
        error: 'ERR syntax error',
      });
      expect(plain(h.runSync('CLIENT', 'NO-EVICT', 'on'))).to.equal('OK');
      expect(plain(h.runSync('CLIENT', 'NO-TOUCH', 'maybe'))).to.deep.equal({ error: 'ERR syntax error' });
      expect((plain(h.runSync('CLIENT', 'HELP')) as string[])[0]).to.equal(
        'CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
      );
    });
  });
});
