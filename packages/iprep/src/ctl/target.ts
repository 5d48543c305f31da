/**
 * Which admin API the operator commands talk to, and with which token: flags, then the environment
 * (SPOA_ADMIN, SPOA_TOKEN), then the configuration file (--config), then 127.0.0.1:9090 without a token.
 */
import { readFile } from 'node:fs/promises';
import { readConfigFile } from '../config/index.js';
import type { AdminTarget } from './client.js';

export const DEFAULT_ADMIN = { host: '127.0.0.1', port: 9090 } as const;
/** A token file is a few bytes; a larger one is a mistake (a wrong path), not a token. */
const MAX_TOKEN_FILE_BYTES = 4096;

export interface TargetFlags {
  readonly admin?: string | undefined;
  readonly token?: string | undefined;
  readonly tokenFile?: string | undefined;
  readonly config?: string | undefined;
}

/** A usage mistake in the target's flags or environment (exit 2). */
export class TargetError extends Error {}

/** `host:port`, `[v6]:port` or `:port` (127.0.0.1). */
export function parseAdminAddress(text: string, name: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  const port = Number(match?.[3]);
  if (match === null || !(port >= 1 && port <= 65535)) throw new TargetError(`${name} must be host:port, e.g. 127.0.0.1:9090: ${text}`);
  const host = match[1] ?? match[2] ?? '';
  return { host: host === '' ? DEFAULT_ADMIN.host : host, port };
}

/** An agent bound to every address is reached on loopback. */
function reachable(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

async function readToken(path: string): Promise<string> {
  let text: string;
  try {
    const data = await readFile(path);
    if (data.length > MAX_TOKEN_FILE_BYTES) throw new TargetError(`--token-file ${path} is larger than ${MAX_TOKEN_FILE_BYTES} bytes`);
    text = data.toString('utf8').trim();
  } catch (e) {
    if (e instanceof TargetError) throw e;
    throw new TargetError(`--token-file cannot be read: ${(e as Error).message}`);
  }
  if (text === '') throw new TargetError(`--token-file ${path} is empty`);
  return text;
}

export async function resolveTarget(flags: TargetFlags, env: NodeJS.ProcessEnv): Promise<AdminTarget> {
  if (flags.token !== undefined && flags.tokenFile !== undefined) throw new TargetError('give --token or --token-file, not both');
  // The file only when asked for: it may hold lists and settings this command has no use for.
  const fromFile = flags.config === undefined ? undefined : (await readConfigFile(flags.config)).config.admin;
  const envAdmin = env['SPOA_ADMIN'] === undefined || env['SPOA_ADMIN'] === '' ? undefined : env['SPOA_ADMIN'];
  const address =
    flags.admin !== undefined
      ? parseAdminAddress(flags.admin, '--admin')
      : envAdmin !== undefined
        ? parseAdminAddress(envAdmin, 'SPOA_ADMIN')
        : fromFile !== undefined
          ? { host: reachable(fromFile.host), port: fromFile.port }
          : DEFAULT_ADMIN;
  if (fromFile !== undefined && (!fromFile.enabled || fromFile.port === 0) && flags.admin === undefined && envAdmin === undefined) {
    const why = fromFile.port === 0 ? 'admin.port: 0' : 'admin.enabled: false';
    throw new TargetError(`${flags.config} does not enable the admin API (${why}): the commands need it`);
  }
  let token: string | undefined;
  if (flags.token !== undefined) token = flags.token;
  else if (flags.tokenFile !== undefined) token = await readToken(flags.tokenFile);
  else if (env['SPOA_TOKEN'] !== undefined && env['SPOA_TOKEN'] !== '') token = env['SPOA_TOKEN'];
  else token = fromFile?.token;
  return { host: address.host, port: address.port, token };
}
