/** test-support itself: one freePort, the HAProxy binary override, and waitFor's deadline. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as testkit from 'spop/testkit';
import { haproxyPath } from 'test-support/haproxy';
import { repoRoot } from 'test-support/paths';
import { freePort } from 'test-support/ports';
import { waitFor } from 'test-support/wait';

describe('test-support', () => {
  it('hands out the library test kit’s freePort, not a copy of its own', () => {
    assert.equal(freePort, testkit.freePort);
  });

  it('finds HAProxy under .cache unless HAPROXY_BIN_<version> names another binary', () => {
    const saved = process.env.HAPROXY_BIN_2_6;
    try {
      delete process.env.HAPROXY_BIN_2_6;
      assert.equal(haproxyPath('2.6'), join(repoRoot, '.cache', 'haproxy', '2.6', 'haproxy'));
      process.env.HAPROXY_BIN_2_6 = '/opt/haproxy-2.6/sbin/haproxy';
      assert.equal(haproxyPath('2.6'), '/opt/haproxy-2.6/sbin/haproxy');
      assert.equal(haproxyPath('3.2'), join(repoRoot, '.cache', 'haproxy', '3.2', 'haproxy'));
    } finally {
      if (saved === undefined) delete process.env.HAPROXY_BIN_2_6;
      else process.env.HAPROXY_BIN_2_6 = saved;
    }
  });

  it('waitFor resolves once the condition holds and names what it waited for at the deadline', async () => {
    let polls = 0;
    await waitFor('three polls', () => ++polls >= 3, 1000, 1);
    assert.equal(polls, 3);
    await assert.rejects(
      waitFor(
        () => 'a state that never comes',
        () => false,
        50,
        5,
      ),
      /timed out after 50 ms waiting for a state that never comes/,
    );
  });
});
