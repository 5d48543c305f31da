/**
 * A millisecond clock read from a field that a timer refreshes. On some
 * virtual machines Date.now() costs more than a whole verdict; windows,
 * decay and expiry need no better than the resolution.
 *
 * The timer runs only while the clock is read: an agent with no traffic would
 * otherwise wake up every `resolutionMs` for nothing (a wake-up costs tens of
 * microseconds on a virtual machine). The first read after a pause reads the
 * time afresh and starts the timer again.
 */
export interface CoarseClockOptions {
  /** How often the field is refreshed. Default 10 ms. */
  readonly resolutionMs?: number;
  /** The timer stops after this long without a read. Default 1 s. */
  readonly idleStopMs?: number;
}

export class CoarseClock {
  #now = Date.now();
  #timer: NodeJS.Timeout | undefined;
  /** Whether `now` was called since the last tick. */
  #read = false;
  #idleTicks = 0;
  /** stop() was called: the clock stays where it is. */
  #stopped = false;
  readonly #resolutionMs: number;
  readonly #idleTicksToStop: number;

  /** `options`: the resolution in ms (as before), or options. */
  constructor(options: number | CoarseClockOptions = {}) {
    const { resolutionMs = 10, idleStopMs = 1000 } = typeof options === 'number' ? { resolutionMs: options } : options;
    this.#resolutionMs = resolutionMs;
    this.#idleTicksToStop = Math.max(1, Math.ceil(idleStopMs / resolutionMs));
    this.#start();
  }

  /** Milliseconds since the epoch, as of the last tick. */
  readonly now = (): number => {
    if (this.#timer === undefined && !this.#stopped) this.#start();
    this.#read = true;
    return this.#now;
  };

  /** Whether the timer runs (the clock was read lately, and not stopped). */
  get running(): boolean {
    return this.#timer !== undefined;
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #start(): void {
    this.#now = Date.now();
    this.#idleTicks = 0;
    this.#timer = setInterval(this.#tick, this.#resolutionMs).unref();
  }

  readonly #tick = (): void => {
    if (this.#read) {
      this.#read = false;
      this.#idleTicks = 0;
    } else if (++this.#idleTicks >= this.#idleTicksToStop) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    this.#now = Date.now();
  };
}
