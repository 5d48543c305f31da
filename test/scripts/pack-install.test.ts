/**
 * The packages as users install them: `npm pack` of spop, spop-bench and iprep-spoa (only built
 * code, type declarations, README and LICENSE: no tests, sources or source maps), the tarballs
 * installed together in an empty folder and globally (spop is not on a registry yet, so it is given
 * alongside), `spoa` and `spop-bench` running, and a TypeScript file using spop's types compiling,
 * the README's library example too.
 * Needs the npm registry (or npm's cache) for the packages' own dependencies.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const tsc = join(repoRoot, 'node_modules/typescript/bin/tsc');

function run(command: string, args: readonly string[], cwd: string): string {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 180_000, env: { ...process.env, NODE_TEST_CONTEXT: undefined } });
  assert.equal(result.status, 0, `${command} ${args.join(' ')} failed in ${cwd}:\n${result.error?.message ?? ''}${result.stdout}${result.stderr}`);
  return result.stdout;
}

const npmQuiet = ['--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];

interface Packed {
  readonly name: string;
  readonly filename: string;
  readonly files: readonly { readonly path: string }[];
}

describe('the packages installed from their tarballs', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'pack-install-'));
  const tarballs = join(dir, 'tarballs');
  const local = join(dir, 'local');
  const global = join(dir, 'global');
  let packed: Packed[] = [];
  const tarball = (name: string): string => join(tarballs, packed.find((p) => p.name === name)?.filename ?? `${name}-missing.tgz`);

  before(() => {
    mkdirSync(tarballs);
    mkdirSync(local);
    const workspaces = ['packages/spop', 'packages/spop-bench', 'packages/iprep'].flatMap((w) => ['-w', w]);
    packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', tarballs, ...workspaces, '--loglevel=error'], repoRoot)) as Packed[];
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('packs built code, declarations, README and LICENSE only', () => {
    assert.deepEqual(packed.map((p) => p.name).sort(), ['iprep-spoa', 'spop', 'spop-bench']);
    for (const { name, files } of packed) {
      const paths = files.map((f) => f.path);
      const stray = paths.filter(
        (p) => /(^|\/)test(\/|$)|\.test\./.test(p) || p.endsWith('.map') || p.endsWith('.tsbuildinfo') || (p.endsWith('.ts') && !p.endsWith('.d.ts')),
      );
      assert.deepEqual(stray, [], `${name} ships ${stray.join(', ')}`);
      assert.ok(paths.includes('LICENSE'), `${name} has no LICENSE`);
      assert.ok(paths.includes('dist/index.js') && paths.includes('dist/index.d.ts'), `${name} has no dist/index.js with its declarations`);
    }
    for (const name of ['iprep-spoa', 'spop', 'spop-bench'])
      assert.ok(
        packed.find((p) => p.name === name)?.files.some((f) => f.path === 'README.md'),
        `${name} has no README.md`,
      );
    // The status page's assets are read at run time from the package.
    const iprep = packed.find((p) => p.name === 'iprep-spoa')?.files.map((f) => f.path) ?? [];
    for (const asset of ['index.html', 'style.css', 'app.js'])
      assert.ok(iprep.includes(`src/admin/status-page/${asset}`), `iprep-spoa lacks the status page's ${asset}`);
  });

  it('installs in an empty folder: spoa and spop-bench run, spop imports with its types', () => {
    writeFileSync(join(local, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    run('npm', ['install', ...npmQuiet, tarball('spop'), tarball('spop-bench'), tarball('iprep-spoa')], local);
    assert.match(run(join(local, 'node_modules/.bin/spoa'), ['-h'], local), /^Usage: spoa /);
    assert.match(run(join(local, 'node_modules/.bin/spoa'), ['--version'], local), /^spoa 0\.1\.0 /);
    assert.match(run(join(local, 'node_modules/.bin/spop-bench'), ['--help'], local), /spop-bench/);
    assert.match(
      run('node', ['--input-type=module', '-e', "import { runReputationAgent } from 'iprep-spoa'; console.log(typeof runReputationAgent);"], local),
      /function/,
    );

    writeFileSync(
      join(local, 'consumer.ts'),
      [
        "import { Agent, type MessageHandler, setVar } from 'spop';",
        "import { FakeHaproxy } from 'spop/testkit';",
        "const score: MessageHandler = (message) => setVar('sess', 'ip_score', message.value('ip') === null ? 0 : 100);",
        "const agent: Agent = new Agent().message('check-client-ip', score);",
        '// @ts-expect-error: a message name is a string (this line compiles, and the check fails, if the types are missing)',
        'agent.message(42, score);',
        'export const kit: typeof FakeHaproxy = FakeHaproxy;',
        '',
      ].join('\n'),
    );
    const compilerOptions = {
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      target: 'ES2022',
      strict: true,
      noEmit: true,
      skipLibCheck: false,
      types: ['node'],
      typeRoots: [join(repoRoot, 'node_modules/@types')],
    };
    // The README's library example, as a user would paste it.
    const readmeExamples = [...readFileSync(join(repoRoot, 'README.md'), 'utf8').matchAll(/^```ts\n(.*?)^```$/gms)].map((m) => m[1] ?? '');
    assert.ok(readmeExamples.length > 0, 'the README has no TypeScript example');
    writeFileSync(join(local, 'readme-example.ts'), `${readmeExamples.join('\n')}\nexport {};\n`);
    writeFileSync(join(local, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['consumer.ts', 'readme-example.ts'] }));
    run(process.execPath, [tsc, '-p', local], local);
  });

  it('installs globally: spoa on the PATH of the prefix', () => {
    run('npm', ['install', '--global', '--prefix', global, ...npmQuiet, tarball('spop'), tarball('iprep-spoa')], dir);
    assert.match(run(join(global, 'bin/spoa'), ['--version'], dir), /^spoa 0\.1\.0 /);
    assert.match(run(join(global, 'bin/spoa'), ['-h'], dir), /^Usage: spoa /);
  });
});
