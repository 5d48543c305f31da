/** Terminal output of the operator commands: aligned tables, short durations, colour only on a terminal. */

/** Colour when writing to a terminal and NO_COLOR is unset (https://no-color.org): never in a pipe or a file. */
export function useColour(isTTY: boolean | undefined, env: NodeJS.ProcessEnv): boolean {
  return isTTY === true && (env['NO_COLOR'] === undefined || env['NO_COLOR'] === '') && env['TERM'] !== 'dumb';
}

const CODES = { red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, dim: 2, bold: 1 } as const;
export type Colour = keyof typeof CODES;

/** Paints text, or leaves it as it is when colour is off. */
export type Paint = (text: string, colour: Colour) => string;

export function painter(colour: boolean): Paint {
  return colour ? (text, c) => `\x1b[${CODES[c]}m${text}\x1b[0m` : (text) => text;
}

const ACTION_COLOURS: Readonly<Record<string, Colour>> = { deny: 'red', tarpit: 'magenta', captcha: 'yellow', log: 'blue', allow: 'green' };

export function paintAction(paint: Paint, action: string): string {
  const colour = ACTION_COLOURS[action];
  return colour === undefined ? action : paint(action, colour);
}

/** Control characters (from a decision's reason, a list's error...) shown escaped, so that they cannot drive the terminal. */
export function printable(text: string): string {
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

const ESCAPES = /\x1b\[[0-9;]*m/g;

/** Columns padded to their widest cell (colour codes not counted); the last column is not padded. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').replace(ESCAPES, '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell + ' '.repeat(widths[i]! - cell.replace(ESCAPES, '').length)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

const UNITS: readonly (readonly [string, number])[] = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
];

/** A duration as an operator reads it, to its two largest units: `3h12m`, `2d4h`, `45s`; below a second `<1s`. */
export function shortDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  if (ms < 1000) return '<1s';
  let rest = Math.floor(ms);
  const parts: string[] = [];
  for (const [unit, size] of UNITS) {
    const amount = Math.floor(rest / size);
    rest -= amount * size;
    if (amount > 0 || parts.length > 0) parts.push(`${amount}${unit}`);
    if (parts.length === 2) break;
  }
  return parts.filter((p, i) => i === 0 || !p.startsWith('0')).join('');
}

/** When a decision expires, from now: `3h12m`, `never`, `expired`. */
export function expiresIn(expiresAt: number | null, now: number): string {
  if (expiresAt === null) return 'never';
  return expiresAt <= now ? 'expired' : shortDuration(expiresAt - now);
}
