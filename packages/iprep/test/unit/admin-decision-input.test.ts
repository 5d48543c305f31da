import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decisionInputFromJson } from '../../src/admin/decision-input.js';
import { parseDuration } from '../../src/config/duration.js';

/** The milliseconds of `POST /decisions` with this `duration`. */
function durationOf(duration: string): number | null | undefined {
  return decisionInputFromJson({ value: '192.0.2.1', duration }).durationMs;
}

describe("duration: the configuration's parser", () => {
  it('reads a number and a unit, or several, as the configuration does', () => {
    const cases: [string, number][] = [
      ['500ms', 500],
      ['90s', 90_000],
      ['10m', 600_000],
      ['1h30m', 5_400_000],
      [' 2d ', 172_800_000],
      ['1w', 604_800_000],
      ['1.5h', 5_400_000],
      // Forms the configuration always read, now read here too.
      ['1h 30m', 5_400_000],
      ['10 m', 600_000],
      ['1500', 1500],
    ];
    for (const [text, ms] of cases) {
      assert.equal(durationOf(text), ms, text);
      assert.equal(durationOf(text), parseDuration(text), text);
    }
  });

  it('rejects anything else with a TypeError naming the field and the text', () => {
    // '1m1h' and '1s1s' were read here (out of order, repeated): no longer, as in the configuration.
    for (const text of ['', 'm', '10min', '-5m', '5y', 'Infinity', '1m1h', '1s1s', '1d1w']) {
      assert.throws(
        () => durationOf(text),
        (error: unknown) => error instanceof TypeError && error.message.startsWith(`"duration": not a duration: "${text}"`),
        text,
      );
    }
  });

  it('refuses a decision of no time: 0s, 0', () => {
    for (const text of ['0s', '0', '0w0d']) {
      assert.throws(
        () => durationOf(text),
        (error: unknown) => error instanceof TypeError && /"duration" must be positive/.test(error.message),
        text,
      );
    }
  });

  it('accepts 365 days, refuses longer as the configuration does', () => {
    assert.equal(durationOf('365d'), 365 * 86_400_000);
    assert.equal(durationOf('52w1d'), 365 * 86_400_000);
    for (const text of ['366d', '53w', '300000000w', '9'.repeat(400) + 's']) {
      assert.throws(
        () => durationOf(text),
        (error: unknown) => error instanceof TypeError && /^"duration": .*longer than 365d/.test(error.message),
        text,
      );
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
    assert.deepEqual(decisionInputFromJson({ value: '192.0.2.0/24', action: 'tarpit', score: 10, category: 'scanner', reason: 'ports', duration: '2h' }), {
      value: '192.0.2.0/24',
      action: 'tarpit',
      score: 10,
      category: 'scanner',
      reason: 'ports',
      durationMs: 7_200_000,
    });
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
