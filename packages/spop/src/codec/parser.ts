/**
 * Splits a byte stream into frames. TCP delivers chunks, not frames: a chunk
 * may hold half a length prefix, several frames, or the tail of one and the
 * head of the next. Lengths are checked before anything is buffered, so a
 * corrupt or hostile prefix can never make us allocate more than one frame.
 */
import { MIN_FRAME_LENGTH } from './decoder.js';
import { SpopError, Status } from './status.js';

/** Called with each frame body (`buf[start, end)`, no length prefix). Return false to pause. */
export type FrameSink = (buf: Buffer, start: number, end: number) => boolean | void;

export class FrameParser {
  #buf: Buffer | null = null;
  #pos = 0;
  #end = 0;
  #paused = false;

  /** Largest accepted LENGTH; lowered to the negotiated value after HELLO. */
  maxFrameSize: number;

  constructor(maxFrameSize: number) {
    this.maxFrameSize = maxFrameSize;
  }

  /** Bytes received and not yet delivered as frames. */
  get buffered(): number {
    return this.#end - this.#pos;
  }

  /** True when a sink returned false and `resume` has not been called yet. */
  get paused(): boolean {
    return this.#paused;
  }

  /**
   * Adds a chunk and delivers every complete frame it finishes, unless paused.
   * Throws SpopError: FRAME_TOO_BIG (3) for a LENGTH above maxFrameSize,
   * INVALID_FRAME (4) for one below 7.
   */
  push(chunk: Buffer, sink: FrameSink): void {
    if (this.#pos === this.#end) {
      // Nothing pending: parse straight from the chunk, no copy.
      this.#buf = chunk;
      this.#pos = 0;
      this.#end = chunk.length;
    } else {
      // A partial frame is pending: join it with the new bytes. The old buffer
      // is never written to, since frames already delivered may still view it.
      const left = this.#end - this.#pos;
      const joined = Buffer.allocUnsafe(left + chunk.length);
      (this.#buf as Buffer).copy(joined, 0, this.#pos, this.#end);
      chunk.copy(joined, left);
      this.#buf = joined;
      this.#pos = 0;
      this.#end = joined.length;
    }
    if (!this.#paused) this.#drain(sink);
  }

  /** Continues delivering frames held back by a pause. */
  resume(sink: FrameSink): void {
    this.#paused = false;
    this.#drain(sink);
  }

  #drain(sink: FrameSink): void {
    const buf = this.#buf;
    if (buf === null) return;
    while (this.#end - this.#pos >= 4) {
      const p = this.#pos;
      // Big-endian 32 bits by hand: readUInt32BE's checks cost more than the read, on every frame.
      const length = (buf[p] as number) * 0x1000000 + (((buf[p + 1] as number) << 16) | ((buf[p + 2] as number) << 8) | (buf[p + 3] as number));
      if (length > this.maxFrameSize) {
        throw new SpopError(Status.FRAME_TOO_BIG, `LENGTH ${length} above max-frame-size ${this.maxFrameSize}`);
      }
      if (length < MIN_FRAME_LENGTH) {
        throw new SpopError(Status.INVALID_FRAME, `LENGTH ${length} below ${MIN_FRAME_LENGTH}`);
      }
      if (this.#end - this.#pos - 4 < length) break;
      const start = this.#pos + 4;
      this.#pos = start + length;
      if (sink(buf, start, this.#pos) === false) {
        this.#paused = true;
        break;
      }
    }
    if (this.#pos === this.#end) {
      this.#buf = null; // drop the reference so the chunk can be collected
      this.#pos = this.#end = 0;
    }
  }
}
