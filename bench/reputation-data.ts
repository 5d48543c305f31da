/**
 * The reputation benchmarks' data (bench/reputation.ts over sockets, bench/hot-path.ts in-process):
 * a generated deny list of `prefixes` prefixes (70% IPv4 /16../24, 30% IPv6 /32../48), 10,000
 * scored addresses (CSV), a 1,000-address allowlist, and the configuration that loads them with
 * behaviour on, written into `dir`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ReputationDataOptions {
  readonly prefixes: number;
  readonly maxClients: number;
  /** A 32-bit unsigned random integer (seeded for repeatable runs, or from Math.random). */
  readonly random32: () => number;
}

/** Writes the lists and `iprep.yaml` into `dir`; returns the configuration's path. */
export function writeReputationData(dir: string, options: ReputationDataOptions): string {
  const { random32 } = options;
  const byte = (): number => random32() & 255;
  const hex = (): string => (random32() & 0xffff).toString(16);
  const lines = (n: number, line: (i: number) => string): string => `${Array.from({ length: n }, (_, i) => line(i)).join('\n')}\n`;
  writeFileSync(
    join(dir, 'deny.netset'),
    lines(options.prefixes, (i) =>
      i % 10 < 7 ? `${byte()}.${byte()}.${byte()}.0/${16 + (i % 9)}` : `2${hex().slice(1)}:${hex()}:${hex()}::/${32 + (i % 17)}`,
    ),
  );
  writeFileSync(
    join(dir, 'scored.csv'),
    lines(10_000, () => `${byte()}.${byte()}.${byte()}.${byte()},${random32() % 101}`),
  );
  writeFileSync(
    join(dir, 'allow.netset'),
    lines(1_000, () => `${byte()}.${byte()}.${byte()}.${byte()}`),
  );
  const config = join(dir, 'iprep.yaml');
  writeFileSync(
    config,
    `mode: reputation
allowlist: [{ file: allow.netset }]
lists:
  - { name: deny, path: deny.netset, score: 0, category: attacker, action: deny }
  - { name: scored, format: csv, path: scored.csv, category: partner }
behaviour: { enabled: true, max-clients: ${options.maxClients} }
admin: { enabled: false }
`,
  );
  return config;
}
