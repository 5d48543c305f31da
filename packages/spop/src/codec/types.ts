/**
 * The protocol's data model: typed data, messages, actions and frames, as
 * plain objects that the encoder and decoder turn into bytes and back.
 */

/** Typed-data type ids (low nibble of the type byte, docs/protocol.md §4.2). */
export const DataType = {
  NULL: 0,
  BOOL: 1,
  INT32: 2,
  UINT32: 3,
  INT64: 4,
  UINT64: 5,
  IPV4: 6,
  IPV6: 7,
  STR: 8,
  BIN: 9,
} as const;

/** No value (a missing sample); setting it unsets the variable. */
export type NullData = { readonly type: 'null' };
/** A boolean. */
export type BoolData = { readonly type: 'bool'; readonly value: boolean };
/** INT32 and UINT32 always fit in a JS number. */
export type Int32Data = { readonly type: 'int32' | 'uint32'; readonly value: number };
/** 64-bit integers are numbers when safe (|v| <= 2^53 - 1) and bigints beyond. */
export type Int64Data = { readonly type: 'int64' | 'uint64'; readonly value: number | bigint };
/**
 * An address. `value` is its text (dotted quad, RFC 5952 for IPv6); decoded
 * values also expose the raw network-order `bytes` and format the text lazily.
 */
export type IpData = { readonly type: 'ipv4' | 'ipv6'; readonly value: string; readonly bytes?: Uint8Array };
/**
 * A string. HAProxy does not promise UTF-8: decoded values keep the raw
 * `bytes` (a view, not a copy) and decode `value` as UTF-8 on first access.
 */
export type StrData = { readonly type: 'str'; readonly value: string; readonly bytes?: Buffer };
/** Binary data. */
export type BinData = { readonly type: 'bin'; readonly value: Uint8Array };

/** A value as SPOP carries it: `{ type, value }`. */
export type TypedData = NullData | BoolData | Int32Data | Int64Data | IpData | StrData | BinData;
/** The type names of {@link TypedData}. */
export type TypedDataType = TypedData['type'];

/** Variable scopes, as the raw byte of SET-VAR / UNSET-VAR (docs/protocol.md §5.4). */
export const Scope = { proc: 0, sess: 1, txn: 2, req: 3, res: 4 } as const;
/** A variable scope: `proc`, `sess`, `txn`, `req` or `res`. */
export type VarScope = keyof typeof Scope;

/** Action type ids (docs/protocol.md §5.3). */
export const ActionType = { SET_VAR: 1, UNSET_VAR: 2 } as const;

/** Sets `<scope>.<var-prefix>.<name>` in HAProxy. */
export type SetVarAction = {
  readonly type: 'set-var';
  readonly scope: VarScope;
  readonly name: string;
  readonly value: TypedData;
};
/** Unsets `<scope>.<var-prefix>.<name>` in HAProxy. */
export type UnsetVarAction = { readonly type: 'unset-var'; readonly scope: VarScope; readonly name: string };
/** What an ACK carries back to HAProxy. */
export type Action = SetVarAction | UnsetVarAction;

/** One argument of a message; `name` is '' for an unnamed argument (`args src`). */
export type MessageArg = { readonly name: string; readonly value: TypedData };
/** A SPOE message as plain data (what `encodeFrame` takes). */
export type SpoeMessage = { readonly name: string; readonly args: readonly MessageArg[] };

/** A key/value pair of HELLO and DISCONNECT payloads, in wire order. */
export type KvEntry = readonly [key: string, value: TypedData];

/** Frame types (docs/protocol.md §2.3). */
export const FrameType = {
  UNSET: 0,
  HAPROXY_HELLO: 1,
  HAPROXY_DISCONNECT: 2,
  NOTIFY: 3,
  AGENT_HELLO: 101,
  AGENT_DISCONNECT: 102,
  ACK: 103,
} as const;

/** Frame flags, a 32-bit field in network byte order: FIN is the bytes 00 00 00 01. */
export const FrameFlags = { FIN: 0x1, ABORT: 0x2 } as const;

/** A stream-id or frame-id: a varint, a bigint beyond 2^53. */
export type FrameId = number | bigint;

interface FrameHeader {
  /** 32-bit flags field (FrameFlags). */
  readonly flags: number;
  readonly streamId: FrameId;
  readonly frameId: FrameId;
}

/** HAPROXY-HELLO or AGENT-HELLO, with its key/value pairs. */
export interface HelloFrame extends FrameHeader {
  readonly type: 'haproxy-hello' | 'agent-hello';
  readonly kv: readonly KvEntry[];
}
/** HAPROXY-DISCONNECT or AGENT-DISCONNECT, with its key/value pairs (`status-code`, `message`). */
export interface DisconnectFrame extends FrameHeader {
  readonly type: 'haproxy-disconnect' | 'agent-disconnect';
  readonly kv: readonly KvEntry[];
}
/** A NOTIFY: the messages of one event. */
export interface NotifyFrame extends FrameHeader {
  readonly type: 'notify';
  readonly messages: readonly SpoeMessage[];
}
/** An ACK: the actions answering one NOTIFY. */
export interface AckFrame extends FrameHeader {
  readonly type: 'ack';
  readonly actions: readonly Action[];
}
/**
 * A frame whose payload is kept as bytes: a fragment (a NOTIFY without FIN,
 * or an UNSET continuation frame of HAProxy 2.6) or an unknown type id.
 */
export interface RawFrame extends FrameHeader {
  readonly type: 'raw';
  /** The frame type byte. */
  readonly typeId: number;
  readonly payload: Uint8Array;
}

/** Any frame, as `encodeFrame` takes it and `decodeFrame` returns it. */
export type Frame = HelloFrame | DisconnectFrame | NotifyFrame | AckFrame | RawFrame;
/** The `type` of a decoded frame other than a raw one. */
export type FrameTypeName = Exclude<Frame['type'], 'raw'>;

/** The type byte of each frame type name. */
export const frameTypeIds: Readonly<Record<FrameTypeName, number>> = {
  'haproxy-hello': FrameType.HAPROXY_HELLO,
  'haproxy-disconnect': FrameType.HAPROXY_DISCONNECT,
  notify: FrameType.NOTIFY,
  'agent-hello': FrameType.AGENT_HELLO,
  'agent-disconnect': FrameType.AGENT_DISCONNECT,
  ack: FrameType.ACK,
};
