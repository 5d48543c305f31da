/** `spoa reload`: reloads the lists and the configuration of every worker, and says how each went. */
import type { OperatorCommand } from './command.js';
import { EXIT } from './command.js';
import { printable } from './format.js';

export const reloadCommand: OperatorCommand = {
  usage: `Usage: spoa reload [--json]

Reloads the configuration and the lists in every worker (as SIGHUP does), and prints each worker's result.
Exit 1 when any worker failed.
`,
  options: {},
  async run({ client, values, out, paint }) {
    const result = await client.reload();
    if (values['json'] === true) {
      out(JSON.stringify(result, null, 2) + '\n');
      return result.ok ? EXIT.ok : EXIT.refused;
    }
    const mark = (ok: boolean): string => (ok ? paint('ok', 'green') : paint('failed', 'red'));
    if ('perWorker' in result && Array.isArray(result.perWorker)) {
      for (const worker of result.perWorker) {
        const time = worker.durationMs === null ? 'no answer' : `${Math.round(worker.durationMs)} ms`;
        out(`worker ${worker.pid ?? '?'}: ${mark(worker.ok)} (${time})\n`);
        for (const error of worker.errors) out(`  ${printable(String(error))}\n`);
      }
    } else {
      out(`agent: ${mark(result.ok)} (${Math.round(result.durationMs)} ms)\n`);
      for (const error of result.errors) out(`  ${printable(String(error))}\n`);
    }
    out(`reload ${mark(result.ok)}: ${result.lists.length} lists, ${result.lists.reduce((sum, l) => sum + l.entries, 0)} entries\n`);
    return result.ok ? EXIT.ok : EXIT.refused;
  },
};
