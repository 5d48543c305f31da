/**
 * Constructors for typed values and actions, so handlers write
 * `setVar('sess', 'ip_score', 42)` rather than building wire objects by hand.
 */
import type { Action, SetVarAction, TypedData, UnsetVarAction, VarScope } from '../codec/index.js';

/** Explicit typed-value constructors, for when the automatic choice is not the one wanted. */
export const T = {
  null: (): TypedData => ({ type: 'null' }),
  bool: (value: boolean): TypedData => ({ type: 'bool', value }),
  int32: (value: number): TypedData => ({ type: 'int32', value }),
  uint32: (value: number): TypedData => ({ type: 'uint32', value }),
  int64: (value: number | bigint): TypedData => ({ type: 'int64', value }),
  uint64: (value: number | bigint): TypedData => ({ type: 'uint64', value }),
  ipv4: (value: string): TypedData => ({ type: 'ipv4', value }),
  ipv6: (value: string): TypedData => ({ type: 'ipv6', value }),
  str: (value: string): TypedData => ({ type: 'str', value }),
  bin: (value: Uint8Array): TypedData => ({ type: 'bin', value }),
} as const;

/** Values a handler may give to setVar without naming a type. */
export type VarValue = TypedData | number | bigint | string | boolean | Uint8Array | null;

/**
 * Picks the wire type of a plain JS value: integers become INT64 (HAProxy
 * stores every integer as a signed 64-bit value), strings STR, booleans BOOL,
 * bytes BIN, null NULL (which unsets the variable on HAProxy's side).
 */
export function toTypedData(value: VarValue): TypedData {
  if (value === null) return { type: 'null' };
  switch (typeof value) {
    case 'number':
      if (!Number.isSafeInteger(value)) throw new TypeError(`SPOP has no floating point type: ${value}`);
      return { type: 'int64', value };
    case 'bigint':
      return value >= 1n << 63n ? { type: 'uint64', value } : { type: 'int64', value };
    case 'string':
      return { type: 'str', value };
    case 'boolean':
      return { type: 'bool', value };
    default:
      return value instanceof Uint8Array ? { type: 'bin', value } : value;
  }
}

const VAR_NAME = /^[A-Za-z0-9_.]+$/;

/**
 * HAProxy silently drops a variable whose name has any other character than
 * [A-Za-z0-9_.], and every action after it: fail loudly here instead.
 */
export function assertVarName(name: string): void {
  if (validNames.has(name)) return; // handlers set the same few names on every call
  if (!VAR_NAME.test(name)) throw new TypeError(`invalid variable name ${JSON.stringify(name)}: use [A-Za-z0-9_.]`);
  if (validNames.size >= 1024) validNames.clear();
  validNames.add(name);
}
const validNames = new Set<string>();

export function setVar(scope: VarScope, name: string, value: VarValue): SetVarAction {
  assertVarName(name);
  return { type: 'set-var', scope, name, value: toTypedData(value) };
}

export function unsetVar(scope: VarScope, name: string): UnsetVarAction {
  assertVarName(name);
  return { type: 'unset-var', scope, name };
}

export type { Action };
