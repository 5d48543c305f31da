/**
 * Typechecks the ```ts blocks of a Markdown file, each as a module of its own
 * importing `spop` as a user would (through the package's exports, so `tsc -b`
 * must have built dist/). The snippets exist only in memory: nothing is written.
 */
import { dirname, join } from 'node:path';
import ts from 'typescript';
import { repoRoot } from 'test-support/paths';

export interface Snippet {
  /** 1-based line of the opening fence in the Markdown file. */
  readonly line: number;
  readonly code: string;
}

/** Every ```ts block, with the line of its fence. */
export function tsBlocks(markdown: string): Snippet[] {
  const blocks: Snippet[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]?.trim() !== '```ts') continue;
    const start = i;
    const code: string[] = [];
    while (++i < lines.length && lines[i]?.trim() !== '```') code.push(lines[i] ?? '');
    blocks.push({ line: start + 1, code: code.join('\n') + '\n' });
  }
  return blocks;
}

/**
 * Compiler errors of the snippets, as "<label>:<line>: message" with the Markdown line.
 * `dir` is where the snippets pretend to live (module resolution starts there).
 */
export function typecheckSnippets(snippets: readonly Snippet[], label: string, dir = join(repoRoot, 'packages/spop/readme')): string[] {
  const base = ts.readConfigFile(join(repoRoot, 'tsconfig.base.json'), ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(base.config, ts.sys, repoRoot);
  const options: ts.CompilerOptions = {
    ...parsed.options,
    noEmit: true,
    composite: false,
    declaration: false,
    declarationMap: false,
    incremental: false,
  };
  const files = new Map<string, Snippet>();
  snippets.forEach((s, i) => files.set(join(dir, `snippet-${i + 1}.ts`), s));
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.fileExists = (name) => files.has(name) || fileExists.call(host, name);
  host.readFile = (name) => files.get(name)?.code ?? readFile.call(host, name);
  host.directoryExists = (name) => name === dir || name.startsWith(dirname(dir)) || ts.sys.directoryExists(name);
  host.getSourceFile = (name, languageVersion, onError, shouldCreate) => {
    const snippet = files.get(name);
    if (snippet !== undefined) return ts.createSourceFile(name, snippet.code, languageVersion, true);
    return getSourceFile.call(host, name, languageVersion, onError, shouldCreate);
  };
  const program = ts.createProgram([...files.keys()], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    const snippet = d.file === undefined ? undefined : files.get(d.file.fileName);
    if (d.file === undefined || d.start === undefined) return `${label}: ${text}`;
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    return snippet === undefined ? `${d.file.fileName}:${line + 1}: ${text}` : `${label}:${snippet.line + 1 + line}: ${text}`;
  });
}
