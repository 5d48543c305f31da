/** `spoa status`: a terminal summary of /health and /status.json: throughput, verdicts, lists, store, workers. */
import type { OperatorCommand } from './command.js';
import { EXIT } from './command.js';
import { paintAction, printable, shortDuration } from './format.js';

function seconds(value: number | null): string {
  if (value === null) return '-';
  return value < 0.001 ? `${Math.round(value * 1e6)} µs` : `${(value * 1000).toFixed(1)} ms`;
}

export const statusCommand: OperatorCommand = {
  usage: `Usage: spoa status [--json]

A summary of the running agent: health, messages per second, handler time, verdicts by action,
lists, decisions, store and workers. Exit 1 when the agent reports itself degraded.
`,
  options: {},
  async run({ client, values, out, paint }) {
    const [health, status] = await Promise.all([client.health(), client.status()]);
    if (values['json'] === true) {
      out(JSON.stringify({ health, status }, null, 2) + '\n');
      return health.status === 'ok' ? EXIT.ok : EXIT.refused;
    }
    const ok = health.status === 'ok';
    const line = (label: string, text: string): void => out(`${label.padEnd(11)}${text}\n`);
    line('health', `${ok ? paint('ok', 'green') : paint(String(health.status), 'red')}, up ${shortDuration(status.uptimeSeconds * 1000)}`);
    if (health.reloadError !== undefined) line('', paint(`last reload failed: ${printable(health.reloadError)}`, 'red'));
    const m = status.messages;
    line('messages', `${m.perSecond.toFixed(1)}/s (last 10 s), ${m.total} in all`);
    line('handler', `mean ${seconds(status.handler.meanSeconds)}, p99 <= ${seconds(status.handler.p99Seconds)}`);
    const total = status.actions.reduce((sum, a) => sum + a.count, 0);
    line(
      'verdicts',
      status.actions.map((a) => `${paintAction(paint, a.name)} ${a.count}${total > 0 ? ` (${((100 * a.count) / total).toFixed(1)}%)` : ''}`).join(', '),
    );
    if (status.topSources.length > 0) {
      line(
        'sources',
        status.topSources
          .slice(0, 5)
          .map((s) => `${printable(s.name)} ${s.count}`)
          .join(', '),
      );
    }
    const failing = status.lists.filter((l) => l.lastError !== null);
    const entries = status.lists.reduce((sum, l) => sum + l.entries, 0);
    line('lists', `${status.lists.length} lists, ${entries} entries${failing.length > 0 ? paint(`, ${failing.length} failing`, 'red') : ''}`);
    for (const list of failing) line('', paint(`${printable(list.name)}: ${printable(String(list.lastError))}`, 'red'));
    line('decisions', status.decisions === null ? '-' : String(status.decisions));
    const store = status.store;
    if (store !== null) {
      const extra = [
        store.pendingWrites ? `${store.pendingWrites} writes pending` : '',
        store.droppedWrites ? `${store.droppedWrites} dropped` : '',
        store.syncAgeMs !== undefined ? `synced ${shortDuration(store.syncAgeMs)} ago` : '',
        store.detail !== undefined ? printable(store.detail) : '',
      ].filter((t) => t !== '');
      line('store', `${store.kind} ${store.up ? paint('up', 'green') : paint('down', 'red')}${extra.length > 0 ? ` (${extra.join(', ')})` : ''}`);
    }
    if (status.agent !== null) line('agent', `${status.agent.connections} connections, ${status.agent.inFlight} frames in flight`);
    const missing = status.workersMissing === null ? 'unknown' : String(status.workersMissing);
    line('workers', `${status.workers}${status.workersMissing !== 0 ? paint(`, ${missing} missing`, 'red') : ''}`);
    if ('perWorker' in health && Array.isArray(health.perWorker)) {
      for (const worker of health.perWorker) {
        const state = worker.status === 'ok' ? paint('ok', 'green') : paint(String(worker.status), 'red');
        const why = 'error' in worker ? `: ${printable(worker.error)}` : 'uptimeSeconds' in worker ? `, up ${shortDuration(worker.uptimeSeconds * 1000)}` : '';
        line('', `worker ${worker.pid ?? '?'} ${state}${why}`);
      }
    }
    return ok ? EXIT.ok : EXIT.refused;
  },
};
