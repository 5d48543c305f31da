/**
 * A latency histogram with fixed 1 µs buckets: recording is one array
 * increment (no allocation, no sorting on the hot path), percentiles are a
 * scan at the end. Latencies at or above the limit land in an overflow bucket;
 * the maximum is kept exactly.
 */

/** Latency percentiles of a run, in microseconds. */
export interface LatencySummary {
  /** Samples recorded. */
  readonly count: number;
  readonly meanUs: number;
  readonly p50Us: number;
  readonly p90Us: number;
  readonly p99Us: number;
  /** Exact maximum. */
  readonly maxUs: number;
  /** Samples that reached the histogram's limit (their percentile reads as the maximum). */
  readonly overflow: number;
}

export class LatencyHistogram {
  /** Bucket i counts samples in [i, i+1) µs; the last bucket counts everything >= limitUs. */
  readonly buckets: Uint32Array;
  readonly limitUs: number;
  count = 0;
  sumUs = 0;
  maxUs = 0;

  /** `limitUs`: largest latency resolved to the microsecond (default 1 s, 4 MB of buckets). */
  constructor(limitUs = 1_000_000) {
    if (!Number.isInteger(limitUs) || limitUs < 1) throw new RangeError(`limitUs must be a positive integer: ${limitUs}`);
    this.limitUs = limitUs;
    this.buckets = new Uint32Array(limitUs + 1);
  }

  record(us: number): void {
    // `| 0` floors to the bucket without a Math call; clamping first keeps it in int32 range.
    const i = us < this.limitUs ? (us > 0 ? us | 0 : 0) : this.limitUs;
    this.buckets[i] = (this.buckets[i] as number) + 1;
    this.count++;
    this.sumUs += us;
    if (us > this.maxUs) this.maxUs = us;
  }

  reset(): void {
    this.buckets.fill(0);
    this.count = 0;
    this.sumUs = 0;
    this.maxUs = 0;
  }

  /** Adds another histogram's samples (same limit), e.g. to combine the rounds of a benchmark. */
  merge(other: LatencyHistogram): this {
    if (other.limitUs !== this.limitUs) throw new RangeError('cannot merge histograms with different limits');
    const a = this.buckets;
    const b = other.buckets;
    for (let i = 0; i < a.length; i++) a[i] = (a[i] as number) + (b[i] as number);
    this.count += other.count;
    this.sumUs += other.sumUs;
    if (other.maxUs > this.maxUs) this.maxUs = other.maxUs;
    return this;
  }

  /**
   * The latency (µs, bucket floor) below which `p` percent of the samples
   * fall; samples in the overflow bucket read as the exact maximum.
   */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < this.limitUs; i++) {
      seen += this.buckets[i] as number;
      if (seen >= rank) return i;
    }
    return this.maxUs;
  }

  /** JSON gets the summary, not a million buckets. */
  toJSON(): LatencySummary {
    return this.summary();
  }

  summary(): LatencySummary {
    return {
      count: this.count,
      meanUs: this.count === 0 ? 0 : this.sumUs / this.count,
      p50Us: this.percentile(50),
      p90Us: this.percentile(90),
      p99Us: this.percentile(99),
      maxUs: this.maxUs,
      overflow: this.buckets[this.limitUs] as number,
    };
  }
}
