/**
 * TLS ClientHellos for the JA4 tests: a parser of the record on the wire, JA4 and JA3 computed from
 * it with strings only, written from the specifications independently of packages/iprep/src/ja4
 * (FoxIO's JA4, technical_details/JA4.md; Salesforce's JA3), and a capture of what a client sends.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';

export interface WireHello {
  readonly version: number;
  readonly ciphers: number[];
  readonly extensions: { type: number; data: Buffer }[];
}

export function parseClientHello(record: Buffer): WireHello {
  assert.equal(record[0], 22, 'a handshake record');
  const body = record.subarray(5, 5 + record.readUInt16BE(3));
  assert.equal(body[0], 1, 'a ClientHello');
  let at = 4;
  const version = body.readUInt16BE(at);
  at += 2 + 32;
  at += 1 + (body[at] as number);
  const cipherBytes = body.readUInt16BE(at);
  const ciphers: number[] = [];
  for (let i = 0; i < cipherBytes; i += 2) ciphers.push(body.readUInt16BE(at + 2 + i));
  at += 2 + cipherBytes;
  at += 1 + (body[at] as number);
  const end = at + 2 + body.readUInt16BE(at);
  at += 2;
  const extensions: { type: number; data: Buffer }[] = [];
  while (at < end) {
    const type = body.readUInt16BE(at);
    const length = body.readUInt16BE(at + 2);
    extensions.push({ type, data: body.subarray(at + 4, at + 4 + length) });
    at += 4 + length;
  }
  return { version, ciphers, extensions };
}

const greaseHex = /^([0-9a-f])a\1a$/;
const hex = (v: number): string => v.toString(16).padStart(4, '0');
const u16List = (data: Buffer, from: number): number[] => {
  const out: number[] = [];
  for (let i = from; i + 1 < data.length; i += 2) out.push(data.readUInt16BE(i));
  return out;
};

export function wireJa4(h: WireHello): string {
  const ciphers = h.ciphers.map(hex).filter((x) => !greaseHex.test(x));
  const exts = h.extensions.map((e) => hex(e.type)).filter((x) => !greaseHex.test(x));
  const versionsExt = h.extensions.find((e) => e.type === 0x2b);
  let version = h.version;
  if (versionsExt && versionsExt.data.length > 1) version = Math.max(...u16List(versionsExt.data, 1).filter((v) => !greaseHex.test(hex(v))));
  const versionText = { '0304': '13', '0303': '12', '0302': '11', '0301': '10' }[hex(version)] ?? '00';
  const alpnExt = h.extensions.find((e) => e.type === 0x10);
  let alpn = '00';
  if (alpnExt) {
    const first = alpnExt.data.subarray(3, 3 + (alpnExt.data[2] as number)).toString('latin1');
    alpn = `${first[0]}${first[first.length - 1]}`;
  }
  const sigalgsExt = h.extensions.find((e) => e.type === 0x0d);
  const sigalgs = sigalgsExt
    ? u16List(sigalgsExt.data, 2)
        .map(hex)
        .filter((x) => !greaseHex.test(x))
    : [];
  const sha = (s: string): string => (s ? createHash('sha256').update(s).digest('hex').slice(0, 12) : '000000000000');
  const a = `t${versionText}${exts.includes('0000') ? 'd' : 'i'}${String(Math.min(ciphers.length, 99)).padStart(2, '0')}${String(Math.min(exts.length, 99)).padStart(2, '0')}${alpn}`;
  const sortedExts = exts.filter((x) => x !== '0000' && x !== '0010').sort();
  const c = sigalgs.length ? `${sortedExts.join(',')}_${sigalgs.join(',')}` : sortedExts.join(',');
  return `${a}_${sha([...ciphers].sort().join(','))}_${sha(c)}`;
}

export function wireJa3(h: WireHello): string {
  const keep = (v: number): boolean => !greaseHex.test(hex(v));
  const groupsExt = h.extensions.find((e) => e.type === 0x0a);
  const formatsExt = h.extensions.find((e) => e.type === 0x0b);
  const text = [
    h.version,
    h.ciphers.filter(keep).join('-'),
    h.extensions
      .map((e) => e.type)
      .filter(keep)
      .join('-'),
    groupsExt ? u16List(groupsExt.data, 2).filter(keep).join('-') : '',
    formatsExt ? [...formatsExt.data.subarray(1)].join('-') : '',
  ].join(',');
  return createHash('md5').update(text).digest('hex');
}

/**
 * The first TLS record a client sends to a TCP server on 127.0.0.1 (its ClientHello), after which
 * the connection is closed. `connect` starts the client against the port; it is then on its own
 * (it fails its handshake and exits).
 */
export async function captureClientHello(connect: (port: number) => void, timeoutMs = 10_000): Promise<Buffer> {
  const server = net.createServer();
  try {
    const captured = new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ClientHello within ${timeoutMs} ms`)), timeoutMs);
      server.on('connection', (socket) => {
        let received = Buffer.alloc(0);
        socket.on('error', () => {});
        socket.on('data', (chunk: Buffer) => {
          received = Buffer.concat([received, chunk]);
          if (received.length >= 5 && received.length >= 5 + received.readUInt16BE(3)) {
            clearTimeout(timer);
            socket.destroy();
            resolve(received.subarray(0, 5 + received.readUInt16BE(3)));
          }
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    connect((server.address() as net.AddressInfo).port);
    return await captured;
  } finally {
    server.close();
  }
}
