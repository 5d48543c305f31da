/**
 * Watching a data file (a list, a fingerprint list, a geo database) for changes. The directory is
 * watched, not the file: editors and downloaders rename a new file over the old one, which replaces
 * its inode. Changes are debounced, so a file written in several steps is read once.
 */
import { watch } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'spop';

export const WATCH_DEBOUNCE_MS = 200;

export interface WatchFileOptions {
  readonly logger: Logger;
  /** Names what is watched in the log: `list deny`, `geo country`. */
  readonly what: string;
  /** Fields of the log lines. */
  readonly fields?: Readonly<Record<string, unknown>>;
  readonly debounceMs?: number;
}

/** Calls onChange once changes to `file` settle; returns the function that stops watching (undefined, logged, when it cannot watch). */
export function watchFile(file: string, onChange: () => void, options: WatchFileOptions): (() => void) | undefined {
  const dir = path.dirname(path.resolve(file));
  const base = path.basename(file);
  const { logger, what, fields } = options;
  let debounce: NodeJS.Timeout | undefined;
  try {
    const watcher = watch(dir, { persistent: false }, (_event, name) => {
      if (name !== null && name !== base) return;
      clearTimeout(debounce);
      debounce = setTimeout(onChange, options.debounceMs ?? WATCH_DEBOUNCE_MS).unref();
    });
    watcher.on('error', (err) => logger.warn(`${what}: watching ${dir} failed: ${err.message}`, fields));
    return () => {
      clearTimeout(debounce);
      watcher.close();
    };
  } catch (err) {
    logger.warn(`${what}: cannot watch ${dir}: ${(err as Error).message}`, fields);
    return undefined;
  }
}
