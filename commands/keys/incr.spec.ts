import { expect } from 'chai';
import { Harness, plain } from '../testing.js';

describe('INCR / INCRBY / DECR / DECRBY', () => {
  let h: Harness;
  beforeEach(() => {
    h = new Harness();
  });

  it('counts from 0 for a missing key and stores the decimal text', async () => {
    expect(plain(await h.run('INCR', 'n'))).to.equal(1n);
    expect(plain(await h.run('INCRBY', 'n', '41'))).to.equal(42n);
    expect(plain(await h.run('DECR', 'n'))).to.equal(41n);
    expect(plain(await h.run('DECRBY', 'n', '50'))).to.equal(-9n);
    expect(plain(await h.run('GET', 'n'))).to.equal('-9');
  });

  it('refuses non-integer values and arguments with Redis errors', async () => {
    await h.run('SET', 's', 'abc');
    expect(plain(await h.run('INCR', 's'))).to.deep.equal({
      error: 'ERR value is not an integer or out of range',
    });
    await h.run('SET', 's', ' 1');
    expect(plain(await h.run('INCR', 's'))).to.deep.equal({
      error: 'ERR value is not an integer or out of range',
    });
    expect(plain(await h.run('INCRBY', 'n', '1.5'))).to.deep.equal({
      error: 'ERR value is not an integer or out of range',
    });
    expect(plain(await h.run('INCRBY', 'n', '9223372036854775808'))).to.deep.equal({
      error: 'ERR value is not an integer or out of range',
    });
    expect(plain(await h.run('GET', 's'))).to.equal(' 1');
  });

  it('detects overflow both ways without changing the value', async () => {
    await h.run('SET', 'n', '9223372036854775807');
    expect(plain(await h.run('INCR', 'n'))).to.deep.equal({
      error: 'ERR increment or decrement would overflow',
    });
    await h.run('SET', 'm', '-9223372036854775808');
    expect(plain(await h.run('DECR', 'm'))).to.deep.equal({
      error: 'ERR increment or decrement would overflow',
    });
    expect(plain(await h.run('DECRBY', 'x', '-9223372036854775808'))).to.deep.equal({
      error: 'ERR decrement would overflow',
    });
    expect(plain(await h.run('GET', 'n'))).to.equal('9223372036854775807');
    expect(plain(await h.run('INCRBY', 'm', '9223372036854775807'))).to.equal(-1n);
  });

  it('keeps the expiry of the key', async () => {
    await h.run('SET', 'n', '1', 'PX', '1000');
    await h.run('INCR', 'n');
    h.nowMs += 1000;
    expect(plain(await h.run('GET', 'n'))).to.equal(null);
    expect(plain(await h.run('INCR', 'n'))).to.equal(1n);
  });
});
