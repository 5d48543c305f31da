/**
 * scripts/provision.mjs, run by `npm test` before the process and end-to-end suites: what it
 * installs, what it unpacks into .cache, and what it refuses with a message naming the command.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Facts, needsOf, planProvisioning } from '../../scripts/provision.mjs';

const allThere: Facts = {
  needs: needsOf(['process', 'e2e']),
  haproxy: {
    '2.6': { override: undefined, works: true },
    '3.0': { override: undefined, works: true },
    '3.2': { override: undefined, works: true },
  },
  redis: true,
  chromium: { path: '/usr/bin/chromium', overridden: false, present: true },
  apt: true,
  keyring: true,
  root: true,
  sudo: false,
  install: undefined,
};

const missing = { override: undefined, works: false };

describe('provisioning the test run', () => {
  it('needs nothing for the unit suite, Redis and Chromium for the process suite, HAProxy and Redis for e2e', () => {
    assert.deepEqual(needsOf([]), { haproxy: false, redis: false, chromium: false });
    assert.deepEqual(needsOf(['process']), { haproxy: false, redis: true, chromium: true });
    assert.deepEqual(needsOf(['e2e']), { haproxy: true, redis: true, chromium: false });
  });

  it('does nothing when everything is there', () => {
    assert.deepEqual(planProvisioning(allThere), { aptInstall: [], fetchHaproxy: [], fetchRedis: false, failures: [] });
  });

  it('on a fresh Debian machine as root: installs the keyring and Chromium, unpacks every HAProxy and Redis', () => {
    const fresh: Facts = {
      ...allThere,
      haproxy: { '2.6': missing, '3.0': missing, '3.2': missing },
      redis: false,
      chromium: { ...allThere.chromium, present: false },
      keyring: false,
    };
    assert.deepEqual(planProvisioning(fresh), {
      aptInstall: ['debian-archive-keyring', 'chromium'],
      fetchHaproxy: ['2.6', '3.0', '3.2'],
      fetchRedis: true,
      failures: [],
    });
  });

  it('unpacks only the HAProxy versions neither cached nor overridden, and checks an override runs', () => {
    const plan = planProvisioning({
      ...allThere,
      haproxy: { '2.6': { override: '/opt/haproxy/sbin/haproxy', works: false }, '3.0': missing, '3.2': { override: '/usr/sbin/haproxy', works: true } },
    });
    assert.deepEqual(plan.fetchHaproxy, ['3.0']);
    assert.deepEqual(plan.failures, [
      'HAProxy 2.6: HAPROXY_BIN_2_6=/opt/haproxy/sbin/haproxy does not run (`/opt/haproxy/sbin/haproxy -v` fails): point it at a working HAProxy 2.6 binary',
    ]);
  });

  it('as a user, installs nothing and names the one command for Chromium; unpacking needs no root', () => {
    const plan = planProvisioning({ ...allThere, root: false, sudo: true, redis: false, chromium: { ...allThere.chromium, present: false } });
    assert.deepEqual(plan.aptInstall, []);
    assert.equal(plan.fetchRedis, true);
    assert.deepEqual(plan.failures, [
      'Chromium is missing at /usr/bin/chromium: run `sudo apt-get install chromium` (or let the test run do it: SPOA_TEST_INSTALL=1 npm test, with sudo)',
    ]);
  });

  it('installs through sudo with SPOA_TEST_INSTALL=1, and never with SPOA_TEST_INSTALL=0, even as root', () => {
    const noChromium = { ...allThere.chromium, present: false };
    assert.deepEqual(planProvisioning({ ...allThere, root: false, sudo: true, install: '1', chromium: noChromium }).aptInstall, ['chromium']);
    const refused = planProvisioning({ ...allThere, install: '0', chromium: noChromium, keyring: false, redis: false });
    assert.deepEqual(refused.aptInstall, []);
    assert.deepEqual(refused.failures, [
      '/usr/share/keyrings/debian-archive-keyring.gpg is missing (it checks the packages unpacked into .cache): run `apt-get install debian-archive-keyring`',
      'Chromium is missing at /usr/bin/chromium: run `apt-get install chromium`',
    ]);
  });

  it('without apt-get (not Debian), names the variables and tools to provide instead', () => {
    const plan = planProvisioning({
      ...allThere,
      apt: false,
      haproxy: { ...allThere.haproxy, '3.2': missing },
      redis: false,
      chromium: { path: '/opt/chrome/chrome', overridden: true, present: false },
    });
    assert.deepEqual(plan, {
      aptInstall: [],
      fetchHaproxy: [],
      fetchRedis: false,
      failures: [
        "HAProxy 3.2 is missing and apt-get/dpkg are not here to unpack Debian's: set HAPROXY_BIN_3_2=/path/to/haproxy-3.2",
        "redis-server and redis-cli are missing and apt-get/dpkg are not here to unpack Debian's: install Redis so that both are on PATH",
        'Chromium is missing: CHROMIUM_BIN=/opt/chrome/chrome is not an executable',
      ],
    });
  });

  it('asks nothing of a run of the unit suite alone', () => {
    const plan = planProvisioning({ ...allThere, needs: needsOf([]), haproxy: { '2.6': missing, '3.0': missing, '3.2': missing }, redis: false, apt: false });
    assert.deepEqual(plan, { aptInstall: [], fetchHaproxy: [], fetchRedis: false, failures: [] });
  });
});
