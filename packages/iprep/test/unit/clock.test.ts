/** The coarse clock: a field a timer refreshes while it is read, and no timer while nobody reads it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoarseClock } from '../../src/engine/clock.js';

describe('CoarseClock', () => {
  it('is refreshed by its timer while read', async (t) => {
    const clock = new CoarseClock({ resolutionMs: 5, idleStopMs: 10_000 });
    t.after(() => clock.stop());
    const first = clock.now();
    assert.ok(Math.abs(first - Date.now()) <= 50);
    await sleep(60);
    assert.ok(clock.now() > first, 'moved on without a read in between');
    assert.equal(clock.running, true);
  });

  it('stops its timer when not read for idleStopMs, and reads the time afresh when read again', async (t) => {
    const clock = new CoarseClock({ resolutionMs: 5, idleStopMs: 30 });
    t.after(() => clock.stop());
    clock.now();
    const deadline = Date.now() + 2_000;
    while (clock.running && Date.now() < deadline) await sleep(10);
    assert.equal(clock.running, false, 'the timer stopped');
    await sleep(40);
    const woken = clock.now();
    assert.ok(Math.abs(woken - Date.now()) <= 5, `read afresh: ${Date.now() - woken} ms behind`);
    assert.equal(clock.running, true, 'the timer runs again');
  });

  it('stays stopped once stopped', async () => {
    const clock = new CoarseClock({ resolutionMs: 5 });
    clock.stop();
    const last = clock.now();
    await sleep(30);
    assert.equal(clock.now(), last);
    assert.equal(clock.running, false);
  });
});
