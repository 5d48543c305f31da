/** Types of scripts/provision.mjs, for its tests. */
export type Suite = 'process' | 'e2e';
export type HaproxyVersion = '2.6' | '3.0' | '3.2';
export declare const haproxyVersions: readonly HaproxyVersion[];

export interface Needs {
  readonly haproxy: boolean;
  readonly redis: boolean;
  readonly chromium: boolean;
}

export interface Facts {
  readonly needs: Needs;
  /** Per version: the HAPROXY_BIN_* override if set, and whether the binary used runs. */
  readonly haproxy: Readonly<Record<HaproxyVersion, { readonly override: string | undefined; readonly works: boolean }>>;
  /** redis-server and redis-cli found on PATH or in .cache/redis/bin. */
  readonly redis: boolean;
  readonly chromium: { readonly path: string; readonly overridden: boolean; readonly present: boolean };
  /** apt-get and dpkg on PATH. */
  readonly apt: boolean;
  readonly keyring: boolean;
  readonly root: boolean;
  readonly sudo: boolean;
  /** SPOA_TEST_INSTALL: '1' allows installing through sudo, '0' forbids installing. */
  readonly install: string | undefined;
}

export interface Plan {
  aptInstall: string[];
  fetchHaproxy: HaproxyVersion[];
  fetchRedis: boolean;
  failures: string[];
}

export declare function needsOf(suites: readonly string[]): Needs;
export declare function planProvisioning(facts: Facts): Plan;
export declare function gatherFacts(suites: readonly string[], env?: NodeJS.ProcessEnv): Facts;
export declare function provision(suites: readonly string[], env?: NodeJS.ProcessEnv): string[];
