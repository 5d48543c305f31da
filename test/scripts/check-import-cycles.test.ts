/**
 * scripts/check-import-cycles.mjs, run by `npm test`: it passes on the workspace, and fails naming the
 * modules on a circle made of static, type-only or dynamic imports, within a package or across two.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const script = join(repoRoot, 'scripts/check-import-cycles.mjs');

interface Outcome {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function check(cwd: string, ...packageDirs: string[]): Outcome {
  const result = spawnSync(process.execPath, [script, ...packageDirs], { cwd, encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('check-import-cycles', () => {
  const workspace = mkdtempSync(join(tmpdir(), 'import-cycles-'));
  after(() => rmSync(workspace, { recursive: true, force: true }));

  /** Writes `files` (path -> text) under a new folder of the workspace; returns the folder. */
  function fixture(name: string, files: Record<string, string>): string {
    const dir = join(workspace, name);
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    return dir;
  }

  const manifest = (name: string): string =>
    JSON.stringify({
      name,
      type: 'module',
      types: './dist/index.d.ts',
      exports: { '.': { types: './dist/index.d.ts' }, './extra': { types: './dist/extra/index.d.ts' } },
    });

  it('finds no circle in the workspace’s packages', () => {
    const outcome = check(repoRoot);
    assert.equal(outcome.status, 0, outcome.stderr);
    assert.match(outcome.stdout, /^no import circle among \d+ modules of \d+ packages$/m);
  });

  it('passes imports that form no circle, whatever their kind', () => {
    const dir = fixture('acyclic', {
      'a/package.json': manifest('a'),
      'a/src/index.ts': "import { x } from './x.js';\nexport * from './y.js';\nexport const z = x;\n",
      'a/src/x.ts': "import { readFileSync } from 'node:fs';\nimport type { Y } from './y.js';\nexport const x: Y = readFileSync.length;\n",
      'a/src/y.ts': "export type Y = number;\nexport const load = () => import('b/extra');\n",
      'b/package.json': manifest('b'),
      'b/src/extra/index.ts': 'export const extra = 1;\n',
    });
    const outcome = check(dir, join(dir, 'a'), join(dir, 'b'));
    assert.equal(outcome.status, 0, outcome.stderr);
    assert.match(outcome.stdout, /no import circle among 4 modules of 2 packages/);
  });

  it('fails on a circle closed by a type-only import, naming its modules in order', () => {
    const dir = fixture('type-only', {
      'a/package.json': manifest('a'),
      'a/src/index.ts': "export { layout } from './layout.js';\n",
      'a/src/layout.ts': "import type { Table } from './table.js';\nexport const layout = (t: Table) => t;\n",
      'a/src/table.ts': "import { layout } from './layout.js';\nexport interface Table { size: number }\nexport const use = layout;\n",
    });
    const outcome = check(dir, join(dir, 'a'));
    assert.equal(outcome.status, 1);
    assert.match(outcome.stderr, /^1 import circle:$/m);
    assert.match(outcome.stderr, /a\/src\/layout\.ts -> a\/src\/table\.ts -> a\/src\/layout\.ts/);
  });

  it('fails on a circle through a dynamic import and another package’s entry point', () => {
    const dir = fixture('across-packages', {
      'a/package.json': manifest('a'),
      'a/src/index.ts': "export { extra } from 'b/extra';\n",
      'b/package.json': manifest('b'),
      'b/src/extra/index.ts': "export const extra = async () => (await import('a')).extra;\n",
    });
    const outcome = check(dir, join(dir, 'a'), join(dir, 'b'));
    assert.equal(outcome.status, 1);
    assert.match(outcome.stderr, /a\/src\/index\.ts -> b\/src\/extra\/index\.ts -> a\/src\/index\.ts/);
  });

  it('names every module of a larger knot, and a module importing itself', () => {
    const dir = fixture('knot', {
      'a/package.json': manifest('a'),
      'a/src/one.ts': "import './two.js';\nimport './three.js';\n",
      'a/src/two.ts': "import './one.js';\n",
      'a/src/three.ts': "import './two.js';\n",
      'a/src/self.ts': "export const self = async () => import('./self.js');\n",
    });
    const outcome = check(dir, join(dir, 'a'));
    assert.equal(outcome.status, 1);
    assert.match(outcome.stderr, /^2 import circles:$/m);
    assert.match(
      outcome.stderr,
      /a\/src\/one\.ts -> a\/src\/two\.ts -> a\/src\/one\.ts\n\s+\(3 modules tied together: a\/src\/one\.ts, a\/src\/three\.ts, a\/src\/two\.ts\)/,
    );
    assert.match(outcome.stderr, /a\/src\/self\.ts -> a\/src\/self\.ts/);
  });
});
