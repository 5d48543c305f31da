export {
  IntervalTable,
  intervalTableTransferList,
  type FamilyIntervals,
  type FamilyRecords,
  type IntervalTableData,
  type TableEntry,
} from './interval-table.js';
export { compileTable, type CompileTableOptions } from './compile.js';
export { SPECIAL_RANGES, SpecialRanges, type SpecialPolicy, type SpecialRange } from './special-ranges.js';
