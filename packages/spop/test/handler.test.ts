import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Writer, preEncode, setVar, T, unsetVar, toTypedData } from '../src/index.js';

const encode = (a: Parameters<Writer['action']>[0]): string => new Writer(16).action(a).take().toString('hex');

describe('preEncode', () => {
  it('gives the same bytes as encoding the action each time, for every kind', () => {
    const actions = [
      setVar('sess', 'ip_score', T.uint32(42)),
      setVar('txn', 'delta', -1),
      setVar('req', 'name', 'é'),
      setVar('res', 'flag', true),
      setVar('proc', 'addr', T.ipv6('2001:db8::1')),
      unsetVar('txn', 'ip_score'),
    ];
    for (const a of actions) {
      const pre = preEncode(a);
      assert.equal(encode(pre), encode(a));
      assert.deepEqual(Object.fromEntries(Object.entries(pre)), a, 'the fields stay readable');
      assert.ok(Object.isFrozen(pre));
    }
    assert.equal(encode(preEncode(setVar('sess', 'ip_score', T.uint32(42)))), '0103010869705f73636f7265032a');
  });
});

describe('toTypedData', () => {
  it('types plain values the way HAProxy stores them', () => {
    assert.deepEqual(toTypedData(5), { type: 'int64', value: 5 });
    assert.deepEqual(toTypedData(2n ** 63n), { type: 'uint64', value: 2n ** 63n });
    assert.deepEqual(toTypedData(-3n), { type: 'int64', value: -3n });
    assert.deepEqual(toTypedData('x'), { type: 'str', value: 'x' });
    assert.deepEqual(toTypedData(false), { type: 'bool', value: false });
    assert.deepEqual(toTypedData(null), { type: 'null' });
    assert.deepEqual(toTypedData(Buffer.from([1])), { type: 'bin', value: Buffer.from([1]) });
    assert.throws(() => toTypedData(1.5), /no floating point/);
  });
});
