/**
 * pinoLogger against real pino: spop's `(message, fields)` lines become pino's
 * `(fields, message)` calls at the same level, and pino's own level filter applies.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { setVar } from '../src/index.js';
import { pinoLogger } from '../src/logger.js';
import { msg, startAgent, until } from './agent-helpers.js';

/** A pino instance writing its JSON lines into an array. */
function capturedPino(level: string): { lines: Record<string, unknown>[]; instance: ReturnType<typeof pino> } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, instance: pino({ level }, sink) };
}

describe('pinoLogger', () => {
  it('maps each level to pino, with the fields as the object and the message as msg', () => {
    const { lines, instance } = capturedPino('debug');
    const logger = pinoLogger(instance);
    logger.debug('d', { connection: 1 });
    logger.info('i', { a: 'b' });
    logger.warn('w');
    logger.error('e', { count: 3 });
    assert.deepEqual(
      lines.map((l) => [l['level'], l['msg']]),
      [
        [20, 'd'],
        [30, 'i'],
        [40, 'w'],
        [50, 'e'],
      ],
    );
    assert.equal(lines[0]?.['connection'], 1);
    assert.equal(lines[1]?.['a'], 'b');
    assert.equal(lines[3]?.['count'], 3);
  });

  it("leaves filtering to pino's level", () => {
    const { lines, instance } = capturedPino('warn');
    const logger = pinoLogger(instance);
    logger.debug('no');
    logger.info('no');
    logger.warn('yes');
    assert.deepEqual(
      lines.map((l) => l['msg']),
      ['yes'],
    );
  });

  it('keeps the message of an Error field (pino would print an Error outside `err` as {})', () => {
    const { lines, instance } = capturedPino('info');
    pinoLogger(instance).error('failed', { error: new TypeError('bad value'), other: 'kept' });
    assert.deepEqual(lines[0]?.['error'], { type: 'TypeError', message: 'bad value' });
    assert.equal(lines[0]?.['other'], 'kept');
  });

  it("is an Agent's logger: a handler failure reaches pino as an error line", async (t) => {
    const { lines, instance } = capturedPino('info');
    const h = await startAgent(t, { logger: pinoLogger(instance) }, (a) => {
      a.message('boom', () => {
        throw new Error('handler bug');
      });
      a.message('fine', () => setVar('txn', 'ok', 1));
    });
    const fake = await h.ready();
    await fake.notify(1, 1, [msg('boom')]);
    await until(() => lines.some((l) => l['level'] === 50), 'error line');
    const line = lines.find((l) => l['level'] === 50);
    assert.equal(line?.['msg'], 'handler failed: ACK sent without its actions');
    assert.equal(line?.['message'], 'boom');
    assert.equal(line?.['error'], 'handler bug');
  });
});
