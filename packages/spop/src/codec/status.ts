/**
 * SPOP status codes (docs/protocol.md §8) and the error type every decoder throws.
 *
 * A decoding failure always carries the status code the agent must put in its
 * AGENT-DISCONNECT, so the connection layer never has to guess.
 */

/** Status codes of DISCONNECT frames, by name (docs/protocol.md §8.2). */
export const Status = {
  NORMAL: 0,
  IO_ERROR: 1,
  TIMEOUT: 2,
  FRAME_TOO_BIG: 3,
  INVALID_FRAME: 4,
  NO_VERSION: 5,
  NO_MAX_FRAME_SIZE: 6,
  NO_CAPABILITIES: 7,
  UNSUPPORTED_VERSION: 8,
  BAD_MAX_FRAME_SIZE: 9,
  FRAGMENTATION_NOT_SUPPORTED: 10,
  INTERLACED_FRAMES: 11,
  FRAME_ID_NOT_FOUND: 12,
  RESOURCE_ALLOCATION: 13,
  UNKNOWN: 99,
} as const;

/** One of the {@link Status} codes. */
export type StatusCode = (typeof Status)[keyof typeof Status];

/** HAProxy's own message text for each code (src/flt_spoe.c, spoe_frm_err_reasons). */
const statusMessages: Readonly<Record<StatusCode, string>> = {
  0: 'normal',
  1: 'I/O error',
  2: 'a timeout occurred',
  3: 'frame is too big',
  4: 'invalid frame received',
  5: 'version value not found',
  6: 'max-frame-size value not found',
  7: 'capabilities value not found',
  8: 'unsupported version',
  9: 'max-frame-size too big or too small',
  10: 'fragmentation not supported',
  11: 'invalid interlaced frames',
  12: 'frame-id not found',
  13: 'resource allocation error',
  99: 'an unknown error occurred',
};

/** HAProxy's message text for a status code. */
export function statusMessage(code: number): string {
  return statusMessages[code as StatusCode] ?? statusMessages[Status.UNKNOWN];
}

/**
 * Codes an agent may send. 14..98 are excluded on purpose: HAProxy 2.6 looks
 * them up in its message table, finds NULL and crashes when answering a
 * health check (docs/protocol.md §8.3).
 */
export function isSendableStatus(code: number): code is StatusCode {
  return Number.isInteger(code) && ((code >= 0 && code <= 13) || code === 99);
}

/** A protocol error: malformed input, or a peer that broke the rules. */
export class SpopError extends Error {
  override readonly name = 'SpopError';
  readonly status: StatusCode;

  constructor(status: StatusCode, detail?: string) {
    super(detail === undefined ? statusMessage(status) : `${statusMessage(status)}: ${detail}`);
    this.status = status;
  }
}

/** Shorthand for the most common failure: the bytes do not form a valid frame. */
export function invalidFrame(detail: string): SpopError {
  return new SpopError(Status.INVALID_FRAME, detail);
}
