/**
 * Rules across settings, checked on the configuration as it will run: the file, the flags on top of it
 * and the defaults, merged. The file's own reading and the command line both go through
 * `checkSettings`, so a flag cannot get past a rule the file is held to.
 */
import { ASN_LIST_FORMATS, type IprepConfig } from '../types.js';
import { isLoopbackHost } from '../net/address.js';

/** A problem with the merged configuration, at the setting (its YAML path, `admin.host`) to change. */
export interface SettingProblem {
  readonly setting: string;
  readonly message: string;
}

/** Every problem of `config` that no single setting shows on its own. */
export function checkSettings(config: IprepConfig): SettingProblem[] {
  const problems: SettingProblem[] = [];
  const { admin } = config;
  if (admin.enabled && admin.token === undefined && !isLoopbackHost(admin.host)) {
    problems.push({
      setting: 'admin.host',
      message: `admin.host ${admin.host} is reachable from other machines: set admin.token or admin.token-file`,
    });
  }
  config.lists.forEach((list, i) => {
    if (ASN_LIST_FORMATS.includes(list.format) && config.geo.asnDb === undefined) {
      problems.push({ setting: `lists[${i}].format`, message: `lists[${i}] (${list.name}) is a list of ASNs: geo.asn-db is needed to match addresses` });
    }
  });
  return problems;
}
