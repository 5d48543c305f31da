/**
 * Named wire vectors, mqtt-packet style: `{ name, hex, frame }`, where `hex`
 * is the whole frame on the wire (length prefix included) and `frame` the
 * object form the decoder returns and the encoder takes.
 *
 * Every frame of docs/protocol.md §11 is here, verbatim (that section is
 * authoritative: each vector was cross-checked against HAProxy itself; a test
 * checks that none is missing). The
 * extra vectors (typed data of every kind in a SET-VAR for every scope, raw
 * frames, 64-bit ids) were computed by hand with the algorithm of docs/protocol.md §3.1 and an
 * independent encoder, never with the code under test.
 */
import { type Action, type Frame, type KvEntry, type TypedData, type VarScope, FrameFlags } from '../src/codec/index.js';
import { fromHex, toHex } from './helpers.js';

export interface Vector {
  readonly name: string;
  readonly hex: string;
  readonly frame: Frame;
}

// ---------------------------------------------------------------------------
// Object-form builders

/** Typed-data constructors. */
export const T = {
  null: { type: 'null' },
  bool: (value: boolean) => ({ type: 'bool', value }),
  int32: (value: number) => ({ type: 'int32', value }),
  uint32: (value: number) => ({ type: 'uint32', value }),
  int64: (value: number | bigint) => ({ type: 'int64', value }),
  uint64: (value: number | bigint) => ({ type: 'uint64', value }),
  ipv4: (value: string) => ({ type: 'ipv4', value }),
  ipv6: (value: string) => ({ type: 'ipv6', value }),
  str: (value: string) => ({ type: 'str', value }),
  bin: (hex: string) => ({ type: 'bin', value: fromHex(hex) }),
} as const satisfies Record<string, TypedData | ((v: never) => TypedData)>;

const FIN = FrameFlags.FIN;

const kvFrame = (type: 'haproxy-hello' | 'agent-hello' | 'haproxy-disconnect' | 'agent-disconnect', kv: KvEntry[]): Frame => ({
  type,
  flags: FIN,
  streamId: 0,
  frameId: 0,
  kv,
});

/** A message; each argument is a [name, value] pair ('' = unnamed). */
const msg = (name: string, ...args: [string, TypedData][]) => ({
  name,
  args: args.map(([n, value]) => ({ name: n, value })),
});

const notify = (streamId: number, frameId: number, ...messages: ReturnType<typeof msg>[]): Frame => ({
  type: 'notify',
  flags: FIN,
  streamId,
  frameId,
  messages,
});

const ack = (streamId: number | bigint, frameId: number | bigint, ...actions: Action[]): Frame => ({
  type: 'ack',
  flags: FIN,
  streamId,
  frameId,
  actions,
});

const setVar = (scope: VarScope, name: string, value: TypedData): Action => ({ type: 'set-var', scope, name, value });
const unsetVar = (scope: VarScope, name: string): Action => ({ type: 'unset-var', scope, name });

const disconnect = (type: 'haproxy-disconnect' | 'agent-disconnect', status: number, message: string): Frame =>
  kvFrame(type, [
    ['status-code', T.uint32(status)],
    ['message', T.str(message)],
  ]);

// The HELLO key/value pairs, as HAProxy writes them.
const versions: KvEntry = ['supported-versions', T.str('2.0')];
const version: KvEntry = ['version', T.str('2.0')];
const maxFrameSize = (n: number): KvEntry => ['max-frame-size', T.uint32(n)];
const capabilities = (list: string): KvEntry => ['capabilities', T.str(list)];
const engineId: KvEntry = ['engine-id', T.str('c0f397ef-7909-40f6-a287-2e2f29cd5288')];

// ---------------------------------------------------------------------------
// docs/protocol.md §11, verbatim

export const referenceVectors: readonly Vector[] = [
  // 11.1 (also the first vector of 11.4)
  {
    name: '11.1 seed NOTIFY check-client-ip, unnamed IPv4 arg, sid 20 fid 1',
    hex: '0000001e030000000114010f636865636b2d636c69656e742d69700100067f000001',
    frame: notify(20, 1, msg('check-client-ip', ['', T.ipv4('127.0.0.1')])),
  },
  // 11.2
  {
    name: '11.2 HAPROXY-HELLO from 2.6 (pipelining,async)',
    hex: '000000810100000001000012737570706f727465642d76657273696f6e730803322e300e6d61782d6672616d652d73697a6503fcf0060c6361706162696c69746965730810706970656c696e696e672c6173796e6309656e67696e652d6964082463306633393765662d373930392d343066362d613238372d326532663239636435323838',
    frame: kvFrame('haproxy-hello', [versions, maxFrameSize(16380), capabilities('pipelining,async'), engineId]),
  },
  {
    name: '11.2 HAPROXY-HELLO from 3.x (pipelining)',
    hex: '0000007b0100000001000012737570706f727465642d76657273696f6e730803322e300e6d61782d6672616d652d73697a6503fcf0060c6361706162696c6974696573080a706970656c696e696e6709656e67696e652d6964082463306633393765662d373930392d343066362d613238372d326532663239636435323838',
    frame: kvFrame('haproxy-hello', [versions, maxFrameSize(16380), capabilities('pipelining'), engineId]),
  },
  {
    name: '11.2 HAPROXY-HELLO health check (empty capabilities, healthcheck BOOL true)',
    hex: '0000004e0100000001000012737570706f727465642d76657273696f6e730803322e300e6d61782d6672616d652d73697a6503fcf0060c6361706162696c697469657308000b6865616c7468636865636b11',
    frame: kvFrame('haproxy-hello', [versions, maxFrameSize(16380), capabilities(''), ['healthcheck', T.bool(true)]]),
  },
  // 11.3
  {
    name: '11.3 AGENT-HELLO minimal (no capabilities)',
    hex: '00000036650000000100000776657273696f6e0803322e300e6d61782d6672616d652d73697a6503fcf0060c6361706162696c69746965730800',
    frame: kvFrame('agent-hello', [version, maxFrameSize(16380), capabilities('')]),
  },
  {
    name: '11.3 AGENT-HELLO announcing pipelining',
    hex: '00000040650000000100000776657273696f6e0803322e300e6d61782d6672616d652d73697a6503fcf0060c6361706162696c6974696573080a706970656c696e696e67',
    frame: kvFrame('agent-hello', [version, maxFrameSize(16380), capabilities('pipelining')]),
  },
  {
    name: '11.3 AGENT-HELLO pipelining with max-frame-size 1024',
    hex: '0000003f650000000100000776657273696f6e0803322e300e6d61782d6672616d652d73697a6503f0310c6361706162696c6974696573080a706970656c696e696e67',
    frame: kvFrame('agent-hello', [version, maxFrameSize(1024), capabilities('pipelining')]),
  },
  // 11.4
  {
    name: '11.4 NOTIFY named arg ip=192.168.1.10, 3.x ids sid 1 fid 1',
    hex: '00000020030000000101010f636865636b2d636c69656e742d69700102697006c0a8010a',
    frame: notify(1, 1, msg('check-client-ip', ['ip', T.ipv4('192.168.1.10')])),
  },
  {
    name: '11.4 NOTIFY IPv6 2001:db8::1, sid 3',
    hex: '0000002c030000000103010f636865636b2d636c69656e742d6970010269700720010db8000000000000000000000001',
    frame: notify(3, 1, msg('check-client-ip', ['ip', T.ipv6('2001:db8::1')])),
  },
  {
    name: '11.4 NOTIFY two messages (str, int64, bool false, null)',
    hex: '00000048030000000114010f636865636b2d636c69656e742d69700100067f0000010b6c6f672d7265717565737404066d6574686f64080347455404706f727404f0ea0203746c7301017800',
    frame: notify(
      20,
      1,
      msg('check-client-ip', ['', T.ipv4('127.0.0.1')]),
      msg('log-request', ['method', T.str('GET')], ['port', T.int64(8080)], ['tls', T.bool(false)], ['x', T.null]),
    ),
  },
  {
    name: '11.4 NOTIFY real 2.6.12 capture, first stream (sid 0), ip + mode',
    hex: '0000002e030000000100010f636865636b2d636c69656e742d697002026970067f000001046d6f646508072f6e6f726d616c',
    frame: notify(0, 1, msg('check-client-ip', ['ip', T.ipv4('127.0.0.1')], ['mode', T.str('/normal')])),
  },
  {
    name: '11.4 NOTIFY real 2.6.12 capture, response event (fid 2, status INT64 200)',
    hex: '000000280300000001000208726573702d6d736702046d6f646508072f6e6f726d616c0673746174757304c8',
    frame: notify(0, 2, msg('resp-msg', ['mode', T.str('/normal')], ['status', T.int64(200)])),
  },
  {
    name: '11.4 NOTIFY same request captured from 3.2.0/HEAD (sid 1 fid 1)',
    hex: '0000002e030000000101010f636865636b2d636c69656e742d697002026970067f000001046d6f646508072f6e6f726d616c',
    frame: notify(1, 1, msg('check-client-ip', ['ip', T.ipv4('127.0.0.1')], ['mode', T.str('/normal')])),
  },
  // 11.5
  {
    name: '11.5 ACK sess.ip_score = UINT32 42',
    hex: '00000015670000000114010103010869705f73636f7265032a',
    frame: ack(20, 1, setVar('sess', 'ip_score', T.uint32(42))),
  },
  {
    name: '11.5 ACK txn.ip_score = INT64 42',
    hex: '00000015670000000114010103020869705f73636f7265042a',
    frame: ack(20, 1, setVar('txn', 'ip_score', T.int64(42))),
  },
  {
    name: '11.5 ACK txn.delta = INT64 -1 (10-byte varint)',
    hex: '0000001b670000000114010103020564656c746104fff0fefefefefefefe0e',
    frame: ack(20, 1, setVar('txn', 'delta', T.int64(-1))),
  },
  {
    name: '11.5 ACK UNSET-VAR txn.ip_score',
    hex: '00000013670000000114010202020869705f73636f7265',
    frame: ack(20, 1, unsetVar('txn', 'ip_score')),
  },
  {
    name: '11.5 empty ACK',
    hex: '0000000767000000011401',
    frame: ack(20, 1),
  },
  {
    name: '11.5 real ACK from issue #2490 (sid 249011, txn.allowed = true)',
    hex: '000000156700000001f3bc780101030207616c6c6f77656411',
    frame: ack(249011, 1, setVar('txn', 'allowed', T.bool(true))),
  },
  // 11.6
  {
    name: '11.6 HAPROXY-DISCONNECT status 0 normal',
    hex: '00000025020000000100000b7374617475732d636f64650300076d65737361676508066e6f726d616c',
    frame: disconnect('haproxy-disconnect', 0, 'normal'),
  },
  {
    name: '11.6 HAPROXY-DISCONNECT status 2 a timeout occurred',
    hex: '00000031020000000100000b7374617475732d636f64650302076d6573736167650812612074696d656f7574206f63637572726564',
    frame: disconnect('haproxy-disconnect', 2, 'a timeout occurred'),
  },
  {
    name: '11.6 AGENT-DISCONNECT status 0 normal',
    hex: '00000025660000000100000b7374617475732d636f64650300076d65737361676508066e6f726d616c',
    frame: disconnect('agent-disconnect', 0, 'normal'),
  },
  {
    name: '11.6 AGENT-DISCONNECT status 4 invalid frame received',
    hex: '00000035660000000100000b7374617475732d636f64650304076d6573736167650816696e76616c6964206672616d65207265636569766564',
    frame: disconnect('agent-disconnect', 4, 'invalid frame received'),
  },
  {
    name: '11.6 live HAPROXY-DISCONNECT status 8 unsupported version',
    hex: '00000032020000000100000b7374617475732d636f64650308076d6573736167650813756e737570706f727465642076657273696f6e',
    frame: disconnect('haproxy-disconnect', 8, 'unsupported version'),
  },
  {
    name: '11.6 live HAPROXY-DISCONNECT status 3 frame is too big',
    hex: '0000002f020000000100000b7374617475732d636f64650303076d65737361676508106672616d6520697320746f6f20626967',
    frame: disconnect('haproxy-disconnect', 3, 'frame is too big'),
  },
  {
    name: '11.6 live HAPROXY-DISCONNECT status 5 version value not found',
    hex: '00000036020000000100000b7374617475732d636f64650305076d657373616765081776657273696f6e2076616c7565206e6f7420666f756e64',
    frame: disconnect('haproxy-disconnect', 5, 'version value not found'),
  },
];

// ---------------------------------------------------------------------------
// Extra vectors

/** Prepends the 4-byte big-endian LENGTH to a hand-written frame body. */
export function withLength(bodyHex: string): string {
  const body = fromHex(bodyHex);
  return body.length.toString(16).padStart(8, '0') + toHex(body);
}

/**
 * One typed value of every kind and edge, with its hand-computed wire form
 * (type byte + value). Values are in the decoder's canonical form: safe
 * integers as numbers, the rest as bigints.
 */
export const typedDataVectors: readonly { readonly kind: string; readonly hex: string; readonly value: TypedData }[] = [
  { kind: 'null (unsets)', hex: '00', value: T.null },
  { kind: 'bool true', hex: '11', value: T.bool(true) },
  { kind: 'bool false', hex: '01', value: T.bool(false) },
  { kind: 'int32 0', hex: '02 00', value: T.int32(0) },
  { kind: 'int32 -5', hex: '02 fb f0 fe fe fe fe fe fe fe 0e', value: T.int32(-5) },
  { kind: 'int32 min', hex: '02 f0 f1 fe fe be fe fe fe fe 0e', value: T.int32(-0x8000_0000) },
  { kind: 'int32 max', hex: '02 ff f0 fe fe 3e', value: T.int32(0x7fff_ffff) },
  { kind: 'uint32 max', hex: '03 ff f0 fe fe 7e', value: T.uint32(0xffff_ffff) },
  { kind: 'int64 2^53-1 (number)', hex: '04 ff f0 fe fe fe fe fe 7e', value: T.int64(Number.MAX_SAFE_INTEGER) },
  { kind: 'int64 2^53 (bigint)', hex: '04 f0 f1 fe fe fe fe fe 7e', value: T.int64(2n ** 53n) },
  { kind: 'int64 -(2^53-1) (number)', hex: '04 f1 f1 fe fe fe fe fe fe fd 0e', value: T.int64(Number.MIN_SAFE_INTEGER) },
  { kind: 'int64 max', hex: '04 ff f0 fe fe fe fe fe fe fe 06', value: T.int64(2n ** 63n - 1n) },
  { kind: 'int64 min', hex: '04 f0 f1 fe fe fe fe fe fe fe 06', value: T.int64(-(2n ** 63n)) },
  { kind: 'uint64 2^64-1 (bigint)', hex: '05 ff f0 fe fe fe fe fe fe fe 0e', value: T.uint64(2n ** 64n - 1n) },
  { kind: 'uint64 2^63 (bigint)', hex: '05 f0 f1 fe fe fe fe fe fe fe 06', value: T.uint64(2n ** 63n) },
  { kind: 'ipv4', hex: '06 c0 a8 01 0a', value: T.ipv4('192.168.1.10') },
  { kind: 'ipv6', hex: '07 2001 0db8 0000 0000 0001 0000 0000 0001', value: T.ipv6('2001:db8::1:0:0:1') },
  { kind: 'ipv6 IPv4-mapped', hex: '07 0000 0000 0000 0000 0000 ffff 0102 0304', value: T.ipv6('::ffff:1.2.3.4') },
  { kind: 'ipv6 ::', hex: '07 00000000000000000000000000000000', value: T.ipv6('::') },
  { kind: 'str', hex: '08 03 474554', value: T.str('GET') },
  { kind: 'str UTF-8', hex: '08 0a 68 c3 a9 6c 6c 6f f0 9f 98 80', value: T.str('héllo😀') },
  { kind: 'empty str', hex: '08 00', value: T.str('') },
  { kind: 'bin', hex: '09 04 00 ff 80 7f', value: T.bin('00ff807f') },
  { kind: 'empty bin', hex: '09 00', value: T.bin('') },
  { kind: 'bin of 240 bytes (2-byte length)', hex: `09 f0 00 ${'ab'.repeat(240)}`, value: T.bin('ab'.repeat(240)) },
];

export const scopes: readonly { readonly scope: VarScope; readonly byte: string }[] = [
  { scope: 'proc', byte: '00' },
  { scope: 'sess', byte: '01' },
  { scope: 'txn', byte: '02' },
  { scope: 'req', byte: '03' },
  { scope: 'res', byte: '04' },
];

/** Every typed-data kind in a SET-VAR `<scope>.v`, for every scope: ACK sid 1 fid 9. */
const setVarVectors: Vector[] = typedDataVectors.flatMap(({ kind, hex, value }) =>
  scopes.map(({ scope, byte }) => ({
    name: `ACK set-var ${scope}.v = ${kind}`,
    // ACK, FIN, sid 1, fid 9 | SET-VAR, 3 args, scope, name "v", value
    hex: withLength(`67 00000001 01 09  01 03 ${byte} 01 76 ${hex}`),
    frame: ack(1, 9, setVar(scope, 'v', value)),
  })),
);

const otherVectors: Vector[] = [
  {
    name: 'ACK with three actions (set, unset, set) applied in order',
    hex: withLength('67 00000001 05 02  01 03 03 01 61 08 01 78  02 02 04 01 62  01 03 00 01 63 00'),
    frame: ack(5, 2, setVar('req', 'a', T.str('x')), unsetVar('res', 'b'), setVar('proc', 'c', T.null)),
  },
  {
    name: 'ACK with 64-bit ids (sid 2^64-1, fid 2^53)',
    hex: withLength('67 00000001 ff f0 fe fe fe fe fe fe fe 0e  f0 f1 fe fe fe fe fe 7e'),
    frame: ack(2n ** 64n - 1n, 2n ** 53n),
  },
  {
    name: 'NOTIFY with a message of no arguments and a 255-byte name',
    hex: withLength(`03 00000001 f0 00 ef  ff 00 ${'6e'.repeat(255)} 00`),
    frame: notify(240, 239, msg('n'.repeat(255))),
  },
  {
    name: 'pre-c4dcaff3f seed (flags little-endian: no FIN) is kept raw',
    hex: '0000001e030100000000010f636865636b2d636c69656e742d69700100067f000001',
    frame: {
      type: 'raw',
      typeId: 3,
      flags: 0x0100_0000,
      streamId: 0,
      frameId: 1,
      payload: fromHex('0f636865636b2d636c69656e742d69700100067f000001'),
    },
  },
  {
    name: '2.6 UNSET frame with FIN|ABORT and no payload (aborted fragmentation)',
    hex: withLength('00 00000003 14 02'),
    frame: { type: 'raw', typeId: 0, flags: 3, streamId: 20, frameId: 2, payload: fromHex('') },
  },
  {
    name: 'unknown frame type 200 is kept raw',
    hex: withLength('c8 00000001 01 01 de ad be ef'),
    frame: { type: 'raw', typeId: 200, flags: 1, streamId: 1, frameId: 1, payload: fromHex('deadbeef') },
  },
  {
    name: 'HAPROXY-HELLO with reserved flag bits set is still a HELLO',
    hex: withLength('01 80000001 00 00  07 76657273696f6e 08 03 322e30'),
    frame: { type: 'haproxy-hello', flags: 0x8000_0001, streamId: 0, frameId: 0, kv: [version] },
  },
];

export const extraVectors: readonly Vector[] = [...setVarVectors, ...otherVectors];

/** Everything: the reference vectors first, then the extra ones. */
export const vectors: readonly Vector[] = [...referenceVectors, ...extraVectors];

// ---------------------------------------------------------------------------
// Varints (docs/protocol.md §3.4)

/** The §3.4 table: value and encoding. Values above 2^53-1 are bigints. */
export const varintVectors: readonly { readonly value: number | bigint; readonly hex: string }[] = [
  { value: 0, hex: '00' },
  { value: 1, hex: '01' },
  { value: 127, hex: '7f' },
  { value: 128, hex: '80' },
  { value: 239, hex: 'ef' },
  { value: 240, hex: 'f000' },
  { value: 255, hex: 'ff00' },
  { value: 256, hex: 'f001' },
  { value: 1000, hex: 'f82f' },
  { value: 1024, hex: 'f031' },
  { value: 2287, hex: 'ff7f' },
  { value: 2288, hex: 'f08000' },
  { value: 8080, hex: 'f0ea02' },
  { value: 16380, hex: 'fcf006' },
  { value: 65535, hex: 'fff01e' },
  { value: 249011, hex: 'f3bc78' },
  { value: 264431, hex: 'ffff7f' },
  { value: 264432, hex: 'f0808000' },
  { value: 33818864, hex: 'f080808000' },
  { value: 4294967295, hex: 'fff0fefe7e' },
  { value: 9007199254740991, hex: 'fff0fefefefefe7e' },
  { value: 9223372036854775807n, hex: 'fff0fefefefefefefe06' },
  { value: 9223372036854775808n, hex: 'f0f1fefefefefefefe06' },
  { value: 18446744073709551615n, hex: 'fff0fefefefefefefe0e' },
];

/** The negative rows of §3.4, as INT64 typed data (type byte 04 + varint). */
export const int64Vectors: readonly { readonly value: number; readonly hex: string }[] = [
  { value: -1, hex: '04fff0fefefefefefefe0e' },
  { value: -2, hex: '04fef0fefefefefefefe0e' },
  { value: -5, hex: '04fbf0fefefefefefefe0e' },
  { value: -100, hex: '04fceafefefefefefefe0e' },
];

/** §3.3: the smallest and largest value of each encoded size. */
export const varintRanges: readonly { readonly bytes: number; readonly min: bigint; readonly max: bigint }[] = [
  { bytes: 1, min: 0n, max: 239n },
  { bytes: 2, min: 240n, max: 2287n },
  { bytes: 3, min: 2288n, max: 264431n },
  { bytes: 4, min: 264432n, max: 33818863n },
  { bytes: 5, min: 33818864n, max: 4328786159n },
  { bytes: 6, min: 4328786160n, max: 554084600047n },
  { bytes: 7, min: 554084600048n, max: 70922828777711n },
  { bytes: 8, min: 70922828777712n, max: 9078122083518703n },
  { bytes: 9, min: 9078122083518704n, max: 1161999626690365679n },
  { bytes: 10, min: 1161999626690365680n, max: 18446744073709551615n },
];

// ---------------------------------------------------------------------------
// Malformed frame bodies (no length prefix): decodeFrame must throw SpopError 4.

export const invalidBodies: readonly { readonly name: string; readonly hex: string }[] = [
  { name: 'empty body', hex: '' },
  { name: 'six bytes (below the 7-byte minimum)', hex: '67 00000001 01' },
  { name: 'truncated stream-id varint', hex: '67 00000001 f0 ea' },
  { name: 'truncated frame-id varint', hex: '67 00000001 01 f0 ea' },
  { name: 'stream-id varint of 11 bytes', hex: '67 00000001 f0 80 80 80 80 80 80 80 80 80 00 01' },
  { name: 'KV list with an empty key', hex: '65 00000001 00 00  00 08 00' },
  { name: 'KV key longer than the frame', hex: '65 00000001 00 00  07 7665727369' },
  { name: 'KV key without a value', hex: '65 00000001 00 00  07 76657273696f6e' },
  { name: 'unknown data type 10', hex: '65 00000001 00 00  01 6b 0a' },
  { name: 'unknown data type 15 with flag bits', hex: '65 00000001 00 00  01 6b ff' },
  { name: 'STR length past the end', hex: '65 00000001 00 00  01 6b 08 05 6162' },
  { name: 'BIN length past the end', hex: '65 00000001 00 00  01 6b 09 f0 00 00' },
  { name: 'truncated IPV4', hex: '03 00000001 01 01  01 6d 01 00 06 7f0000' },
  { name: 'truncated IPV6', hex: '03 00000001 01 01  01 6d 01 00 07 20010db8' },
  { name: 'truncated INT64 varint', hex: '03 00000001 01 01  01 6d 01 00 04 ff f0' },
  { name: 'INT32 above 2^31-1 (2^31)', hex: '67 00000001 01 01  01 03 02 01 76 02 f0 f1 fe fe 3e' },
  { name: 'INT32 below -2^31 (-2^31-1)', hex: '67 00000001 01 01  01 03 02 01 76 02 ff f0 fe fe be fe fe fe fe 0e' },
  { name: 'UINT32 wider than 32 bits (2^32)', hex: '67 00000001 01 01  01 03 02 01 76 03 f0 f1 fe fe 7e' },
  { name: 'UINT32 of 2^64-1', hex: '67 00000001 01 01  01 03 02 01 76 03 ff f0 fe fe fe fe fe fe fe 0e' },
  { name: 'NOTIFY with more arguments announced than present', hex: '03 00000001 01 01  01 6d 02 00 11' },
  { name: 'NOTIFY message name without nb-args', hex: '03 00000001 01 01  01 6d' },
  { name: 'ACK action type 0 (3.x internal no-op)', hex: '67 00000001 01 01  00 00' },
  { name: 'ACK unknown action type 3', hex: '67 00000001 01 01  03 02 02 01 76' },
  { name: 'ACK SET-VAR with 2 arguments', hex: '67 00000001 01 01  01 02 02 01 76' },
  { name: 'ACK UNSET-VAR with 3 arguments', hex: '67 00000001 01 01  02 03 02 01 76 00' },
  { name: 'ACK scope 5', hex: '67 00000001 01 01  02 02 05 01 76' },
  { name: 'ACK scope 255', hex: '67 00000001 01 01  01 03 ff 01 76 00' },
  { name: 'ACK action without nb-args', hex: '67 00000001 01 01  01' },
  { name: 'ACK SET-VAR without a value', hex: '67 00000001 01 01  01 03 02 01 76' },
];
