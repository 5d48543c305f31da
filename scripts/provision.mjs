// Makes sure what the process and end-to-end suites need is there before they run, so a fresh
// Debian machine passes `npm test` with no other step, and a machine where something cannot be
// provided fails at once with one message naming the command to run (never as cancelled tests):
// - HAProxy 2.6, 3.0 and 3.2: $HAPROXY_BIN_2_6-style overrides, else .cache/haproxy, else unpacked
//   from Debian's packages there by scripts/fetch-haproxy.sh (no root needed);
// - redis-server and redis-cli: on PATH, else .cache/redis/bin, else unpacked from Debian's
//   redis-tools there by scripts/fetch-redis.sh (no root needed);
// - Chromium ($CHROMIUM_BIN, default /usr/bin/chromium) for the status page: installed with
//   `apt-get install chromium` when missing, if allowed (below), as is the archive keyring the two
//   fetch scripts check signatures with.
// System packages are installed only when running as root with apt-get (as CI does), or with
// SPOA_TEST_INSTALL=1 through sudo; SPOA_TEST_INSTALL=0 never installs anything.
// Usage: node scripts/provision.mjs [process] [e2e]   (default: both)
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const haproxyVersions = ['2.6', '3.0', '3.2'];
const root = fileURLToPath(new URL('..', import.meta.url));
const keyring = '/usr/share/keyrings/debian-archive-keyring.gpg';

/** What each suite needs. */
export function needsOf(suites) {
  return {
    haproxy: suites.includes('e2e'),
    redis: suites.includes('process') || suites.includes('e2e'),
    chromium: suites.includes('process'),
  };
}

/**
 * The decisions, from facts only (no I/O): what to install with apt-get, what to fetch into .cache,
 * and what cannot be provided here (each a message naming the command to run).
 */
export function planProvisioning(facts) {
  const { needs } = facts;
  const plan = { aptInstall: [], fetchHaproxy: [], fetchRedis: false, failures: [] };
  const mayInstall = facts.apt && facts.install !== '0' && (facts.root || (facts.install === '1' && facts.sudo));
  const asRoot = facts.root ? '' : 'sudo ';
  const howToAllow = facts.root ? '' : ' (or let the test run do it: SPOA_TEST_INSTALL=1 npm test, with sudo)';

  if (needs.haproxy) {
    for (const version of haproxyVersions) {
      const found = facts.haproxy[version];
      const variable = `HAPROXY_BIN_${version.replace('.', '_')}`;
      if (found.override !== undefined) {
        if (!found.works)
          plan.failures.push(
            `HAProxy ${version}: ${variable}=${found.override} does not run (\`${found.override} -v\` fails): point it at a working HAProxy ${version} binary`,
          );
      } else if (!found.works) {
        if (facts.apt) plan.fetchHaproxy.push(version);
        else plan.failures.push(`HAProxy ${version} is missing and apt-get/dpkg are not here to unpack Debian's: set ${variable}=/path/to/haproxy-${version}`);
      }
    }
  }
  if (needs.redis && !facts.redis) {
    if (facts.apt) plan.fetchRedis = true;
    else plan.failures.push("redis-server and redis-cli are missing and apt-get/dpkg are not here to unpack Debian's: install Redis so that both are on PATH");
  }
  if ((plan.fetchHaproxy.length > 0 || plan.fetchRedis) && !facts.keyring) {
    if (mayInstall) plan.aptInstall.push('debian-archive-keyring');
    else
      plan.failures.push(
        `${keyring} is missing (it checks the packages unpacked into .cache): run \`${asRoot}apt-get install debian-archive-keyring\`${howToAllow}`,
      );
  }
  if (needs.chromium && !facts.chromium.present) {
    if (facts.chromium.overridden) plan.failures.push(`Chromium is missing: CHROMIUM_BIN=${facts.chromium.path} is not an executable`);
    else if (mayInstall) plan.aptInstall.push('chromium');
    else if (facts.apt) plan.failures.push(`Chromium is missing at ${facts.chromium.path}: run \`${asRoot}apt-get install chromium\`${howToAllow}`);
    else plan.failures.push(`Chromium is missing at ${facts.chromium.path}: install it and set CHROMIUM_BIN=/path/to/chromium`);
  }
  return plan;
}

function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(program, env) {
  return (env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && isExecutable(join(dir, program)));
}

function runs(path, args) {
  return isExecutable(path) && spawnSync(path, args, { stdio: 'ignore', timeout: 15_000 }).status === 0;
}

/** The facts planProvisioning decides on, read from this machine. */
export function gatherFacts(suites, env = process.env) {
  const haproxy = {};
  for (const version of haproxyVersions) {
    const override = env[`HAPROXY_BIN_${version.replace('.', '_')}`] || undefined;
    const path = override ? resolve(override) : join(root, '.cache', 'haproxy', version, 'haproxy');
    haproxy[version] = { override, works: runs(path, ['-v']) };
  }
  const redisFound = (program) => onPath(program, env) || runs(join(root, '.cache', 'redis', 'bin', program), ['--version']);
  const chromiumPath = env.CHROMIUM_BIN || '/usr/bin/chromium';
  return {
    needs: needsOf(suites),
    haproxy,
    redis: redisFound('redis-server') && redisFound('redis-cli'),
    chromium: { path: chromiumPath, overridden: Boolean(env.CHROMIUM_BIN), present: isExecutable(chromiumPath) },
    apt: onPath('apt-get', env) && onPath('dpkg', env),
    keyring: existsSync(keyring),
    root: process.getuid?.() === 0,
    sudo: onPath('sudo', env),
    install: env.SPOA_TEST_INSTALL,
  };
}

function run(command, args, env = process.env) {
  console.log(`[provision] ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env });
  return result.status === 0;
}

/**
 * Provides what the suites need. Returns the messages of what is still missing (empty when all is
 * there), after printing them.
 */
export function provision(suites, env = process.env) {
  const facts = gatherFacts(suites, env);
  const plan = planProvisioning(facts);
  const failures = [...plan.failures];
  if (failures.length === 0) {
    if (plan.aptInstall.length > 0) {
      const sudo = facts.root ? [] : ['sudo'];
      const aptEnv = { ...env, DEBIAN_FRONTEND: 'noninteractive' };
      const [command, ...prefix] = [...sudo, 'apt-get'];
      const ok =
        run(command, [...prefix, 'update'], aptEnv) && run(command, [...prefix, 'install', '-y', '--no-install-recommends', ...plan.aptInstall], aptEnv);
      if (!ok) failures.push(`\`apt-get install ${plan.aptInstall.join(' ')}\` failed (see above)`);
    }
    if (failures.length === 0 && plan.fetchHaproxy.length > 0 && !run('bash', ['scripts/fetch-haproxy.sh', ...plan.fetchHaproxy], env)) {
      failures.push(`unpacking HAProxy ${plan.fetchHaproxy.join(', ')} failed (see above): retry with \`bash scripts/fetch-haproxy.sh --force\``);
    }
    if (failures.length === 0 && plan.fetchRedis && !run('bash', ['scripts/fetch-redis.sh'], env)) {
      failures.push('unpacking redis-server failed (see above): retry with `bash scripts/fetch-redis.sh --force`');
    }
  }
  if (failures.length === 0 && (plan.aptInstall.length > 0 || plan.fetchHaproxy.length > 0 || plan.fetchRedis)) {
    const after = planProvisioning(gatherFacts(suites, env));
    const left = [...after.aptInstall, ...after.fetchHaproxy.map((v) => `HAProxy ${v}`), ...(after.fetchRedis ? ['redis-server'] : []), ...after.failures];
    if (left.length > 0) failures.push(`still missing after provisioning: ${left.join(', ')}`);
  }
  if (failures.length > 0) {
    console.error(`\nThe tests cannot run: what they need is missing.\n${failures.map((f) => `  - ${f}`).join('\n')}\n`);
  }
  return failures;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const suites = process.argv.slice(2);
  process.exit(provision(suites.length > 0 ? suites : ['process', 'e2e']).length > 0 ? 1 : 0);
}
