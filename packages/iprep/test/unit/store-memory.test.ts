import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MemoryCounterStore, MemoryDecisionStore } from '../../src/store/memory.js';
import { DELTA_SCAN_STEP, createStores, startCounterSync } from '../../src/store/index.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decision, describeCounterStoreContract, describeDecisionStoreContract, FakeClock, T0 } from '../store-contract.js';
import type { Logger } from 'spop';
import type { CounterStore } from '../../src/types.js';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

describeDecisionStoreContract('memory', ({ now, pruneIntervalMs }) => ({
  store: new MemoryDecisionStore({ now, pruneIntervalMs, logger: quiet }),
  settle: async () => {},
}));

describeCounterStoreContract('memory', () => new MemoryCounterStore());

describe('MemoryCounterStore', () => {
  it('matches a naive two-bucket reference for any sequence of flushes', async () => {
    const step = fc.record({ advance: fc.integer({ min: 0, max: 2500 }), key: fc.constantFrom('a', 'b', 'c'), delta: fc.integer({ min: 0, max: 50 }) });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 40 }), async (steps) => {
        const store = new MemoryCounterStore();
        const windowMs = 1000;
        const events: { at: number; key: string; delta: number }[] = [];
        let now = T0;
        for (const { advance, key, delta } of steps) {
          now += advance;
          events.push({ at: now, key, delta });
          const bucket = Math.floor(now / windowMs);
          const inBucket = (b: number) => events.filter((e) => e.key === key && Math.floor(e.at / windowMs) === b).reduce((sum, e) => sum + e.delta, 0);
          const expected = inBucket(bucket) + Math.floor(inBucket(bucket - 1) * (1 - (now - bucket * windowMs) / windowMs));
          assert.equal((await store.flush(new Map([[key, delta]]), windowMs, now)).get(key), expected);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('createStores (memory)', () => {
  it('builds memory stores that report healthy', async () => {
    const clock = new FakeClock();
    const stores = createStores({ type: 'memory' }, { now: clock.now });
    await stores.decisions.start();
    await stores.counters.start();
    assert.deepEqual(stores.health(), { kind: 'memory', up: true });
    await stores.decisions.put({
      key: 'ip:192.0.2.9',
      scope: 'ip',
      value: '192.0.2.9',
      action: 'deny',
      score: 0,
      category: 'manual',
      reason: 'x',
      origin: 'api',
      createdAt: T0,
      expiresAt: T0 + 10,
    });
    assert.equal(stores.decisions.snapshot().length, 1);
    clock.advance(10);
    assert.equal(stores.decisions.snapshot().length, 0, 'the store follows the clock it was given');
    await stores.close();
  });
});

describe('startCounterSync', () => {
  it('flushes deltas on each tick and hands the totals back, logging failures without throwing', async () => {
    const applied: [Map<string, number>, number | undefined][] = [];
    let deltas = new Map([['ip:192.0.2.1', 3]]);
    const tracker = {
      takeDeltas: () => {
        const taken = deltas;
        deltas = new Map();
        return taken;
      },
      applyTotals: (totals: ReadonlyMap<string, number>, now?: number) => applied.push([new Map(totals), now]),
    };
    const warnings: string[] = [];
    const logger: Logger = { ...quiet, warn: (message) => warnings.push(message) };
    let fail = false;
    const counters = new MemoryCounterStore();
    const store: CounterStore = {
      start: () => counters.start(),
      close: () => counters.close(),
      flush: (d, w, n) => (fail ? Promise.reject(new Error('redis timeout')) : counters.flush(d, w, n)),
    };
    const stop = startCounterSync(tracker, store, { windowMs: 60_000, intervalMs: 10, logger, now: () => T0 });
    try {
      for (let i = 0; i < 100 && applied.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(applied, [[new Map([['ip:192.0.2.1', 3]]), T0]]);
      fail = true;
      deltas = new Map([['ip:192.0.2.1', 1]]);
      for (let i = 0; i < 100 && warnings.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(warnings, ['counter sync failed']);
      assert.equal(applied.length, 1, 'no totals applied after a failed flush; empty ticks flush nothing');
    } finally {
      stop();
    }
  });

  it('takes deltas in steps of clients, letting the event loop run between steps', async () => {
    const steps: Array<[number, number]> = [];
    let turns = 0;
    let ticking = true;
    const spin = (): void => {
      turns++;
      if (ticking) setImmediate(spin);
    };
    const clients = DELTA_SCAN_STEP * 2 + 5;
    const turnsAtStep: number[] = [];
    const tracker = {
      takeDeltas: () => assert.fail('the whole scan at once'),
      takeDeltasStep: (into: Map<string, number>, from: number, count: number) => {
        steps.push([from, count]);
        turnsAtStep.push(turns);
        into.set(`k${from}`, 1);
        return from + count < clients ? from + count : -1;
      },
      applyTotals: () => {},
    };
    const flushed: Map<string, number>[] = [];
    const store: CounterStore = {
      start: async () => {},
      close: async () => {},
      flush: async (deltas) => {
        flushed.push(new Map(deltas));
        return new Map();
      },
    };
    spin();
    const stop = startCounterSync(tracker, store, { windowMs: 1000, intervalMs: 5 });
    try {
      for (let i = 0; i < 100 && flushed.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    } finally {
      stop();
      ticking = false;
    }
    assert.deepEqual(steps.slice(0, 3), [
      [0, DELTA_SCAN_STEP],
      [DELTA_SCAN_STEP, DELTA_SCAN_STEP],
      [DELTA_SCAN_STEP * 2, DELTA_SCAN_STEP],
    ]);
    assert.deepEqual([...(flushed[0]?.keys() ?? [])], ['k0', `k${DELTA_SCAN_STEP}`, `k${DELTA_SCAN_STEP * 2}`], 'one flush of every step');
    assert.ok((turnsAtStep[1] as number) > (turnsAtStep[0] as number) && (turnsAtStep[2] as number) > (turnsAtStep[1] as number), 'the loop ran between steps');
  });

  it('drops the totals of a flush still in flight when stopped', async () => {
    let release: () => void = () => {};
    let flushes = 0;
    const store: CounterStore = {
      start: async () => {},
      close: async () => {},
      flush: async (deltas) => {
        flushes++;
        await new Promise<void>((resolve) => (release = resolve));
        return new Map(deltas);
      },
    };
    let applied = 0;
    const tracker = { takeDeltas: () => new Map([['k', 1]]), applyTotals: () => void applied++ };
    const stop = startCounterSync(tracker, store, { windowMs: 1000, intervalMs: 5 });
    for (let i = 0; i < 100 && flushes === 0; i++) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(flushes, 1, 'no second flush while the first is in flight');
    stop();
    release();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(applied, 0);
  });
});

describe('MemoryDecisionStore with a file', () => {
  it('keeps decisions across restarts, without the expired ones and the deleted ones', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'iprep-decisions-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'sub', 'decisions.jsonl');
    const clock = new FakeClock();
    const first = new MemoryDecisionStore({ now: clock.now, file, logger: quiet });
    await first.start();
    await first.put(decision('192.0.2.1'));
    await first.put(decision('192.0.2.2', { expiresAt: T0 + 1000 }));
    await first.put(decision('192.0.2.3'));
    await first.delete('ip:192.0.2.3');
    await first.close();
    assert.equal(readFileSync(file, 'utf8').trim().split('\n').length, 2, 'one line per decision in force');

    clock.advance(2000);
    const second = new MemoryDecisionStore({ now: clock.now, file, logger: quiet });
    await second.start();
    assert.deepEqual(
      second.snapshot().map((d) => d.key),
      ['ip:192.0.2.1'],
    );
    await second.close();
  });

  it('skips a bad line with a warning naming the file and line, and starts without a file', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'iprep-decisions-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'decisions.jsonl');
    const warnings: string[] = [];
    const logger: Logger = { ...quiet, warn: (m) => warnings.push(m) };
    const missing = new MemoryDecisionStore({ file, logger });
    await missing.start();
    assert.equal(missing.snapshot().length, 0);
    await missing.close();
    writeFileSync(file, `${JSON.stringify(decision('192.0.2.9'))}\nnot json\n`);
    const store = new MemoryDecisionStore({ now: () => T0, file, logger });
    await store.start();
    assert.deepEqual(
      store.snapshot().map((d) => d.key),
      ['ip:192.0.2.9'],
    );
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', new RegExp(`${file.replace(/[.]/g, '\\.')}:2: skipped: not JSON`));
    await store.close();
  });
});
