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

/**
 * `count` IPv4 sources as 4-byte arrays: a new random address each (`clients` 0), or draws over
 * `clients` fixed clients whose popularity follows a Zipf law of exponent `zipf` (the k-th client
 * sends in proportion to 1/k^zipf; a binary search over the cumulative probabilities per draw).
 */
export function sourceRing(count: number, clients: number, zipf: number, random32: () => number): Uint8Array[] {
  const cdf = new Float64Array(clients);
  let sum = 0;
  for (let k = 0; k < clients; k++) cdf[k] = sum += 1 / (k + 1) ** zipf;
  for (let k = 0; k < clients; k++) cdf[k] = (cdf[k] as number) / sum;
  const sources: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    let n = random32();
    if (clients > 0) {
      const u = random32() / 2 ** 32;
      let low = 0;
      let high = clients - 1;
      while (low < high) {
        const mid = (low + high) >>> 1;
        if ((cdf[mid] as number) > u) high = mid;
        else low = mid + 1;
      }
      n = Math.imul(low + 1, 0x9e3779b1) >>> 0; // the client's address, spread over the space
    }
    sources.push(Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255));
  }
  return sources;
}
