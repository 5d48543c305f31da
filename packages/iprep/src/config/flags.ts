/**
 * The configuration the agent runs with: its file's (or the defaults), with the command line's flags
 * on top, validated as a whole. Shared by the agent (cli.ts) and `spoa check` (check/run.ts).
 */
import type { IprepConfig } from '../types.js';
import { defaultConfig, defaultWorkers } from './defaults.js';
import { readConfigFile, validateConfig } from './load.js';

/** The command line as given: undefined where a flag is absent, so the configuration file can fill it. */
export interface CliFlags {
  readonly debug: boolean;
  readonly config?: string | undefined;
  readonly mode?: IprepConfig['mode'] | undefined;
  readonly port?: number | undefined;
  readonly host?: string | undefined;
  readonly socket?: string | undefined;
  readonly workers?: number | undefined;
  /** True when --supervise was given; the file decides otherwise. */
  readonly supervise?: boolean | undefined;
  readonly maxFrameSize?: number | undefined;
  readonly allowFrom?: readonly string[] | undefined;
  readonly maxConnections?: number | undefined;
  readonly shutdownTimeout?: number | undefined;
  readonly adminHost?: string | undefined;
  readonly adminPort?: number | undefined;
  /** True when the flag was given; the file decides otherwise. */
  readonly waitForLists?: boolean | undefined;
  readonly logLevel?: IprepConfig['log']['level'] | undefined;
  readonly logFormat?: IprepConfig['log']['format'] | undefined;
}

/** The configuration file (or the defaults) with the command line's flags on top. */
export async function resolveConfig(flags: CliFlags): Promise<IprepConfig> {
  const source = flags.config === undefined ? undefined : await readConfigFile(flags.config);
  const base = source?.config ?? defaultConfig();
  const mode = flags.mode ?? base.mode;
  // Without a file, `--mode reputation` gets the admin API a configuration file would have by default.
  let adminEnabled = flags.config === undefined ? mode === 'reputation' : base.admin.enabled;
  if (flags.adminPort !== undefined) adminEnabled = flags.adminPort !== 0;
  const admin = {
    ...base.admin,
    enabled: adminEnabled,
    host: flags.adminHost ?? base.admin.host,
    port: flags.adminPort ?? base.admin.port,
  };
  // -p and --host mean TCP even when the file names a socket; --socket replaces host and port.
  const tcp = flags.port !== undefined || flags.host !== undefined;
  const listen = {
    host: flags.host ?? base.listen.host,
    port: flags.port ?? base.listen.port,
    socket: flags.socket ?? (tcp ? undefined : base.listen.socket),
    // Without a file the defaults are random mode's: `--mode reputation` gets reputation mode's.
    workers: flags.workers ?? (flags.config === undefined ? defaultWorkers(mode) : base.listen.workers),
    supervise: flags.supervise ?? base.listen.supervise,
    allowFrom: flags.allowFrom ?? base.listen.allowFrom,
    maxConnections: flags.maxConnections ?? base.listen.maxConnections,
    idleTimeoutMs: base.listen.idleTimeoutMs,
  };
  const agent = {
    ...base.agent,
    maxFrameSize: flags.maxFrameSize ?? base.agent.maxFrameSize,
    shutdownTimeoutMs: flags.shutdownTimeout ?? base.agent.shutdownTimeoutMs,
  };
  // -d means debug, whatever the level asked.
  const log = { level: flags.debug ? 'debug' : (flags.logLevel ?? base.log.level), format: flags.logFormat ?? base.log.format } as const;
  const config = { ...base, mode, listen, agent, admin, log, waitForLists: flags.waitForLists ?? base.waitForLists };
  // The same rules as the file's, on what will run: a problem names the flag that set the value, else its line.
  const flagOf: Readonly<Record<string, string | undefined>> = {
    'admin.host': flags.adminHost === undefined ? undefined : '--admin-host',
    'admin.port': flags.adminPort === undefined ? undefined : '--admin-port',
  };
  validateConfig(config, (setting) => {
    const flag = flagOf[setting];
    return flag !== undefined ? { origin: flag } : (source?.locate(setting) ?? {});
  });
  return config;
}
