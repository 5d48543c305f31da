/** The small HTTP client the tests use: one GET per connection, a reset is a result. */
import http from 'node:http';

export interface HttpGetOptions {
  /** Address to connect to (default 127.0.0.1). */
  host?: string;
  /** Source address, e.g. another 127.0.0.x to appear as a different client. */
  localAddress?: string;
  family?: 4 | 6;
  headers?: Readonly<Record<string, string>>;
  timeoutMs?: number;
}

export type HttpResult =
  | { rejected: false; status: number; headers: http.IncomingHttpHeaders; body: string }
  /** The server closed or reset the connection without a (complete) response. */
  | { rejected: true; error: string };

const closedByPeer = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/**
 * One GET on a fresh connection (no agent, `Connection: close`). A connection the
 * server closes or resets (`tcp-request content reject`) is a result, not an error;
 * refused connections and timeouts still reject.
 */
export function httpGet(port: number, path = '/', opts: HttpGetOptions = {}): Promise<HttpResult> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  return new Promise((resolve, reject) => {
    const fail = (err: NodeJS.ErrnoException): void => {
      if (err.code !== undefined && closedByPeer.has(err.code)) resolve({ rejected: true, error: err.message });
      else reject(err);
    };
    const req = http.request({
      host: opts.host ?? '127.0.0.1',
      port,
      path,
      method: 'GET',
      family: opts.family,
      localAddress: opts.localAddress,
      agent: false,
      headers: { connection: 'close', ...opts.headers },
      timeout: timeoutMs,
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} on port ${port}: no response within ${timeoutMs} ms`)));
    req.on('error', fail);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', fail);
      res.on('end', () => {
        if (res.complete) {
          resolve({ rejected: false, status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
        } else resolve({ rejected: true, error: 'connection closed in the middle of the response' });
      });
    });
    req.end();
  });
}
