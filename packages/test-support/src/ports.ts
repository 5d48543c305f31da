/** Ports: a free one (the library's test kit picks it) and waiting until one accepts connections. */
import net from 'node:net';
import { delay } from './wait.js';

export { freePort } from 'spop/testkit';

/** Resolves once a TCP connection to host:port succeeds; retries until timeoutMs or the signal aborts. */
export async function waitForPort(port: number, host = '127.0.0.1', timeoutMs = 5_000, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'no attempt';
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    const error = await new Promise<string | undefined>((resolve) => {
      const socket = net.connect({ port, host });
      socket.setTimeout(Math.max(50, deadline - Date.now()), () => socket.destroy(new Error('connect timed out')));
      socket.once('connect', () => {
        socket.destroy();
        resolve(undefined);
      });
      socket.once('error', (err) => resolve(err.message));
    });
    if (error === undefined) return;
    lastError = error;
    await delay(25);
  }
  throw new Error(`${host}:${port} did not accept connections within ${timeoutMs} ms (${lastError})`);
}
