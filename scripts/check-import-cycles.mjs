#!/usr/bin/env node
// Fails when a module of a package's src/ imports itself back through other modules (an import
// circle): such modules cannot be read, tested or loaded apart, and their evaluation order decides
// whether a value is still undefined when first used. Type-only imports count: a circle through
// types is fixed by giving the shared types their own module.
// Edges: import, export ... from, import(), require(), and the workspace's own packages by name
// (resolved to their src/ through package.json "exports", "types" or "main").
// Usage: node scripts/check-import-cycles.mjs [package dir...]   (default: every packages/*)
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('..', import.meta.url));
const SOURCE = /\.(m|c)?tsx?$/;

function sourceFiles(dir) {
  let found = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found = found.concat(sourceFiles(path));
    else if (SOURCE.test(name) && !/\.d\.(m|c)?ts$/.test(name)) found.push(path);
  }
  return found;
}

/** The source file a compiled path stands for: dist/x.js or dist/x.d.ts -> src/x.ts. */
function sourceOf(path) {
  const candidates = [path];
  const stem = path.replace(/\.d\.(m|c)?ts$|\.(m|c)?jsx?$|\.(m|c)?tsx?$/, '');
  for (const ext of ['.ts', '.tsx', '.mts', '.cts']) candidates.push(stem + ext);
  if (stem === path) for (const ext of ['.ts', '.tsx', '.mts']) candidates.push(join(path, 'index' + ext));
  return candidates.find((candidate) => existsSync(candidate) && statSync(candidate).isFile());
}

/** Where a workspace package's subpath ("." or "./testkit") points to, as a source file. */
function packageEntry(packageDir, manifest, subpath) {
  let target;
  const exported = manifest.exports?.[subpath] ?? (subpath === '.' && typeof manifest.exports === 'string' ? manifest.exports : undefined);
  if (typeof exported === 'string') target = exported;
  else if (exported) target = exported.types ?? exported.import ?? exported.default;
  else if (subpath === '.') target = manifest.types ?? manifest.main ?? './index.js';
  else target = subpath;
  if (typeof target !== 'string') return undefined;
  const compiled = resolve(packageDir, target);
  const outDir = resolve(packageDir, 'dist');
  const inSrc = compiled.startsWith(outDir + '/') ? join(packageDir, 'src', relative(outDir, compiled)) : compiled;
  return sourceOf(inSrc);
}

function findCycles(packageDirs) {
  const packages = new Map(); // name -> { dir, manifest }
  for (const dir of packageDirs) {
    const manifestPath = join(dir, 'package.json');
    if (!existsSync(manifestPath)) continue;
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    if (typeof manifest.name === 'string') packages.set(manifest.name, { dir, manifest });
  }

  const files = packageDirs.flatMap((dir) => (existsSync(join(dir, 'src')) ? sourceFiles(join(dir, 'src')) : []));
  const known = new Set(files);
  const edges = new Map();
  for (const file of files) {
    const targets = new Set();
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    for (const { fileName: specifier } of importedFiles) {
      let target;
      if (specifier.startsWith('.')) {
        target = sourceOf(resolve(dirname(file), specifier));
      } else {
        const parts = specifier.split('/');
        const nameLength = specifier.startsWith('@') ? 2 : 1;
        const found = packages.get(parts.slice(0, nameLength).join('/'));
        const rest = parts.slice(nameLength).join('/');
        if (found) target = packageEntry(found.dir, found.manifest, rest === '' ? '.' : './' + rest);
      }
      if (target !== undefined && known.has(target)) targets.add(target);
    }
    edges.set(file, [...targets].sort());
  }

  // Tarjan's strongly connected components, iteratively (no recursion limit on deep import chains).
  const index = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const components = [];
  let next = 0;
  for (const start of files) {
    if (index.has(start)) continue;
    const work = [[start, 0]];
    index.set(start, next);
    low.set(start, next++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      const [node, at] = frame;
      const targets = edges.get(node);
      if (at < targets.length) {
        frame[1]++;
        const target = targets[at];
        if (!index.has(target)) {
          index.set(target, next);
          low.set(target, next++);
          stack.push(target);
          onStack.add(target);
          work.push([target, 0]);
        } else if (onStack.has(target)) {
          low.set(node, Math.min(low.get(node), index.get(target)));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1][0];
        low.set(parent, Math.min(low.get(parent), low.get(node)));
      }
      if (low.get(node) === index.get(node)) {
        const component = [];
        let member;
        do {
          member = stack.pop();
          onStack.delete(member);
          component.push(member);
        } while (member !== node);
        if (component.length > 1 || edges.get(node).includes(node)) components.push(component.sort());
      }
    }
  }

  // One circle per component, to name in the message: the shortest way from its first module back to it.
  return {
    modules: files.length,
    cycles: components.map((component) => {
      const members = new Set(component);
      const first = component[0];
      const cameFrom = new Map();
      const queue = [first];
      let last;
      while (queue.length > 0 && last === undefined) {
        const node = queue.shift();
        for (const target of edges.get(node)) {
          if (!members.has(target)) continue;
          if (target === first) {
            last = node;
            break;
          }
          if (!cameFrom.has(target)) {
            cameFrom.set(target, node);
            queue.push(target);
          }
        }
      }
      const path = [first];
      for (let node = last; node !== first; node = cameFrom.get(node)) path.splice(1, 0, node);
      path.push(first);
      return { modules: component, path };
    }),
  };
}

const args = process.argv.slice(2);
const packageDirs =
  args.length > 0
    ? args.map((dir) => resolve(dir))
    : readdirSync(join(root, 'packages'))
        .sort()
        .map((name) => join(root, 'packages', name))
        .filter((dir) => statSync(dir).isDirectory());
const shown = (path) => relative(process.cwd(), path) || path;
const { modules, cycles } = findCycles(packageDirs);
if (cycles.length === 0) {
  console.log(`no import circle among ${modules} modules of ${packageDirs.length} packages`);
} else {
  console.error(`${cycles.length} import circle${cycles.length === 1 ? '' : 's'}:`);
  for (const { modules: members, path } of cycles) {
    console.error(`  ${path.map(shown).join(' -> ')}`);
    if (members.length > path.length - 1) console.error(`    (${members.length} modules tied together: ${members.map(shown).join(', ')})`);
  }
  console.error('Give what the modules share a module of its own, that both import.');
  process.exit(1);
}
