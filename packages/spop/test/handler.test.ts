import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import v8 from 'node:v8';
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

  it('encodes a list of actions once: the same bytes as its actions one by one, still a readable frozen list', () => {
    const list = [preEncode(setVar('sess', 'ip_score', T.uint32(70))), setVar('sess', 'action', 'deny'), unsetVar('txn', 'category')];
    const pre = preEncode(list);
    const oneByOne = new Writer(64);
    for (const a of list) oneByOne.action(a);
    assert.equal(new Writer(16).actions(pre).take().toString('hex'), oneByOne.take().toString('hex'));
    assert.equal(new Writer(16).actions(list).take().toString('hex'), new Writer(16).actions(pre).take().toString('hex'));
    assert.deepEqual([...pre], list, 'the actions stay readable, in order');
    assert.ok(Array.isArray(pre) && Object.isFrozen(pre));
    assert.notEqual(pre, list, 'the list given is left as it was');
    assert.ok(!Object.isFrozen(list));
    assert.throws(() => preEncode([setVar('sess', 'n', T.int32(2 ** 31))]), /out of range/, 'a bad value fails at once, not in an ACK');
  });

  it('gives every pre-encoded action of a kind one object shape, so the ACK path stays monomorphic', () => {
    // V8's own answer (a function compiled after the flag is set may ask it): actions of many
    // shapes make every property load on them in the ACK path megamorphic.
    v8.setFlagsFromString('--allow-natives-syntax');
    const sameShape = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;
    const shapes = (actions: readonly object[]): number => {
      const distinct: object[] = [];
      for (const a of actions) if (!distinct.some((d) => sameShape(d, a))) distinct.push(a);
      return distinct.length;
    };
    const scores = Array.from({ length: 101 }, (_, score) => preEncode(setVar('sess', 'ip_score', T.uint32(score))));
    assert.equal(shapes(scores), 1, 'one shape for 101 scores');
    assert.equal(shapes([...scores, preEncode(setVar('txn', 'action', 'deny')), preEncode(setVar('req', 'n', -5))]), 1, 'whatever the value');
    assert.equal(shapes(Array.from({ length: 20 }, (_, i) => preEncode(unsetVar('txn', `v${i}`)))), 1, 'one shape for unset-var');
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

describe('decoded messages (arguments decoded on access)', () => {
  const payload = (hex: string): Buffer => Buffer.from(hex, 'hex');
  // check-client-ip(ip=192.168.1.10), then log-request(method="GET", port=int64 8080, tls=false, x=null)
  const two = payload(
    '0f636865636b2d636c69656e742d69700102697006c0a8010a' + '0b6c6f672d7265717565737404066d6574686f64080347455404706f727404f0ea0203746c7301017800',
  );

  it('gives each argument by position or name, the same as the full list', async () => {
    const { Reader } = await import('../src/index.js');
    const [first, second] = new Reader(two).messages();
    assert.equal(first!.name, 'check-client-ip');
    assert.equal(first!.value(0), '192.168.1.10');
    assert.equal(first!.value('ip'), '192.168.1.10');
    assert.equal(first!.arg(1), undefined);
    assert.equal(second!.value(1), 8080);
    assert.equal(second!.value(2), false);
    assert.equal(second!.value(3), null);
    assert.equal(second!.value('method'), 'GET');
    for (let i = 0; i < 4; i++) assert.deepEqual(second!.arg(i), second!.args[i]!.value);
    assert.deepEqual(JSON.parse(JSON.stringify(second)), {
      name: 'log-request',
      args: [
        { name: 'method', value: { type: 'str', value: 'GET' } },
        { name: 'port', value: { type: 'int64', value: 8080 } },
        { name: 'tls', value: { type: 'bool', value: false } },
        { name: 'x', value: { type: 'null' } },
      ],
    });
  });

  it('finds an argument by name without decoding the others: first of equal names, exact names only', async () => {
    const { Reader, Writer } = await import('../src/index.js');
    const encoded = new Writer(128)
      .message({
        name: 'm',
        args: [
          { name: 'port', value: { type: 'int32', value: 1 } },
          { name: 'ip', value: { type: 'ipv4', value: '192.0.2.1' } },
          { name: 'ip', value: { type: 'ipv4', value: '192.0.2.2' } },
          { name: 'héhé', value: { type: 'str', value: 'accent' } },
          { name: '', value: { type: 'null' } },
        ],
      })
      .take();
    const fresh = () => new Reader(encoded).messages()[0]!;
    assert.equal(fresh().value('ip'), '192.0.2.1');
    assert.equal(fresh().value('port'), 1);
    assert.equal(fresh().value('po'), undefined);
    assert.equal(fresh().value('ports'), undefined);
    assert.equal(fresh().value('héhé'), 'accent');
    assert.equal(fresh().value(''), null);
    assert.equal(fresh().arg('nope'), undefined);
    const [first] = new Reader(two).messages();
    assert.equal(first!.value('ip'), '192.168.1.10');
  });

  it('counts arguments, finds one by name and copies an address in place, as a plain Message does', async () => {
    const { Message, Reader, Writer } = await import('../src/index.js');
    const args = [
      { name: 'port', value: { type: 'int32', value: 1 } },
      { name: 'ip', value: { type: 'ipv4', value: '192.0.2.1' } },
      { name: 'ip', value: { type: 'ipv4', value: '192.0.2.2' } },
      { name: 'v6', value: { type: 'ipv6', value: '2001:db8::ff' } },
      { name: 'host', value: { type: 'str', value: '192.0.2.9' } },
      { name: 'xff', value: { type: 'str', value: '2001:db8::1:2' } },
      { name: 'spaced', value: { type: 'str', value: ' 192.0.2.9' } },
      { name: 'list', value: { type: 'str', value: '192.0.2.9, 192.0.2.10' } },
      { name: 'wide', value: { type: 'str', value: '192.0.2.Ĳ' } },
      { name: 'héhé', value: { type: 'str', value: 'accent' } },
    ] as const;
    const encoded = new Writer(256).message({ name: 'm', args }).take();
    for (const [kind, message] of [
      ['decoded', new Reader(encoded).messages()[0]!],
      [
        'decoded after args',
        (() => {
          const m = new Reader(encoded).messages()[0]!;
          void m.args;
          return m;
        })(),
      ],
      ['plain', new Message('m', args)],
    ] as const) {
      assert.equal(message.argCount, 10, kind);
      assert.deepEqual(
        ['port', 'ip', 'v6', 'host', 'héhé', 'nope', 'i', ''].map((name) => message.argIndex(name)),
        [0, 1, 3, 4, 9, -1, -1, -1],
        kind,
      );
      const into = new Uint8Array(16).fill(0xee);
      assert.equal(message.addressInto(1, into), 4, kind);
      assert.deepEqual([...into.subarray(0, 5)], [192, 0, 2, 1, 0xee], `${kind}: four bytes written, the rest left`);
      assert.equal(message.addressInto(3, into), 16, kind);
      assert.equal(Buffer.from(into).toString('hex'), '20010db80000000000000000000000ff', kind);
      assert.equal(message.addressInto(4, into), 4, `${kind}: an address as text`);
      assert.deepEqual([...into.subarray(0, 4)], [192, 0, 2, 9], kind);
      assert.equal(message.addressInto(5, into), 16, `${kind}: an IPv6 address as text`);
      assert.equal(Buffer.from(into).toString('hex'), '20010db8000000000000000000010002', kind);
      // Exactly an address: no spaces, no lists, no character that merely ends in a digit's byte.
      for (const index of [0, 6, 7, 8, 9, 10, -1, 1.5, Number.NaN]) assert.equal(message.addressInto(index, into), 0, `${kind}: ${index} is no address`);
      assert.equal(message.arg(1.5), undefined, `${kind}: no argument between two`);
      assert.deepEqual(
        [0, 1, 3, 4, 10, -1, 1.5].map((index) => message.argType(index)),
        ['int32', 'ipv4', 'ipv6', 'str', undefined, undefined, undefined],
        `${kind}: types read without values`,
      );
      assert.throws(() => message.addressInto(1, new Uint8Array(4)), RangeError, `${kind}: room for IPv6 needed whatever the argument`);
    }
  });

  it('reads every argument type without decoding a value, as the decoded values say', async () => {
    const { Reader, Writer } = await import('../src/index.js');
    const args = [
      { name: 'a', value: { type: 'null' } },
      { name: 'b', value: { type: 'bool', value: true } },
      { name: 'c', value: { type: 'int32', value: -1 } },
      { name: 'd', value: { type: 'uint32', value: 1 } },
      { name: 'e', value: { type: 'int64', value: -2 } },
      { name: 'f', value: { type: 'uint64', value: 2 } },
      { name: 'g', value: { type: 'ipv4', value: '192.0.2.1' } },
      { name: 'h', value: { type: 'ipv6', value: '::1' } },
      { name: 'i', value: { type: 'str', value: 'x' } },
      { name: 'j', value: { type: 'bin', value: Buffer.from([1]) } },
    ] as const;
    const message = new Reader(new Writer(256).message({ name: 'm', args }).take()).messages()[0]!;
    assert.deepEqual(
      args.map((_, i) => message.argType(i)),
      args.map((a) => a.value.type),
    );
  });

  it('still rejects a malformed argument when the frame is read, not later', async () => {
    const { Reader, SpopError } = await import('../src/index.js');
    // Second argument of log-request truncated; and an unknown type 0x0c.
    assert.throws(() => new Reader(two.subarray(0, two.length - 5)).messages(), SpopError);
    assert.throws(() => new Reader(payload('0161010c')).messages(), SpopError);
    // A declared length running past the end of the payload, even with bytes after it in the buffer.
    const buf = payload('016101000805616263' + 'ffffffff');
    assert.throws(() => new Reader(buf, 0, 9).messages(), SpopError);
  });
});
