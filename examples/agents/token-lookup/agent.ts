/**
 * An async lookup with a timeout: HAProxy sends each request's Authorization
 * header (spoe-message `check-token`); the agent asks a user service over HTTP
 * who holds the bearer token and answers `txn.auth.status`:
 *
 * - `valid`, with the user's name in `txn.auth.user`;
 * - `invalid`: an unknown or malformed token (haproxy.cfg answers 401);
 * - `anonymous`: no bearer token;
 * - `unavailable`: the service did not answer within --lookup-timeout ms, or
 *   failed. The request goes on without a user, rather than waiting for
 *   HAProxy's `timeout processing` and getting nothing at all.
 *
 * The lookup's fetch is aborted by whichever comes first: its own timeout, or
 * the handler's `signal` (the agent's handler timeout, or HAProxy gone).
 *
 * Run (from the repository root, after `npm ci`):
 *   node --import tsx examples/agents/token-lookup/user-service.ts --port 8081 &
 *   node --import tsx examples/agents/token-lookup/agent.ts --port 12345 --service http://127.0.0.1:8081
 */
import { parseArgs } from 'node:util';
import { Agent, type Action, closeOnSignals, consoleLogger, setVar } from 'spop';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '12345' },
    host: { type: 'string', default: '127.0.0.1' },
    service: { type: 'string', default: 'http://127.0.0.1:8081' },
    'lookup-timeout': { type: 'string', default: '100' },
  },
});
const service = new URL(values.service);
const lookupTimeoutMs = Number(values['lookup-timeout']);
if (!(lookupTimeoutMs > 0)) throw new RangeError(`--lookup-timeout must be a number of milliseconds > 0: ${values['lookup-timeout']}`);

/** Tokens are checked before they go into a URL: bounded, and nothing that could change the path. */
const TOKEN = /^[A-Za-z0-9._~-]{1,256}$/;
/** The service's answer is small; a larger one is not read. */
const MAX_ANSWER_BYTES = 4096;

const status = (value: 'valid' | 'invalid' | 'anonymous' | 'unavailable'): Action => setVar('txn', 'status', value);

/** Asks the service who holds `token`: GET /tokens/<token> answers 200 {"user": "..."} or 404. */
async function lookup(token: string, signal: AbortSignal): Promise<Action[]> {
  const response = await fetch(new URL(`/tokens/${token}`, service), { signal });
  if (response.status === 404) {
    await response.body?.cancel();
    return [status('invalid')];
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`user service answered ${response.status}`);
  }
  const answer = await readJson(response);
  const user = typeof answer === 'object' && answer !== null ? (answer as { user?: unknown }).user : undefined;
  if (typeof user !== 'string' || !/^[\w.@-]{1,64}$/.test(user)) throw new Error('user service answered no valid user name');
  return [status('valid'), setVar('txn', 'user', user)];
}

/** The body as JSON, read only up to MAX_ANSWER_BYTES (the lookup's signal bounds the time). */
async function readJson(response: Response): Promise<unknown> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body ?? []) {
    size += chunk.length;
    if (size > MAX_ANSWER_BYTES) throw new Error(`user service answer above ${MAX_ANSWER_BYTES} bytes`);
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

const logger = consoleLogger('info');
// The handler timeout leaves the lookup's own timeout room to answer `unavailable` first.
const agent = new Agent({ logger, handlerTimeout: lookupTimeoutMs + 100 });

agent.message('check-token', async (message, { signal }) => {
  const authorization = message.value('authorization');
  if (typeof authorization !== 'string' || !authorization.startsWith('Bearer ')) return status('anonymous');
  const token = authorization.slice('Bearer '.length);
  if (!TOKEN.test(token)) return status('invalid');
  try {
    return await lookup(token, AbortSignal.any([signal, AbortSignal.timeout(lookupTimeoutMs)]));
  } catch (err) {
    logger.warn('token lookup failed: answering unavailable', { error: err instanceof Error ? err.message : String(err) });
    return status('unavailable');
  }
});

const address = await agent.listen({ port: Number(values.port), host: values.host });
logger.info('agent listening', { address: typeof address === 'string' ? address : `${address.address}:${address.port}`, service: service.href });
closeOnSignals(agent);
