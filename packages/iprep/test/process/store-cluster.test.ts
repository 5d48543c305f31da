import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'spop';
import { waitFor } from 'test-support/wait';
import { channelPair } from '../../src/cluster/index.js';
import { ClusterStoreHost, IpcCounterStore, IpcDecisionStore, type ClusterStoreMessage, type IpcChannel } from '../../src/store/cluster.js';
import { encodeDecision } from '../../src/store/codec.js';
import type { Decision, DecisionChange } from '../../src/types.js';
import { decision, describeCounterStoreContract, describeDecisionStoreContract, T0 } from '../store-contract.js';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const workerScript = fileURLToPath(new URL('../fixtures/cluster-store-worker.ts', import.meta.url));

const hosts: ClusterStoreHost[] = [];
after(async () => {
  await Promise.all(hosts.map((h) => h.close()));
});

// The same contract as the memory and Redis stores, host and worker store in one process.
describeDecisionStoreContract('cluster (IPC to the primary)', async ({ now, pruneIntervalMs }) => {
  const host = new ClusterStoreHost({ now, pruneIntervalMs, logger: quiet });
  hosts.push(host);
  await host.start();
  const { primaryEnd, workerEnd } = channelPair<ClusterStoreMessage>();
  host.attach(primaryEnd);
  return { store: new IpcDecisionStore({ channel: workerEnd, now, logger: quiet }), settle: async () => {} };
});

describeCounterStoreContract('cluster (IPC to the primary)', async () => {
  const host = new ClusterStoreHost({ logger: quiet });
  hosts.push(host);
  await host.start();
  const { primaryEnd, workerEnd } = channelPair<ClusterStoreMessage>();
  host.attach(primaryEnd);
  return new IpcCounterStore({ channel: workerEnd });
});

type FixtureMessage =
  | { fixture: 'ready'; keys: string[] }
  | { fixture: 'start-failed'; error: string }
  | { fixture: 'change'; change: DecisionChange }
  | { fixture: 'result'; ref: number; value: unknown; keys: string[] }
  | { fixture: 'error'; ref: number; error: string };

/** A forked worker running the IPC stores (test/fixtures/cluster-store-worker.ts). */
class Worker {
  readonly child: ChildProcess;
  readonly changes: DecisionChange[] = [];
  readonly started: Promise<FixtureMessage>;
  #ref = 0;
  readonly #results = new Map<number, (message: FixtureMessage) => void>();

  constructor(host: ClusterStoreHost | undefined, env: Record<string, string> = {}) {
    this.child = fork(workerScript, [], { execArgv: ['--import', 'tsx'], env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    workers.add(this.child);
    // Attached at once, as the primary does: the worker's first request waits in the channel meanwhile.
    host?.attach(this.child);
    this.started = new Promise((resolve, reject) => {
      this.child.once('exit', (code, signal) => reject(new Error(`worker exited (${code ?? signal}) before it started`)));
      this.child.on('message', (raw: unknown) => {
        const message = raw as FixtureMessage;
        if (message.fixture === 'ready' || message.fixture === 'start-failed') resolve(message);
        else if (message.fixture === 'change') this.changes.push(message.change);
        else if (message.fixture === 'result' || message.fixture === 'error') this.#results.get(message.ref)?.(message);
      });
    });
  }

  /** Runs a command in the worker; resolves with its result and the worker's snapshot keys just after. */
  async call(command: Record<string, unknown>): Promise<{ value: unknown; keys: string[] }> {
    const ref = ++this.#ref;
    const reply = new Promise<FixtureMessage>((resolve) => this.#results.set(ref, resolve));
    this.child.send({ ...command, ref });
    const message = await reply;
    if (message.fixture === 'error') throw new Error(message.error);
    assert.ok(message.fixture === 'result');
    return { value: message.value, keys: message.keys };
  }

  async ready(): Promise<string[]> {
    const message = await this.started;
    assert.ok(message.fixture === 'ready', `the worker did not start: ${JSON.stringify(message)}`);
    return message.keys;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await exited;
  }
}

const workers = new Set<ChildProcess>();
after(() => {
  for (const child of workers) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

function until(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  return waitFor(what, condition, timeoutMs, 10);
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'iprep-cluster-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('ClusterStoreHost with forked workers', () => {
  it('starts workers from the file, shares puts and deletes (each once, in order), writes the file', async () => {
    const dir = tempDir();
    const file = join(dir, 'decisions.jsonl');
    const kept = decision('192.0.2.1');
    writeFileSync(file, `${encodeDecision(kept)}\n`);
    const host = new ClusterStoreHost({ decisionsFile: file, logger: quiet });
    await host.start();
    const w1 = new Worker(host);
    const w2 = new Worker(host);
    try {
      assert.deepEqual(await w1.ready(), [kept.key], 'the snapshot at start holds the kept decision');
      assert.deepEqual(await w2.ready(), [kept.key]);

      const b = decision('192.0.2.2', { action: 'captcha', score: 30 });
      const c = decision('2001:db8::3');
      const putB = await w1.call({ command: 'put', decision: b });
      assert.deepEqual(putB.keys, [kept.key, b.key], 'a put resolves after its change reached the writer');
      await w2.call({ command: 'put', decision: c });
      await w1.call({ command: 'put', decision: { ...b } }); // the same decision again: no change
      const deleted = await w1.call({ command: 'delete', key: b.key });
      assert.equal(deleted.value, true);
      assert.equal((await w2.call({ command: 'delete', key: b.key })).value, false, 'a second delete finds nothing');

      const expected: DecisionChange[] = [
        { op: 'put', decision: kept }, // the snapshot, to a listener subscribed before start()
        { op: 'put', decision: b },
        { op: 'put', decision: c },
        { op: 'delete', key: b.key },
      ];
      await until('both workers to see four changes', () => w1.changes.length >= 4 && w2.changes.length >= 4);
      await sleep(100); // room for a duplicate to show up
      assert.deepEqual(w1.changes, expected);
      assert.deepEqual(w2.changes, expected);
      assert.deepEqual(
        host
          .snapshot()
          .map((d) => d.key)
          .sort(),
        [kept.key, c.key],
      );
    } finally {
      await Promise.all([w1.stop(), w2.stop()]);
      await host.close();
    }
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    assert.deepEqual(lines.map((l) => (JSON.parse(l) as Decision).key).sort(), [kept.key, 'ip:2001:db8::3']);
  });

  it('sums counters across workers and returns the totals of the flushed keys', async () => {
    const host = new ClusterStoreHost({ logger: quiet });
    await host.start();
    const w1 = new Worker(host);
    const w2 = new Worker(host);
    try {
      await Promise.all([w1.ready(), w2.ready()]);
      const at = T0 + 3_600_000;
      const flush = (w: Worker, deltas: [string, number][], now: number) => w.call({ command: 'flush', deltas, windowMs: 60_000, now });
      assert.deepEqual((await flush(w1, [['a', 3]], at)).value, [['a', 3]]);
      assert.deepEqual(
        (
          await flush(
            w2,
            [
              ['a', 4],
              ['b', 1],
            ],
            at + 10,
          )
        ).value,
        [
          ['a', 7],
          ['b', 1],
        ],
      );
      assert.deepEqual((await flush(w1, [['b', 2]], at + 20)).value, [['b', 3]]);
      // A flush stamped a little earlier than the last one (another worker's clock read) still adds up.
      assert.deepEqual((await flush(w2, [['a', 1]], at + 5)).value, [['a', 8]]);
    } finally {
      await Promise.all([w1.stop(), w2.stop()]);
      await host.close();
    }
  });

  it('a dead worker does not break the host: the others and new ones carry on', async () => {
    const host = new ClusterStoreHost({ logger: quiet });
    await host.start();
    const w1 = new Worker(host);
    const w2 = new Worker(host);
    try {
      await Promise.all([w1.ready(), w2.ready()]);
      await w1.call({ command: 'put', decision: decision('192.0.2.10') });
      await w1.stop(); // SIGKILL: its channel closes under the host
      const d = decision('192.0.2.11');
      const put = await w2.call({ command: 'put', decision: d }); // broadcast goes to w2 only now
      assert.deepEqual(put.keys, ['ip:192.0.2.10', 'ip:192.0.2.11']);
      const w3 = new Worker(host);
      try {
        assert.deepEqual(await w3.ready(), ['ip:192.0.2.10', 'ip:192.0.2.11'], 'a new worker gets the current snapshot');
        await w3.call({ command: 'delete', key: d.key });
        await until('w2 to see the delete', () => w2.changes.some((c) => c.op === 'delete'));
      } finally {
        await w3.stop();
      }
    } finally {
      await w2.stop();
      await host.close();
    }
  });

  it('a request the primary never answers fails after the timeout with a clear error', async () => {
    const lonely = new Worker(undefined, { REQUEST_TIMEOUT_MS: '200' });
    try {
      const started = Date.now();
      const message = await lonely.started;
      assert.ok(message.fixture === 'start-failed', 'no host: start must fail');
      assert.equal(message.error, 'cluster store: no answer from the primary to subscribe within 200 ms');
      assert.ok(Date.now() - started >= 150);
      await assert.rejects(
        lonely.call({ command: 'flush', deltas: [['a', 1]], windowMs: 1000, now: T0 }),
        /^Error: cluster store: no answer from the primary to flush within 200 ms$/,
      );
      await assert.rejects(lonely.call({ command: 'put', decision: decision('192.0.2.20') }), /no answer from the primary to put/);
    } finally {
      await lonely.stop();
    }
  });
});

describe('ClusterStoreHost requests', () => {
  /** A host attached to one in-process channel, and that channel's worker end. */
  async function hostAndEnd(): Promise<{ host: ClusterStoreHost; worker: IpcChannel; replies: unknown[] }> {
    const host = new ClusterStoreHost({ logger: quiet });
    hosts.push(host);
    await host.start();
    const { primaryEnd, workerEnd: worker } = channelPair<ClusterStoreMessage>();
    host.attach(primaryEnd);
    const replies: unknown[] = [];
    worker.on('message', (m) => replies.push(m));
    return { host, worker, replies };
  }
  const raw = (channel: IpcChannel, message: object): void => {
    channel.send(message as never, () => {});
  };

  it('refuses bad requests with a reason, ignores untagged messages, keeps serving', async () => {
    const { host, worker, replies } = await hostAndEnd();
    raw(worker, { hello: 'an unrelated IPC message' });
    raw(worker, { tag: 'iprep-cluster-store', id: 1, type: 'put', decision: 'not json' });
    raw(worker, { tag: 'iprep-cluster-store', id: 2, type: 'put', decision: JSON.stringify({ key: 'ip:x' }) });
    raw(worker, { tag: 'iprep-cluster-store', id: 3, type: 'flush', deltas: [['a', 'many']], windowMs: 1000, now: T0 });
    raw(worker, { tag: 'iprep-cluster-store', id: 4, type: 'flush', deltas: [], windowMs: 0, now: T0 });
    raw(worker, { tag: 'iprep-cluster-store', id: 5, type: 'explode' });
    raw(worker, { tag: 'iprep-cluster-store', type: 'put' }); // no id: nothing to answer
    raw(worker, { tag: 'iprep-cluster-store', id: 6, type: 'delete', key: 'ip:192.0.2.1' });
    await until('six replies', () => replies.length >= 6);
    await sleep(20);
    const expected: [number, string, RegExp | undefined][] = [
      [1, 'failed', /^not JSON: /],
      [2, 'failed', /^field scope must be a string$/],
      [3, 'failed', /^flush: deltas must be an array of \[key, number\] pairs$/],
      [4, 'failed', /^flush: windowMs must be a positive number$/],
      [5, 'failed', /^unknown request type "explode"$/],
      [6, 'deleted', undefined],
    ];
    assert.equal(replies.length, expected.length);
    expected.forEach(([id, type, error], i) => {
      const reply = replies[i] as { tag: string; id: number; type: string; error?: string };
      assert.deepEqual([reply.tag, reply.id, reply.type], ['iprep-cluster-store', id, type]);
      if (error === undefined) assert.equal(reply.error, undefined);
      else assert.match(reply.error ?? '', error);
    });
    assert.equal(host.snapshot().length, 0);
  });

  it('a snapshot goes out before any change that follows it, even when requests arrive in one turn', async () => {
    const host = new ClusterStoreHost({ logger: quiet });
    hosts.push(host);
    await host.start();
    const primaryEnd = new EventEmitter();
    const sent: { type: string; id?: number; decisions?: string[] }[] = [];
    host.attach({
      send: (message, callback) => {
        sent.push(message as (typeof sent)[number]);
        callback(null);
        return true;
      },
      on: (event, listener) => primaryEnd.on(event, listener),
      off: (event, listener) => primaryEnd.off(event, listener),
    });
    // As when one read of the pipe holds both: the second is handled before any promise settles.
    primaryEnd.emit('message', { tag: 'iprep-cluster-store', id: 1, type: 'subscribe' });
    primaryEnd.emit('message', { tag: 'iprep-cluster-store', id: 2, type: 'put', decision: encodeDecision(decision('192.0.2.40')) });
    await until('three messages', () => sent.length >= 3);
    assert.deepEqual(
      sent.map((m) => [m.type, m.id]),
      [
        ['snapshot', 1],
        ['change', undefined],
        ['stored', 2],
      ],
    );
    assert.deepEqual(sent[0]?.decisions, []);
  });

  it('a stuck primary holds at most 10,000 requests of a store: one more fails at once, and close fails them all', async () => {
    const { workerEnd } = channelPair<ClusterStoreMessage>(); // nobody at the primary's end
    const store = new IpcCounterStore({ channel: workerEnd, requestTimeoutMs: 10_000 });
    const flush = (): Promise<string> =>
      store.flush(new Map([['a', 1]]), 1000, T0).then(
        () => 'answered',
        (error: Error) => error.message,
      );
    const waiting = Array.from({ length: 10_000 }, flush);
    const started = Date.now();
    assert.equal(await flush(), 'cluster store: 10000 requests already wait for the primary: flush refused');
    assert.ok(Date.now() - started < 1000, 'refused at once, not after the timeout');
    assert.deepEqual(store.health(), { kind: 'memory', up: true, detail: 'shared by the primary process' }, 'a refusal here is not an outage');
    await store.close();
    assert.deepEqual(new Set(await Promise.all(waiting)), new Set(['cluster store: closed before the primary answered']));
  });

  it('requests waiting fail at once when the channel to the primary closes, and health says so', async () => {
    const pair = channelPair<ClusterStoreMessage>(); // nobody answers
    const store = new IpcCounterStore({ channel: pair.workerEnd, requestTimeoutMs: 10_000 });
    const waiting = store.flush(new Map([['a', 1]]), 1000, T0);
    await sleep(5);
    const started = Date.now();
    pair.disconnect();
    await assert.rejects(waiting, /^Error: cluster store: the channel to the primary closed$/);
    assert.ok(Date.now() - started < 1000);
    assert.deepEqual(store.health(), { kind: 'memory', up: false, detail: 'cluster store: the channel to the primary closed' });
    await store.close();
  });

  it("a refused request rejects the worker store's promise with the primary's reason", async () => {
    const { worker } = await hostAndEnd();
    const store = new IpcDecisionStore({ channel: worker, logger: quiet });
    await store.start();
    const bad = { ...decision('192.0.2.30'), action: 'shrug' } as unknown as Decision;
    await assert.rejects(store.put(bad), /^Error: cluster store: the primary refused put: field action must be one of allow, log, captcha, tarpit, deny$/);
    assert.deepEqual(store.snapshot(), []);
    assert.deepEqual(store.health(), { kind: 'memory', up: true, detail: 'shared by the primary process' }, 'a refusal is not an outage');
    await store.close();
  });
});

describe('ClusterStoreHost.merge: the decisions of a predecessor primary', () => {
  it('takes each valid decision (broadcast to the workers), skips bad ones, refuses what is not an array', async () => {
    const before = new ClusterStoreHost({ logger: quiet });
    const after = new ClusterStoreHost({ logger: quiet });
    hosts.push(before, after);
    await Promise.all([before.start(), after.start()]);
    const { primaryEnd, workerEnd } = channelPair<ClusterStoreMessage>();
    after.attach(primaryEnd);
    const worker = new IpcDecisionStore({ channel: workerEnd, logger: quiet });
    await worker.start();
    assert.equal(await before.merge([encodeDecision(decision('192.0.2.7')), encodeDecision(decision('192.0.2.8'))]), 2);
    const taken = await after.merge([...before.encodedSnapshot(), 'not json', 42]);
    assert.equal(taken, 2);
    await waitFor('the worker got both', () => worker.snapshot().length === 2, 2000);
    assert.deepEqual(
      worker
        .snapshot()
        .map((d) => d.value)
        .sort(),
      ['192.0.2.7', '192.0.2.8'],
    );
    await assert.rejects(after.merge({ length: 1 }), /an array of at most/);
    await worker.close();
  });
});
