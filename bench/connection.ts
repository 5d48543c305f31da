/**
 * What the library costs per NOTIFY from a socket's chunk to the ACK bytes written, in-process: a
 * stub socket feeds an agent's connection chunks of --depth pipelined NOTIFY (one message, one IPv4
 * argument, as HAProxy sends `check-client-ip`) and takes its writes. No network, no other process:
 * this is the library's per-message path alone (frame parsing, decoding, dispatch, ACK encoding),
 * for handlers answering like the seed (one pre-encoded action) and like reputation mode (a list
 * of four pre-encoded actions, and that list pre-encoded as one).
 *
 *   node --import tsx bench/connection.ts [--messages N] [--depth N] [--repeat N]
 *
 * Costs are CPU time (process.cpuUsage: the time a preempted process waits is not counted), the
 * least of --repeat passes.
 */
import { parseArgs } from 'node:util';
import { type Action, Agent, type MessageHandler, T, preEncode, setVar, silentLogger } from 'spop';
import { seededRandom32 } from './random.js';
import { notifyChunks, stubConnection } from './stub-socket.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000000' },
    depth: { type: 'string', default: '20' },
    repeat: { type: 'string', default: '5' },
  },
});
const messages = Number(values.messages);
const depth = Number(values.depth);

const random32 = seededRandom32();

/** Chunks of `depth` NOTIFY frames with increasing stream ids and random sources. */
const RING = 4096;
const chunks = notifyChunks(RING, depth, () => {
  const n = random32();
  return Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
});

const scores = Array.from({ length: 101 }, (_, score) => preEncode(setVar('sess', 'ip_score', T.uint32(score))));
const listed = [
  scores[70] as Action,
  preEncode(setVar('sess', 'action', T.str('deny'))),
  preEncode(setVar('sess', 'category', T.str('attacker'))),
  preEncode(setVar('sess', 'source', T.str('deny'))),
];
const listedAsOne = preEncode(listed);
const handlers: Record<string, MessageHandler> = {
  'one action (the seed)': (message) => {
    const ip = message.arg(0);
    return ip === undefined ? undefined : scores[random32() % 101];
  },
  'four actions (reputation)': (message) => (message.arg(0) === undefined ? undefined : listed),
  'four actions, one list': (message) => (message.arg(0) === undefined ? undefined : listedAsOne),
};

const results: Array<{ name: string; best: number }> = [];
for (const [name, handler] of Object.entries(handlers)) {
  const agent = new Agent({ logger: silentLogger }).message('check-client-ip', handler);
  const socket = stubConnection(agent);
  const frames = Math.ceil(messages / depth);
  for (let i = 0; i < 20_000; i++) socket.emit('data', chunks[i % RING]); // warm-up
  let best = Number.POSITIVE_INFINITY;
  for (let pass = 0; pass < Number(values.repeat); pass++) {
    const started = process.cpuUsage();
    for (let i = 0; i < frames; i++) socket.emit('data', chunks[i % RING]);
    const used = process.cpuUsage(started);
    best = Math.min(best, ((used.user + used.system) * 1e3) / (frames * depth));
  }
  results.push({ name, best });
  if (agent.stats.acks === 0 || socket.written === 0) throw new Error(`${name}: no ACK written`);
  socket.destroy();
  await agent.close({ timeout: 100 });
}
process.stdout.write(`${messages.toLocaleString('en-US')} NOTIFY, ${depth} per chunk\n`);
for (const r of results) process.stdout.write(`${r.name.padEnd(28)} ${r.best.toFixed(0).padStart(6)} ns CPU/message\n`);
