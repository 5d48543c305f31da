/** `spoa restart`: a rolling restart of the workers (as SIGUSR2 does), and how it went. */
import type { OperatorCommand } from './command.js';
import { EXIT } from './command.js';
import { printable } from './format.js';

export const restartCommand: OperatorCommand = {
  usage: `Usage: spoa restart [--primary] [--json]

Restarts the workers without closing the port (as SIGUSR2 does): new workers start from the code on
disk, and once every one listens the old ones finish what they have in flight and leave. If a new worker
fails, the old ones keep serving. Needs an agent started with more than one worker, or --supervise.
With --primary, the primary process itself is replaced too (after a package upgrade): it starts its
successor from the code on disk, with the same arguments, on the socket systemd passed (socket
activation is required), hands it the live connections and the decisions, and exits.
Exit 1 when the restart failed.
`,
  options: { primary: { type: 'boolean' } },
  async run({ client, values, out, paint }) {
    const result = await client.restart({ primary: values['primary'] === true });
    if (values['json'] === true) {
      out(`${JSON.stringify(result, null, 2)}\n`);
      return result.ok ? EXIT.ok : EXIT.refused;
    }
    if (result.ok) {
      if (result.primary !== undefined) out(`primary ${result.primary} serves; this one leaves\n`);
      out(`restart ${paint('ok', 'green')}: workers ${result.workers.join(', ')} serve; ${result.retired.join(', ')} leaving\n`);
      return EXIT.ok;
    }
    out(`restart ${paint('failed', 'red')}: ${printable(result.error)}\n`);
    return EXIT.refused;
  },
};
