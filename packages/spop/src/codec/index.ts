export * from './status.js';
export * from './types.js';
export * from './varint.js';
export * from './ip.js';
export { Reader, readFrameHead, decodeFrame, MIN_FRAME_LENGTH, type FrameHead } from './decoder.js';
export { Writer, encodeFrame, encodeTypedData, preEncode } from './encoder.js';
export { type ByteBudget, FrameParser, type FrameSink } from './parser.js';
export { formatFrame, formatTypedData } from './format.js';
export { Message } from './message.js';
