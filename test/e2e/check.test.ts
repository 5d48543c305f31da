/**
 * `spoa check` with real HAProxy 2.6, 3.0 and 3.2 (`--haproxy-bin`): the shipped examples pass
 * cleanly; broken configurations fail with the finding that names the problem, including those that
 * `haproxy -c` alone accepts (a group never sent, a misspelt variable).
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type HaproxyVersion, examplesDir, haproxyVersions, repoRoot, requireHaproxy, spoaBin, startProcess } from 'test-support';

const recipesDir = join(examplesDir, 'recipes');
const env = { ...process.env, IPREP_CAPTCHA_KEY: 'a-test-key', HAPROXY_BIN: '' };

/** Without the machine's round-trip measure: a busy test machine would add a warning these tests are not about. */
async function spoaCheck(cwd: string, args: readonly string[]): Promise<{ code: number | null; output: string }> {
  const proc = startProcess(process.execPath, [spoaBin, 'check', '--no-measure', ...args], { cwd, env, name: 'spoa check' });
  const { code } = await proc.exited;
  return { code, output: proc.output() };
}

async function haproxyAlone(bin: string, cwd: string, file: string): Promise<number | null> {
  const proc = startProcess(bin, ['-c', '-f', file], { cwd, env, name: 'haproxy -c' });
  return (await proc.exited).code;
}

const work = mkdtempSync(join(tmpdir(), 'spoa-check-e2e-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** A copy of the recipes with `file` edited; the check runs from that directory, as HAProxy would. */
function brokenRecipe(name: string, file: string, edit: (text: string) => string): string {
  const dir = join(work, name);
  cpSync(recipesDir, dir, { recursive: true });
  const text = readFileSync(join(dir, file), 'utf8');
  const edited = edit(text);
  assert.notEqual(edited, text, `the edit of ${file} changed nothing`);
  writeFileSync(join(dir, file), edited);
  return dir;
}

for (const version of haproxyVersions) {
  describe(`spoa check with HAProxy ${version}`, () => {
    const bin = requireHaproxy(version);
    const checkRecipe = (dir: string, cfg: string) => spoaCheck(dir, ['--config', 'reputation.yaml', '--haproxy', cfg, '--haproxy-bin', bin]);

    it('examples/haproxy.cfg with the seed agent passes cleanly', async () => {
      const { code, output } = await spoaCheck(examplesDir, ['--haproxy', 'haproxy.cfg', '--haproxy-bin', bin]);
      assert.equal(code, 0, output);
      assert.match(output, new RegExp(`^note: .*: HAProxy ${version}$`, 'm'));
      assert.match(output, /^ok: 0 error\(s\), 0 warning\(s\)$/m);
    });

    for (const recipe of ['deny.cfg', 'tarpit.cfg', 'captcha.cfg', 'cached-verdict.cfg']) {
      it(`recipe ${recipe} with reputation.yaml passes cleanly`, async () => {
        const { code, output } = await checkRecipe(recipesDir, recipe);
        assert.equal(code, 0, output);
        assert.match(output, /^ok: 0 error\(s\), 0 warning\(s\)$/m);
      });
    }

    it('a spoe-group no rule sends: haproxy -c accepts it, spoa check does not', async () => {
      const dir = brokenRecipe(`group-${version}`, 'cached-verdict.cfg', (t) => t.replace(/^ *http-request send-spoe-group .*$/m, ''));
      assert.equal(await haproxyAlone(bin, dir, 'cached-verdict.cfg'), 0);
      const { code, output } = await checkRecipe(dir, 'cached-verdict.cfg');
      assert.equal(code, 1, output);
      assert.match(output, /^error: .*spoe-iprep-group\.conf:\d+: spoe-group check-ip is never sent/m);
    });

    it('a misspelt variable in an ACL: haproxy -c accepts it, spoa check does not', async () => {
      const dir = brokenRecipe(`var-${version}`, 'deny.cfg', (t) =>
        t.replace('{ var(sess.iprep.ip_action) -m str deny }', '{ var(sess.iprep.ip_actions) -m str deny }'),
      );
      assert.equal(await haproxyAlone(bin, dir, 'deny.cfg'), 0);
      const { code, output } = await checkRecipe(dir, 'deny.cfg');
      assert.equal(code, 1, output);
      assert.match(output, /^error: deny\.cfg:\d+: sess\.iprep\.ip_actions is not a variable the agent sets/m);
    });

    it('the agent backend in mode http', async () => {
      const dir = brokenRecipe(`http-${version}`, 'deny.cfg', (t) => t.replace(/^ {4}mode tcp$/m, '    mode http'));
      const { code, output } = await checkRecipe(dir, 'deny.cfg');
      assert.equal(code, 1, output);
      assert.match(output, /^error: deny\.cfg:\d+: backend iprep-backend is in mode http/m);
      assert.match(output, /^error: .* -c: HAProxy rejects the configuration/m);
    });

    it('a missing SPOE file', async () => {
      const dir = brokenRecipe(`spoe-${version}`, 'deny.cfg', (t) => t.replace('config spoe-iprep.conf', 'config spoe-missing.conf'));
      const { code, output } = await checkRecipe(dir, 'deny.cfg');
      assert.equal(code, 1, output);
      assert.match(output, /^error: deny\.cfg:\d+: cannot read the SPOE file spoe-missing\.conf/m);
      assert.match(output, /HAProxy rejects the configuration/);
    });

    it('run from elsewhere, the SPOE file HAProxy would not find is an error', async () => {
      const { code, output } = await spoaCheck(repoRoot, [
        '--config',
        join(recipesDir, 'reputation.yaml'),
        '--haproxy',
        'examples/recipes/deny.cfg',
        '--haproxy-bin',
        bin,
      ]);
      assert.equal(code, 1, output);
      assert.match(output, /SPOE file spoe-iprep\.conf is not in the working directory .*run haproxy from .*recipes/);
    });

    it(`mode spop: ${spopSupported(version) ? 'accepted' : 'an error'} on ${version}`, async () => {
      const dir = brokenRecipe(`spop-${version}`, 'deny.cfg', (t) => t.replace(/^ {4}mode tcp$/m, '    mode spop'));
      const { code, output } = await checkRecipe(dir, 'deny.cfg');
      assert.equal(code, spopSupported(version) ? 0 : 1, output);
      if (!spopSupported(version)) assert.match(output, new RegExp(`mode spop, which HAProxy ${version.replace('.', '\\.')} does not have`));
    });
  });
}

function spopSupported(version: HaproxyVersion): boolean {
  return version !== '2.6' && version !== '3.0';
}
