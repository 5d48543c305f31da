/** sd_listen_fds(3) as spoa reads it: the pid check, the count, and the variables removed. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SUCCESSOR_ENV, takeListenFd } from '../../src/net/systemd.js';

describe('takeListenFd', () => {
  it('takes descriptor 3 when LISTEN_PID is this process, and removes the variables', () => {
    const env: NodeJS.ProcessEnv = { LISTEN_PID: '42', LISTEN_FDS: '1', LISTEN_FDNAMES: 'spoa.socket', PATH: '/bin' };
    assert.equal(takeListenFd(env, 42), 3);
    assert.deepEqual(env, { PATH: '/bin' });
  });

  it('ignores descriptors meant for another process, or none passed, and still removes the variables', () => {
    for (const env of [
      { LISTEN_PID: '41', LISTEN_FDS: '1' },
      { LISTEN_FDS: '1' },
      { LISTEN_PID: '42' },
      { LISTEN_PID: '42', LISTEN_FDS: '0' },
      { LISTEN_PID: 'x', LISTEN_FDS: '1' },
    ]) {
      const copy: NodeJS.ProcessEnv = { ...env };
      assert.equal(takeListenFd(copy, 42), undefined, JSON.stringify(env));
      assert.deepEqual(copy, {});
    }
  });

  it('takes descriptor 3 from a parent primary that names itself (its successor), never from another process', () => {
    const env: NodeJS.ProcessEnv = { [SUCCESSOR_ENV]: '7', LISTEN_FDS: '1', PATH: '/bin' };
    assert.equal(takeListenFd(env, 42, 7), 3);
    assert.deepEqual(env, { PATH: '/bin' });
    for (const other of [
      { [SUCCESSOR_ENV]: '8', LISTEN_FDS: '1' },
      { [SUCCESSOR_ENV]: '7' },
      { [SUCCESSOR_ENV]: '7x', LISTEN_FDS: '1' },
      { [SUCCESSOR_ENV]: '7', LISTEN_PID: '41', LISTEN_FDS: '1' },
    ]) {
      const copy: NodeJS.ProcessEnv = { ...other };
      assert.equal(takeListenFd(copy, 42, 7), undefined, JSON.stringify(other));
      assert.deepEqual(copy, {});
    }
  });

  it('refuses a broken count, or more sockets than the one spoa listens on', () => {
    assert.throws(() => takeListenFd({ LISTEN_PID: '42', LISTEN_FDS: 'many' }, 42), /LISTEN_FDS must be a count/);
    assert.throws(() => takeListenFd({ LISTEN_PID: '42', LISTEN_FDS: '2' }, 42), /passed 2 sockets/);
  });
});
