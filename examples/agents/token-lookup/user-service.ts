/**
 * A stand-in for the user service the token-lookup agent asks: GET
 * /tokens/<token> answers 200 {"user": "..."} for the tokens below, 404 for
 * any other. The token `t-slow` is answered after --slow-ms (default 2000), to
 * see the agent give up and answer `unavailable`.
 *
 * Run: node --import tsx examples/agents/token-lookup/user-service.ts --port 8081
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8081' },
    host: { type: 'string', default: '127.0.0.1' },
    'slow-ms': { type: 'string', default: '2000' },
  },
});

const users = new Map([
  ['t-alice', 'alice'],
  ['t-bob', 'bob'],
  ['t-slow', 'sloane'],
]);

const server = createServer((request, response) => {
  const token = /^\/tokens\/([^/]+)$/.exec(request.url ?? '')?.[1];
  const user = token === undefined ? undefined : users.get(token);
  const delay = token === 't-slow' ? Number(values['slow-ms']) : 0;
  setTimeout(() => {
    if (user === undefined) response.writeHead(404).end();
    else response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ user }));
  }, delay);
});

server.listen(Number(values.port), values.host, () => {
  console.log(`user service listening on ${values.host}:${values.port}`);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
