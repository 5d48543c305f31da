import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type LogFormat, RateLimitedLog, consoleLogger } from '../src/logger.js';

function capture(format: LogFormat, level: 'debug' | 'info' = 'info'): { lines: string[]; logger: ReturnType<typeof consoleLogger> } {
  const lines: string[] = [];
  return { lines, logger: consoleLogger(level, (line) => lines.push(line), format) };
}

describe('consoleLogger text (logfmt)', () => {
  it('writes time, level, msg and fields as key=value, quoting the message when it has spaces', () => {
    const { lines, logger } = capture('text');
    logger.info('agent listening', { address: '127.0.0.1:12345', pid: 42 });
    assert.equal(lines.length, 1);
    assert.match(lines[0] ?? '', /^time=\d{4}-\d\d-\d\dT[\d:.]+Z level=info msg="agent listening" address=127\.0\.0\.1:12345 pid=42$/);
  });

  it('quotes spaces, quotes, = and escapes control characters: a peer-provided string cannot forge a line', () => {
    const { lines, logger } = capture('text');
    const forged = 'x\ntime=2020-01-01T00:00:00Z level=error msg="forged"';
    logger.warn(forged, { reason: 'a "b" c=d\r\te\u0000', empty: '', plain: 'ok' });
    assert.equal(lines.length, 1);
    const line = lines[0] ?? '';
    assert.ok(!/[\n\r\t\u0000]/.test(line), line);
    assert.ok(line.includes('msg="x\\ntime=2020-01-01T00:00:00Z level=error msg=\\"forged\\""'), line);
    assert.ok(line.includes('reason="a \\"b\\" c=d\\r\\te\\u0000"'), line);
    assert.ok(line.includes(' empty="" plain=ok'), line);
  });

  it('quotes keys it cannot write bare and serialises errors, objects and bigints', () => {
    const { lines, logger } = capture('text');
    logger.error('failed', { error: new Error('boom "x"'), 'bad key': 1, obj: { a: 1 }, n: 10n, u: undefined });
    const line = lines[0] ?? '';
    assert.ok(line.includes('error="boom \\"x\\""'), line);
    assert.ok(line.includes('bad_key=1'), line);
    assert.ok(line.includes('obj="{\\"a\\":1}"'), line);
    assert.ok(line.includes('n=10'), line);
    assert.ok(line.includes('u=undefined'), line);
  });

  it('keeps below-level lines out', () => {
    const { lines, logger } = capture('text', 'info');
    logger.debug('hidden');
    assert.equal(lines.length, 0);
  });
});

describe('consoleLogger json', () => {
  it('writes one object per line with time, level, msg and the fields; errors as their message and name', () => {
    const { lines, logger } = capture('json', 'debug');
    logger.debug('a\nb', { n: 10n, error: new TypeError('bad'), nested: { x: [1] } });
    logger.info('second', { time: 'spoofed', level: 'spoofed', msg: 'spoofed' });
    assert.equal(lines.length, 2);
    for (const line of lines) assert.ok(!line.includes('\n'));
    const first = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
    assert.equal(first.level, 'debug');
    assert.equal(first.msg, 'a\nb');
    assert.equal(typeof first.time, 'string');
    assert.equal(first.n, '10');
    assert.deepEqual(first.error, { name: 'TypeError', message: 'bad' });
    assert.deepEqual(first.nested, { x: [1] });
    const second = JSON.parse(lines[1] ?? '') as Record<string, unknown>;
    // Fields never overwrite the line's own time, level and message.
    assert.equal(second.level, 'info');
    assert.equal(second.msg, 'second');
    assert.notEqual(second.time, 'spoofed');
    assert.equal(second._msg, 'spoofed', 'kept aside');
    assert.match(lines[1] ?? '', /^\{"time":"[^"]+","level":"info","msg":"second",/);
  });

  it('survives a circular field', () => {
    const { lines, logger } = capture('json');
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    logger.info('loop', { loop });
    assert.equal((JSON.parse(lines[0] ?? '') as Record<string, unknown>).msg, 'loop');
  });
});

describe('consoleLogger line breaks JSON leaves raw', () => {
  it('escapes NEL, U+2028 and U+2029 in both formats', () => {
    for (const format of ['text', 'json'] as const) {
      const { lines, logger } = capture(format);
      logger.info('a\u0085b\u2028c\u2029d', { v: '\u2028' });
      assert.ok(!/[\u0085\u2028\u2029]/.test(lines[0] ?? ''), `${format}: ${lines[0]}`);
      if (format === 'json') assert.equal((JSON.parse(lines[0] ?? '') as { msg: string }).msg, 'a\u0085b\u2028c\u2029d');
    }
  });
});

describe('RateLimitedLog lazy fields', () => {
  it('makes the fields of written lines only', () => {
    const { lines, logger } = capture('text');
    const limited = new RateLimitedLog(logger, { lines: 3, intervalMs: 60_000 });
    let made = 0;
    for (let i = 0; i < 1000; i++) limited.info('flood', () => ({ n: ++made }));
    assert.equal(made, 3);
    assert.equal(lines.length, 3);
    assert.ok(lines[2]?.endsWith('msg=flood n=3'), lines[2]);
  });
});
