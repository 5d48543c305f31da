import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DecisionIndex, banDecision, decisionKey, describeTarget, makeDecision, parseDecisionTarget } from '../../src/decisions/index.js';
import { parseAddress } from '../../src/net/address.js';
import type { Decision, DecisionInput, IpAction } from '../../src/types.js';

const NOW = Date.UTC(2026, 10, 30, 12, 0, 0);
const DEFAULTS = { action: 'deny' as IpAction, durationMs: 4 * 3600_000, origin: 'api' };

function decision(value: string, extra: Partial<DecisionInput> = {}, now = NOW): Decision {
  return makeDecision({ value, ...extra }, DEFAULTS, now);
}

function addr(text: string): Uint8Array {
  const bytes = parseAddress(text);
  assert.ok(bytes, `test address ${text}`);
  return bytes;
}

describe('makeDecision', () => {
  it('gives canonical keys and values, a /32 or /128 being an ip decision', () => {
    const cases: [string, string, 'ip' | 'range', string][] = [
      ['192.0.2.1', 'ip:192.0.2.1', 'ip', '192.0.2.1'],
      [' 192.0.2.1/32 ', 'ip:192.0.2.1', 'ip', '192.0.2.1'],
      ['192.0.2.0/24', 'range:192.0.2.0/24', 'range', '192.0.2.0/24'],
      ['2001:0db8::0001', 'ip:2001:db8::1', 'ip', '2001:db8::1'],
      ['2001:DB8:0:0:0:0:0:1/128', 'ip:2001:db8::1', 'ip', '2001:db8::1'],
      ['2001:db8:1:2::/64', 'range:2001:db8:1:2::/64', 'range', '2001:db8:1:2::/64'],
      ['::ffff:192.0.2.1', 'ip:192.0.2.1', 'ip', '192.0.2.1'],
      ['::ffff:198.51.100.0/120', 'range:198.51.100.0/24', 'range', '198.51.100.0/24'],
      ['10.0.0.0/8', 'range:10.0.0.0/8', 'range', '10.0.0.0/8'],
      ['2001:db8::/32', 'range:2001:db8::/32', 'range', '2001:db8::/32'],
    ];
    for (const [value, key, scope, canonical] of cases) {
      const d = decision(value);
      assert.equal(d.key, key, value);
      assert.equal(d.scope, scope, value);
      assert.equal(d.value, canonical, value);
      assert.equal(decisionKey(value), key, value);
    }
  });

  it('applies defaults: action, score implied by the action, duration, origin, category', () => {
    const d = decision('192.0.2.1');
    assert.deepEqual(d, {
      key: 'ip:192.0.2.1',
      scope: 'ip',
      value: '192.0.2.1',
      action: 'deny',
      score: 0,
      category: 'manual',
      reason: '',
      origin: 'api',
      createdAt: NOW,
      expiresAt: NOW + DEFAULTS.durationMs,
    });
    assert.equal(decision('192.0.2.1', { action: 'allow' }).score, 100);
    assert.equal(decision('192.0.2.1', { action: 'captcha', score: 55 }).score, 55);
    assert.equal(decision('192.0.2.1', { durationMs: null }).expiresAt, null);
    assert.equal(decision('192.0.2.1', { durationMs: 1000 }).expiresAt, NOW + 1000);
    const full = decision('192.0.2.1', { category: 'abuse:ssh', reason: 'seen in logs' });
    assert.equal(full.category, 'abuse:ssh');
    assert.equal(full.reason, 'seen in logs');
  });

  it('rejects bad input with a TypeError saying what is wrong', () => {
    const bad: [unknown, RegExp][] = [
      [{ value: '300.1.1.1' }, /bad decision value/],
      [{ value: 'example.com' }, /bad decision value/],
      [{ value: '192.0.2.0/33' }, /bad prefix length/],
      [{ value: '192.0.2.1-192.0.2.9' }, /expected an address or a CIDR prefix/],
      [{ value: 42 }, /must be a string/],
      [{ value: '192.0.2.1', action: 'ban' }, /bad decision action "ban": expected one of allow, log, captcha, tarpit, deny/],
      [{ value: '192.0.2.1', score: 101 }, /bad decision score 101/],
      [{ value: '192.0.2.1', score: -1 }, /bad decision score -1/],
      [{ value: '192.0.2.1', score: 2.5 }, /bad decision score 2.5/],
      [{ value: '192.0.2.1', score: '7' }, /bad decision score "7"/],
      [{ value: '192.0.2.1', durationMs: 0 }, /bad decision duration 0/],
      [{ value: '192.0.2.1', durationMs: Number.POSITIVE_INFINITY }, /bad decision duration/],
      [{ value: '192.0.2.1', category: 'has space' }, /bad decision category/],
      [{ value: '192.0.2.1', reason: 'x'.repeat(300) }, /bad decision reason/],
      [null, /must be an object/],
    ];
    for (const [input, message] of bad) {
      assert.throws(
        () => makeDecision(input as DecisionInput, DEFAULTS, NOW),
        (err: unknown) => {
          assert.ok(err instanceof TypeError, `${JSON.stringify(input)} gives a TypeError`);
          assert.match(err.message, message);
          return true;
        },
      );
    }
    assert.throws(() => makeDecision({ value: '192.0.2.1' }, { ...DEFAULTS, action: 'block' as IpAction }, NOW), TypeError);
  });
});

describe('makeDecision: what one request may cover', () => {
  it('refuses prefixes shorter than the minimum unless forced', () => {
    for (const value of ['0.0.0.0/0', '128.0.0.0/1', '10.0.0.0/7', '::/0', '2000::/3', '2001:db8::/31', '::ffff:0.0.0.0/96']) {
      assert.throws(
        () => decision(value),
        (err: unknown) => err instanceof TypeError && /shorter than the minimum .* "force": true/.test(err.message),
        value,
      );
      assert.equal(decision(value, { force: true }).value, decisionKey(value).replace(/^range:/, ''), `${value} forced`);
    }
    const strict = { ...DEFAULTS, minPrefixV4: 24, minPrefixV6: 48 };
    assert.throws(() => makeDecision({ value: '192.0.0.0/16' }, strict, NOW), /IPv4 prefix \/16 is shorter than the minimum \/24/);
    assert.throws(() => makeDecision({ value: '2001:db8::/32' }, strict, NOW), /IPv6 prefix \/32 is shorter than the minimum \/48/);
    assert.equal(makeDecision({ value: '192.0.2.0/24' }, strict, NOW).value, '192.0.2.0/24');
    const open = { ...DEFAULTS, minPrefixV4: 0, minPrefixV6: 0 };
    assert.equal(makeDecision({ value: '0.0.0.0/0' }, open, NOW).value, '0.0.0.0/0');
  });

  it('refuses a prefix with host bits set, naming the network meant', () => {
    const cases: [string, string][] = [
      ['1.2.3.77/24', '1.2.3.0/24'],
      ['2001:db8:1:2:3::/64', '2001:db8:1:2::/64'],
      ['::ffff:198.51.100.7/120', '198.51.100.0/24'],
    ];
    for (const [value, network] of cases) {
      assert.throws(
        () => decision(value),
        (err: unknown) => err instanceof TypeError && err.message.includes(`host bits set`) && err.message.includes(`did you mean ${network}?`),
        value,
      );
    }
  });

  it('caps durations, and refuses control characters in the reason', () => {
    assert.throws(() => decision('192.0.2.1', { durationMs: 1e300 }), /bad decision duration .*at most 365d/);
    assert.throws(() => decision('192.0.2.1', { durationMs: 366 * 86_400_000 }), /at most 365d/);
    assert.equal(decision('192.0.2.1', { durationMs: 365 * 86_400_000 }).expiresAt, NOW + 365 * 86_400_000);
    for (const reason of ['a\u001b[31mred', 'two\nlines', 'nul\u0000', 'del\u007f', 'c1\u0085', 'sep\u2028', 'bidi\u202e']) {
      assert.throws(() => decision('192.0.2.1', { reason }), /bad decision reason: .*control characters/, JSON.stringify(reason));
    }
    assert.equal(decision('192.0.2.1', { reason: 'Überprüft: ssh brute force — 3× (tab-free)' }).reason, 'Überprüft: ssh brute force — 3× (tab-free)');
  });
});

describe('banDecision', () => {
  it('turns a behaviour ban into a decision ending when the ban ends', () => {
    const v6 = banDecision({ key: '2001:db8:1:2::/64', value: '2001:db8:1:2::/64', until: NOW + 600_000, count: 612, offences: 2 }, 'deny', 'agent:a1', NOW);
    assert.equal(v6.key, 'range:2001:db8:1:2::/64');
    assert.equal(v6.scope, 'range');
    assert.equal(v6.category, 'behaviour');
    assert.equal(v6.origin, 'agent:a1');
    assert.equal(v6.score, 0);
    assert.equal(v6.action, 'deny');
    assert.equal(v6.expiresAt, NOW + 600_000);
    assert.match(v6.reason, /#2.*612/);
    const v4 = banDecision({ key: '192.0.2.1', value: '192.0.2.1', until: NOW + 1, count: 700, offences: 1 }, 'tarpit', 'behaviour', NOW);
    assert.equal(v4.key, 'ip:192.0.2.1');
    assert.equal(v4.action, 'tarpit');
  });
});

describe('DecisionIndex', () => {
  it('prefers the exact address, then the longest prefix', () => {
    const index = new DecisionIndex();
    const wide = decision('10.0.0.0/8', { action: 'log' });
    const narrow = decision('10.1.0.0/16', { action: 'captcha' });
    const exact = decision('10.1.2.3', { action: 'deny' });
    index.replaceAll([wide, exact, narrow]);
    assert.equal(index.size, 3);
    assert.equal(index.lookup(addr('10.1.2.3'), NOW), exact);
    assert.equal(index.lookup(addr('10.1.2.4'), NOW), narrow);
    assert.equal(index.lookup(addr('10.2.0.1'), NOW), wide);
    assert.equal(index.lookup(addr('11.0.0.1'), NOW), undefined);
    assert.equal(index.lookup(addr('2001:db8::1'), NOW), undefined);
  });

  it('skips expired decisions and falls back to a less specific one', () => {
    const index = new DecisionIndex();
    const exact = decision('2001:db8::1', { durationMs: 1000 });
    const range = decision('2001:db8::/32', { durationMs: 5000 });
    const forever = decision('::/0', { action: 'log', durationMs: null, force: true });
    index.replaceAll([exact, range, forever]);
    const a = addr('2001:db8::1');
    assert.equal(index.lookup(a, NOW), exact);
    assert.equal(index.lookup(a, NOW + 999), exact);
    assert.equal(index.lookup(a, NOW + 1000), range);
    assert.equal(index.lookup(a, NOW + 5000), forever);
    assert.deepEqual(index.list(NOW + 1000), [range, forever]);
    assert.equal(index.size, 3);
    assert.equal(index.prune(NOW + 5000), 2);
    assert.equal(index.size, 1);
    assert.equal(index.lookup(a, NOW), forever);
  });

  it('applies puts (replacing the same key) and deletes', () => {
    const index = new DecisionIndex();
    const first = decision('192.0.2.0/24', { action: 'captcha' });
    index.apply({ op: 'put', decision: first });
    assert.equal(index.lookup(addr('192.0.2.9'), NOW), first);
    const second = decision('192.0.2.0/24', { action: 'deny' });
    index.apply({ op: 'put', decision: second });
    assert.equal(index.size, 1);
    assert.equal(index.lookup(addr('192.0.2.9'), NOW), second);
    index.apply({ op: 'delete', key: 'range:192.0.2.0/24' });
    assert.equal(index.lookup(addr('192.0.2.9'), NOW), undefined);
    assert.equal(index.size, 0);
    index.apply({ op: 'delete', key: 'range:192.0.2.0/24' });
    assert.equal(index.size, 0);
  });

  it('replaceAll drops what was there before', () => {
    const index = new DecisionIndex();
    index.replaceAll([decision('192.0.2.1'), decision('2001:db8::/48')]);
    const only = decision('198.51.100.7');
    index.replaceAll([only]);
    assert.equal(index.size, 1);
    assert.equal(index.lookup(addr('192.0.2.1'), NOW), undefined);
    assert.equal(index.lookup(addr('2001:db8::5'), NOW), undefined);
    assert.equal(index.lookup(addr('198.51.100.7'), NOW), only);
  });

  it('matches IPv4-mapped addresses as IPv4, then against IPv6 ranges', () => {
    const index = new DecisionIndex();
    const v4 = decision('192.0.2.0/24');
    const v6 = decision('::/64', { action: 'log' });
    index.replaceAll([v4, v6]);
    assert.equal(index.lookup(addr('::ffff:192.0.2.1'), NOW), v4);
    assert.equal(index.lookup(addr('::ffff:198.51.100.1'), NOW), v6);
  });

  it('leaves out decisions with a bad value and says so', () => {
    const problems: string[] = [];
    const index = new DecisionIndex({ onInvalid: (d, problem) => problems.push(`${d.key}: ${problem}`) });
    const broken: Decision = { ...decision('192.0.2.1'), key: 'ip:nonsense', value: 'nonsense' };
    index.replaceAll([broken, decision('192.0.2.2')]);
    assert.equal(index.size, 1);
    assert.equal(problems.length, 1);
    assert.match(problems[0] as string, /^ip:nonsense: bad decision value/);
  });

  it('lookup equals a naive scan over random decisions (property)', () => {
    const ipv4 = fc.uint8Array({ minLength: 4, maxLength: 4 });
    // IPv6 addresses from a few /16s (some IPv4-mapped), so prefixes overlap.
    const ipv6 = fc
      .tuple(fc.constantFrom([0x20, 0x01], [0x26, 0x00], [0, 0]), fc.uint8Array({ minLength: 14, maxLength: 14 }), fc.boolean())
      .map(([head, tail, mapped]) => {
        const bytes = Uint8Array.from([...head, ...tail]);
        if (mapped) bytes.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
        return bytes;
      });
    const target = fc.oneof(
      ipv4.chain((a) => fc.tuple(fc.constant(a), fc.integer({ min: 0, max: 32 }))),
      ipv6.chain((a) => fc.tuple(fc.constant(a), fc.integer({ min: 0, max: 128 }))),
    );
    const expiry = fc.oneof(fc.constant(null), fc.integer({ min: -1000, max: 1000 }));
    const spec = fc.record({ target, expiry, put: fc.boolean() });
    const probe = fc.record({
      of: fc.nat(),
      keepBits: fc.integer({ min: 0, max: 128 }),
      noise: fc.uint8Array({ minLength: 16, maxLength: 16 }),
      asMapped: fc.boolean(),
    });

    fc.assert(
      fc.property(fc.array(spec, { minLength: 1, maxLength: 40 }), fc.array(probe, { minLength: 1, maxLength: 30 }), (specs, probes) => {
        const index = new DecisionIndex();
        const model = new Map<string, Decision>();
        for (const [
          i,
          {
            target: [bytes, length],
            expiry,
            put,
          },
        ] of specs.entries()) {
          // Any prefix, as a store may hold: the network itself, forced past the minimum prefix.
          const value = describeTarget(parseDecisionTarget(`${textOf(bytes)}/${length}`)).value;
          const d = makeDecision({ value, reason: String(i), durationMs: expiry === null ? null : 2000 + expiry, force: true }, DEFAULTS, NOW - 2000);
          if (put || !model.has(d.key)) {
            index.apply({ op: 'put', decision: d });
            model.set(d.key, d);
          } else {
            index.apply({ op: 'delete', key: d.key });
            model.delete(d.key);
          }
        }
        assert.equal(index.size, model.size);
        const decisions = [...model.values()];
        for (const { of, keepBits, noise, asMapped } of probes) {
          const base = parseDecisionTarget(pickValue(decisions, specs, of));
          let address = withNoise(base.address, keepBits, noise);
          if (address.length === 4 && asMapped) address = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...address]);
          assert.equal(index.lookup(address, NOW), naiveLookup(decisions, address, NOW), `lookup ${textOf(address)}`);
        }
      }),
      { numRuns: 300 },
    );
  });
});

function textOf(bytes: Uint8Array): string {
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] as number) << 8) | (bytes[i + 1] as number)).toString(16));
  return groups.join(':');
}

function pickValue(decisions: Decision[], specs: { target: [Uint8Array, number] }[], of: number): string {
  if (decisions.length > 0) return (decisions[of % decisions.length] as Decision).value;
  const [bytes] = (specs[of % specs.length] as { target: [Uint8Array, number] }).target;
  return textOf(bytes);
}

/** The address with its bits after `keepBits` taken from `noise`. */
function withNoise(address: Uint8Array, keepBits: number, noise: Uint8Array): Uint8Array {
  const out = Uint8Array.from(address);
  for (let bit = keepBits; bit < out.length * 8; bit++) {
    const i = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    out[i] = ((out[i] as number) & ~mask) | ((noise[i] as number) & mask);
  }
  return out;
}

/** Every unexpired decision containing the address; the one with the longest prefix (IPv4 counted as ::ffff:0:0/96 + length). */
function naiveLookup(decisions: readonly Decision[], address: Uint8Array, now: number): Decision | undefined {
  let best: Decision | undefined;
  let bestLength = -1;
  const mapped = address.length === 16 && address.slice(0, 12).every((b, i) => b === (i >= 10 ? 0xff : 0));
  for (const d of decisions) {
    if (d.expiresAt !== null && d.expiresAt <= now) continue;
    const { address: network, prefixLength } = parseDecisionTarget(d.value);
    let candidate: Uint8Array;
    let length: number;
    if (network.length === address.length) [candidate, length] = [address, prefixLength];
    else if (mapped && network.length === 4) [candidate, length] = [address.slice(12), prefixLength + 96];
    else continue;
    if (!samePrefix(candidate, network, prefixLength)) continue;
    assert.notEqual(length, bestLength, 'two decisions on one network');
    if (length > bestLength) [best, bestLength] = [d, length];
  }
  return best;
}

function samePrefix(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  for (let bit = 0; bit < bits; bit++) {
    const i = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if (((a[i] as number) & mask) !== ((b[i] as number) & mask)) return false;
  }
  return true;
}
