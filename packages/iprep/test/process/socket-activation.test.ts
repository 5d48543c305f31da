/**
 * systemd socket activation, as systemd does it: the listening socket passed as descriptor 3 with
 * LISTEN_FDS=1 and LISTEN_PID set to the agent's pid (a shell that sets it, then exec's the agent in
 * its place). The agent serves that socket, with one process or with workers, and a rolling restart
 * keeps it answering.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeHaproxy } from 'spop/testkit';
import { killAtEnd, running } from 'test-support/processes';
import { waitFor } from 'test-support/wait';
import { startActivated } from 'test-support/socket-activation';

async function answers(port: number): Promise<boolean> {
  try {
    const client = await FakeHaproxy.connect({ port });
    const frame = await client.hello();
    client.close();
    return frame.type === 'agent-hello';
  } catch {
    return false;
  }
}

describe('systemd socket activation (LISTEN_FDS, LISTEN_PID)', () => {
  it('one process serves the socket passed as descriptor 3', async () => {
    const { child, port, otherPort, log } = await startActivated(['-n', '1'], 1);
    assert.equal(await answers(port), true, log());
    assert.equal(await answers(otherPort), false, 'the -p port is not opened');
    assert.match(log(), /systemd/);
    child.kill('SIGTERM');
    await waitFor('spoa exits', () => child.exitCode !== null, 10_000);
  });

  it('workers serve it, and a rolling restart keeps it answering', async () => {
    const { child, port, log, pids } = await startActivated(['-n', '2'], 2);
    const old = pids();
    assert.equal(await answers(port), true, log());
    child.kill('SIGUSR2');
    await waitFor(
      () => `no rolling restart: ${log()}`,
      () => /rolling restart: new workers ready/.test(log()),
      20_000,
    );
    for (const pid of pids()) killAtEnd(pid);
    await waitFor('the old workers exit', () => old.every((pid) => !running(pid)), 10_000);
    assert.equal(await answers(port), true, log());
    child.kill('SIGTERM');
    await waitFor('spoa exits', () => child.exitCode !== null, 10_000);
  });

  it('exits (code 1) rather than loop when every worker died and the socket went with them', async () => {
    // node:cluster's primary closes a socket no worker listens on: replacements cannot listen on it
    // again. Exiting lets systemd start the service afresh, with its socket (Restart=on-failure).
    const { child, pids, log } = await startActivated(['-n', '2'], 2);
    for (const pid of pids()) process.kill(pid, 'SIGKILL');
    await waitFor(
      () => `the primary did not exit: ${log()}`,
      () => child.exitCode !== null,
      20_000,
    );
    assert.equal(child.exitCode, 1);
    assert.match(log(), /workers keep failing at start/);
  });
});
