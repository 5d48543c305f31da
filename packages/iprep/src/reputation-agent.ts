/**
 * Reputation mode: the service, its SPOE handler, the admin API and the
 * signals, wired around an Agent. Everything here uses the spop library's
 * public API and the engine's pieces; nothing knows about sockets but the Agent.
 */
import { watch } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { basename, dirname } from 'node:path';
import { type Agent, type Logger, type MessageHandler, closeOnSignals } from 'spop';
import { AdminServer, ClusterMetricsLink, ReputationMetrics, hasClusterMetricsHub, workerHealth, workerReload } from './admin/index.js';
import { TOP_CLIENTS } from './admin/status.js';
import { hasWorkerFlag } from './cluster/flags.js';
import { serveHandOvers } from './cluster/handover.js';
import { ADMIN_PORT_WAIT_ENV } from './cluster/succession.js';
import { SUPERVISOR_ENV, leaveCluster, requestRestart } from './cluster/supervisor.js';
import { CoarseClock, type ReputationHandlerOptions, reputationHandler } from './engine/index.js';
import { GeoCounts } from './geo/geo-counts.js';
import { IprepService } from './service.js';
import type { IprepConfig } from './types.js';

export interface ReputationAgentOptions {
  readonly configPath?: string | undefined;
  /** What a reload reads (see IprepServiceOptions.loadConfig). */
  readonly loadConfig?: (() => Promise<IprepConfig>) | undefined;
  readonly logger: Logger;
  readonly debug?: boolean;
}

/** A running reputation agent's parts, for tests and embedding. */
export interface ReputationAgent {
  readonly service: IprepService;
  readonly metrics: ReputationMetrics;
  readonly admin: AdminServer | undefined;
  close(): Promise<void>;
}

/**
 * Starts the service (loads every list: throws if one cannot be had), registers
 * the handler of every configured message on `agent`, starts the admin API,
 * reloads on SIGHUP and when the configuration file changes, and closes it all
 * on SIGTERM/SIGINT. The caller then makes the agent listen.
 */
export async function runReputationAgent(agent: Agent, config: IprepConfig, options: ReputationAgentOptions): Promise<ReputationAgent> {
  const { logger, configPath, loadConfig } = options;
  const metrics = new ReputationMetrics();
  const service = new IprepService(config, {
    configPath,
    loadConfig,
    logger,
    onReload: (ok, durationMs) => metrics.reloaded(ok, durationMs),
    onDecisionAudit: (event) => metrics.decisionAudited(event),
  });
  await service.start();

  const clock = new CoarseClock();
  // Countries and ASNs of the messages (the status page, /metrics): nothing is counted while no database locates them.
  const geoCounts = new GeoCounts();
  const handler = serviceHandler(service, config, clock, {
    metrics,
    geoCounts,
    onVerdict: options.debug ? (ip, v) => logger.debug('scored', { ip, score: v.score, action: v.action, category: v.category, source: v.source }) : undefined,
  });
  for (const name of config.messages) agent.message(name, handler);

  metrics.setAgentGauges(() => ({ connections: agent.stats.connections, inFlight: agent.stats.inFlight }));
  metrics.setAgentCounters(() => agent.stats);
  metrics.setListsProvider(() => service.lists());
  metrics.setDecisionsProvider(() => service.decisionCount());
  metrics.setStoreProvider(() => service.store());
  const { behaviour } = service;
  if (behaviour !== undefined) {
    metrics.setTopClientsProvider(() => behaviour.topClients(TOP_CLIENTS));
    metrics.setBehaviourProvider(() => ({ clients: behaviour.size, turnedAway: behaviour.turnedAway }));
  }
  metrics.setGeoProvider(() => {
    // The geo section reloads: its databases and `top` are the service's current ones.
    const databases = service.geoDatabases();
    const { top } = service.config.geo;
    return databases.length === 0 ? undefined : { top, countries: geoCounts.top('country', top), asns: geoCounts.top('asn', top), databases };
  });
  // A node:cluster worker: the admin API answers for every worker, and reloads them all, through the primary.
  let link: ClusterMetricsLink | undefined;
  if (hasClusterMetricsHub()) {
    link = new ClusterMetricsLink({
      collect: (what) => {
        switch (what) {
          case 'metrics':
            return metrics.registry.getMetricsAsJSON();
          case 'status':
            return metrics.statusCounts();
          case 'health':
            return workerHealth(service, metrics.uptimeSeconds());
          case 'reload':
            logger.info('reloading', { why: 'POST /reload to another worker' });
            return workerReload(service);
        }
      },
      logger,
    });
    metrics.setPeers(link);
    link.start();
  }

  let admin: AdminServer | undefined;
  let adminClosed = false;
  if (config.admin.enabled) {
    admin = new AdminServer({
      service,
      metrics,
      token: config.admin.token,
      allowedHosts: config.admin.allowedHosts,
      logger,
      ...(link === undefined ? {} : { peers: link }),
      ...(hasWorkerFlag(SUPERVISOR_ENV) ? { restart: requestRestart } : {}),
    });
    const listening = (address: AddressInfo): void => logger.info('admin API listening', { address: `${address.address}:${address.port}` });
    // A successor primary's worker: the previous primary's workers hold the port until they leave.
    if (hasWorkerFlag(ADMIN_PORT_WAIT_ENV)) void listenOnceFree(admin, config.admin, logger, () => adminClosed).then((a) => a && listening(a));
    else listening(await admin.listen({ host: config.admin.host, port: config.admin.port }));
  }

  const reload = (why: string): void => {
    logger.info('reloading', { why });
    void service.reload();
  };
  const onHup = (): void => reload('SIGHUP');
  process.on('SIGHUP', onHup);
  // Editors often replace the file rather than write it: watch its directory for its name, debounced.
  let debounce: NodeJS.Timeout | undefined;
  const watcher =
    configPath === undefined
      ? undefined
      : watch(dirname(configPath), (_event, name) => {
          if (name !== null && name !== basename(configPath)) return;
          clearTimeout(debounce);
          debounce = setTimeout(() => reload('configuration file changed'), 300).unref();
        }).on('error', (err) => logger.warn('cannot watch the configuration file', { error: String(err) }));
  watcher?.unref();

  const close = async (): Promise<void> => {
    process.off('SIGHUP', onHup);
    clock.stop();
    clearTimeout(debounce);
    watcher?.close();
    adminClosed = true;
    await admin?.close();
    link?.close();
    await service.close();
  };
  // leaveCluster: a worker exits only once no connection is on its way to it (cluster/supervisor.ts).
  const leave = (): void =>
    void close()
      .catch(() => {})
      .then(() => leaveCluster())
      .finally(() => process.exit(0));
  closeOnSignals(agent, { timeout: config.agent.shutdownTimeoutMs, onClosed: leave });
  // A rolling restart: this worker's connections go to the new workers, not closed (cluster/handover.ts).
  serveHandOvers(agent, { timeoutMs: config.agent.shutdownTimeoutMs, logger, onHandedOver: leave });
  return { service, metrics, admin, close };
}

/** Time a successor primary's worker waits for the admin port its predecessor's workers hold. */
const ADMIN_PORT_WAIT_MS = 60_000;
const ADMIN_PORT_RETRY_MS = 100;

/** Listens once the port is free (EADDRINUSE: tried again), until `closed` or ADMIN_PORT_WAIT_MS; undefined when it never was. */
async function listenOnceFree(
  admin: AdminServer,
  where: { host: string; port: number },
  logger: Logger,
  closed: () => boolean,
): Promise<AddressInfo | undefined> {
  for (const deadline = Date.now() + ADMIN_PORT_WAIT_MS; !closed(); await sleep(ADMIN_PORT_RETRY_MS)) {
    try {
      return await admin.listen(where);
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'EADDRINUSE' || Date.now() > deadline) {
        logger.error('admin API: cannot listen', { error: String(error) });
        return undefined;
      }
    }
  }
  return undefined;
}

/** The reputation handler wired to a started service as the agent runs it (bench/hot-path.ts measures this one). */
export function serviceHandler(
  service: IprepService,
  config: IprepConfig,
  clock: CoarseClock,
  extras: Pick<ReputationHandlerOptions, 'metrics' | 'geoCounts' | 'onVerdict'> = {},
): MessageHandler {
  return reputationHandler({
    ...extras,
    engine: service.engine,
    now: clock.now,
    variables: config.variables,
    behaviour: service.behaviour,
    statusArgument: config.behaviour.statusArgument,
    errorWeight: config.behaviour.errorWeight,
    rate: config.behaviour.rateArgument === undefined ? undefined : { argument: config.behaviour.rateArgument, max: config.behaviour.maxRate },
    tls: service.tls,
  });
}
