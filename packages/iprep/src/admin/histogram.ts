/**
 * A histogram counted on the hot path into plain numbers and read by a
 * prom-client Registry at scrape time. prom-client's own Histogram hashes a
 * label object on every observation; this one costs a short bucket scan.
 */
import type { Metric, Registry } from 'prom-client';

/** One series as a prom-client Registry prints it. */
interface RegistryValue {
  readonly metricName: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export class FixedHistogram {
  readonly name: string;
  readonly help: string;
  /** Read by the Registry: what it prints after `# TYPE`, and how a cluster registry merges workers. */
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** Upper bounds, ascending; the +Inf bucket is implicit. */
  readonly bounds: readonly number[];
  /** Observations per bucket (not cumulative); the last slot is above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(options: { name: string; help: string; bounds: readonly number[]; registry: Registry }) {
    const { name, help, bounds } = options;
    for (let i = 1; i < bounds.length; i++) {
      if (!((bounds[i] as number) > (bounds[i - 1] as number))) throw new RangeError(`${name}: bucket bounds must ascend`);
    }
    this.name = name;
    this.help = help;
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
    // The Registry reads any object with name, help, type, aggregator, get() and reset();
    // its typings only list prom-client's own classes.
    options.registry.registerMetric(this as unknown as Metric);
  }

  /** Hot path: no allocation. Values land in the first bucket whose bound they do not exceed. */
  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count++;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: RegistryValue[] }> {
    const bucketName = `${this.name}_bucket`;
    const values: RegistryValue[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += this.counts[i] as number;
      values.push({ metricName: bucketName, labels: { le: String(this.bounds[i]) }, value: cumulative });
    }
    values.push({ metricName: bucketName, labels: { le: '+Inf' }, value: this.count });
    values.push({ metricName: `${this.name}_sum`, labels: {}, value: this.sum });
    values.push({ metricName: `${this.name}_count`, labels: {}, value: this.count });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
