/**
 * examples/systemd: the units parse (systemd-analyze verify, where installed), the service's command
 * line is one spoa accepts, its reload replaces the primary and its workers without a gap, and the socket unit passes one socket.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { examplesDir } from 'test-support/paths';
import { parseCli } from '../../src/cli.js';

const service = readFileSync(join(examplesDir, 'systemd/spoa.service'), 'utf8');
const socket = readFileSync(join(examplesDir, 'systemd/spoa.socket'), 'utf8');

function values(unit: string, key: string): string[] {
  return [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!.trim());
}

describe('examples/systemd', () => {
  it('starts spoa with options it accepts, supervised, and reloads by replacing the primary (spoa restart --primary)', () => {
    const [execStart] = values(service, 'ExecStart');
    const [binary, ...args] = execStart!.split(/\s+/);
    assert.match(binary!, /\/spoa$/);
    const flags = parseCli(args);
    assert.ok(flags !== 'help' && flags !== 'version');
    assert.equal(flags.supervise, true);
    // A reload replaces the primary too (the documented path after a package upgrade), on the config's admin API.
    const [config] = args.filter((_, i) => args[i - 1] === '--config');
    assert.deepEqual(values(service, 'ExecReload'), [`${binary} restart --primary --config ${config}`]);
    // The successor primary becomes the main process: systemd-notify MAINPID= from a process that is not the main one.
    assert.deepEqual(values(service, 'NotifyAccess'), ['all']);
    assert.deepEqual(values(service, 'User'), ['spoa']);
    for (const key of ['NoNewPrivileges', 'ProtectSystem', 'ProtectHome', 'PrivateTmp']) assert.equal(values(service, key).length, 1, key);
    assert.equal(values(service, 'KillMode')[0], 'mixed', 'SIGTERM to the primary, which stops its workers gracefully');
  });

  it('passes one stream socket', () => {
    assert.equal(values(socket, 'ListenStream').length, 1);
    assert.deepEqual(values(service, 'Requires'), ['spoa.socket']);
  });

  it('passes systemd-analyze verify', { skip: existsSync('/usr/bin/systemd-analyze') ? false : 'systemd-analyze not installed' }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'spoa-units-'));
    try {
      // The binaries must exist for verify: /bin/true stands in for the installed spoa.
      writeFileSync(join(dir, 'spoa.service'), service.replace(/^ExecStart=\S+/m, 'ExecStart=/bin/true').replace(/^ExecReload=\S+/m, 'ExecReload=/bin/true'));
      writeFileSync(join(dir, 'spoa.socket'), socket);
      const run = spawnSync('systemd-analyze', ['verify', '--man=no', join(dir, 'spoa.socket'), join(dir, 'spoa.service')], {
        encoding: 'utf8',
        env: { ...process.env, SYSTEMD_LOG_LEVEL: 'warning' },
      });
      assert.equal(run.status, 0, run.stderr);
      assert.equal(run.stderr.trim(), '', 'no warning');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
