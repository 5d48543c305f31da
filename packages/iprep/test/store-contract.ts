/**
 * The behaviour every DecisionStore and CounterStore must have, as test suites any implementation
 * runs: the memory stores and the Redis stores (single server and Cluster) share these.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CounterStore, Decision, DecisionChange, DecisionStore } from '../src/types.js';

export const T0 = 1_800_000_000_000;

/** A clock tests move by hand. */
export class FakeClock {
  t = T0;
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

export function decision(address: string, overrides: Partial<Decision> = {}): Decision {
  return {
    key: `ip:${address}`,
    scope: 'ip',
    value: address,
    action: 'deny',
    score: 0,
    category: 'manual',
    reason: 'test',
    origin: 'api',
    createdAt: T0,
    expiresAt: null,
    ...overrides,
  };
}

export interface DecisionStoreHarness {
  readonly store: DecisionStore;
  /** Resolves once changes in flight have reached the store (its own log echo included). */
  settle(): Promise<void>;
}

export type DecisionStoreFactory = (options: { now: () => number; pruneIntervalMs: number }) => DecisionStoreHarness | Promise<DecisionStoreHarness>;

/** Every change the store emits from now on. */
export function record(store: DecisionStore): DecisionChange[] {
  const changes: DecisionChange[] = [];
  store.onChange((change) => changes.push(change));
  return changes;
}

export const keysOf = (store: DecisionStore): string[] =>
  store
    .snapshot()
    .map((d) => d.key)
    .sort();

export function describeDecisionStoreContract(name: string, factory: DecisionStoreFactory): void {
  describe(`DecisionStore contract: ${name}`, () => {
    const open: DecisionStore[] = [];
    const make = async (clock = new FakeClock(), pruneIntervalMs = 20): Promise<DecisionStoreHarness & { clock: FakeClock }> => {
      const harness = await factory({ now: clock.now, pruneIntervalMs });
      open.push(harness.store);
      await harness.store.start();
      return { ...harness, clock };
    };
    after(async () => {
      await Promise.all(open.map((s) => s.close()));
    });

    it('put, snapshot, delete, each change emitted once', async () => {
      const { store, settle } = await make();
      const changes = record(store);
      const a = decision('192.0.2.1');
      const b = decision('2001:db8::1', { action: 'captcha', score: 30 });
      await store.put(a);
      await store.put(b);
      assert.deepEqual(keysOf(store), ['ip:192.0.2.1', 'ip:2001:db8::1']);
      assert.deepEqual(
        store.snapshot().find((d) => d.key === b.key),
        b,
      );
      assert.equal(await store.delete(a.key), true);
      assert.equal(await store.delete(a.key), false, 'a second delete finds nothing');
      assert.equal(await store.delete('ip:198.51.100.7'), false);
      await settle();
      assert.deepEqual(keysOf(store), ['ip:2001:db8::1']);
      assert.deepEqual(changes, [
        { op: 'put', decision: a },
        { op: 'put', decision: b },
        { op: 'delete', key: a.key },
      ]);
    });

    it('puts are idempotent; a changed decision replaces the old one', async () => {
      const { store, settle } = await make();
      const changes = record(store);
      const a = decision('192.0.2.2');
      await store.put(a);
      await store.put({ ...a });
      await settle();
      assert.equal(changes.length, 1);
      const harsher = { ...a, action: 'tarpit' as const, reason: 'again' };
      await store.put(harsher);
      await settle();
      assert.deepEqual(store.snapshot(), [harsher]);
      assert.deepEqual(changes, [
        { op: 'put', decision: a },
        { op: 'put', decision: harsher },
      ]);
    });

    it('expired decisions leave the snapshot at once and are deleted by the prune', async () => {
      const { store, clock, settle } = await make();
      const changes = record(store);
      const shortLived = decision('192.0.2.3', { expiresAt: T0 + 1000 });
      const permanent = decision('192.0.2.4');
      await store.put(shortLived);
      await store.put(permanent);
      clock.advance(999);
      assert.deepEqual(keysOf(store), ['ip:192.0.2.3', 'ip:192.0.2.4']);
      clock.advance(1);
      assert.deepEqual(keysOf(store), ['ip:192.0.2.4'], 'expired at expiresAt, before any prune');
      for (const deadline = Date.now() + 2000; !changes.some((c) => c.op === 'delete'); await sleep(10)) {
        assert.ok(Date.now() < deadline, 'the prune emitted no delete');
      }
      await settle();
      assert.deepEqual(changes.slice(2), [{ op: 'delete', key: shortLived.key }], 'one delete, for the expired decision only');
      assert.deepEqual(keysOf(store), ['ip:192.0.2.4']);
    });

    it('listeners unsubscribe, and a throwing listener does not stop the others', async () => {
      const { store, settle } = await make();
      const seen: string[] = [];
      const off = store.onChange(() => seen.push('first'));
      store.onChange(() => {
        throw new Error('listener bug');
      });
      store.onChange(() => seen.push('third'));
      await store.put(decision('192.0.2.5'));
      off();
      await store.put(decision('192.0.2.6'));
      await settle();
      assert.deepEqual(seen, ['first', 'third', 'third']);
      assert.equal(store.snapshot().length, 2);
    });
  });
}

export type CounterStoreFactory = (options: { now: () => number }) => CounterStore | Promise<CounterStore>;

export function describeCounterStoreContract(name: string, factory: CounterStoreFactory): void {
  describe(`CounterStore contract: ${name}`, () => {
    const clock = new FakeClock();
    let store: CounterStore;
    before(async () => {
      store = await factory({ now: clock.now });
      await store.start();
    });
    after(async () => {
      await store.close();
    });
    const flush = (entries: Record<string, number>, windowMs: number, now: number) => store.flush(new Map(Object.entries(entries)), windowMs, now);

    it('adds deltas within the window, per key', async () => {
      const start = T0 + 3_600_000; // a multiple of the 1 s and 60 s windows used here
      assert.deepEqual(
        await flush({ 'a:1': 3, 'b:1': 1 }, 60_000, start),
        new Map([
          ['a:1', 3],
          ['b:1', 1],
        ]),
      );
      assert.deepEqual(await flush({ 'a:1': 2 }, 60_000, start + 1000), new Map([['a:1', 5]]));
      assert.deepEqual(await flush({ 'b:1': 4 }, 60_000, start + 2000), new Map([['b:1', 5]]));
    });

    it('slides: the previous bucket weighs by the part of it still inside the window', async () => {
      const start = T0 + 7_200_000;
      assert.deepEqual(await flush({ 'a:2': 10 }, 1000, start), new Map([['a:2', 10]]));
      // 25 % into the next bucket: 75 % of the previous one still counts.
      assert.deepEqual(await flush({ 'a:2': 1 }, 1000, start + 1250), new Map([['a:2', 1 + 7]]));
      // 50 % into the bucket after: the 10 fell out, half of the 1 still counts (rounded down).
      assert.deepEqual(await flush({ 'a:2': 2 }, 1000, start + 2500), new Map([['a:2', 2]]));
      // Two buckets later nothing is left.
      assert.deepEqual(await flush({ 'a:2': 1 }, 1000, start + 4000), new Map([['a:2', 1]]));
    });

    it('takes fractional deltas (weighted events)', async () => {
      const start = T0 + 14_400_000;
      assert.deepEqual(await flush({ 'a:4': 0.5 }, 1000, start), new Map([['a:4', 0.5]]));
      assert.deepEqual(await flush({ 'a:4': 1.25 }, 1000, start + 10), new Map([['a:4', 1.75]]));
      // Half the window later: floor(1.75 * 0.5) of the previous bucket still counts.
      assert.deepEqual(await flush({ 'a:4': 0.5 }, 1000, start + 1500), new Map([['a:4', 0.5]]));
    });

    it('returns only the flushed keys, and nothing for an empty flush', async () => {
      const start = T0 + 10_800_000;
      await flush({ 'a:3': 1, 'b:3': 1 }, 1000, start);
      assert.deepEqual([...(await flush({ 'b:3': 1 }, 1000, start + 10)).keys()], ['b:3']);
      assert.equal((await flush({}, 1000, start + 20)).size, 0);
    });
  });
}
