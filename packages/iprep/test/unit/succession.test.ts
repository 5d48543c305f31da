/**
 * The primary's replacement by a successor, with a stand-in successor (a small node script) and fake
 * workers: refused without the socket; a successor that exits or is not ready in time is stopped and
 * the old primary serves on; asks coalesce; once ready, the workers hand over, the decisions go to
 * the successor, and the old primary leaves (code 1 if the successor died meanwhile).
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'spop';
import { HANDOVER_TAG } from '../../src/cluster/handover.js';
import { PrimaryReplacement, SUCCESSION_TAG } from '../../src/cluster/succession.js';
import { type SupervisedWorker, WorkerSupervisor } from '../../src/cluster/supervisor.js';
import { running } from 'test-support/processes';
import { waitFor } from 'test-support/wait';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };
/** Stands in for the listening socket passed on as descriptor 3. */
const fd = openSync('/dev/null', 'r');
after(() => closeSync(fd));

/** A worker that leaves when asked to hand over. */
class LeavingWorker implements SupervisedWorker {
  readonly events = new EventEmitter();
  constructor(readonly pid: number) {}
  onMessage(listener: (message: unknown, handle: unknown) => void): void {
    this.events.on('message', listener);
  }
  onExit(listener: (code: number | null, signal: string | null) => void): void {
    this.events.on('exit', listener);
  }
  kill(): void {}
  send(message: { readonly tag: string; readonly type?: unknown }): void {
    if (message.tag === HANDOVER_TAG && message.type === 'hand-over') setImmediate(() => this.events.emit('exit', 0, null));
  }
  sendHandle(): void {}
}

function supervisor(): WorkerSupervisor {
  let pid = 3000;
  const s = new WorkerSupervisor({ workers: 1, fork: () => new LeavingWorker(pid++), logger: quiet, stopTimeoutMs: 1000 });
  s.start();
  return s;
}

/** A successor: a node script run with an IPC channel. */
function script(source: string) {
  return { file: process.execPath, args: ['-e', source] };
}

const READY = `process.send({ tag: '${SUCCESSION_TAG}', type: 'ready', workers: [11, 12] });`;

describe('PrimaryReplacement', () => {
  it('is refused without the socket systemd passed', async () => {
    const replacement = new PrimaryReplacement({
      fd: undefined,
      supervisor: supervisor(),
      logger: quiet,
      retireDelayMs: 0,
      exit: () => assert.fail('no exit'),
    });
    const result = await replacement.replace();
    assert.ok(!result.ok && /socket activation/.test(result.error), JSON.stringify(result));
  });

  it('stops a successor not ready in time, or one that exits, and serves on', async () => {
    const slow = new PrimaryReplacement({
      fd,
      supervisor: supervisor(),
      logger: quiet,
      retireDelayMs: 0,
      readyTimeoutMs: 300,
      exit: () => assert.fail('no exit'),
      command: script('setInterval(() => {}, 1000); console.log(process.pid);'),
    });
    const first = slow.replace();
    assert.equal(slow.replace(), first, 'asked again meanwhile: the same replacement');
    const result = await first;
    assert.ok(!result.ok && /not ready within 300 ms/.test(result.error), JSON.stringify(result));

    const failing = new PrimaryReplacement({
      fd,
      supervisor: supervisor(),
      logger: quiet,
      retireDelayMs: 0,
      exit: () => assert.fail('no exit'),
      command: script('process.exit(3)'),
    });
    const exited = await failing.replace();
    assert.ok(!exited.ok && /exited before it was ready \(code 3/.test(exited.error), JSON.stringify(exited));
  });

  it('once the successor is ready: the workers hand over, the decisions follow, and this primary leaves', async () => {
    let code: number | undefined;
    const replacement = new PrimaryReplacement({
      fd,
      supervisor: supervisor(),
      logger: quiet,
      retireDelayMs: 0,
      decisions: () => ['{"key":"ip:192.0.2.7"}'],
      exit: (c) => (code = c),
      // Exits with 0 only once the decisions came, and the channel then closed.
      command: script(`${READY}
        let got = false;
        process.on('message', (m) => { if (m.type === 'decisions' && m.decisions.length === 1) got = true; });
        process.on('disconnect', () => process.exit(got ? 0 : 9));`),
    });
    const result = await replacement.replace();
    assert.ok(result.ok, JSON.stringify(result));
    assert.deepEqual(result.workers, [11, 12]);
    assert.deepEqual(result.retired, [3000]);
    assert.ok(result.primary !== undefined && result.primary > 0);
    await waitFor('the old primary leaves', () => code !== undefined, 5000);
    assert.equal(code, 0);
    await waitFor('the successor got the decisions, then the channel closed', () => !running(result.primary!), 5000);
  });

  it('leaves with code 1 when the successor died while taking over', async () => {
    let code: number | undefined;
    const replacement = new PrimaryReplacement({
      fd,
      supervisor: supervisor(),
      logger: quiet,
      retireDelayMs: 200,
      exit: (c) => (code = c),
      command: script(`${READY} setTimeout(() => process.exit(0), 20);`),
    });
    assert.equal((await replacement.replace()).ok, true);
    await waitFor('the old primary leaves', () => code !== undefined, 5000);
    assert.equal(code, 1);
  });

  it('abort() stops a successor still starting', async () => {
    const replacement = new PrimaryReplacement({
      fd,
      supervisor: supervisor(),
      logger: quiet,
      retireDelayMs: 0,
      exit: () => assert.fail('no exit'),
      command: script('setInterval(() => {}, 1000)'),
    });
    const pending = replacement.replace();
    await sleep(200);
    replacement.abort();
    const result = await pending;
    assert.ok(!result.ok && /signal SIGTERM/.test(result.error), JSON.stringify(result));
  });
});
