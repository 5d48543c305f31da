/**
 * A header classifier: HAProxy sends the method, path, User-Agent and Accept
 * of each request (spoe-message `classify`); the agent answers
 * `txn.cls.class` = `bot` (no User-Agent, or a crawler's or a script's),
 * `api` (a path under /api/, JSON wanted, or a method browsers do not send)
 * or `browser`, which haproxy.cfg puts in a response header and uses to keep
 * bots out of /admin.
 *
 * Run (from the repository root, after `npm ci`):
 *   node --import tsx examples/agents/header-classifier/agent.ts --port 12345
 */
import { parseArgs } from 'node:util';
import { Agent, type Message, closeOnSignals, consoleLogger, setVar } from 'spop';

type RequestClass = 'bot' | 'api' | 'browser';

/** User-Agents of crawlers, scripts and HTTP libraries. */
const BOT_AGENT = /bot\b|crawl|spider|slurp|curl\/|wget\/|python-requests|go-http-client|java\/|libwww|scrapy|headless/i;

/** The class of one request, from what the `classify` message carries. */
function classify(message: Message): RequestClass {
  const method = message.value('method');
  const userAgent = message.value('ua');
  const path = message.value('path');
  const accept = message.value('accept');
  // A missing header arrives as null.
  if (typeof userAgent !== 'string' || userAgent.trim() === '' || BOT_AGENT.test(userAgent)) return 'bot';
  if (typeof path === 'string' && path.startsWith('/api/')) return 'api';
  if (typeof accept === 'string' && accept.startsWith('application/json')) return 'api';
  // Browsers only GET, HEAD and POST (forms); PUT, DELETE, PATCH... come from programs.
  if (method !== 'GET' && method !== 'HEAD' && method !== 'POST') return 'api';
  return 'browser';
}

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '12345' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});

const logger = consoleLogger('info');
const agent = new Agent({ logger, handlerTimeout: 100 });
agent.message('classify', (message) => setVar('txn', 'class', classify(message)));

const address = await agent.listen({ port: Number(values.port), host: values.host });
logger.info('agent listening', { address: typeof address === 'string' ? address : `${address.address}:${address.port}` });
closeOnSignals(agent);
