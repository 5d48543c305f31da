/** Reputation lists: their file formats, and loading them from disk or URLs. */
export { ListFormatError, MAX_WARNINGS, asnEntry, asnOfEntry, parseList, parseListInto, type EntrySink, type ParsedList, type ParseReport } from './formats.js';
export { PackedListBuilder, PackedListEntries, type PackedListData } from './list-entries.js';
export { entriesInsideInternal, insideInternalWarning, type EntriesInsideInternal } from './internal-entries.js';
export { runListJob, type ListJob, type ListJobResult } from './list-job.js';
export { compileListBody, type CompileListOptions } from './list-compiler.js';
export { BodyTooLargeError, readListBody, type ListBody } from './list-body.js';
export { ListSource, type ListSourceOptions } from './list-source.js';
export { ListCache, type CacheMetadata, type CachedCopy } from './list-cache.js';
