/**
 * Typed arrays in SharedArrayBuffers: tables and scores are immutable once built, so the thread
 * that builds them can hand them to the main thread, and the main thread to another thread (the
 * combined table's merge), without copying them on either side.
 */

/** A Uint32Array of `length` zeros in a SharedArrayBuffer. */
export function sharedUint32(length: number): Uint32Array {
  return new Uint32Array(new SharedArrayBuffer(length * 4));
}

/** A copy of `array` in a SharedArrayBuffer. */
export function sharedUint8Copy(array: Uint8Array): Uint8Array {
  const copy = new Uint8Array(new SharedArrayBuffer(array.length));
  copy.set(array);
  return copy;
}

/** True when the array's buffer is shared: posting it to a thread copies nothing. */
export function isShared(array: ArrayBufferView): boolean {
  return array.buffer instanceof SharedArrayBuffer;
}

/** The buffers of `arrays` to list in a transferList: shared ones are not transferred (nor copied), and cannot be. */
export function transferableBuffers(arrays: readonly ArrayBufferView[]): ArrayBuffer[] {
  const buffers: ArrayBuffer[] = [];
  for (const array of arrays) if (!(array.buffer instanceof SharedArrayBuffer)) buffers.push(array.buffer as ArrayBuffer);
  return buffers;
}
