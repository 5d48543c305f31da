/**
 * Constructors for typed values and actions, so handlers write
 * `setVar('sess', 'ip_score', 42)` rather than building wire objects by hand.
 */
import type { Action, SetVarAction, TypedData, UnsetVarAction, VarScope } from '../codec/index.js';

/** Explicit typed-value constructors, for when the automatic choice is not the one wanted. */
export const T = {
  /** NULL (unsets the variable). */
  null: (): TypedData => ({ type: 'null' }),
  /** BOOL. */
  bool: (value: boolean): TypedData => ({ type: 'bool', value }),
  /** INT32 (-2^31 to 2^31 - 1). */
  int32: (value: number): TypedData => ({ type: 'int32', value }),
  /** UINT32 (0 to 2^32 - 1). */
  uint32: (value: number): TypedData => ({ type: 'uint32', value }),
  /** INT64; a bigint beyond 2^53. */
  int64: (value: number | bigint): TypedData => ({ type: 'int64', value }),
  /** UINT64; a bigint beyond 2^53. */
  uint64: (value: number | bigint): TypedData => ({ type: 'uint64', value }),
  /** IPV4 from its dotted-quad text. */
  ipv4: (value: string): TypedData => ({ type: 'ipv4', value }),
  /** IPV6 from its text. */
  ipv6: (value: string): TypedData => ({ type: 'ipv6', value }),
  /** STR (written as UTF-8). */
  str: (value: string): TypedData => ({ type: 'str', value }),
  /** BIN. */
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

/** An action setting `<scope>.<var-prefix>.<name>`; plain values are typed by {@link toTypedData}. Throws a TypeError for a name HAProxy would drop. */
export function setVar(scope: VarScope, name: string, value: VarValue): SetVarAction {
  assertVarName(name);
  return { type: 'set-var', scope, name, value: toTypedData(value) };
}

/** An action unsetting `<scope>.<var-prefix>.<name>`. */
export function unsetVar(scope: VarScope, name: string): UnsetVarAction {
  assertVarName(name);
  return { type: 'unset-var', scope, name };
}

export type { Action };
