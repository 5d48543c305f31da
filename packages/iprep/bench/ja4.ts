/**
 * Cost of TLS fingerprints on the hot path: computing JA4 + JA3 from a Chrome-like ClientHello
 * (two SHA-256, one MD5 and the strings they hash), a fingerprint cache hit, and the reputation
 * handler answering a message with and without the ClientHello arguments (one deny list of
 * fingerprints loaded).
 *
 *   node --import tsx packages/iprep/bench/ja4.ts [--messages 500000]
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Message, type MessageArg } from 'spop';
import { defaultConfig } from '../src/config/index.js';
import { DecisionIndex } from '../src/decisions/index.js';
import { ReputationEngine, reputationHandler } from '../src/engine/index.js';
import { FingerprintCache, TlsScorer, computeJa3, computeJa4, emptyHello, parseFingerprintList } from '../src/ja4/index.js';
import { parseAddress } from '../src/net/address.js';
import { IntervalTable } from '../src/table/index.js';

const { values: args } = parseArgs({ options: { messages: { type: 'string', default: '500000' } } });
const count = Number(args.messages);

const hex = (values: string): Uint8Array => Buffer.from(values.replaceAll(',', ''), 'hex');
// Chrome 143's ClientHello pieces (GREASE included, as ssl_fc_*_bin(0) gives them).
const pieces = {
  tls_version: 0x0303,
  tls_ciphers: hex('3a3a,1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035'),
  tls_extensions: hex('0a0a,002d,0033,0010,fe0d,0017,44cd,0000,000b,000a,002b,ff01,0023,0012,0005,000d,001b,fafa'),
  tls_groups: hex('8a8a,11ec,001d,0017,0018'),
  tls_point_formats: Uint8Array.of(0),
  tls_sigalgs: hex('0403,0804,0401,0503,0805,0501,0806,0601'),
  tls_versions: hex('9a9a,0304,0303'),
  tls_alpn: Buffer.from('h2'),
};
const fields = {
  ...emptyHello(),
  helloVersion: pieces.tls_version,
  ciphers: pieces.tls_ciphers,
  extensions: pieces.tls_extensions,
  groups: pieces.tls_groups,
  pointFormats: pieces.tls_point_formats,
  sigalgs: pieces.tls_sigalgs,
  supportedVersions: pieces.tls_versions,
  alpn: pieces.tls_alpn,
};

function measure(name: string, n: number, run: (i: number) => unknown): void {
  for (let i = 0; i < Math.min(n, 10_000); i++) run(i); // warm-up
  const started = performance.now();
  for (let i = 0; i < n; i++) run(i);
  const ns = ((performance.now() - started) * 1e6) / n;
  console.log(`${name.padEnd(48)} ${ns.toFixed(0).padStart(6)} ns/op  ${(1e9 / ns / 1000).toFixed(0).padStart(6)} k ops/s`);
}

measure('JA4 + JA3 computed (no cache)', Math.min(count, 100_000), () => {
  computeJa4(fields);
  computeJa3(fields);
});
const cache = new FingerprintCache();
measure('fingerprint cache hit', count, () => cache.get(fields));

const config = defaultConfig();
const engine = new ReputationEngine({ thresholds: config.thresholds, special: { ...config.special, enabled: false } }, { decisions: new DecisionIndex() });
engine.setAllowlist({ ranges: [], table: IntervalTable.empty() });
const tls = new TlsScorer(config.tls, 'sess');
const ja4 = computeJa4(fields) as string;
const list = parseFingerprintList(`t13d1516h2_8daaf6152771_e5627efa2ab1\n${'t13d0000h2_000000000000_000000000000\n'.repeat(1)}`, 'bench', 10);
tls.setLists([{ config: { name: 'tools', path: 'bench', category: 'tool', score: 0, action: 'deny', maxBytes: 1e6, maxEntries: 10 }, ...list, loadedAt: 0 }]);
const handler = reputationHandler({ engine, variables: config.variables, tls, now: () => 1_800_000_000_000 });
const address = parseAddress('198.51.100.7') as Uint8Array;
const ipArg: MessageArg = { name: 'ip', value: { type: 'ipv4', value: '198.51.100.7', bytes: address } };
const tlsArgs: MessageArg[] = Object.entries(pieces).map(([name, value]) =>
  typeof value === 'number' ? { name, value: { type: 'int32', value } } : { name, value: { type: 'bin', value } },
);
const plain = new Message('check-client-ip', [ipArg]);
const withHello = new Message('check-client-ip', [ipArg, ...tlsArgs]);
const withoutTls = reputationHandler({ engine, variables: config.variables, now: () => 1_800_000_000_000 });
measure('handler without fingerprinting, address only', count, () => withoutTls(plain, undefined as never));
measure('handler, address only', count, () => handler(plain, undefined as never));
measure('handler, address + ClientHello (cache hit)', count, () => handler(withHello, undefined as never));
console.log(`ja4 ${ja4}; cache ${JSON.stringify(tls.cache)}`);
