/**
 * Splits a byte stream into frames. TCP delivers chunks, not frames: a chunk
 * may hold half a length prefix, several frames, or the tail of one and the
 * head of the next. Lengths are checked before anything is buffered, so a
 * corrupt or hostile prefix can never make us allocate more than one frame.
 *
 * Complete frames are parsed straight from the chunk they arrive in. Only a
 * frame split across chunks is copied, into a buffer of our own that grows by
 * doubling towards the frame's LENGTH: a frame arriving in n pieces costs
 * O(LENGTH) copying, not O(n * LENGTH). That buffer is what a partial frame
 * holds, and it is counted against an optional budget shared by parsers.
 */
import { MIN_FRAME_LENGTH } from './decoder.js';
import { SpopError, Status } from './status.js';

/** Called with each frame body (`buf[start, end)`, no length prefix). Return false to pause. */
export type FrameSink = (buf: Buffer, start: number, end: number) => boolean | void;

/** Bytes shared by several parsers (an agent bounds the partial frames of all its connections). */
export interface ByteBudget {
  /** Takes `bytes` from the budget; false, and nothing taken, when they are not available. */
  take(bytes: number): boolean;
  /** Gives back bytes taken earlier. */
  give(bytes: number): void;
}

/** Smallest buffer allocated for a partial frame: avoids a reallocation per byte while the prefix arrives. */
const MIN_PARTIAL_CAPACITY = 256;

/** Cuts a byte stream into frames: checks each LENGTH before buffering its body, hands every complete frame to a sink (which may pause the parser), and holds a partial frame across chunks. */
export class FrameParser {
  #buf: Buffer | null = null;
  #pos = 0;
  #end = 0;
  /** True when #buf is our own copy: bytes may be appended after #end (never written before it). */
  #owned = false;
  /** Bytes of #buf taken from the budget (its length when owned, else 0). */
  #held = 0;
  #paused = false;
  readonly #budget: ByteBudget | undefined;

  /** Largest accepted LENGTH; lowered to the negotiated value after HELLO. */
  maxFrameSize: number;

  constructor(maxFrameSize: number, budget?: ByteBudget) {
    this.maxFrameSize = maxFrameSize;
    this.#budget = budget;
  }

  /** Bytes received and not yet delivered as frames. */
  get buffered(): number {
    return this.#end - this.#pos;
  }

  /** Bytes allocated for a partial frame (what the budget is charged). */
  get held(): number {
    return this.#held;
  }

  /** True when a sink returned false and `resume` has not been called yet. */
  get paused(): boolean {
    return this.#paused;
  }

  /**
   * Adds a chunk and delivers every complete frame it finishes, unless paused.
   * Throws SpopError: FRAME_TOO_BIG (3) for a LENGTH above maxFrameSize,
   * INVALID_FRAME (4) for one below 7, RESOURCE_ALLOCATION (13) when a
   * partial frame would take more than the budget has left.
   */
  push(chunk: Buffer, sink: FrameSink): void {
    let from = 0;
    if (this.#pos !== this.#end) {
      if (this.#paused) {
        // Held back by the sink: keep everything (the caller stops reading meanwhile).
        this.#append(chunk, 0, chunk.length, undefined);
        return;
      }
      // A frame is pending: complete it from the chunk's head, parse the rest in place.
      const frameEnd = this.#pendingFrameEnd(chunk);
      from = frameEnd === undefined ? chunk.length : Math.min(chunk.length, frameEnd - (this.#end - this.#pos));
      this.#append(chunk, 0, from, frameEnd);
      this.#drain(sink); // delivers it if complete, and then holds nothing
      if (from === chunk.length) return;
    }
    this.#release();
    this.#buf = chunk;
    this.#pos = from;
    this.#end = chunk.length;
    if (!this.#paused) this.#drain(sink);
  }

  /** Continues delivering frames held back by a pause. */
  resume(sink: FrameSink): void {
    this.#paused = false;
    this.#drain(sink);
  }

  /** Takes the bytes received and not yet delivered (a copy), and holds nothing more. */
  takePending(): Buffer {
    const pending = this.#buf === null ? Buffer.alloc(0) : Buffer.from(this.#buf.subarray(this.#pos, this.#end));
    this.release();
    this.#paused = false;
    return pending;
  }

  /** Drops whatever is pending and gives its bytes back to the budget (the connection is gone). */
  release(): void {
    this.#release();
    this.#buf = null;
    this.#pos = this.#end = 0;
  }

  #drain(sink: FrameSink): void {
    const buf = this.#buf;
    if (buf === null) return;
    while (this.#end - this.#pos >= 4) {
      const p = this.#pos;
      const length = this.#checkLength(readLength(buf, p));
      if (this.#end - this.#pos - 4 < length) break;
      const start = this.#pos + 4;
      this.#pos = start + length;
      if (sink(buf, start, this.#pos) === false) {
        this.#paused = true;
        break;
      }
    }
    if (this.#pos === this.#end) {
      this.release(); // drop the reference so the chunk can be collected
    } else if (!this.#owned && !this.#paused) {
      // A partial frame at the end of a chunk: copy it, so the chunk can go and the bytes are counted.
      this.#append(buf, this.#end, this.#end, this.#pendingFrameEnd(undefined));
    }
  }

  #checkLength(length: number): number {
    if (length > this.maxFrameSize) {
      throw new SpopError(Status.FRAME_TOO_BIG, `LENGTH ${length} above max-frame-size ${this.maxFrameSize}`);
    }
    if (length < MIN_FRAME_LENGTH) {
      throw new SpopError(Status.INVALID_FRAME, `LENGTH ${length} below ${MIN_FRAME_LENGTH}`);
    }
    return length;
  }

  /**
   * 4 + LENGTH of the pending frame, its prefix read from the pending bytes
   * and then from `next`; undefined while fewer than 4 bytes are known.
   */
  #pendingFrameEnd(next: Buffer | undefined): number | undefined {
    const buf = this.#buf as Buffer;
    const left = this.#end - this.#pos;
    if (left >= 4) return 4 + this.#checkLength(readLength(buf, this.#pos));
    if (next === undefined || left + next.length < 4) return undefined;
    let length = 0;
    for (let i = 0; i < 4; i++) length = length * 256 + ((i < left ? buf[this.#pos + i] : next[i - left]) as number);
    return 4 + this.#checkLength(length);
  }

  /**
   * Appends `chunk[from, to)` to the pending bytes: in place when our buffer
   * has room, else into a new one (the old one is never written to, since
   * frames already delivered may still view it).
   */
  #append(chunk: Buffer, from: number, to: number, frameEnd: number | undefined): void {
    const buf = this.#buf as Buffer;
    const count = to - from;
    if (this.#owned && this.#end + count <= buf.length) {
      chunk.copy(buf, this.#end, from, to);
      this.#end += count;
      return;
    }
    const left = this.#end - this.#pos;
    const need = left + count;
    // Doubling makes a frame arriving byte by byte cost O(LENGTH) copies; never beyond the frame itself.
    let capacity = Math.max(need, this.#owned ? 2 * buf.length : 2 * left, MIN_PARTIAL_CAPACITY);
    if (frameEnd !== undefined && need <= frameEnd) capacity = Math.min(capacity, frameEnd);
    this.#charge(capacity);
    const next = Buffer.allocUnsafe(capacity);
    buf.copy(next, 0, this.#pos, this.#end);
    chunk.copy(next, left, from, to);
    this.#buf = next;
    this.#owned = true;
    this.#pos = 0;
    this.#end = need;
  }

  /** Makes the budget's charge `bytes` (the size of the buffer about to replace ours). */
  #charge(bytes: number): void {
    const more = bytes - this.#held;
    if (more > 0 && this.#budget !== undefined && !this.#budget.take(more)) {
      throw new SpopError(Status.RESOURCE_ALLOCATION, `partial frames of all connections would exceed their budget (${bytes} bytes asked)`);
    }
    if (more < 0) this.#budget?.give(-more);
    this.#held = bytes;
  }

  #release(): void {
    if (this.#held > 0) this.#budget?.give(this.#held);
    this.#held = 0;
    this.#owned = false;
  }
}

/** Big-endian 32 bits by hand: readUInt32BE's checks cost more than the read, on every frame. */
function readLength(buf: Buffer, p: number): number {
  return (buf[p] as number) * 0x1000000 + (((buf[p + 1] as number) << 16) | ((buf[p + 2] as number) << 8) | (buf[p + 3] as number));
}
