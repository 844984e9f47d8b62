import { expect } from 'chai';
import { LocalExecutor } from './executor.js';
import { TooManyWaitersError, WaiterRegistry } from './waiters.js';

describe('WaiterRegistry', () => {
  it('resolves a waiter with the result it is woken with, once', async () => {
    const registry = new WaiterRegistry('n1.ab');
    const waiter = registry.create();
    expect(waiter.id.startsWith('n1.ab:')).to.equal(true);
    registry.wake(waiter.id, { type: 'integer', value: 7 });
    expect(await waiter.woken).to.deep.equal({ type: 'integer', value: 7 });
    expect(registry.size).to.equal(0);
    registry.wake(waiter.id, { type: 'integer', value: 8 });
    expect(registry.strayWakeUpCount).to.equal(1);
  });

  it('gives every waiter a distinct id and ignores other nodes waiters', () => {
    const registry = new WaiterRegistry('n1.ab');
    const ids = new Set(Array.from({ length: 100 }, () => registry.create().id));
    expect(ids.size).to.equal(100);
    registry.wake('n2.cd:1', { type: 'ok' });
    expect(registry.strayWakeUpCount).to.equal(0);
    expect(registry.size).to.equal(100);
  });

  it('forgets a released waiter', () => {
    const registry = new WaiterRegistry('n1');
    const waiter = registry.create();
    waiter.release();
    expect(registry.size).to.equal(0);
    registry.wake(waiter.id, { type: 'ok' });
    expect(registry.strayWakeUpCount).to.equal(1);
  });

  it('refuses more than maxWaiters', () => {
    const registry = new WaiterRegistry('n1', 3);
    for (let i = 0; i < 3; i++) registry.create();
    expect(() => registry.create()).to.throw(
      TooManyWaitersError,
      /max number of blocked clients reached \(3\)/,
    );
  });

  it('hears the wake-ups of its executor state machine', () => {
    const executor = new LocalExecutor();
    const waiter = executor.waiters.create();
    let woken = false;
    void waiter.woken.then(() => (woken = true));
    // The state machine's families call FamilyContext.wake during apply; here, directly.
    (
      executor.stateMachine as unknown as { familyContext: { wake: (id: string, r: unknown) => void } }
    ).familyContext.wake(waiter.id, { type: 'ok' });
    expect(executor.waiters.size).to.equal(0);
    return waiter.woken.then(() => expect(woken).to.equal(true));
  });
});
