/**
 * A millisecond clock read from a field that a timer refreshes. On some
 * virtual machines Date.now() costs more than a whole verdict; windows,
 * decay and expiry need no better than the resolution.
 */
export class CoarseClock {
  #now = Date.now();
  readonly #timer: NodeJS.Timeout;

  constructor(resolutionMs = 10) {
    this.#timer = setInterval(() => {
      this.#now = Date.now();
    }, resolutionMs).unref();
  }

  /** Milliseconds since the epoch, as of the last tick. */
  readonly now = (): number => this.#now;

  stop(): void {
    clearInterval(this.#timer);
  }
}
