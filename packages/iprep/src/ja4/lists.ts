/**
 * Fingerprint lists (`tls.lists` in the configuration): one JA4 or JA3 fingerprint per line, an
 * optional note after it (shown by explain), `#` comments. Read with the same byte bound as the
 * address lists (sources/), checked line by line: a bad line is skipped with a warning, more
 * entries than `max-entries` refuse the file (the previous copy stays in service). Files are
 * watched and reloaded when they change (FingerprintLists).
 */
import { type Logger, silentLogger } from 'spop';
import { watchFile } from '../sources/file-watch.js';
import { BodyTooLargeError } from '../sources/list-body.js';
import { readBoundedFile } from '../sources/list-cache.js';
import type { FingerprintListConfig } from '../types.js';

/** JA4: `t13d1516h2_8daaf6152771_e5627efa2ab1`. */
const JA4_PATTERN = /^[tqd][0-9a-z]{2}[di][0-9]{4}[0-9a-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}$/;
/** JA3: an MD5 in hex. */
const JA3_PATTERN = /^[0-9a-f]{32}$/;
/** Longest note kept per entry. */
const MAX_NOTE = 200;
/** Warnings kept per file (the count is complete). */
const MAX_WARNINGS = 20;

export interface LoadedFingerprintList {
  readonly config: FingerprintListConfig;
  /** Fingerprint (lower case) -> note ('' when none). */
  readonly entries: ReadonlyMap<string, string>;
  readonly warnings: readonly string[];
  readonly loadedAt: number;
}

/** Whether a text is a JA4 or JA3 fingerprint as lists hold them (lower case). */
export function isFingerprint(text: string): boolean {
  return JA4_PATTERN.test(text) || JA3_PATTERN.test(text);
}

/** Parses a list's text; throws when it holds more than `maxEntries` fingerprints. */
export function parseFingerprintList(text: string, origin: string, maxEntries: number): { entries: Map<string, string>; warnings: string[] } {
  const entries = new Map<string, string>();
  const warnings: string[] = [];
  let skipped = 0;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === '' || line.startsWith('#')) continue;
    const space = line.search(/\s/);
    const fingerprint = (space < 0 ? line : line.slice(0, space)).toLowerCase();
    if (!isFingerprint(fingerprint)) {
      skipped++;
      if (warnings.length < MAX_WARNINGS) warnings.push(`${origin}:${i + 1}: not a JA4 or JA3 fingerprint: ${JSON.stringify(fingerprint.slice(0, 60))}`);
      continue;
    }
    if (!entries.has(fingerprint) && entries.size >= maxEntries) throw new Error(`${origin}: more than ${maxEntries} fingerprints (max-entries)`);
    entries.set(fingerprint, space < 0 ? '' : line.slice(space).trim().slice(0, MAX_NOTE));
  }
  if (skipped > warnings.length) warnings.push(`${origin}: ${skipped - warnings.length} more invalid lines`);
  return { entries, warnings };
}

/** Reads and parses a list file within its byte bound; throws with the file's name on any problem. */
export async function loadFingerprintList(config: FingerprintListConfig, now = Date.now()): Promise<LoadedFingerprintList> {
  let text: string;
  try {
    const body = await readBoundedFile(config.path, config.maxBytes);
    text = Buffer.concat(body.blocks).toString('utf8');
  } catch (err) {
    const problem = err instanceof BodyTooLargeError ? err.message : `cannot read it: ${(err as Error).message}`;
    throw new Error(`fingerprint list ${config.name}: ${problem}`, { cause: err });
  }
  let parsed: ReturnType<typeof parseFingerprintList>;
  try {
    parsed = parseFingerprintList(text, config.path, config.maxEntries);
  } catch (err) {
    throw new Error(`fingerprint list ${config.name}: ${(err as Error).message}`, { cause: err });
  }
  const { entries, warnings } = parsed;
  return { config, entries, warnings, loadedAt: now };
}

/** Editors write a file in several steps: one reload after the last event. */

/**
 * The fingerprint lists in service, kept current: each file is watched (its directory, since
 * editors replace files), re-read when it changes, and swapped in when it loads; a copy that
 * cannot be read, is too large or holds too many fingerprints leaves the last good one in service.
 */
export class FingerprintLists {
  readonly #publish: (lists: readonly LoadedFingerprintList[]) => void;
  readonly #logger: Logger;
  #lists: LoadedFingerprintList[] = [];
  #unwatch: (() => void)[] = [];

  constructor(publish: (lists: readonly LoadedFingerprintList[]) => void, logger: Logger = silentLogger) {
    this.#publish = publish;
    this.#logger = logger;
  }

  /** Loads every list (throws, naming the list, when one cannot be had); nothing changes until apply(). */
  load(configs: readonly FingerprintListConfig[]): Promise<LoadedFingerprintList[]> {
    return Promise.all(configs.map((config) => loadFingerprintList(config)));
  }

  /** Puts these lists in service and watches their files instead of the previous ones. */
  apply(lists: readonly LoadedFingerprintList[]): void {
    this.stop();
    this.#lists = [...lists];
    this.#publish(this.#lists);
    for (const list of lists) {
      if (list.warnings.length > 0) this.#logger.warn('fingerprint list: invalid lines skipped', { list: list.config.name, first: list.warnings[0] });
    }
    lists.forEach((list, index) => {
      const unwatch = watchFile(list.config.path, () => void this.#reload(index, lists), {
        logger: this.#logger,
        what: `fingerprint list ${list.config.name}`,
        fields: { list: list.config.name },
      });
      if (unwatch !== undefined) this.#unwatch.push(unwatch);
    });
  }

  stop(): void {
    for (const unwatch of this.#unwatch) unwatch();
    this.#unwatch = [];
  }

  async #reload(index: number, applied: readonly LoadedFingerprintList[]): Promise<void> {
    const current = this.#lists[index];
    if (current === undefined) return;
    let list: LoadedFingerprintList;
    try {
      list = await loadFingerprintList(current.config);
    } catch (err) {
      this.#logger.warn('fingerprint list: keeping the last good copy', { list: current.config.name, error: (err as Error).message });
      return;
    }
    // A reload of the configuration meanwhile replaced the lists: this copy is stale.
    if (this.#lists[index] !== current || !this.#isApplied(applied)) return;
    this.#lists[index] = list;
    this.#publish([...this.#lists]);
    this.#logger.info('fingerprint list updated', { list: list.config.name, fingerprints: list.entries.size });
  }

  #isApplied(applied: readonly LoadedFingerprintList[]): boolean {
    return applied.every((list, i) => this.#lists[i]?.config === list.config);
  }
}
