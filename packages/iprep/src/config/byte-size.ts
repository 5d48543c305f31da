/** Sizes as the configuration writes them: `64MiB`, `512KiB`, `1GB`, or a number of bytes. */

const UNIT_BYTES: Readonly<Record<string, number>> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, KIB: 2 ** 10, MIB: 2 ** 20, GIB: 2 ** 30 };

export const BYTE_SIZE_HINT = 'use e.g. 512KiB, 64MiB, 1GiB, 10MB, or a number of bytes';

/** Bytes of a size (an integer >= 0, or an amount with a unit B, KB, MB, GB, KiB, MiB, GiB); undefined when it is not one. */
export function parseByteSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(value);
  if (match === null) return undefined;
  const unit = UNIT_BYTES[(match[2] || 'B').toUpperCase()];
  if (unit === undefined) return undefined;
  const bytes = Math.round(Number(match[1]) * unit);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** The shortest exact text of a size: `64MiB`, `1500B`. */
export function formatByteSize(bytes: number): string {
  for (const [unit, size] of [
    ['GiB', 2 ** 30],
    ['MiB', 2 ** 20],
    ['KiB', 2 ** 10],
  ] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}
