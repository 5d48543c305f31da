/**
 * The handshake payloads in the codec, both sides: what HAProxy sends
 * (HAPROXY-HELLO, HAPROXY-DISCONNECT) and what an agent sends (AGENT-HELLO,
 * AGENT-DISCONNECT), encoded to the reference bytes and read back. Imported
 * from the codec alone: a client (the test kit, a load generator) needs no
 * part of the agent's connection code to speak the protocol.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  type Frame,
  type KvEntry,
  FrameFlags,
  SPOP_VERSION,
  SpopError,
  Status,
  agentHelloKv,
  decodeFrame,
  disconnectKv,
  encodeFrame,
  haproxyHelloKv,
  readAgentHello,
  readDisconnect,
  readHaproxyHello,
} from '../src/codec/index.js';
import { referenceVectors } from './vectors.js';

const hex = (frame: Frame): string => Buffer.from(encodeFrame(frame)).toString('hex');
const kvFrame = (type: 'haproxy-hello' | 'agent-hello' | 'haproxy-disconnect' | 'agent-disconnect', kv: KvEntry[]): Frame => ({
  type,
  flags: FrameFlags.FIN,
  streamId: 0,
  frameId: 0,
  kv,
});
const isReferenceVector = (encoded: string): boolean => referenceVectors.some((v) => v.hex === encoded);

function throwsStatus(fn: () => unknown, status: number): void {
  assert.throws(fn, (e: unknown) => e instanceof SpopError && e.status === status, `expected SpopError ${status}`);
}

describe('handshake payloads: the HAProxy side', () => {
  test('HAPROXY-HELLO of 2.6, 3.x and a health check encode to the reference bytes', () => {
    const engineId = 'c0f397ef-7909-40f6-a287-2e2f29cd5288';
    for (const kv of [
      haproxyHelloKv({ capabilities: 'pipelining,async', engineId }),
      haproxyHelloKv({ capabilities: 'pipelining', engineId }),
      haproxyHelloKv({ healthcheck: true }),
    ]) {
      const encoded = hex(kvFrame('haproxy-hello', kv));
      assert.ok(isReferenceVector(encoded), `not a reference vector: ${encoded}`);
    }
  });

  test('what haproxyHelloKv writes, readHaproxyHello reads back through the bytes', () => {
    const frame = decodeFrame(encodeFrame(kvFrame('haproxy-hello', haproxyHelloKv({ maxFrameSize: 4096, engineId: 'e1' }))).subarray(4));
    assert.ok(frame.type === 'haproxy-hello');
    assert.deepEqual(readHaproxyHello(frame.kv), {
      supportedVersions: [SPOP_VERSION],
      maxFrameSize: 4096,
      capabilities: ['pipelining', 'async'],
      engineId: 'e1',
      healthcheck: false,
    });
  });

  test('HAPROXY-DISCONNECT: encoded to the reference bytes, read back', () => {
    assert.ok(isReferenceVector(hex(kvFrame('haproxy-disconnect', disconnectKv(2, 'a timeout occurred')))));
    assert.deepEqual(readDisconnect(disconnectKv(8, 'unsupported version')), { status: 8, message: 'unsupported version' });
  });
});

describe('handshake payloads: the agent side', () => {
  test('AGENT-HELLO encodes to the reference bytes', () => {
    for (const kv of [
      agentHelloKv({ maxFrameSize: 16380, capabilities: [] }),
      agentHelloKv({ maxFrameSize: 16380, capabilities: ['pipelining'] }),
      agentHelloKv({ maxFrameSize: 1024, capabilities: ['pipelining'] }),
    ]) {
      const encoded = hex(kvFrame('agent-hello', kv));
      assert.ok(isReferenceVector(encoded), `not a reference vector: ${encoded}`);
    }
  });

  test('readAgentHello reads what agentHelloKv writes, capability list trimmed', () => {
    assert.deepEqual(readAgentHello(agentHelloKv({ maxFrameSize: 1024, capabilities: ['pipelining', 'async'] })), {
      version: SPOP_VERSION,
      maxFrameSize: 1024,
      capabilities: ['pipelining', 'async'],
    });
    const spaced: KvEntry[] = [
      ['version', { type: 'str', value: ' 2.0 ' }],
      ['max-frame-size', { type: 'int64', value: 300 }],
      ['capabilities', { type: 'str', value: ' pipelining , ' }],
    ];
    assert.deepEqual(readAgentHello(spaced), { version: '2.0', maxFrameSize: 300, capabilities: ['pipelining'] });
  });

  test('readAgentHello: capabilities may be absent (HAProxy accepts it at runtime), version and max-frame-size may not', () => {
    const version: KvEntry = ['version', { type: 'str', value: '2.0' }];
    const size: KvEntry = ['max-frame-size', { type: 'uint32', value: 16380 }];
    assert.deepEqual(readAgentHello([version, size]).capabilities, []);
    throwsStatus(() => readAgentHello([size]), Status.NO_VERSION);
    throwsStatus(() => readAgentHello([version]), Status.NO_MAX_FRAME_SIZE);
    throwsStatus(() => readAgentHello([['version', { type: 'uint32', value: 2 }], size]), Status.INVALID_FRAME);
    throwsStatus(() => readAgentHello([version, ['max-frame-size', { type: 'str', value: '16380' }]]), Status.INVALID_FRAME);
    throwsStatus(() => readAgentHello([version, size, ['capabilities', { type: 'bool', value: true }]]), Status.INVALID_FRAME);
  });

  test('AGENT-DISCONNECT: encoded to the reference bytes, read back', () => {
    assert.ok(isReferenceVector(hex(kvFrame('agent-disconnect', disconnectKv(4, 'invalid frame received')))));
    assert.deepEqual(readDisconnect(disconnectKv(0, 'normal')), { status: 0, message: 'normal' });
  });
});

test('the codec imports nothing from the rest of the library', () => {
  const dir = new URL('../src/codec/', import.meta.url);
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
    const source = readFileSync(new URL(name, dir), 'utf8');
    const outside = [...source.matchAll(/from '(\.\.\/[^']*)'/g)].map((m) => m[1]);
    assert.deepEqual(outside, [], `codec/${name} imports from outside the codec`);
  }
});
