/**
 * Every TypeScript snippet of the library's README (and of the root README)
 * compiles against the library as published (its exports), so the READMEs
 * cannot drift from the API.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from 'test-support/paths';
import { tsBlocks, typecheckSnippets } from './readme-snippets.js';

const readmePath = join(repoRoot, 'packages/spop/README.md');

describe('packages/spop/README.md', () => {
  it('has its ```ts snippets, and every one of them typechecks', () => {
    const snippets = tsBlocks(readFileSync(readmePath, 'utf8'));
    assert.ok(snippets.length >= 8, `only ${snippets.length} ts snippets`);
    assert.deepEqual(typecheckSnippets(snippets, 'packages/spop/README.md'), []);
  });

  it("the root README's library snippet typechecks too", () => {
    const snippets = tsBlocks(readFileSync(join(repoRoot, 'README.md'), 'utf8'));
    assert.ok(snippets.length >= 1, 'no ts snippet in README.md');
    assert.deepEqual(typecheckSnippets(snippets, 'README.md'), []);
  });

  it('the check sees a snippet that does not compile, with its line in the Markdown', () => {
    const markdown = ['# t', '', '```ts', "import { Agent } from 'spop';", 'new Agent({ maxInFlight: "many" });', '```', ''].join('\n');
    const errors = typecheckSnippets(tsBlocks(markdown), 'T.md');
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0] ?? '', /^T\.md:5: Type 'string' is not assignable to type 'number'/);
  });
});
