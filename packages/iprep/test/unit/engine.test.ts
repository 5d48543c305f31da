/**
 * The engine's combination rules, one named case per rule, the explain path
 * against the hot path (property), and the SPOE handler's answers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type Action, Message, Reader, type SetVarAction, Writer } from 'spop';
import { BehaviourTracker } from '../../src/behaviour/index.js';
import { defaultConfig } from '../../src/config/index.js';
import { DecisionIndex, makeDecision } from '../../src/decisions/index.js';
import { type CompiledList, ReputationEngine } from '../../src/engine/engine.js';
import { VerdictActions, reputationHandler } from '../../src/engine/handler.js';
import { combine, thresholdAction } from '../../src/engine/verdict.js';
import { type IpRange, formatAddress, parseAddress, parseRange } from '../../src/net/address.js';
import { PackedListEntries } from '../../src/sources/index.js';
import { IntervalTable } from '../../src/table/index.js';
import type { BehaviourConfig, IprepConfig, ListConfig, ListEntry, Verdict } from '../../src/types.js';

const thresholds: IprepConfig['thresholds'] = { deny: 20, tarpit: 40, captcha: 60, log: 80 };
const special: IprepConfig['special'] = { enabled: true, internalAction: 'allow', bogonScore: 10 };
const NOW = Date.UTC(2026, 10, 30, 12);

function list(config: Partial<ListConfig> & { name: string }, lines: ReadonlyArray<string | [string, number]>): CompiledList {
  const entries: ListEntry[] = lines.map((line) =>
    typeof line === 'string' ? { range: parseRange(line) } : { range: parseRange(line[0]), score: line[1], note: 'csv' },
  );
  const full: ListConfig = { format: 'netset', refreshMs: 3_600_000, category: config.name, minEntries: 0, maxShrink: 1, ...config };
  const table = IntervalTable.compile(entries.map((e, value) => ({ range: e.range, value })));
  return {
    config: full,
    list: { name: full.name, entries: PackedListEntries.from(entries), table, loadedAt: NOW, origin: 'test', warnings: [] },
    table,
  };
}

/** The defaults, with thresholds small enough to cross in a test. */
const behaviourConfig: BehaviourConfig = {
  ...defaultConfig().behaviour,
  rateThreshold: 5,
  banThreshold: 10,
  statusArgument: undefined,
  rateArgument: undefined,
  maxClients: 1000,
};

/** An engine; the RFC 6890 table is off unless asked for, since the test addresses are documentation ones. */
function engine(options: { lists?: CompiledList[]; allow?: string[]; decisions?: DecisionIndex; behaviour?: BehaviourTracker; specialRanges?: boolean } = {}) {
  const e = new ReputationEngine(
    { thresholds, special: { ...special, enabled: options.specialRanges ?? false } },
    { decisions: options.decisions ?? new DecisionIndex(), behaviour: options.behaviour },
  );
  const ranges = (options.allow ?? []).map((t) => parseRange(t));
  e.setAllowlist({ ranges, table: IntervalTable.compile(ranges.map((range, value) => ({ range, value }))) });
  e.setLists(options.lists ?? []);
  return e;
}

const ip = (text: string): Uint8Array => {
  const bytes = parseAddress(text);
  assert.ok(bytes, text);
  return bytes;
};

const brief = (v: { score: number; action: string; category: string; source: string }) => [v.score, v.action, v.category, v.source];

describe('thresholds', () => {
  const cases: Array<[number, string]> = [
    [0, 'deny'],
    [19, 'deny'],
    [20, 'tarpit'],
    [39, 'tarpit'],
    [40, 'captcha'],
    [59, 'captcha'],
    [60, 'log'],
    [79, 'log'],
    [80, 'allow'],
    [100, 'allow'],
  ];
  for (const [score, action] of cases) it(`score ${score} -> ${action}`, () => assert.equal(thresholdAction(score, thresholds), action));
  it('no match: trusted', () => assert.deepEqual(brief(combine([], thresholds, true)), [100, 'allow', 'none', 'default']));
});

describe('combination rules', () => {
  const hard = list({ name: 'drop', score: 0, category: 'hijacked', action: 'deny' }, ['198.51.100.0/24']);
  const soft30 = list({ name: 'scanners', penalty: 30, category: 'scanner' }, ['198.51.100.7', '203.0.113.0/25']);
  const soft50 = list({ name: 'tor', category: 'anonymizer:tor' }, ['203.0.113.9']); // default penalty 50
  const hard30 = list({ name: 'cloud', score: 30, category: 'hosting:aws' }, ['203.0.113.128/25']);
  const csv = list({ name: 'partner', category: 'partner' }, [['9.9.9.200', 45]]);
  const logOnly = list({ name: 'watch', penalty: 1, category: 'watch', action: 'log' }, ['8.8.4.0/24']);
  const e = engine({ lists: [hard, soft30, soft50, hard30, csv, logOnly], allow: ['198.51.100.66', '2001:db8:1::/48'] });
  const cases: Array<[string, string, ReturnType<typeof brief>]> = [
    ['an unlisted public address is trusted', '8.8.8.8', [100, 'allow', 'none', 'default']],
    ['a hard list sets its score and action', '198.51.100.1', [0, 'deny', 'hijacked', 'drop']],
    ['hard and soft lists: the lowest score less the penalties, named by the heaviest', '198.51.100.7', [0, 'deny', 'hijacked', 'drop']],
    ['a soft list takes its penalty from 100; the threshold gives the action', '203.0.113.1', [70, 'log', 'scanner', 'scanners']],
    ['two soft lists add their penalties', '203.0.113.9', [20, 'tarpit', 'anonymizer:tor', 'tor']],
    ['a per-entry score (CSV) is an absolute score', '9.9.9.200', [45, 'captcha', 'partner', 'partner']],
    ['a hard score of 30', '203.0.113.130', [30, 'tarpit', 'hosting:aws', 'cloud']],
    ['an explicit action never softens the threshold one, and hardens a high score', '8.8.4.4', [99, 'log', 'watch', 'watch']],
    ['the allowlist wins over a hard list', '198.51.100.66', [100, 'allow', 'allowlisted', 'allowlist']],
    ['IPv6 allowlist', '2001:db8:1::5', [100, 'allow', 'allowlisted', 'allowlist']],
    ['an IPv4-mapped IPv6 address is judged as IPv4', '::ffff:198.51.100.1', [0, 'deny', 'hijacked', 'drop']],
  ];
  for (const [name, address, expected] of cases) {
    it(name, () => {
      const got = e.score(ip(address), NOW);
      assert.deepEqual(brief(got), expected);
      assert.equal(got.matches.length, 0, 'the hot path lists no matches');
      assert.deepEqual(brief(e.explain(address, NOW)), expected, 'explain agrees');
    });
  }

  describe('special-purpose ranges (RFC 6890)', () => {
    const withSpecial = engine({ lists: [hard, soft30], allow: ['192.0.2.66'], specialRanges: true });
    const special: Array<[string, string, ReturnType<typeof brief>]> = [
      ['internal addresses decide alone, before lists', '10.1.2.3', [100, 'allow', 'internal', 'rfc6890:private']],
      ['IPv6 link-local is internal', 'fe80::1', [100, 'allow', 'internal', 'rfc6890:link-local']],
      ['a bogon gets the configured score', '192.0.2.1', [10, 'deny', 'bogon', 'rfc6890:documentation']],
      ['a bogon on a hard list: the lower score', '198.51.100.1', [0, 'deny', 'hijacked', 'drop']],
      ['the allowlist wins over a bogon', '192.0.2.66', [100, 'allow', 'allowlisted', 'allowlist']],
      ['a globally reachable special range has no effect', '192.31.196.1', [100, 'allow', 'none', 'default']],
      ['an ordinary address', '8.8.8.8', [100, 'allow', 'none', 'default']],
    ];
    for (const [name, address, expected] of special) {
      it(name, () => {
        assert.deepEqual(brief(withSpecial.score(ip(address), NOW)), expected);
        assert.deepEqual(brief(withSpecial.explain(address, NOW)), expected);
      });
    }

    it('follows a new policy (reload), in IPv4 and IPv6, with each range named in explain', () => {
      const e = engine({ specialRanges: true });
      const addresses = ['10.1.2.3', '240.0.0.1', '224.0.0.1', '::1', 'ff02::1'];
      const before = addresses.map((a) => brief(e.score(ip(a), NOW)));
      assert.deepEqual(before, [
        [100, 'allow', 'internal', 'rfc6890:private'],
        [10, 'deny', 'bogon', 'rfc6890:reserved'],
        [10, 'deny', 'bogon', 'rfc6890:multicast'],
        [100, 'allow', 'internal', 'rfc6890:loopback'],
        [10, 'deny', 'bogon', 'rfc6890:multicast'],
      ]);
      e.configure({ thresholds, special: { enabled: true, internalAction: 'log', bogonScore: 50 } });
      assert.deepEqual(
        addresses.map((a) => brief(e.score(ip(a), NOW))),
        [
          [100, 'log', 'internal', 'rfc6890:private'],
          [50, 'captcha', 'bogon', 'rfc6890:reserved'],
          [50, 'captcha', 'bogon', 'rfc6890:multicast'],
          [100, 'log', 'internal', 'rfc6890:loopback'],
          [50, 'captcha', 'bogon', 'rfc6890:multicast'],
        ],
      );
      assert.deepEqual(
        addresses.map((a) => e.explain(a, NOW).matches[0]?.detail),
        ['10.0.0.0/8', '240.0.0.0/4', '224.0.0.0/4', '::1/128', 'ff00::/8'],
      );
      e.configure({ thresholds, special: { enabled: false, internalAction: 'allow', bogonScore: 10 } });
      assert.deepEqual(brief(e.score(ip('240.0.0.1'), NOW)), [100, 'allow', 'none', 'default']);
    });
  });

  it('explain lists every match with what it matched', () => {
    const v = e.explain('198.51.100.7', NOW);
    assert.deepEqual(
      v.matches.map((m) => [m.kind, m.source, m.detail]),
      [
        ['list', 'drop', '198.51.100.0/24'],
        ['list', 'scanners', '198.51.100.7'],
      ],
    );
    const allowed = e.explain('198.51.100.66', NOW);
    assert.deepEqual(
      allowed.matches.map((m) => m.source),
      ['allowlist', 'drop'],
    );
    assert.equal(allowed.matches[0]?.detail, '198.51.100.66');
  });

  it('explain rejects what is not an address', () => {
    assert.throws(() => e.explain('not-an-ip', NOW), TypeError);
  });
});

describe('decisions and behaviour', () => {
  it('a decision wins over lists and stops applying when it expires', () => {
    const decisions = new DecisionIndex();
    const e = engine({ lists: [list({ name: 'scanners', penalty: 30 }, ['203.0.113.0/24'])], decisions });
    decisions.apply({
      op: 'put',
      decision: makeDecision(
        { value: '203.0.113.5', action: 'captcha', score: 50, reason: 'manual', durationMs: 1000 },
        { action: 'deny', durationMs: 0, origin: 'api' },
        NOW,
      ),
    });
    assert.deepEqual(brief(e.score(ip('203.0.113.5'), NOW)), [50, 'captcha', 'manual', 'manual']);
    assert.deepEqual(brief(e.score(ip('203.0.113.5'), NOW + 1001)), [70, 'log', 'scanners', 'scanners']);
  });

  it('sees the first decision and the first allowlist entry once they arrive, after scoring with none', () => {
    const decisions = new DecisionIndex();
    const e = engine({ decisions });
    assert.deepEqual(brief(e.score(ip('203.0.113.8'), NOW)), [100, 'allow', 'none', 'default']);
    decisions.apply({
      op: 'put',
      decision: makeDecision({ value: '203.0.113.8', score: 5 }, { action: 'deny', durationMs: 1000, origin: 'api' }, NOW),
    });
    assert.deepEqual(brief(e.score(ip('203.0.113.8'), NOW)), [5, 'deny', 'manual', 'manual']);
    decisions.apply({ op: 'delete', key: 'ip:203.0.113.8' });
    assert.deepEqual(brief(e.score(ip('203.0.113.8'), NOW)), [100, 'allow', 'none', 'default']);
    const ranges = [parseRange('203.0.113.0/24')];
    e.setAllowlist({ ranges, table: IntervalTable.compile([{ range: ranges[0] as IpRange, value: 0 }]) });
    assert.deepEqual(brief(e.score(ip('203.0.113.8'), NOW)), [100, 'allow', 'allowlisted', 'allowlist']);
  });

  it('answers every decision that says the same thing with one verdict, and explains each with its own detail', () => {
    // A thousand banned clients cost the hot path one verdict and one cached answer, not one each.
    const decisions = new DecisionIndex();
    const e = engine({ decisions });
    for (const value of ['203.0.113.6', '203.0.113.7']) {
      decisions.apply({
        op: 'put',
        decision: makeDecision({ value, reason: 'too many requests' }, { action: 'deny', durationMs: 60_000, origin: 'behaviour' }, NOW),
      });
    }
    decisions.apply({ op: 'put', decision: makeDecision({ value: '203.0.113.8', score: 5 }, { action: 'deny', durationMs: 60_000, origin: 'api' }, NOW) });
    const first = e.score(ip('203.0.113.6'), NOW);
    assert.equal(e.score(ip('203.0.113.7'), NOW), first);
    assert.deepEqual(brief(first), [0, 'deny', 'manual', 'behaviour:ban']);
    assert.notEqual(e.score(ip('203.0.113.8'), NOW), first);
    assert.match(e.explain('203.0.113.6', NOW).matches[0]?.detail ?? '', /^ip:203\.0\.113\.6 by behaviour: too many requests, until /);
    assert.match(e.explain('203.0.113.7', NOW).matches[0]?.detail ?? '', /^ip:203\.0\.113\.7 by behaviour/);
  });

  it('explains a decision stored with an expiry past what a date can hold (written before durations were capped)', () => {
    const decisions = new DecisionIndex();
    const e = engine({ decisions });
    const stored = makeDecision({ value: '203.0.113.6' }, { action: 'deny', durationMs: 1000, origin: 'api' }, NOW);
    decisions.apply({ op: 'put', decision: { ...stored, expiresAt: 181_441_796_301_064_060 } });
    const verdict = e.explain('203.0.113.6', NOW);
    assert.equal(verdict.action, 'deny');
    assert.match(verdict.matches[0]?.detail ?? '', /until 181441796301064060 ms since 1970/);
  });

  it('behaviour penalties and bans apply', () => {
    const tracker = new BehaviourTracker(behaviourConfig, { now: () => NOW });
    const e = engine({ behaviour: tracker });
    const client = ip('198.51.100.9');
    for (let i = 0; i < 6; i++) tracker.hit(client, 1, NOW);
    const penalised = e.score(client, NOW);
    assert.equal(penalised.score, 70);
    assert.equal(penalised.source, 'behaviour:rate');
    for (let i = 0; i < 6; i++) tracker.hit(client, 1, NOW);
    const banned = e.score(client, NOW);
    assert.equal(banned.score, 0);
    assert.equal(banned.action, 'deny');
    assert.equal(banned.source, 'behaviour:ban');
  });
});

describe('the hot path allocates no verdict per message', () => {
  it('answers a penalised, a banned, and a listed and penalised client with the same objects every time', () => {
    const tracker = new BehaviourTracker(behaviourConfig, { now: () => NOW });
    const e = engine({ behaviour: tracker, lists: [list({ name: 'soft', penalty: 20, category: 'proxy' }, ['203.0.113.0/24'])] });
    const variables: IprepConfig['variables'] = { scope: 'sess', score: 'ip_score', action: 'ip_action', category: 'ip_category', source: 'ip_source' };
    const handler = reputationHandler({ engine: e, variables, now: () => NOW });
    const answer = (address: string) => handler(new Message('check-client-ip', [{ name: '', value: { type: 'ipv4', value: address } }]), undefined as never);
    const penalised = ip('198.51.100.9');
    const both = ip('203.0.113.7');
    const banned = ip('198.51.100.10');
    for (let i = 0; i < 6; i++) {
      tracker.hit(penalised, 1, NOW);
      tracker.hit(both, 1, NOW);
    }
    for (let i = 0; i < 12; i++) tracker.hit(banned, 1, NOW);
    for (const [address, brief_] of [
      ['198.51.100.9', [70, 'log', 'behaviour', 'behaviour:rate']],
      ['203.0.113.7', [50, 'captcha', 'behaviour', 'behaviour:rate']],
      ['198.51.100.10', [0, 'deny', 'behaviour', 'behaviour:ban']],
    ] as const) {
      const bytes = ip(address);
      const first = e.score(bytes, NOW);
      assert.deepEqual(brief(first), brief_, address);
      assert.equal(e.score(bytes, NOW), first, `${address}: the same verdict object`);
      assert.equal(answer(address), answer(address), `${address}: the same pre-encoded answer`);
      // explain still tells what matched, in full.
      assert.ok(
        e.explain(bytes, NOW).matches.every((m) => m.detail !== undefined),
        address,
      );
    }
  });

  it('gives the behaviour match without its detail text when asked, once built', () => {
    const tracker = new BehaviourTracker(behaviourConfig, { now: () => NOW });
    const client = ip('198.51.100.9');
    for (let i = 0; i < 6; i++) tracker.hit(client, 1, NOW);
    const match = tracker.evaluate(client, NOW, false);
    assert.deepEqual(match, { kind: 'behaviour', source: 'behaviour:rate', category: 'behaviour', penalty: 30 });
    assert.equal(tracker.evaluate(client, NOW, false), match);
    assert.ok(Object.isFrozen(match));
    assert.match(tracker.evaluate(client, NOW)?.detail ?? '', /6 messages in the window/);
  });
});

describe('the hot path agrees with explain', () => {
  it('for random addresses over random lists', () => {
    const prefix = fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 8, max: 32 })).map(([n, len]) => {
      const bytes = Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
      return `${formatAddress(bytes)}/${len}`;
    });
    const listArb = fc.record({
      prefixes: fc.array(prefix, { minLength: 1, maxLength: 20 }),
      score: fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined }),
      penalty: fc.integer({ min: 0, max: 100 }),
      action: fc.option(fc.constantFrom('allow', 'log', 'captcha', 'tarpit', 'deny' as const), { nil: undefined }),
    });
    fc.assert(
      fc.property(
        fc.array(listArb, { maxLength: 5 }),
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 20 }),
        (lists, addresses) => {
          const e = engine({
            lists: lists.map((l, i) =>
              list(
                { name: `l${i}`, ...(l.score === undefined ? { penalty: l.penalty } : { score: l.score }), ...(l.action ? { action: l.action } : {}) },
                l.prefixes,
              ),
            ),
          });
          for (const n of addresses) {
            const bytes = Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
            assert.deepEqual(brief(e.score(bytes, NOW)), brief(e.explain(formatAddress(bytes), NOW)));
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('reputationHandler', () => {
  const variables: IprepConfig['variables'] = { scope: 'sess', score: 'ip_score', action: 'ip_action', category: 'ip_category', source: 'ip_source' };
  const e = engine({ lists: [list({ name: 'drop', score: 0, category: 'hijacked', action: 'deny' }, ['198.51.100.0/24', '2001:db8::/64'])] });
  const handler = reputationHandler({ engine: e, variables, now: () => NOW });
  const call = (args: ConstructorParameters<typeof Message>[1]) => handler(new Message('check-client-ip', args), undefined as never);

  it('sets score, action, category and source in the configured scope', () => {
    const actions = call([{ name: '', value: { type: 'ipv4', value: '198.51.100.3' } }]) as SetVarAction[];
    assert.deepEqual(
      actions.map((a) => [a.scope, a.name, a.value.type, a.value.type === 'null' ? null : a.value.value]),
      [
        ['sess', 'ip_score', 'uint32', 0],
        ['sess', 'ip_action', 'str', 'deny'],
        ['sess', 'ip_category', 'str', 'hijacked'],
        ['sess', 'ip_source', 'str', 'drop'],
      ],
    );
  });

  it('reads the argument named ip first, and addresses given as strings (from a header)', () => {
    const named = call([
      { name: 'status', value: { type: 'int32', value: 200 } },
      { name: 'ip', value: { type: 'ipv6', value: '2001:db8::1' } },
    ]) as SetVarAction[];
    assert.equal(named[3]?.value.type === 'str' && named[3].value.value, 'drop');
    const text = call([{ name: '', value: { type: 'str', value: '198.51.100.200' } }]) as SetVarAction[];
    assert.equal(text[0]?.value.type !== 'null' && text[0]?.value.value, 0);
  });

  it('reads addresses from messages as decoded off the wire, one after another (the address array is reused)', () => {
    const wire = (args: ConstructorParameters<typeof Message>[1]) =>
      handler(new Reader(new Writer(128).message({ name: 'check-client-ip', args }).take()).messages()[0] as Message, undefined as never) as
        | SetVarAction[]
        | undefined;
    const source = (actions: SetVarAction[] | undefined) => (actions === undefined ? undefined : actions[3]?.value.type === 'str' && actions[3].value.value);
    const sequence: Array<[ConstructorParameters<typeof Message>[1], string | false | undefined]> = [
      [[{ name: '', value: { type: 'ipv4', value: '198.51.100.3' } }], 'drop'],
      [[{ name: '', value: { type: 'ipv6', value: '2001:db8::7' } }], 'drop'],
      [[{ name: '', value: { type: 'ipv4', value: '192.0.2.1' } }], 'default'],
      [[{ name: '', value: { type: 'ipv6', value: '2001:db9::7' } }], 'default'],
      [[{ name: '', value: { type: 'ipv4', value: '198.51.100.250' } }], 'drop'],
      // `ip` wins over the first argument, whatever its type: here a string from a header.
      [
        [
          { name: 'src', value: { type: 'ipv4', value: '192.0.2.1' } },
          { name: 'ip', value: { type: 'str', value: '198.51.100.9' } },
        ],
        'drop',
      ],
      [
        [
          { name: 'src', value: { type: 'ipv4', value: '198.51.100.9' } },
          { name: 'ip', value: { type: 'str', value: 'not an address' } },
        ],
        undefined,
      ],
      [[{ name: '', value: { type: 'int32', value: 5 } }], undefined],
    ];
    for (const [args, expected] of sequence) assert.equal(source(wire(args)), expected, JSON.stringify(args));
  });

  it('answers nothing when there is no address', () => {
    assert.equal(call([]), undefined);
    assert.equal(call([{ name: '', value: { type: 'str', value: 'nope' } }]), undefined);
    assert.equal(call([{ name: '', value: { type: 'int32', value: 5 } }]), undefined);
  });
});

describe('VerdictActions', () => {
  const variables: IprepConfig['variables'] = { scope: 'sess', score: 'ip_score', action: 'ip_action', category: 'ip_category', source: 'ip_source' };
  const verdict = (score: number, source: string): Verdict => ({ score, action: score < 20 ? 'deny' : 'allow', category: 'c', source, matches: [] });
  const values = (actions: readonly Action[]) => actions.map((a) => (a.type === 'set-var' && a.value.type !== 'null' ? a.value.value : null));

  it('answers each verdict with its own actions whatever the order verdicts come in, kept or not', () => {
    const answers = new VerdictActions(variables);
    const kept = [Object.freeze(verdict(0, 'a')), Object.freeze(verdict(50, 'b')), Object.freeze(verdict(100, 'c'))];
    const fresh = verdict(7, 'd');
    const order = [0, 1, 0, 2, 1, 2, 0, 0, 1, 3, 1, 3, 2, 0];
    for (const i of order) {
      const v = i === 3 ? fresh : (kept[i] as Verdict);
      assert.deepEqual(values(answers.for(v)), [v.score, v.action, v.category, v.source], `verdict ${i}`);
    }
    assert.equal(answers.for(kept[0] as Verdict), answers.for(kept[0] as Verdict), 'a kept verdict has one answer');
  });

  it('answers right among more verdicts than it keeps at hand, kept or fresh', () => {
    const answers = new VerdictActions(variables);
    const kept = Array.from({ length: 9 }, (_, i) => Object.freeze(verdict(i * 10, `s${i}`)));
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat({ max: kept.length - 1 }), fc.boolean()), { maxLength: 60 }), (picks) => {
        for (const [i, fresh] of picks) {
          const v = fresh ? verdict(i * 10, `s${i}`) : (kept[i] as Verdict);
          assert.deepEqual(values(answers.for(v)), [v.score, v.action, v.category, v.source], `verdict ${i}`);
        }
      }),
    );
  });
});

describe('reputationHandler feeds behaviour', () => {
  const variables: IprepConfig['variables'] = { scope: 'sess', score: 'ip_score', action: 'ip_action', category: 'ip_category', source: 'ip_source' };
  /** `rate` null: no rate argument configured. */
  const setup = (rate: { argument: string; max: number } | null = { argument: 'rate', max: 10 }) => {
    const tracker = new BehaviourTracker(behaviourConfig, { now: () => NOW });
    const e = engine({ behaviour: tracker });
    const handler = reputationHandler({
      engine: e,
      variables,
      behaviour: tracker,
      statusArgument: 'status',
      errorWeight: 5,
      rate: rate ?? undefined,
      now: () => NOW,
    });
    const send = (ip: string, extra: Array<{ name: string; value: { type: 'int32'; value: number } }> = []) =>
      handler(new Message('check-client-ip', [{ name: 'ip', value: { type: 'ipv4', value: ip } }, ...extra]), undefined as never) as SetVarAction[];
    const source = (actions: SetVarAction[]) => (actions[3]?.value.type === 'str' ? actions[3].value.value : undefined);
    return { send, source };
  };

  it('counts error statuses with their weight', () => {
    const { send, source } = setup();
    assert.equal(source(send('198.51.100.20', [{ name: 'status', value: { type: 'int32', value: 404 } }])), 'default', '5 is not above the rate threshold');
    assert.equal(source(send('198.51.100.20', [{ name: 'status', value: { type: 'int32', value: 200 } }])), 'behaviour:rate', '5 + 1 is');
  });

  it('takes a rate HAProxy measured as the lowest count of the window, capped', () => {
    const { send, source } = setup();
    assert.equal(source(send('198.51.100.21', [{ name: 'rate', value: { type: 'int32', value: 3 } }])), 'default');
    assert.equal(
      source(send('198.51.100.21', [{ name: 'rate', value: { type: 'int32', value: 50 } }])),
      'behaviour:rate',
      'counted as 10: not above the ban threshold',
    );
    assert.equal(source(send('198.51.100.22')), 'default', 'other clients are not affected');
    // One message cannot ban, whatever rate it claims.
    assert.equal(source(send('198.51.100.23', [{ name: 'rate', value: { type: 'int32', value: 1_000_000 } }])), 'behaviour:rate');
    assert.equal(source(send('198.51.100.24', [{ name: 'rate', value: { type: 'int32', value: -5 } }])), 'default');
  });

  it('reads a message of one argument as the address alone, whatever its name: no status or rate in it', () => {
    const { source } = setup();
    const tracker = new BehaviourTracker(behaviourConfig, { now: () => NOW });
    const handler = reputationHandler({
      engine: engine({ behaviour: tracker }),
      variables,
      behaviour: tracker,
      statusArgument: 'status',
      errorWeight: 5,
      rate: { argument: 'rate', max: 10 },
      now: () => NOW,
    });
    const only = (name: string, ip: string) =>
      source(handler(new Message('check-client-ip', [{ name, value: { type: 'ipv4', value: ip } }]), undefined as never) as SetVarAction[]);
    for (let i = 0; i < 5; i++) assert.equal(only('status', '198.51.100.26'), 'default', `message ${i + 1} counts 1`);
    assert.equal(only('rate', '198.51.100.26'), 'behaviour:rate', 'the sixth is above the threshold of 5');
    assert.equal(only('rate', '198.51.100.27'), 'default', 'an address named rate claims no rate');
    assert.equal(handler(new Message('check-client-ip', [{ name: 'status', value: { type: 'int32', value: 500 } }]), undefined as never), undefined);
  });

  it('ignores a rate argument unless it is configured', () => {
    const { send, source } = setup(null);
    assert.equal(source(send('198.51.100.25', [{ name: 'rate', value: { type: 'int32', value: 1_000_000 } }])), 'default');
  });
});
