/**
 * The behaviour tracker alone, in-process: `hit`, and `hit` then `evaluate` as the engine calls
 * them, for random sources (a new client per message once the table is full) or a Zipf mix over
 * --clients clients. Cost is CPU time (`process.cpuUsage`: time spent preempted by the other
 * processes of a shared machine is not counted), the least of --repeat short passes.
 *
 * With --against DIR, the tracker of another checkout (DIR holds packages/iprep and a node_modules,
 * e.g. `git worktree add DIR REV && ln -s "$PWD/node_modules" DIR/node_modules`) runs interleaved
 * with this one on the same addresses: before and after within one invocation.
 *
 *   node --import tsx bench/behaviour.ts [--max-clients N] [--clients N] [--zipf S] [--messages N] [--repeat N] [--against DIR]
 *   (--clients 0: a ring of 262,144 random sources)
 */
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { BehaviourTracker } from '../packages/iprep/src/behaviour/index.js';
import type { BehaviourConfig } from '../packages/iprep/src/types.js';
import { seededRandom32, sourceRing } from './random.js';

const { values } = parseArgs({
  options: {
    'max-clients': { type: 'string', default: '100000' },
    clients: { type: 'string', default: '0' },
    zipf: { type: 'string', default: '1' },
    messages: { type: 'string', default: '200000' },
    repeat: { type: 'string', default: '31' },
    against: { type: 'string' },
  },
});
const maxClients = Number(values['max-clients']);
const clientCount = Number(values.clients);
const messages = Number(values.messages);

const config: BehaviourConfig = {
  enabled: true,
  ipv6PrefixLength: 64,
  windowMs: 10_000,
  rateThreshold: 100,
  ratePenalty: 30,
  banThreshold: 1e9,
  banMs: 60_000,
  banGrowth: 2,
  maxBanMs: 300_000,
  banAction: 'deny',
  decayPoints: 10,
  decayIntervalMs: 5_000,
  errorWeight: 5,
  maxRate: 50,
  maxClients,
  doorkeeper: true,
};

type Tracker = Pick<BehaviourTracker, 'hit' | 'evaluate'>;
const trackers: { name: string; tracker: Tracker; hit: number; evaluate: number }[] = [];
if (values.against !== undefined) {
  const url = pathToFileURL(join(resolve(values.against), 'packages/iprep/src/behaviour/index.ts')).href;
  const against = (await import(url)) as { BehaviourTracker: new (config: BehaviourConfig) => Tracker };
  trackers.push({ name: values.against, tracker: new against.BehaviourTracker(config), hit: Number.POSITIVE_INFINITY, evaluate: Number.POSITIVE_INFINITY });
}
trackers.push({ name: 'this checkout', tracker: new BehaviourTracker(config), hit: Number.POSITIVE_INFINITY, evaluate: Number.POSITIVE_INFINITY });

// A ring of sources: random, or Zipf draws over clients (the same as bench/hot-path.ts).
const random32 = seededRandom32();
const RING = 1 << 18;
const addresses = sourceRing(RING, clientCount, Number(values.zipf), random32);

const now = 1_800_000_000_000;
let sink = 0;
const cpuMs = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};
// Warm-up: JIT, and the table filled to its bound.
for (const { tracker } of trackers) {
  for (let i = 0; i < Math.max(400_000, 2 * maxClients); i++) {
    const address = addresses[i & (RING - 1)] as Uint8Array;
    tracker.hit(address, 1, now);
    sink += tracker.evaluate(address, now, false) === undefined ? 0 : 1;
  }
}
let at = 0;
for (let pass = 0; pass < Number(values.repeat); pass++) {
  // Alternate which goes first, so that neither always inherits the other's cache.
  for (let j = 0; j < trackers.length; j++) {
    const t = trackers[(j + pass) % trackers.length] as (typeof trackers)[number];
    const { tracker } = t;
    let started = cpuMs();
    for (let i = 0; i < messages; i++) tracker.hit(addresses[(at + i) & (RING - 1)] as Uint8Array, 1, now);
    t.hit = Math.min(t.hit, ((cpuMs() - started) * 1e6) / messages);
    started = cpuMs();
    // The next addresses, not those just counted: with random sources those would be no new clients.
    for (let i = messages; i < 2 * messages; i++) {
      const address = addresses[(at + i) & (RING - 1)] as Uint8Array;
      tracker.hit(address, 1, now);
      sink += tracker.evaluate(address, now, false) === undefined ? 0 : 1;
    }
    t.evaluate = Math.min(t.evaluate, ((cpuMs() - started) * 1e6) / messages);
  }
  at += 2 * messages;
}
process.stdout.write(
  `${clientCount > 0 ? `Zipf ${values.zipf} over ${clientCount.toLocaleString('en-US')} clients` : 'random sources'}, max-clients ${maxClients.toLocaleString('en-US')}, ` +
    `least CPU time of ${values.repeat} passes of ${messages.toLocaleString('en-US')} messages\n`,
);
for (const t of trackers)
  process.stdout.write(`${t.name.padEnd(32)} hit ${t.hit.toFixed(0).padStart(5)} ns   hit + evaluate ${t.evaluate.toFixed(0).padStart(5)} ns\n`);
process.stdout.write(`(checksum ${sink % 1000})\n`);
