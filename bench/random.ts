/** A seeded xorshift32: the same sources in every run of a benchmark, cheap enough to draw per message. */
export function seededRandom32(seed = 0x2545f491): () => number {
  let state = seed;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
}
