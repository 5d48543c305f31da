/**
 * Small shared helpers for the codec tests: hex <-> bytes, and a normaliser
 * that turns frames into plain, comparable objects.
 *
 * Decoded STR and IP values are class instances with lazy getters and a
 * `bytes` view, BIN values are Buffer views, and 64-bit integers come back as
 * numbers when safe: the normaliser maps all of these to one canonical form
 * ({type, value} objects, hex for bytes, numbers for safe integers).
 */
import assert from 'node:assert/strict';
import { type Frame, type TypedData, SpopError, Status } from '../src/codec/index.js';

/** Bytes of a hex string; spaces are allowed for readability. */
export function fromHex(hex: string): Buffer {
  const clean = hex.replace(/\s+/g, '');
  assert.match(clean, /^(?:[0-9a-f]{2})*$/, `bad hex in test data: ${hex}`);
  return Buffer.from(clean, 'hex');
}

export const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** A frame on the wire minus its 4-byte length prefix. */
export const bodyOf = (wire: Buffer): Buffer => wire.subarray(4);

/** Safe integers as numbers, the rest as bigints: the decoder's own convention. */
export function canonicalInt(v: number | bigint): number | bigint {
  if (typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) {
    return Number(v);
  }
  return v;
}

export type NormalisedData = { type: string; value?: unknown };

export function normaliseData(d: TypedData): NormalisedData {
  switch (d.type) {
    case 'null':
      return { type: 'null' };
    case 'bool':
      return { type: 'bool', value: d.value };
    case 'int32':
    case 'uint32':
    case 'int64':
    case 'uint64':
      return { type: d.type, value: canonicalInt(d.value) };
    case 'ipv4':
    case 'ipv6':
    case 'str':
      return { type: d.type, value: d.value };
    case 'bin':
      return { type: 'bin', value: toHex(d.value) };
  }
}

/** A plain object with every value in canonical form, for deepEqual. */
export function normalise(f: Frame): Record<string, unknown> {
  const head = {
    type: f.type,
    flags: f.flags,
    streamId: canonicalInt(f.streamId),
    frameId: canonicalInt(f.frameId),
  };
  switch (f.type) {
    case 'haproxy-hello':
    case 'agent-hello':
    case 'haproxy-disconnect':
    case 'agent-disconnect':
      return { ...head, kv: f.kv.map(([k, v]) => [k, normaliseData(v)]) };
    case 'notify':
      return {
        ...head,
        messages: f.messages.map((m) => ({
          name: m.name,
          args: m.args.map((a) => ({ name: a.name, value: normaliseData(a.value) })),
        })),
      };
    case 'ack':
      return {
        ...head,
        actions: f.actions.map((a) =>
          a.type === 'set-var' ? { type: a.type, scope: a.scope, name: a.name, value: normaliseData(a.value) } : { type: a.type, scope: a.scope, name: a.name },
        ),
      };
    case 'raw':
      return { ...head, typeId: f.typeId, payload: toHex(f.payload) };
  }
}

const statusCodes = new Set<number>(Object.values(Status));

/**
 * Asserts that `fn` throws a SpopError (not any other error) whose status is
 * one of the defined codes and, when given, one of `statuses`.
 */
export function assertSpopError(fn: () => unknown, statuses?: readonly number[]): SpopError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, 'expected a SpopError, nothing was thrown');
  assertIsSpopError(caught, statuses);
  return caught;
}

export function assertIsSpopError(e: unknown, statuses?: readonly number[]): asserts e is SpopError {
  assert.ok(e instanceof SpopError, `expected a SpopError, got ${String(e)}`);
  assert.ok(statusCodes.has(e.status), `status ${e.status} is not a defined code`);
  if (statuses) assert.ok(statuses.includes(e.status), `status ${e.status} not in [${statuses.join(', ')}]`);
}
