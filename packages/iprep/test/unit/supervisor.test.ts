/**
 * The primary's worker supervision with fake workers: a rolling restart stops the old generation only
 * once every new worker is ready, a new worker that fails keeps the old ones, restarts asked during
 * one coalesce, and a dead worker is replaced without confusing a retired worker's exit for a crash.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'spop';
import { HANDOVER_TAG, type NativeHandle } from '../../src/cluster/handover.js';
import { type RestartResult, SUPERVISOR_TAG, type SupervisedWorker, WorkerSupervisor } from '../../src/cluster/supervisor.js';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

class FakeWorker implements SupervisedWorker {
  readonly events = new EventEmitter();
  readonly signals: NodeJS.Signals[] = [];
  readonly sent: unknown[] = [];
  exited = false;
  constructor(readonly pid: number) {}
  onMessage(listener: (message: unknown, handle: unknown) => void): void {
    this.events.on('message', listener);
  }
  onExit(listener: (code: number | null, signal: string | null) => void): void {
    this.events.on('exit', listener);
  }
  kill(signal: NodeJS.Signals): void {
    this.signals.push(signal);
  }
  send(message: { readonly tag: string; readonly type: string }): void {
    this.sent.push(message);
  }
  readonly handles: Array<{ message: unknown; handle: FakeHandle }> = [];
  /** Set to make sendHandle fail. */
  sendError: Error | null = null;
  sendHandle(message: unknown, handle: NativeHandle, callback: (error: Error | null) => void): void {
    this.handles.push({ message, handle: handle as FakeHandle });
    setImmediate(() => callback(this.sendError));
  }
  ready(): void {
    this.events.emit('message', { tag: SUPERVISOR_TAG, type: 'ready' });
  }
  exit(code: number | null = 0, signal: string | null = null): void {
    this.exited = true;
    this.events.emit('exit', code, signal);
  }
}

class FakeHandle implements NativeHandle {
  closed = 0;
  close(): void {
    this.closed++;
  }
}

function setup(workers: number, options: { readyTimeoutMs?: number; stopTimeoutMs?: number; onCrashLoop?: (reason: string) => void; handOver?: boolean } = {}) {
  const forked: FakeWorker[] = [];
  const supervisor = new WorkerSupervisor({
    workers,
    fork: () => {
      const worker = new FakeWorker(1000 + forked.length);
      forked.push(worker);
      return worker;
    },
    logger: quiet,
    readyTimeoutMs: options.readyTimeoutMs ?? 1000,
    stopTimeoutMs: options.stopTimeoutMs ?? 1000,
    respawnDelayMs: 10,
    retireDelayMs: 0,
    maxFailedStarts: 3,
    ...(options.onCrashLoop === undefined ? {} : { onCrashLoop: options.onCrashLoop }),
    ...(options.handOver === undefined ? {} : { handOver: options.handOver }),
  });
  supervisor.start();
  for (const worker of forked) worker.ready();
  return { supervisor, forked };
}

describe('WorkerSupervisor', () => {
  it('stops the old workers only once every new one is ready', async () => {
    const { supervisor, forked } = setup(2);
    const done = supervisor.restart();
    await sleep(5);
    assert.equal(forked.length, 4, 'a new generation forked');
    const [old1, old2, new1, new2] = forked as [FakeWorker, FakeWorker, FakeWorker, FakeWorker];
    new1.ready();
    await sleep(5);
    assert.deepEqual(old1.signals, [], 'no old worker stopped while a new one is not ready');
    new2.ready();
    const result = await done;
    assert.deepEqual(old1.signals, [], 'the answer goes out before the old workers are told to stop');
    await sleep(5);
    assert.deepEqual(result, { ok: true, workers: [1002, 1003], retired: [1000, 1001] });
    assert.deepEqual(old1.signals, ['SIGTERM']);
    assert.deepEqual(old2.signals, ['SIGTERM']);
    assert.deepEqual(supervisor.serving(), [1002, 1003]);
    // The retired workers leaving is not a crash: nothing is forked for them.
    old1.exit(0);
    old2.exit(0);
    await sleep(30);
    assert.equal(forked.length, 4);
  });

  it('keeps the old workers when a new one exits before it is ready', async () => {
    const { supervisor, forked } = setup(2);
    const done = supervisor.restart();
    await sleep(5);
    forked[2]!.ready();
    forked[3]!.exit(1);
    const result = await done;
    assert.equal(result.ok, false);
    assert.match(result.ok ? '' : result.error, /1003 exited before it was ready/);
    assert.deepEqual(forked[0]!.signals, [], 'the old workers keep serving');
    assert.deepEqual(forked[2]!.signals, ['SIGTERM'], 'the new worker that was ready leaves');
    assert.deepEqual(supervisor.serving(), [1000, 1001]);
    await sleep(30);
    assert.equal(forked.length, 4, 'a failed new worker is not replaced');
  });

  it('keeps the old workers when the new ones are not ready in time', async () => {
    const { supervisor, forked } = setup(1, { readyTimeoutMs: 50 });
    const result = await supervisor.restart();
    assert.equal(result.ok, false);
    assert.match(result.ok ? '' : result.error, /not ready within 50 ms/);
    assert.deepEqual(forked[0]!.signals, []);
    assert.deepEqual(forked[1]!.signals, ['SIGTERM']);
    assert.deepEqual(supervisor.serving(), [1000]);
  });

  it('kills a worker still running after the stop timeout', async () => {
    const { supervisor, forked } = setup(1, { stopTimeoutMs: 30 });
    const done = supervisor.restart();
    await sleep(5);
    forked[1]!.ready();
    await done;
    await sleep(60);
    assert.deepEqual(forked[0]!.signals, ['SIGTERM', 'SIGKILL']);
  });

  it('coalesces restarts asked while one runs into one more', async () => {
    const { supervisor, forked } = setup(1);
    const first = supervisor.restart();
    const second = supervisor.restart();
    const third = supervisor.restart();
    assert.equal(second, third, 'asks made during a restart share the next one');
    await sleep(5);
    forked[1]!.ready();
    assert.equal((await first).ok, true);
    await sleep(5);
    assert.equal(forked.length, 3, 'one more generation, not two');
    forked[2]!.ready();
    const result = await second;
    assert.deepEqual(result, { ok: true, workers: [1002], retired: [1001] });
  });

  it('replaces a dead worker, also during a restart, and keeps the count', async () => {
    const { supervisor, forked } = setup(2);
    forked[0]!.exit(null, 'SIGKILL');
    await sleep(30);
    assert.equal(forked.length, 3, 'the dead worker was replaced');
    forked[2]!.ready();
    assert.deepEqual(supervisor.serving().sort(), [1001, 1002]);
    const done = supervisor.restart();
    await sleep(5);
    forked[1]!.exit(null, 'SIGKILL'); // an old worker dies during the restart: replaced (then retired)
    await sleep(30);
    assert.equal(forked.length, 6);
    for (const worker of forked.slice(3)) worker.ready();
    const result = await done;
    assert.equal(result.ok, true);
    assert.deepEqual(result.ok ? result.workers : [], [1003, 1004]);
    assert.deepEqual(supervisor.serving(), [1003, 1004], 'two serving, as asked');
  });

  it('answers a leaving worker, so that it exits only once no connection is on its way to it', () => {
    const { forked } = setup(1);
    forked[0]!.events.emit('message', { tag: SUPERVISOR_TAG, type: 'leaving' });
    assert.deepEqual(forked[0]!.sent, [{ tag: SUPERVISOR_TAG, type: 'leave-ok' }]);
  });

  it('tells a retiring worker to stop once, even when stopped meanwhile', async () => {
    const { supervisor, forked } = setup(1);
    const done = supervisor.restart();
    await sleep(5);
    forked[1]!.ready();
    await done;
    await sleep(5);
    void supervisor.stop();
    assert.deepEqual(forked[0]!.signals, ['SIGTERM'], 'a second SIGTERM would cut what it has in flight');
    assert.deepEqual(forked[1]!.signals, ['SIGTERM']);
  });

  it('gives up when replacements keep dying before they are ready (a crash loop)', async () => {
    const reasons: string[] = [];
    const { forked } = setup(1, { onCrashLoop: (reason) => reasons.push(reason) });
    forked[0]!.exit(null, 'SIGKILL'); // it was ready: replaced
    for (let i = 1; i <= 3; i++) {
      await sleep(30);
      assert.equal(forked.length, i + 1);
      forked[i]!.exit(1); // never ready
    }
    await sleep(30);
    assert.equal(forked.length, 4, 'no more replacements after 3 failed starts in a row');
    assert.equal(reasons.length, 1);
    assert.match(reasons[0]!, /3 workers in a row exited before they were ready/);
  });

  it('counts failed starts only in a row: a ready worker resets the count', async () => {
    const reasons: string[] = [];
    const { forked } = setup(1, { onCrashLoop: (reason) => reasons.push(reason) });
    forked[0]!.exit(1);
    await sleep(30);
    forked[1]!.exit(1);
    await sleep(30);
    forked[2]!.ready();
    forked[2]!.exit(1);
    await sleep(30);
    forked[3]!.exit(1);
    await sleep(30);
    assert.equal(forked.length, 5);
    assert.deepEqual(reasons, []);
  });

  it('stops every worker and resolves once all exited; no restart then', async () => {
    const { supervisor, forked } = setup(2);
    let stopped = false;
    const stop = supervisor.stop().then(() => (stopped = true));
    assert.deepEqual(forked[0]!.signals, ['SIGTERM']);
    forked[0]!.exit(0);
    await sleep(30);
    assert.equal(stopped, false);
    assert.equal(forked.length, 2, 'no replacement while stopping');
    forked[1]!.exit(0);
    await stop;
    assert.equal((await supervisor.restart()).ok, false);
  });

  describe('with handOver', () => {
    const connection = { tag: HANDOVER_TAG, type: 'connection', state: { version: '2.0' }, unread: 'AAEC' };

    it('asks the old workers to hand their connections over instead of SIGTERM; stop() still signals', async () => {
      const { supervisor, forked } = setup(1, { handOver: true });
      const done = supervisor.restart();
      await sleep(5);
      const [old, fresh] = forked as [FakeWorker, FakeWorker];
      fresh.ready();
      await done;
      await sleep(5);
      assert.deepEqual(old.signals, []);
      assert.deepEqual(old.sent, [{ tag: HANDOVER_TAG, type: 'hand-over' }]);
      const stopped = supervisor.stop();
      assert.deepEqual(fresh.signals, ['SIGTERM']);
      old.exit();
      fresh.exit();
      await stopped;
    });

    it('passes each connection to a ready serving worker, round robin, never back to its sender; closes its copy once sent', async () => {
      const { supervisor, forked } = setup(2, { handOver: true });
      const done = supervisor.restart();
      await sleep(5);
      const [old1, old2, new1, new2] = forked as [FakeWorker, FakeWorker, FakeWorker, FakeWorker];
      new1.ready();
      new2.ready();
      await done;
      const handles = [new FakeHandle(), new FakeHandle(), new FakeHandle()];
      old1.events.emit('message', connection, handles[0]);
      old1.events.emit('message', connection, handles[1]);
      old2.events.emit('message', connection, handles[2]);
      await sleep(5);
      assert.equal(new1.handles.length + new2.handles.length, 3);
      assert.ok(Math.abs(new1.handles.length - new2.handles.length) <= 1, 'round robin');
      assert.deepEqual([...old1.handles, ...old2.handles], [], 'nothing goes back to an old worker while new ones serve');
      for (const { message } of [...new1.handles, ...new2.handles]) assert.deepEqual(message, { ...connection, type: 'adopt' });
      assert.deepEqual(
        handles.map((h) => h.closed),
        [1, 1, 1],
        "the primary's copy is closed once sent",
      );
      const stopped = supervisor.stop();
      for (const w of forked) w.exit();
      await stopped;
    });

    it('with no serving worker ready, the connection goes back to its sender; a failed send still closes the copy', async () => {
      const { supervisor, forked } = setup(1, { handOver: true });
      const [only] = forked as [FakeWorker];
      only.sendError = new Error('channel closed');
      const handle = new FakeHandle();
      only.events.emit('message', connection, handle);
      await sleep(5);
      assert.equal(only.handles.length, 1, 'back to the sender');
      assert.equal(handle.closed, 1);
      const stopped = supervisor.stop();
      only.exit();
      await stopped;
    });

    it('a malformed hand-over message: its handle is closed, nothing is passed on', async () => {
      const { supervisor, forked } = setup(1, { handOver: true });
      const [only] = forked as [FakeWorker];
      for (const bad of [
        { ...connection, state: null },
        { ...connection, unread: 42 },
        { ...connection, unread: 'A'.repeat(2 << 20) },
        { ...connection, type: 'adopt' },
      ]) {
        const handle = new FakeHandle();
        only.events.emit('message', bad, handle);
        assert.equal(handle.closed, 1, JSON.stringify(bad).slice(0, 60));
      }
      await sleep(5);
      assert.equal(only.handles.length, 0);
      const stopped = supervisor.stop();
      only.exit();
      await stopped;
    });
  });
});

describe('WorkerSupervisor and a successor primary', () => {
  const connection = { tag: HANDOVER_TAG, type: 'connection', state: { version: '2.0' }, unread: 'AAEC' };

  function unready(workers: number, replacePrimary?: () => Promise<RestartResult>) {
    const forked: FakeWorker[] = [];
    const supervisor = new WorkerSupervisor({
      workers,
      fork: () => {
        const worker = new FakeWorker(2000 + forked.length);
        forked.push(worker);
        return worker;
      },
      logger: quiet,
      stopTimeoutMs: 1000,
      respawnDelayMs: 10,
      ...(replacePrimary === undefined ? {} : { replacePrimary }),
    });
    supervisor.start();
    return { supervisor, forked };
  }

  it('whenReady resolves once every worker is ready, not at the first', async () => {
    const { supervisor, forked } = unready(2);
    let workers: readonly number[] | undefined;
    void supervisor.whenReady().then((pids) => (workers = pids));
    forked[0]!.ready();
    await sleep(5);
    assert.equal(workers, undefined, 'one of two ready');
    forked[1]!.ready();
    await sleep(5);
    assert.deepEqual(workers, [2000, 2001]);
  });

  it('handOverAll: every worker hands over, each connection goes to the successor, none is replaced', async () => {
    const { supervisor, forked } = setup(2);
    const received: Array<{ message: unknown; handle: NativeHandle }> = [];
    const all = supervisor.handOverAll({
      send: (message, handle, callback) => {
        received.push({ message, handle });
        callback(null);
      },
    });
    for (const worker of forked) assert.deepEqual(worker.sent, [{ tag: HANDOVER_TAG, type: 'hand-over' }]);
    const handle = new FakeHandle();
    forked[0]!.events.emit('message', connection, handle);
    assert.deepEqual(received[0]?.message, { ...connection, type: 'adopt' });
    assert.equal(handle.closed, 1, "the primary's copy is closed once sent");
    assert.equal(forked[1]!.handles.length, 0, 'not to a worker of this generation');
    for (const worker of forked) worker.exit(0);
    assert.deepEqual(await all, [1000, 1001]);
    await sleep(30);
    assert.equal(forked.length, 2, 'no replacement forked');
    assert.deepEqual(await supervisor.restart(), { ok: false, error: 'the agent is stopping' });
  });

  it('adoptFromPredecessor: to a ready worker, round robin; closed when none is ready', async () => {
    const { supervisor, forked } = unready(2);
    const lost = new FakeHandle();
    supervisor.adoptFromPredecessor({ ...connection, type: 'adopt' } as never, lost);
    assert.equal(lost.closed, 1);
    for (const worker of forked) worker.ready();
    for (let i = 0; i < 2; i++) supervisor.adoptFromPredecessor({ ...connection, type: 'adopt' } as never, new FakeHandle());
    assert.deepEqual(
      forked.map((w) => w.handles.length),
      [1, 1],
    );
    assert.deepEqual(forked[0]!.handles[0]!.message, { ...connection, type: 'adopt' });
  });

  it('a restart request with primary: true replaces the primary, and says so when it cannot', async () => {
    const replaced: RestartResult = { ok: true, workers: [7, 8], retired: [2000], primary: 6 };
    const { forked } = unready(1, () => Promise.resolve(replaced));
    forked[0]!.events.emit('message', { tag: SUPERVISOR_TAG, type: 'restart', id: 1, primary: true });
    await sleep(5);
    assert.deepEqual(forked[0]!.sent, [{ tag: SUPERVISOR_TAG, type: 'restarted', id: 1, result: replaced }]);
    const without = unready(1);
    without.forked[0]!.events.emit('message', { tag: SUPERVISOR_TAG, type: 'restart', id: 2, primary: true });
    await sleep(5);
    assert.deepEqual(without.forked[0]!.sent, [
      { tag: SUPERVISOR_TAG, type: 'restarted', id: 2, result: { ok: false, error: 'this primary cannot be replaced' } },
    ]);
  });
});
