/** test-support itself: one freePort, the HAProxy binary override, the Redis lookup, and waitFor's deadline. */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as testkit from 'spop/testkit';
import { haproxyPath } from 'test-support/haproxy';
import { repoRoot } from 'test-support/paths';
import { freePort } from 'test-support/ports';
import { redisBinary } from 'test-support/redis';
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

  it('finds redis-server on PATH first, then unpacked under .cache/redis/bin, else nowhere', () => {
    const dir = mkdtempSync(join(tmpdir(), 'redis-lookup-'));
    try {
      const fake = (path: string): string => {
        mkdirSync(join(path, '..'), { recursive: true });
        writeFileSync(path, '#!/bin/sh\n');
        chmodSync(path, 0o755);
        return path;
      };
      const onPath = fake(join(dir, 'path', 'redis-server'));
      const cacheDir = join(dir, 'cache');
      const cached = fake(join(cacheDir, 'redis', 'bin', 'redis-server'));
      const emptyPath = join(dir, 'empty');
      mkdirSync(emptyPath);
      assert.equal(redisBinary('redis-server', { path: `${emptyPath}:${join(dir, 'path')}`, cacheDir }), onPath);
      assert.equal(redisBinary('redis-server', { path: emptyPath, cacheDir }), cached);
      assert.equal(redisBinary('redis-cli', { path: emptyPath, cacheDir }), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
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
