import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decisionInputFromJson, parseDuration } from '../src/admin/decision-input.js';

describe('parseDuration', () => {
  it('reads a number and a unit, or several', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('10m'), 600_000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration(' 2d '), 172_800_000);
    assert.equal(parseDuration('1w'), 604_800_000);
    assert.equal(parseDuration('1.5h'), 5_400_000);
  });

  it('rejects anything else with a TypeError naming the text', () => {
    for (const text of ['', '10', 'm', '10 m', '10min', '-5m', '0s', '1h 30m', '5y', 'Infinity']) {
      assert.throws(() => parseDuration(text), (error: unknown) => error instanceof TypeError && error.message.startsWith(`duration "${text}"`), text);
    }
  });

  it('gives the sum of its parts for any combination', () => {
    const units: [string, number][] = [['w', 604_800_000], ['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]];
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 12 }), fc.constantFrom(...units)), { minLength: 1, maxLength: 4 }), (parts) => {
        const text = parts.map(([n, [unit]]) => `${n}${unit}`).join('');
        assert.equal(parseDuration(text), parts.reduce((sum, [n, [, ms]]) => sum + n * ms, 0));
      }),
    );
  });
});

describe('parseDuration: the longest duration', () => {
  it('accepts 365 days, refuses longer as the configuration does', () => {
    assert.equal(parseDuration('365d'), 365 * 86_400_000);
    assert.equal(parseDuration('52w1d'), 365 * 86_400_000);
    for (const text of ['366d', '53w', '300000000w', '9'.repeat(400) + 's']) {
      assert.throws(() => parseDuration(text), (error: unknown) => error instanceof TypeError && /longer than 365d/.test(error.message), text);
    }
  });
});

describe('decisionInputFromJson', () => {
  it('passes force on, checks the reason and caps durationMs', () => {
    assert.deepEqual(decisionInputFromJson({ value: '0.0.0.0/0', force: true }), { value: '0.0.0.0/0', force: true });
    assert.throws(() => decisionInputFromJson({ value: '0.0.0.0/0', force: 'yes' }), /"force" must be true or false/);
    assert.throws(() => decisionInputFromJson({ value: '192.0.2.1', durationMs: 1e300 }), /"durationMs" must be .* at most 365d/);
    assert.throws(() => decisionInputFromJson({ value: '192.0.2.1', reason: 'forged\nlog line' }), /control characters/);
  });


  it('keeps the fields given and converts the duration', () => {
    assert.deepEqual(decisionInputFromJson({ value: '192.0.2.1' }), { value: '192.0.2.1' });
    assert.deepEqual(
      decisionInputFromJson({ value: '192.0.2.0/24', action: 'tarpit', score: 10, category: 'scanner', reason: 'ports', duration: '2h' }),
      { value: '192.0.2.0/24', action: 'tarpit', score: 10, category: 'scanner', reason: 'ports', durationMs: 7_200_000 },
    );
    assert.deepEqual(decisionInputFromJson({ value: '192.0.2.1', duration: null }), { value: '192.0.2.1', durationMs: null });
    assert.deepEqual(decisionInputFromJson({ value: '192.0.2.1', durationMs: null }), { value: '192.0.2.1', durationMs: null });
    assert.deepEqual(decisionInputFromJson({ value: '192.0.2.1', durationMs: 1500 }), { value: '192.0.2.1', durationMs: 1500 });
  });

  it('throws a TypeError for anything but a decision object', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (body) => {
        try {
          const input = decisionInputFromJson(body);
          assert.equal(typeof input.value, 'string');
        } catch (error) {
          assert.ok(error instanceof TypeError, String(error));
        }
      }),
    );
  });
});
