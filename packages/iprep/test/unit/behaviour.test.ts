import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ClientTable } from '../../src/behaviour/client-table.js';
import { Doorkeeper, doorkeeperSize } from '../../src/behaviour/doorkeeper.js';
import { BehaviourTracker, type BanEvent } from '../../src/behaviour/index.js';
import { parseAddress } from '../../src/net/address.js';
import type { BehaviourConfig } from '../../src/types.js';

const SECOND = 1000;
/** Start of a window bucket (buckets are aligned on the epoch), so tests know where boundaries fall. */
const T0 = 1_800_000_000_000;

const BASE: BehaviourConfig = {
  enabled: true,
  ipv6PrefixLength: 64,
  windowMs: 10 * SECOND,
  rateThreshold: 10,
  ratePenalty: 30,
  banThreshold: 50,
  banMs: 60 * SECOND,
  banGrowth: 2,
  maxBanMs: 300 * SECOND,
  banAction: 'deny',
  decayPoints: 10,
  decayIntervalMs: 5 * SECOND,
  errorWeight: 5,
  maxRate: 50,
  maxClients: 1000,
  // The tests before the doorkeeper's own run without it: they show it off changes nothing.
  doorkeeper: false,
};

/** A tracker on a fake clock, recording its bans. */
function setup(overrides: Partial<BehaviourConfig> = {}) {
  const clock = { now: T0 };
  const bans: BanEvent[] = [];
  const tracker = new BehaviourTracker({ ...BASE, ...overrides }, { now: () => clock.now, onBan: (ban) => bans.push(ban) });
  return { tracker, clock, bans };
}

function addr(text: string): Uint8Array {
  const bytes = parseAddress(text);
  assert.ok(bytes, `test address ${text}`);
  return bytes;
}

function hits(tracker: BehaviourTracker, address: Uint8Array, count: number): void {
  for (let i = 0; i < count; i++) tracker.hit(address);
}

describe('BehaviourTracker window and rate penalty', () => {
  it('gives the penalty only once the window count exceeds rateThreshold', () => {
    const { tracker, clock } = setup();
    const a = addr('192.0.2.1');
    clock.now = T0 + 1000;
    hits(tracker, a, 10);
    assert.equal(tracker.evaluate(a), undefined, 'at the threshold');
    tracker.hit(a);
    assert.deepEqual(tracker.evaluate(a), {
      kind: 'behaviour',
      source: 'behaviour:rate',
      category: 'behaviour',
      penalty: 30,
      detail: '11 messages in the window',
    });
    assert.equal(tracker.evaluate(addr('192.0.2.2')), undefined, 'another client');
  });

  it('slides: the previous bucket counts in proportion to the overlap', () => {
    const { tracker, clock } = setup();
    const a = addr('192.0.2.1');
    clock.now = T0 + 9000; // late in bucket 0
    hits(tracker, a, 10);
    clock.now = T0 + 15_000; // half-way through bucket 1: 10 * 0.5 = 5 remain
    hits(tracker, a, 5);
    assert.equal(tracker.evaluate(a), undefined, '5 + 5 = 10 is not above 10');
    tracker.hit(a);
    assert.equal(tracker.evaluate(a)?.penalty, 30, '5 + 6 = 11');

    const b = addr('192.0.2.2');
    clock.now = T0 + 30_000;
    hits(tracker, b, 10);
    clock.now = T0 + 50_000; // two buckets later: nothing of the old bucket is left
    hits(tracker, b, 10);
    assert.equal(tracker.evaluate(b), undefined);
  });

  it('weights count like that many messages', () => {
    const { tracker, clock } = setup();
    const a = addr('192.0.2.1');
    clock.now = T0;
    tracker.hit(a, BASE.errorWeight);
    tracker.hit(a, BASE.errorWeight);
    assert.equal(tracker.evaluate(a), undefined);
    tracker.hit(a);
    assert.equal(tracker.evaluate(a)?.penalty, 30);
  });

  it('decays the penalty by decayPoints per decayIntervalMs, to nothing', () => {
    const { tracker, clock } = setup();
    const a = addr('198.51.100.7');
    clock.now = T0;
    hits(tracker, a, 11);
    const given = clock.now;
    const penaltyAt = (t: number) => tracker.evaluate(a, given + t)?.penalty;
    assert.equal(penaltyAt(0), 30);
    assert.equal(penaltyAt(4999), 30);
    assert.equal(penaltyAt(5000), 20);
    assert.equal(penaltyAt(10_000), 10);
    assert.equal(penaltyAt(14_999), 10);
    assert.equal(penaltyAt(15_000), undefined);
    assert.equal(penaltyAt(60_000), undefined);
  });

  it('keeps the full penalty while the client stays above the threshold', () => {
    const { tracker, clock } = setup();
    const a = addr('198.51.100.7');
    for (let t = 0; t < 30_000; t += 500) {
      clock.now = T0 + t;
      hits(tracker, a, 2); // 40 per 10 s window
    }
    assert.equal(tracker.evaluate(a)?.penalty, 30);
    assert.equal(tracker.evaluate(a, clock.now + 5000)?.penalty, 20);
  });
});

describe('BehaviourTracker bans', () => {
  it('bans above banThreshold, once per ban, with the ban as the match', () => {
    const { tracker, clock, bans } = setup();
    const a = addr('203.0.113.9');
    clock.now = T0 + 100;
    hits(tracker, a, 50);
    assert.equal(bans.length, 0);
    tracker.hit(a);
    assert.deepEqual(bans, [{ key: '203.0.113.9', value: '203.0.113.9', until: T0 + 100 + 60_000, count: 51, offences: 1 }]);
    hits(tracker, a, 100);
    assert.equal(bans.length, 1, 'no second event during the ban');
    assert.deepEqual(tracker.evaluate(a), {
      kind: 'behaviour',
      source: 'behaviour:ban',
      category: 'behaviour',
      action: 'deny',
      score: 0,
      detail: `until ${new Date(T0 + 100 + 60_000).toISOString()}`,
    });
    // Once the ban is over and the client has calmed down, only the decaying penalty is left, then nothing.
    assert.equal(tracker.evaluate(a, T0 + 100 + 60_000)?.source, undefined);
    assert.equal(tracker.evaluate(a, T0 + 100 + 10_000)?.source, 'behaviour:ban');
  });

  it('multiplies repeat bans by banGrowth up to maxBanMs, and uses banAction', () => {
    const { tracker, clock, bans } = setup({ windowMs: 3600 * SECOND, banAction: 'tarpit' });
    const a = addr('203.0.113.9');
    clock.now = T0;
    hits(tracker, a, 51);
    const durations: number[] = [];
    for (let round = 0; round < 5; round++) {
      const last = bans.at(-1) as BanEvent;
      durations.push(last.until - clock.now);
      assert.equal(last.offences, round + 1);
      assert.equal(tracker.evaluate(a)?.action, 'tarpit');
      clock.now = last.until; // the ban ends; the client keeps going and is banned again at once
      tracker.hit(a);
    }
    assert.deepEqual(durations, [60_000, 120_000, 240_000, 300_000, 300_000]);
  });

  it('forgets offences when the client is evicted', () => {
    const { tracker, clock, bans } = setup({ maxClients: 2, windowMs: 3600 * SECOND });
    const a = addr('203.0.113.9');
    clock.now = T0;
    hits(tracker, a, 51);
    tracker.hit(addr('192.0.2.1'));
    tracker.hit(addr('192.0.2.2')); // the hand passes a (seen again since added) and forgets 192.0.2.1
    assert.equal(tracker.evaluate(a)?.action, 'deny', 'a client seen again survives the hand passing once');
    tracker.hit(addr('192.0.2.3')); // then a, not seen since the hand passed it
    clock.now = T0 + 60_000;
    hits(tracker, a, 51);
    assert.deepEqual(
      bans.map((b) => b.offences),
      [1, 1],
    );
  });
});

describe('BehaviourTracker top clients', () => {
  it('lists the clients with the most messages in the window, most first, at most n', () => {
    const { tracker, clock } = setup({ banThreshold: 10_000, rateThreshold: 10_000 });
    clock.now = T0;
    for (let i = 1; i <= 30; i++) hits(tracker, addr(`192.0.2.${i}`), i);
    hits(tracker, addr('2001:db8:1:2::1'), 100);
    const top = tracker.topClients(5);
    assert.deepEqual(
      top.map((c) => [c.client, c.count]),
      [
        ['2001:db8:1:2::/64', 100],
        ['192.0.2.30', 30],
        ['192.0.2.29', 29],
        ['192.0.2.28', 28],
        ['192.0.2.27', 27],
      ],
    );
    // Two windows later nothing is left in the window: nobody listed.
    clock.now = T0 + 25 * SECOND;
    assert.deepEqual(tracker.topClients(5), []);
  });
});

describe('BehaviourTracker clients', () => {
  it('counts IPv6 clients per /64: the same /64 together, different ones apart', () => {
    const { tracker, clock } = setup();
    clock.now = T0;
    const same = ['2001:db8:1:2::1', '2001:db8:1:2:ffff::9', '2001:db8:1:2:1:2:3:4'].map(addr);
    assert.deepEqual(new Set(same.map((a) => tracker.clientKey(a))), new Set(['2001:db8:1:2::/64']));
    for (let i = 0; i < 11; i++) tracker.hit(same[i % 3] as Uint8Array);
    assert.equal(tracker.size, 1);
    assert.equal(tracker.evaluate(addr('2001:db8:1:2::abcd'))?.penalty, 30, 'any address of the /64');
    const other = addr('2001:db8:1:3::1');
    assert.equal(tracker.clientKey(other), '2001:db8:1:3::/64');
    assert.equal(tracker.evaluate(other), undefined);
    hits(tracker, other, 10);
    assert.equal(tracker.evaluate(other), undefined);
    assert.equal(tracker.size, 2);
  });

  it('uses ipv6PrefixLength, and counts IPv4-mapped clients as IPv4', () => {
    const { tracker, clock } = setup({ ipv6PrefixLength: 48 });
    clock.now = T0;
    assert.equal(tracker.clientKey(addr('2001:db8:1:2::1')), '2001:db8:1::/48');
    assert.equal(tracker.clientKey(addr('2001:db8:1:ffff::1')), '2001:db8:1::/48');
    assert.equal(tracker.clientKey(addr('2001:db8:2::1')), '2001:db8:2::/48');
    assert.equal(tracker.clientKey(addr('192.0.2.1')), '192.0.2.1');
    assert.equal(tracker.clientKey(addr('::ffff:192.0.2.1')), '192.0.2.1');
    hits(tracker, addr('::ffff:192.0.2.1'), 6);
    hits(tracker, addr('192.0.2.1'), 5);
    hits(tracker, addr('::ffff:192.0.2.2'), 5);
    assert.equal(tracker.evaluate(addr('192.0.2.1'))?.penalty, 30);
    assert.equal(tracker.evaluate(addr('::ffff:192.0.2.2')), undefined);
    assert.equal(tracker.size, 2);

    const narrow = setup({ ipv6PrefixLength: 20 }).tracker;
    assert.equal(narrow.clientKey(addr('2001:db8::1')), '2001::/20');
  });

  it('tracks at most maxClients, forgetting the least recently seen', () => {
    const maxClients = 100;
    const { tracker, clock } = setup({ maxClients });
    clock.now = T0;
    const keeper = addr('198.51.100.1');
    hits(tracker, keeper, 11);
    for (let i = 0; i < 10 * maxClients; i++) {
      const client = i % 2 === 0 ? Uint8Array.of(10, (i >> 16) & 255, (i >> 8) & 255, i & 255) : addr(`2001:db8:${i.toString(16)}::1`);
      tracker.hit(client);
      if (i % 50 === 0) tracker.hit(keeper); // seen now and then: never the oldest
      assert.ok(tracker.size <= maxClients, `size ${tracker.size} after ${i + 1} clients`);
    }
    assert.equal(tracker.size, maxClients);
    assert.equal(tracker.evaluate(keeper)?.penalty, 30, 'a client seen recently is kept');
    assert.ok(tracker.takeDeltas().has('198.51.100.1'));
    const early = Uint8Array.of(10, 0, 0, 0);
    hits(tracker, early, 10); // back from scratch: 10 is not above 10
    assert.equal(tracker.evaluate(early), undefined, 'the first clients were forgotten');
    tracker.clear();
    assert.equal(tracker.size, 0);
    assert.equal(tracker.evaluate(keeper), undefined);
  });

  it('does nothing when behaviour is disabled', () => {
    const { tracker } = setup({ enabled: false });
    const a = addr('192.0.2.1');
    hits(tracker, a, 1000);
    tracker.applyTotals(new Map([['192.0.2.1', 1000]]));
    assert.equal(tracker.size, 0);
    assert.equal(tracker.evaluate(a), undefined);
  });

  it('ignores addresses that are neither 4 nor 16 bytes, and rejects a bad configuration', () => {
    const { tracker } = setup();
    tracker.hit(new Uint8Array(5));
    assert.equal(tracker.size, 0);
    assert.equal(tracker.evaluate(new Uint8Array(0)), undefined);
    assert.throws(() => tracker.clientKey(new Uint8Array(5)), TypeError);
    assert.throws(() => new BehaviourTracker({ ...BASE, ipv6PrefixLength: 128 }), /ipv6PrefixLength must be an integer 1\.\.64, got 128/);
    assert.throws(() => new BehaviourTracker({ ...BASE, windowMs: 0, maxClients: 0 }), /windowMs must be > 0.*maxClients must be/);
    assert.throws(() => new BehaviourTracker({ ...BASE, ratePenalty: 150 }), RangeError);
    assert.throws(() => new BehaviourTracker({ ...BASE, banMs: 10_000, maxBanMs: 5000 }), /maxBanMs >= banMs/);
  });
});

describe('BehaviourTracker shared counts', () => {
  it('takes the same deltas in steps of a few clients as in one scan, each once', () => {
    const counts = [3, 1, 2, 5, 0, 4, 2, 1, 7];
    const load = () => {
      const { tracker, clock } = setup();
      clock.now = T0;
      counts.forEach((n, i) => hits(tracker, addr(`192.0.2.${i + 1}`), n));
      return tracker;
    };
    const whole = load().takeDeltas();
    for (const step of [1, 2, 3, 100]) {
      const tracker = load();
      const stepped = new Map<string, number>();
      const starts: number[] = [];
      for (let from = 0; from >= 0; from = tracker.takeDeltasStep(stepped, from, step)) starts.push(from);
      assert.deepEqual(stepped, whole, `steps of ${step}`);
      assert.equal(starts.length, Math.ceil(counts.filter((n) => n > 0).length / step), `steps of ${step}: every slot once`);
      assert.deepEqual(tracker.takeDeltas(), new Map(), 'taken once');
    }
  });

  it('takeDeltas reports clients with at least 2 messages in the window, once', () => {
    const { tracker, clock } = setup();
    clock.now = T0;
    tracker.hit(addr('192.0.2.1'));
    hits(tracker, addr('192.0.2.2'), 3);
    hits(tracker, addr('2001:db8:1:2::5'), 2);
    assert.deepEqual(
      tracker.takeDeltas(),
      new Map([
        ['192.0.2.2', 3],
        ['2001:db8:1:2::/64', 2],
      ]),
    );
    assert.deepEqual(tracker.takeDeltas(), new Map());
    tracker.hit(addr('192.0.2.1')); // the single hit was kept for later
    tracker.hit(addr('192.0.2.2'));
    assert.deepEqual(
      tracker.takeDeltas(),
      new Map([
        ['192.0.2.1', 2],
        ['192.0.2.2', 1],
      ]),
    );
  });

  it('applyTotals raises the local count to the cluster-wide one: other agents can get a client banned here', () => {
    const { tracker, clock, bans } = setup();
    clock.now = T0 + 2000;
    const a = addr('2001:db8:1:2::5');
    hits(tracker, a, 3);
    const deltas = tracker.takeDeltas();
    assert.deepEqual(deltas, new Map([['2001:db8:1:2::/64', 3]]));
    // What a CounterStore returns when other agents saw the same client too.
    tracker.applyTotals(new Map([['2001:db8:1:2::/64', 60]]));
    assert.equal(bans.length, 1);
    assert.equal(bans[0]?.value, '2001:db8:1:2::/64');
    assert.equal(bans[0]?.count, 60);
    assert.equal(tracker.evaluate(addr('2001:db8:1:2::77'))?.source, 'behaviour:ban');
    // A smaller total never lowers the local count; local messages add to the raised one.
    tracker.applyTotals(new Map([['2001:db8:1:2::/64', 1]]));
    tracker.hit(a);
    assert.deepEqual(tracker.takeDeltas(), new Map([['2001:db8:1:2::/64', 1]]));
  });

  it('applyTotals starts penalties for clients it has not seen, and ignores keys that are not client keys', () => {
    const { tracker, clock, bans } = setup();
    clock.now = T0;
    tracker.applyTotals(
      new Map([
        ['192.0.2.9', 20],
        ['not an address', 500],
        ['192.0.2.0/24', 500],
        ['2001:db8::/48', 500],
        ['2001:db8::1', 500],
        ['198.51.100.1', Number.NaN],
      ]),
    );
    assert.equal(tracker.size, 1);
    assert.equal(bans.length, 0);
    assert.equal(tracker.evaluate(addr('192.0.2.9'))?.penalty, 30);
  });
});

/** Counts the client table's index probes (`find`) until `restore()`. */
function countTableProbes(): { readonly probes: number; restore(): void } {
  const find = ClientTable.prototype.find;
  const counter = {
    probes: 0,
    restore: () => {
      ClientTable.prototype.find = find;
    },
  };
  ClientTable.prototype.find = function (this: ClientTable, family, hi, lo) {
    counter.probes++;
    return find.call(this, family, hi, lo);
  };
  return counter;
}

describe('BehaviourTracker evaluates the client it just counted without a second lookup', () => {
  it('and never mistakes another client, or a forgotten one, for it', () => {
    const { tracker, clock } = setup({ maxClients: 1 });
    clock.now = T0;
    const a = addr('192.0.2.1');
    hits(tracker, a, 11);
    assert.equal(tracker.evaluate(a, T0, false)?.penalty, 30);
    // A shared total for another client takes the only slot: the last hit's slot now holds it.
    tracker.applyTotals(new Map([['192.0.2.2', 5]]));
    assert.equal(tracker.evaluate(a, T0, false), undefined, 'a was forgotten');
    assert.equal(tracker.evaluate(addr('192.0.2.2'), T0, false), undefined, 'b is under the threshold');
    hits(tracker, a, 11);
    tracker.clear();
    assert.equal(tracker.evaluate(a, T0, false), undefined, 'cleared');
  });

  it('does not probe the table again for it', () => {
    const { tracker, clock } = setup();
    clock.now = T0;
    const a = addr('192.0.2.1');
    const b = addr('192.0.2.2');
    hits(tracker, a, 11);
    tracker.hit(b);
    const table = countTableProbes();
    try {
      tracker.hit(a);
      assert.equal(table.probes, 1, 'the hit looks the client up');
      assert.equal(tracker.evaluate(a, T0, false)?.penalty, 30);
      assert.equal(table.probes, 1, 'evaluating the client just counted reads its slot');
      assert.equal(tracker.evaluate(b, T0, false), undefined);
      assert.equal(table.probes, 2, 'another client is looked up');
    } finally {
      table.restore();
    }
  });
});

describe('BehaviourTracker doorkeeper', () => {
  const door = (overrides: Partial<BehaviourConfig> = {}) => setup({ doorkeeper: true, ...overrides });

  it('does not track a client seen once; its second message admits it with both counted', () => {
    const { tracker, clock } = door();
    clock.now = T0 + 1000;
    const a = addr('192.0.2.1');
    tracker.hit(a);
    assert.equal(tracker.size, 0, 'seen once: not in the table');
    assert.equal(tracker.evaluate(a), undefined, 'explain of a client seen once: no behaviour match');
    assert.deepEqual(tracker.topClients(5), []);
    assert.deepEqual(tracker.takeDeltas(), new Map());
    assert.equal(tracker.turnedAway, 1);
    tracker.hit(a);
    assert.equal(tracker.size, 1);
    assert.deepEqual(tracker.topClients(5), [{ client: '192.0.2.1', count: 2 }]);
    assert.deepEqual(tracker.takeDeltas(), new Map([['192.0.2.1', 2]]), 'the first message is in the count and the delta');
    assert.equal(tracker.turnedAway, 1);
  });

  it('gives the rate penalty and the ban at the same message as without it', () => {
    const messagesUntil = (doorkeeper: boolean) => {
      const { tracker, clock, bans } = setup({ doorkeeper });
      clock.now = T0 + 1000;
      const a = addr('203.0.113.9');
      let penalty = 0;
      let ban = 0;
      for (let n = 1; n <= 60; n++) {
        tracker.hit(a);
        if (penalty === 0 && tracker.evaluate(a, clock.now, false)?.penalty === 30) penalty = n;
        if (ban === 0 && bans.length > 0) ban = n;
      }
      return { penalty, ban, count: bans[0]?.count };
    };
    assert.deepEqual(messagesUntil(true), { penalty: 11, ban: 51, count: 51 });
    assert.deepEqual(messagesUntil(true), messagesUntil(false));
  });

  it('lets weights above 1 and claimed rates above 1 in at once, with a remembered first message counted', () => {
    const { tracker, clock } = door();
    clock.now = T0;
    tracker.hit(addr('192.0.2.1'), 5);
    tracker.hit(addr('192.0.2.2'), 1, T0, 30);
    tracker.hit(addr('192.0.2.3'), 1, T0, 1); // a rate of 1 says no more than the message itself
    assert.equal(tracker.size, 2);
    tracker.hit(addr('192.0.2.4'));
    tracker.hit(addr('192.0.2.4'), 5);
    assert.deepEqual(
      tracker.takeDeltas(),
      new Map([
        ['192.0.2.1', 5],
        ['192.0.2.2', 1],
        ['192.0.2.4', 6],
      ]),
    );
    assert.equal(tracker.topClients(5).find((c) => c.client === '192.0.2.2')?.count, 30);
  });

  it('counts a remembered message when a shared total admits its client, and shares it', () => {
    const { tracker, clock } = door();
    clock.now = T0;
    const a = addr('192.0.2.1');
    tracker.hit(a);
    tracker.applyTotals(new Map([['192.0.2.1', 1]]));
    assert.deepEqual(tracker.topClients(1), [{ client: '192.0.2.1', count: 1 }]);
    tracker.hit(a);
    assert.deepEqual(tracker.takeDeltas(), new Map([['192.0.2.1', 2]]), "both messages are this agent's to share");
  });

  it('is off when one message could cross a threshold', () => {
    const { tracker, clock, bans } = door({ banThreshold: 0 });
    clock.now = T0;
    tracker.hit(addr('192.0.2.1'));
    assert.equal(bans.length, 1, 'banned at the first message, as without it');
    const rate = door({ rateThreshold: 0 }).tracker;
    rate.hit(addr('192.0.2.1'), 1, T0);
    assert.equal(rate.evaluate(addr('192.0.2.1'), T0)?.penalty, 30);
  });

  it('forgets the clients it remembers when the window bucket moves on', () => {
    const { tracker, clock } = door();
    const a = addr('192.0.2.1');
    clock.now = T0 + 9999;
    tracker.hit(a);
    clock.now = T0 + 10_000;
    tracker.hit(a);
    assert.equal(tracker.size, 0, 'a new bucket: its first message there');
    tracker.hit(a);
    assert.equal(tracker.size, 1);
    assert.deepEqual(tracker.takeDeltas(), new Map([['192.0.2.1', 2]]));
  });

  it('forgets the clients it remembers once it has remembered as many as its capacity', () => {
    const filter = new Doorkeeper(1);
    const { capacity } = doorkeeperSize(1);
    assert.equal(filter.capacity, capacity);
    let next = 0;
    const another = (): boolean => filter.admit(6, next++, 7);
    assert.equal(filter.admit(4, 1, 0), false, 'not seen: remembered');
    assert.equal(filter.admit(4, 1, 0), true, 'seen');
    while (filter.size < capacity) another();
    assert.equal(filter.has(4, 1, 0), true, 'remembered among capacity clients');
    let falsePositives = 0;
    while (filter.size === capacity) if (another()) falsePositives++;
    assert.equal(filter.size, 1, 'full: cleared before the next one is remembered');
    assert.equal(filter.has(4, 1, 0), false, 'forgotten');
    assert.ok(falsePositives < 10);
  });

  it('errs on the side of "seen" for at most 3% of unseen clients when full', () => {
    const filter = new Doorkeeper(100_000);
    let next = 0;
    while (filter.size < filter.capacity) filter.admit(4, next++, 0);
    let seen = 0;
    const probes = 100_000;
    for (let i = 0; i < probes; i++) if (filter.has(6, i, -1)) seen++;
    assert.ok(seen / probes < 0.03, `${((100 * seen) / probes).toFixed(2)}% false positives`);
    filter.clear();
    assert.equal(filter.size, 0);
    assert.equal(filter.has(4, 1, 0), false);
  });

  it('sizes its filter from maxClients, within bounds', () => {
    assert.deepEqual(doorkeeperSize(1), { bytes: 16 * 1024, capacity: 16 * 1024 });
    assert.deepEqual(doorkeeperSize(100_000), { bytes: 128 * 1024, capacity: 128 * 1024 });
    assert.deepEqual(doorkeeperSize(10_000_000), { bytes: 2 * 1024 * 1024, capacity: 2 * 1024 * 1024 });
  });

  it('keeps tracked clients through a flood of one-off sources', () => {
    const maxClients = 1000;
    for (const doorkeeper of [true, false]) {
      const { tracker, clock } = setup({ maxClients, doorkeeper });
      clock.now = T0;
      const client = (i: number) => Uint8Array.of(198, 51, (i >> 8) & 255, i & 255);
      for (let i = 0; i < maxClients; i++) hits(tracker, client(i), 11);
      for (let i = 0; i < 10 * maxClients; i++) tracker.hit(Uint8Array.of(10, (i >> 16) & 255, (i >> 8) & 255, i & 255));
      let kept = 0;
      for (let i = 0; i < maxClients; i++) if (tracker.evaluate(client(i), T0, false)?.penalty === 30) kept++;
      if (doorkeeper) assert.ok(kept >= 0.95 * maxClients, `${kept} of ${maxClients} penalised clients kept`);
      else assert.equal(kept, 0, 'without it the flood takes every slot');
    }
  });

  it('does not probe the table to evaluate the client it just turned away', () => {
    const { tracker, clock } = door();
    clock.now = T0;
    const a = addr('192.0.2.1');
    const b = addr('192.0.2.2');
    hits(tracker, a, 11);
    hits(tracker, addr('192.0.2.3'), 2);
    const table = countTableProbes();
    try {
      tracker.hit(b);
      assert.equal(table.probes, 1, 'the hit looks the client up');
      assert.equal(tracker.evaluate(b, T0, false), undefined);
      assert.equal(table.probes, 1, 'and the evaluation does not');
      assert.equal(tracker.evaluate(a, T0, false)?.penalty, 30);
      assert.equal(table.probes, 2, 'another client is looked up');
      tracker.applyTotals(new Map([['192.0.2.2', 20]]));
      assert.equal(tracker.evaluate(b, T0, false)?.penalty, 30, 'admitted by a shared total since');
    } finally {
      table.restore();
    }
  });

  it('agrees with a tracker without it fed every message but the lone first ones of a bucket', () => {
    // The model: a client neither tracked nor remembered whose message weighs 1 (and claims no rate
    // above 1) is remembered, not counted; its next message in the same bucket counts both, as does
    // a shared total for it (the remembered message is then a local count, and a delta). With a
    // handful of clients in a filter of 16 KiB a false positive is as good as impossible.
    const clients = ['192.0.2.1', '192.0.2.2', '2001:db8:1:2::1', '2001:db8:1:2::2', '2001:db8:9::1'].map(addr);
    const step = fc.oneof(
      fc.record({ kind: fc.constant('hit' as const), client: fc.nat(4), weight: fc.constantFrom(1, 1, 1, 5, 0), atLeast: fc.constantFrom(0, 0, 0, 1, 3, 40) }),
      fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 6000 }) }),
      fc.record({ kind: fc.constant('totals' as const), client: fc.nat(4), total: fc.integer({ min: 1, max: 60 }) }),
      fc.constant({ kind: 'deltas' as const }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 120 }), (steps) => {
        const withDoor = door({ maxClients: 100 });
        const without = setup({ maxClients: 100 });
        let now = T0;
        const tracked = new Set<string>();
        const remembered = new Map<string, number>(); // key -> bucket
        for (const s of steps) {
          if (s.kind === 'wait') {
            now += s.ms;
            continue;
          }
          if (s.kind === 'deltas') {
            assert.deepEqual(withDoor.tracker.takeDeltas(), without.tracker.takeDeltas());
            continue;
          }
          const address = clients[s.client] as Uint8Array;
          const key = without.tracker.clientKey(address);
          const bucket = Math.floor(now / BASE.windowMs);
          if (s.kind === 'totals') {
            withDoor.tracker.applyTotals(new Map([[key, s.total]]), now);
            // A remembered message counts when a shared total admits the client (and is shared then).
            if (!tracked.has(key) && remembered.get(key) === bucket) without.tracker.hit(address, 1, now);
            without.tracker.applyTotals(new Map([[key, s.total]]), now);
            tracked.add(key);
          } else {
            withDoor.tracker.hit(address, s.weight, now, s.atLeast);
            if (!tracked.has(key)) {
              if (remembered.get(key) === bucket) without.tracker.hit(address, 1, now);
              else if (s.weight === 1 && s.atLeast <= 1) {
                remembered.set(key, bucket);
                assert.equal(withDoor.tracker.evaluate(address, now, false), undefined);
                continue;
              }
              tracked.add(key);
            }
            without.tracker.hit(address, s.weight, now, s.atLeast);
          }
          for (const other of clients) assert.deepEqual(withDoor.tracker.evaluate(other, now), without.tracker.evaluate(other, now));
          assert.equal(withDoor.tracker.size, without.tracker.size);
          assert.deepEqual(withDoor.tracker.topClients(5, now), without.tracker.topClients(5, now));
          assert.deepEqual(withDoor.bans, without.bans);
        }
      }),
      { numRuns: 300 },
    );
  });
});
