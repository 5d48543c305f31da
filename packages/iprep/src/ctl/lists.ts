/** `spoa lists`: every list the agent loaded, with its size, age and last error. */
import type { OperatorCommand } from './command.js';
import { EXIT } from './command.js';
import { printable, shortDuration, table } from './format.js';

export const listsCommand: OperatorCommand = {
  usage: `Usage: spoa lists [--json]

The lists the agent loaded (of the worker that answers: every worker loads the same lists).
`,
  options: {},
  async run({ client, values, out, paint }) {
    const lists = await client.lists();
    if (values['json'] === true) {
      out(JSON.stringify(lists, null, 2) + '\n');
      return EXIT.ok;
    }
    if (lists.length === 0) {
      out('no lists configured\n');
      return EXIT.ok;
    }
    const now = Date.now();
    const rows = lists.map((list) => [
      printable(String(list.name)),
      String(list.format),
      String(list.entries),
      list.loadedAt === null ? 'never' : `${shortDuration(now - list.loadedAt)} ago`,
      list.lastError === null ? paint('ok', 'green') : paint(printable(String(list.lastError)), 'red'),
      printable(String(list.origin)),
    ]);
    out(table(['NAME', 'FORMAT', 'ENTRIES', 'LOADED', 'STATUS', 'ORIGIN'], rows));
    return lists.some((list) => list.lastError !== null) ? EXIT.refused : EXIT.ok;
  },
};
