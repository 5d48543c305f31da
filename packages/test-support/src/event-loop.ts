/** How long the event loop goes without running a timer: the stall a test or benchmark bounds. */

export interface EventLoopWatch {
  /** The longest gap between two 1 ms ticks since the watch started or was last reset (ms). */
  longest(): number;
  reset(): void;
  stop(): void;
}

/** Starts a 1 ms timer that records the longest gap between its ticks. */
export function watchEventLoop(): EventLoopWatch {
  let longest = 0;
  let last = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  return {
    longest: () => longest,
    reset: () => {
      longest = 0;
      last = performance.now();
    },
    stop: () => clearInterval(ticker),
  };
}
