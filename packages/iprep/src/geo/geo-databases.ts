/**
 * The configured country and ASN databases of a running service: loaded on start and on reload
 * (both or neither change), followed on disk, and handed to the engine's GeoMatcher with the rules.
 */
import type { Logger } from 'spop';
import type { GeoConfig } from '../types.js';
import type { GeoMatcher } from './geo-matcher.js';
import { type GeoDatabaseConfig, GeoSource, type GeoStatus } from './geo-source.js';
import type { GeoKind } from './mmdb.js';

/** What a reload loaded, to put in service once everything else loaded too (or to drop). */
export interface PreparedGeo {
  commit(): void;
  discard(): void;
}

export class GeoDatabases {
  readonly #matcher: GeoMatcher;
  readonly #logger: Logger;
  readonly #now: () => number;
  #sources: GeoSource[] = [];

  constructor(matcher: GeoMatcher, options: { readonly logger: Logger; readonly now: () => number }) {
    this.#matcher = matcher;
    this.#logger = options.logger;
    this.#now = options.now;
  }

  /**
   * Loads the databases `config` names (a kept one is re-read if its file changed); throws, naming
   * the file, when one cannot be used: then nothing changes, and a kept one keeps its last good copy.
   */
  async prepare(config: GeoConfig): Promise<PreparedGeo> {
    const wanted = databaseConfigs(config);
    const fresh: GeoSource[] = [];
    const sources = await Promise.all(
      wanted.map(async (db) => {
        const kept = this.#sources.find((source) => sameDatabase(source.config, db));
        if (kept !== undefined) {
          await kept.refresh();
          return kept;
        }
        const source = new GeoSource(db, { logger: this.#logger, now: this.#now });
        fresh.push(source);
        await source.load();
        return source;
      }),
    ).catch((err: unknown) => {
      for (const source of fresh) source.stop();
      throw err;
    });
    return {
      commit: () => {
        for (const source of this.#sources) if (!sources.includes(source)) source.stop();
        this.#sources = sources;
        this.#publish();
        this.#matcher.setRules(config.rules);
        for (const source of fresh) source.start(() => this.#publish());
      },
      discard: () => {
        for (const source of fresh) source.stop();
      },
    };
  }

  status(): readonly GeoStatus[] {
    return this.#sources.map((source) => source.status());
  }

  close(): void {
    for (const source of this.#sources) source.stop();
    this.#sources = [];
  }

  #publish(): void {
    this.#matcher.setTables(this.#table('country'), this.#table('asn'));
  }

  #table(kind: GeoKind) {
    return this.#sources.find((source) => source.config.kind === kind)?.current();
  }
}

function databaseConfigs(config: GeoConfig): GeoDatabaseConfig[] {
  const limits = { maxBytes: config.maxBytes, maxEntries: config.maxEntries };
  const out: GeoDatabaseConfig[] = [];
  if (config.countryDb !== undefined) out.push({ kind: 'country', path: config.countryDb, ...limits });
  if (config.asnDb !== undefined) out.push({ kind: 'asn', path: config.asnDb, ...limits });
  return out;
}

function sameDatabase(a: GeoDatabaseConfig, b: GeoDatabaseConfig): boolean {
  return a.kind === b.kind && a.path === b.path && a.maxBytes === b.maxBytes && a.maxEntries === b.maxEntries;
}
