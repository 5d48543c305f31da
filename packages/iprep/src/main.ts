/** Entry point of the `spoa` command (bin/spoa.js). */
import { main } from './cli.js';

await main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`spoa: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
