/** Where things are in the repository. */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Root of the repository (this file is packages/test-support/src/paths.ts). */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** The `spoa` command the process-level tests run (packages/iprep, built by `tsc -b`). */
export const spoaBin = join(repoRoot, 'packages/iprep/bin/spoa.js');

/** The shipped example configurations. */
export const examplesDir = join(repoRoot, 'examples');
