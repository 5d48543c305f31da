/** `spoa explain <address> [--ja4 <fingerprint>]`: the verdict for an address (and TLS stack), and every match behind it, deciding one first. */
import type { OperatorCommand } from './command.js';
import { CommandUsageError, EXIT } from './command.js';
import { paintAction, printable } from './format.js';

export const explainCommand: OperatorCommand = {
  usage: `Usage: spoa explain <address> [--ja4 <fingerprint>] [--json]

The verdict the agent gives <address> (score, action, category, source) and every match that applies,
the deciding one first. With --ja4, for a client of that TLS fingerprint (JA4 or JA3) too.
`,
  options: { ja4: { type: 'string' } },
  async run({ client, positionals, values, out, paint }) {
    const [address, ...extra] = positionals;
    if (address === undefined || extra.length > 0) throw new CommandUsageError('explain takes one address');
    const ja4 = typeof values['ja4'] === 'string' ? values['ja4'] : undefined;
    const verdict = await client.explain(address, ja4);
    if (values['json'] === true) {
      out(JSON.stringify(verdict, null, 2) + '\n');
      return EXIT.ok;
    }
    out(`${printable(address)}: score ${verdict.score}, ${paintAction(paint, String(verdict.action))}`);
    out(` (category ${printable(String(verdict.category))}, source ${printable(String(verdict.source))})\n`);
    const location = verdict.location;
    if (location !== undefined && location !== null && typeof location === 'object') {
      const parts = [
        location.country === undefined ? '' : `country ${printable(String(location.country))}`,
        location.asn === undefined
          ? ''
          : `AS${printable(String(location.asn))}${location.organization === undefined ? '' : ` ${printable(String(location.organization))}`}`,
      ].filter((part) => part !== '');
      if (parts.length > 0) out(`  located: ${parts.join(', ')}\n`);
    }
    const matches = Array.isArray(verdict.matches) ? verdict.matches : [];
    if (matches.length === 0) out('  nothing matched: the default score applies\n');
    matches.forEach((match, i) => {
      const effect = match.score !== undefined ? `score ${match.score}` : match.penalty !== undefined ? `-${match.penalty} points` : 'no score';
      const action = match.action === undefined ? '' : `, ${paintAction(paint, match.action)}`;
      const detail = match.detail === undefined ? '' : `: ${printable(match.detail)}`;
      const line = `${i === 0 ? '→' : ' '} ${match.kind} ${printable(match.source)} [${printable(match.category)}] ${effect}${action}${detail}`;
      out(`  ${i === 0 ? paint(line, 'bold') : line}\n`);
    });
    return EXIT.ok;
  },
};
