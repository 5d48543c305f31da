/** The agent's version, from its package.json (read once, at the first import), and Node's. */
import { readFileSync } from 'node:fs';

// src/version.ts and dist/version.js both sit one level below the package's root.
const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };

export const VERSION: string = typeof manifest.version === 'string' ? manifest.version : 'unknown';
export const NODE_VERSION: string = process.version;

/** `spoa 0.1.0 (node v20.11.0)`: what `--version` prints. */
export function versionLine(): string {
  return `spoa ${VERSION} (node ${NODE_VERSION})`;
}
