import { createServer } from 'node:net';

/**
 * A port no one listens on right now: bind port 0 and let the kernel choose.
 * Never 12345, the port of HAProxy's SPOE examples (and of the spoa command),
 * which a test must not take from an agent running on the machine.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, host, () => {
        const address = server.address();
        const p = typeof address === 'object' && address !== null ? address.port : 0;
        server.close(() => resolve(p));
      });
    });
    if (port !== 12345 && port !== 0) return port;
  }
}
