/**
 * The behaviour tracker's client table: typed arrays found through an open-addressing hash index.
 * Checked against a plain model (a Map kept in recency order) through random operations on small
 * tables, where probe sequences collide and evictions shift entries back all the time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BANNED_UNTIL, CURRENT, ClientTable, NO_CLIENT, OFFENCES, STATE_STRIDE } from '../../src/behaviour/client-table.js';

type Key = readonly [family: 4 | 6, hi: number, lo: number];
const text = ([family, hi, lo]: Key): string => `${family}/${hi}/${lo}`;

/** Keys in slot order of recency, least recently seen first. */
function order(table: ClientTable): string[] {
  const out: string[] = [];
  table.forEach((c) => out.push(text([table.familyOf(c), table.hiOf(c), table.loOf(c)])));
  return out;
}

describe('ClientTable', () => {
  it('behaves like a bounded least-recently-seen map through any sequence of hits', () => {
    // A small universe of keys: IPv4 and IPv6 sharing words, so that only the family or lo tells them apart.
    const key = fc
      .tuple(fc.constantFrom<4 | 6>(4, 6), fc.integer({ min: -3, max: 3 }), fc.integer({ min: -2, max: 2 }))
      .map(([family, hi, lo]): Key => [family, hi | 0, family === 4 ? 0 : lo | 0]);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 7 }), fc.array(key, { maxLength: 300 }), (max, hits) => {
        const table = new ClientTable(max);
        const model = new Map<string, number>(); // key -> count, in recency order
        for (const k of hits) {
          const [family, hi, lo] = k;
          let c = table.find(family, hi, lo);
          const name = text(k);
          if (c === NO_CLIENT) {
            assert.equal(model.has(name), false, `${name} lost`);
            c = table.add(family, hi, lo);
            if (model.size === max) model.delete(model.keys().next().value as string);
            model.set(name, 0);
          } else {
            assert.equal(model.has(name), true, `${name} found but evicted`);
            table.touch(c);
            const count = model.get(name) as number;
            model.delete(name);
            model.set(name, count);
          }
          assert.equal(table.state[c * STATE_STRIDE + CURRENT], model.get(name), `${name}: a reused slot starts from zero`);
          table.state[c * STATE_STRIDE + CURRENT] = (table.state[c * STATE_STRIDE + CURRENT] as number) + 1;
          model.set(name, (model.get(name) as number) + 1);
          assert.equal(table.size, model.size);
        }
        assert.deepEqual(order(table), [...model.keys()]);
        for (const name of model.keys()) {
          const [family, hi, lo] = name.split('/').map(Number) as [4 | 6, number, number];
          const c = table.find(family, hi, lo);
          assert.notEqual(c, NO_CLIENT, `${name} not found`);
          assert.equal(table.state[c * STATE_STRIDE + CURRENT], model.get(name));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('forgets the least recently seen client at its bound and reuses its slot from zero', () => {
    const table = new ClientTable(3);
    const a = table.add(4, 0x0a000001, 0);
    const b = table.add(6, 0x20010db8, 1);
    const c = table.add(4, 0x0a000003, 0);
    table.state[b * STATE_STRIDE + CURRENT] = 5;
    table.state[b * STATE_STRIDE + BANNED_UNTIL] = 1e12;
    table.state[b * STATE_STRIDE + OFFENCES] = 2;
    table.touch(a);
    // b is now the oldest: a fourth client takes its slot.
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
    assert.deepEqual(order(table), [text([4, 0x0a000003, 0]), text([4, 0x0a000001, 0]), text([6, 0x20010db8, 2])]);
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
    assert.deepEqual(order(table), [text([4, 1, 0])]);
  });
});
