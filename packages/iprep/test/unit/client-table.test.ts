/**
 * The behaviour tracker's client table: records found through an open-addressing hash index, a client
 * forgotten at the bound chosen by CLOCK (second chance). Checked against a plain model (slots as
 * objects, a seen mark each, a hand) through random operations on small tables, where probe
 * sequences collide and evictions shift entries back all the time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BANNED_UNTIL, CURRENT, ClientTable, MAX_SWEEP, NO_CLIENT, OFFENCES, STATE_STRIDE } from '../../src/behaviour/client-table.js';

type Key = readonly [family: 4 | 6, hi: number, lo: number];
const text = ([family, hi, lo]: Key): string => `${family}/${hi}/${lo}`;

/** Keys of the clients kept, sorted (forEach promises no order). */
function members(table: ClientTable): string[] {
  const out: string[] = [];
  table.forEach((c) => out.push(text([table.familyOf(c), table.hiOf(c), table.loOf(c)])));
  return out.sort();
}

/** CLOCK spelled out: slots filled in order, then the hand evicts the first client not seen since it last passed. */
class ClockModel {
  readonly slots: { name: string; seen: boolean; count: number }[] = [];
  #hand = 0;
  constructor(readonly max: number) {}

  slotOf(name: string): number {
    return this.slots.findIndex((slot) => slot.name === name);
  }

  /** Adds an absent client; returns its slot. */
  add(name: string): number {
    let c = this.slots.length;
    if (c === this.max) {
      for (let passed = 0; ; passed++) {
        c = this.#hand;
        this.#hand = (this.#hand + 1) % this.max;
        const slot = this.slots[c] as { seen: boolean };
        if (!slot.seen || passed === MAX_SWEEP) break;
        slot.seen = false;
      }
    }
    this.slots[c] = { name, seen: false, count: 0 };
    return c;
  }

  clear(): void {
    this.slots.length = 0;
    this.#hand = 0;
  }
}

describe('ClientTable', () => {
  it('agrees with a plain CLOCK model on who is kept, and where, through any sequence of hits, lookups and clears', () => {
    // A small universe of keys: IPv4 and IPv6 sharing words, so that only the family or lo tells them apart.
    const key = fc
      .tuple(fc.constantFrom<4 | 6>(4, 6), fc.integer({ min: -3, max: 3 }), fc.integer({ min: -2, max: 2 }))
      .map(([family, hi, lo]): Key => [family, hi | 0, family === 4 ? 0 : lo | 0]);
    const step = fc.oneof(
      { weight: 12, arbitrary: key.map((k) => ({ op: 'hit' as const, k })) },
      { weight: 4, arbitrary: key.map((k) => ({ op: 'find' as const, k })) },
      { weight: 1, arbitrary: fc.constant({ op: 'clear' as const }) },
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 7 }), fc.array(step, { maxLength: 300 }), (max, steps) => {
        const table = new ClientTable(max);
        const model = new ClockModel(max);
        for (const s of steps) {
          if (s.op === 'clear') {
            table.clear();
            model.clear();
            assert.equal(table.size, 0);
            continue;
          }
          const [family, hi, lo] = s.k;
          const name = text(s.k);
          let c = table.find(family, hi, lo);
          assert.equal(c, model.slotOf(name) === -1 ? NO_CLIENT : model.slotOf(name), `${name}: kept by one, not the other`);
          if (s.op === 'find') continue;
          if (c === NO_CLIENT) {
            c = table.add(family, hi, lo);
            assert.equal(c, model.add(name), `${name}: added into another slot`);
          } else {
            table.touch(c);
            (model.slots[c] as { seen: boolean }).seen = true;
          }
          // Some clients get a key text: it must be theirs, never a forgotten one's from the same slot.
          if ((hi & 1) === 0)
            assert.equal(
              table.keyText(c, () => name),
              name,
              `${name}: another client's key text`,
            );
          const slot = model.slots[c] as { count: number };
          assert.equal(table.state[c * STATE_STRIDE + CURRENT], slot.count, `${name}: a reused slot starts from zero`);
          table.state[c * STATE_STRIDE + CURRENT] = (table.state[c * STATE_STRIDE + CURRENT] as number) + 1;
          slot.count++;
          assert.equal(table.size, model.slots.length);
          assert.ok(table.size <= max, `size ${table.size} over the bound ${max}`);
        }
        assert.deepEqual(members(table), model.slots.map((slot) => slot.name).sort());
        model.slots.forEach(({ name, count }, slot) => {
          const [family, hi, lo] = name.split('/').map(Number) as [4 | 6, number, number];
          assert.equal(table.find(family, hi, lo), slot, `${name} not found`);
          assert.equal(table.state[slot * STATE_STRIDE + CURRENT], count);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('keeps a client seen since the hand last passed it, even the least recently seen one, and reuses the slot of the first one not seen from zero', () => {
    const table = new ClientTable(3);
    const a = table.add(4, 0x0a000001, 0);
    table.touch(a); // a is seen, and then the least recently seen of all
    const b = table.add(6, 0x20010db8, 1);
    const c = table.add(4, 0x0a000003, 0);
    table.state[b * STATE_STRIDE + CURRENT] = 5;
    table.state[b * STATE_STRIDE + BANNED_UNTIL] = 1e12;
    table.state[b * STATE_STRIDE + OFFENCES] = 2;
    // The hand passes a (clearing its mark) and forgets b, the first client not seen since.
    const d = table.add(6, 0x20010db8, 2);
    assert.equal(d, b);
    assert.equal(table.holds(d, 6, 0x20010db8, 2), true);
    assert.equal(table.holds(d, 6, 0x20010db8, 1), false, 'the slot holds the new client, not the forgotten one');
    assert.equal(table.size, 3);
    assert.equal(table.find(6, 0x20010db8, 1), NO_CLIENT);
    assert.equal(table.find(6, 0x20010db8, 2), d);
    assert.equal(table.find(4, 0x0a000001, 0), a);
    assert.equal(table.find(4, 0x0a000003, 0), c);
    assert.equal(table.state[d * STATE_STRIDE + CURRENT], 0);
    assert.equal(table.state[d * STATE_STRIDE + BANNED_UNTIL], 0);
    assert.equal(table.state[d * STATE_STRIDE + OFFENCES], 0);
    // a was not seen since the hand passed it: after c, it goes next.
    assert.equal(table.add(4, 0x0a000004, 0), c);
    assert.equal(table.add(4, 0x0a000005, 0), a);
    assert.equal(table.find(4, 0x0a000001, 0), NO_CLIENT);
    assert.deepEqual(members(table), [text([4, 0x0a000004, 0]), text([4, 0x0a000005, 0]), text([6, 0x20010db8, 2])].sort());
  });

  it('passes at most MAX_SWEEP seen clients to find one to forget: a full table of seen clients costs a bounded step', () => {
    const max = MAX_SWEEP * 4;
    const table = new ClientTable(max);
    for (let i = 0; i < max; i++) table.touch(table.add(4, i, 0));
    const c = table.add(4, max, 0);
    assert.equal(c, MAX_SWEEP, 'the client after the MAX_SWEEP passed ones is forgotten, seen or not');
    assert.equal(table.find(4, MAX_SWEEP, 0), NO_CLIENT);
    for (let i = 0; i < MAX_SWEEP; i++) assert.equal(table.find(4, i, 0), i);
    assert.equal(table.size, max);
    // The next step starts after it, and passes at most MAX_SWEEP more.
    assert.equal(table.add(4, max + 1, 0), 2 * MAX_SWEEP + 1);
  });

  it('tells apart IPv6 prefixes of one /32 and an IPv4 address equal to their first word', () => {
    const table = new ClientTable(20_000);
    const slots: number[] = [];
    for (let lo = 0; lo < 10_000; lo++) slots.push(table.add(6, 0x20010db8, lo));
    const v4 = table.add(4, 0x20010db8, 0);
    for (let lo = 0; lo < 10_000; lo++) assert.equal(table.find(6, 0x20010db8, lo), slots[lo]);
    assert.equal(table.find(4, 0x20010db8, 0), v4);
    assert.notEqual(v4, slots[0]);
    assert.equal(table.find(6, 0x20010db9, 0), NO_CLIENT);
    assert.equal(table.size, 10_001);
  });

  it('churns through many more clients than it keeps: every kept one found, no other', () => {
    const table = new ClientTable(1000);
    let x = 12345;
    const recent: number[] = [];
    for (let i = 0; i < 50_000; i++) {
      x = (Math.imul(x, 1103515245) + 12345) | 0;
      if (table.find(4, x, 0) === NO_CLIENT) table.add(4, x, 0);
      recent.push(x);
    }
    assert.equal(table.size, 1000);
    for (const address of recent.slice(-1000)) assert.notEqual(table.find(4, address, 0), NO_CLIENT);
    for (const address of recent.slice(0, 1000)) assert.equal(table.find(4, address, 0), NO_CLIENT);
  });

  it('keeps a key text while the client is kept, and forgets it with the client', () => {
    const table = new ClientTable(1);
    const a = table.add(4, 1, 0);
    assert.equal(
      table.keyText(a, () => 'first'),
      'first',
    );
    assert.equal(
      table.keyText(a, () => 'again'),
      'first',
    );
    const b = table.add(4, 2, 0);
    assert.equal(
      table.keyText(b, () => 'second'),
      'second',
    );
  });

  it('keeps a key text while the hand passes its client, and forgets it when the client goes', () => {
    const table = new ClientTable(2);
    const a = table.add(4, 1, 0);
    table.touch(a);
    assert.equal(
      table.keyText(a, () => 'a'),
      'a',
    );
    const b = table.add(4, 2, 0);
    assert.equal(
      table.keyText(b, () => 'b'),
      'b',
    );
    // The hand passes a (seen) and forgets b; then forgets a.
    const c = table.add(4, 3, 0);
    assert.equal(c, b);
    assert.equal(
      table.keyText(c, () => 'c'),
      'c',
    );
    assert.equal(
      table.keyText(a, () => 'a again'),
      'a',
    );
    const d = table.add(4, 4, 0);
    assert.equal(d, a);
    assert.equal(
      table.keyText(d, () => 'd'),
      'd',
    );
  });

  it('starts empty again after clear', () => {
    const table = new ClientTable(4);
    const a = table.add(4, 1, 0);
    table.state[a * STATE_STRIDE + CURRENT] = 9;
    table.clear();
    assert.equal(table.holds(a, 4, 1, 0), false, 'a cleared slot holds nobody');
    assert.equal(table.size, 0);
    assert.equal(table.find(4, 1, 0), NO_CLIENT);
    const b = table.add(4, 1, 0);
    assert.equal(table.state[b * STATE_STRIDE + CURRENT], 0);
    assert.deepEqual(members(table), [text([4, 1, 0])]);
  });
});
