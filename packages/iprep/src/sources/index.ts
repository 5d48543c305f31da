/** Reputation lists: their file formats, and loading them from disk or URLs. */
export { ListFormatError, MAX_WARNINGS, parseList, type ParsedList } from './formats.js';
export { ListSource, type ListSourceOptions } from './list-source.js';
export { ListCache, type CacheMetadata, type CachedCopy } from './list-cache.js';
