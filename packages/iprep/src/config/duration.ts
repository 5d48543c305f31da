/**
 * Durations, the one parser of the configuration and of the admin API: `500ms`, `30s`, `10m`, `1h`, `7d`,
 * `2w`, `1h30m`, or milliseconds.
 */

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
type Unit = keyof typeof UNIT_MS;
/** Units from largest to smallest: a compound duration names each at most once, in this order. */
const UNIT_ORDER: readonly Unit[] = ['w', 'd', 'h', 'm', 's', 'ms'];
/** Units formatDuration writes: days at most, so that the cap reads `365d`, not `52w1d`. */
const FORMAT_UNITS: readonly Unit[] = ['d', 'h', 'm', 's', 'ms'];
/** One `<amount><unit>` part; `ms` before `m` and `s` so that `500ms` is not read as `500m` + `s`. */
const PART = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*/y;

export const DURATION_HINT = 'use e.g. 500ms, 30s, 10m, 1h, 7d, 1h30m, or a number of milliseconds';

/**
 * Longest duration anywhere (configuration, admin API): 365 days. Far beyond any ban or refresh, and far
 * below what a Date holds (`300000000w` made dates that /explain could not print).
 */
export const MAX_DURATION_MS = 365 * 86_400_000;

/**
 * Milliseconds of a duration: a number of milliseconds (a finite number >= 0,
 * or a string of digits), or amounts with units `w`, `d`, `h`, `m`, `s`, `ms`, largest
 * first, each once (`1h30m`, `1w2d`, `1.5s`, `1h 30m`). Fractions of a millisecond are rounded.
 * Throws a TypeError on anything else, or longer than MAX_DURATION_MS.
 */
export function parseDuration(value: string | number): number {
  return capped(value, parseAnyDuration(value));
}

function capped(value: string | number, ms: number): number {
  if (ms > MAX_DURATION_MS) {
    throw new TypeError(`duration ${JSON.stringify(value)} is longer than ${formatDuration(MAX_DURATION_MS)}, the longest accepted`);
  }
  return ms;
}

function parseAnyDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return Math.round(value);
    throw new TypeError(`not a duration: ${String(value)} (${DURATION_HINT})`);
  }
  if (typeof value !== 'string') throw new TypeError(`not a duration: ${String(value)} (${DURATION_HINT})`);
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  let total = 0;
  let lastUnit = -1;
  PART.lastIndex = 0;
  while (text.length > 0 && PART.lastIndex < text.length) {
    const part = PART.exec(text);
    if (part === null) throw badDuration(value);
    const unit = part[2] as Unit;
    const order = UNIT_ORDER.indexOf(unit);
    if (order <= lastUnit) throw badDuration(value);
    lastUnit = order;
    total += Number(part[1]) * UNIT_MS[unit];
  }
  if (lastUnit < 0) throw badDuration(value);
  return Math.round(total);
}

function badDuration(value: string): TypeError {
  return new TypeError(`not a duration: ${JSON.stringify(value)} (${DURATION_HINT})`);
}

/** The text parseDuration reads back as `ms` (an integer >= 0), in days at most: `1h30m`, `500ms`, `14d`, `0s`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let text = '';
  for (const unit of FORMAT_UNITS) {
    const amount = Math.floor(rest / UNIT_MS[unit]);
    if (amount > 0) text += `${amount}${unit}`;
    rest -= amount * UNIT_MS[unit];
  }
  return text;
}
