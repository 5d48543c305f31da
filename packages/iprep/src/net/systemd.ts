/**
 * systemd socket activation (sd_listen_fds(3)): the listening socket handed over as file descriptor 3,
 * so that the service can stop and start (a package upgrade) while systemd keeps the port open and
 * queues the connections meanwhile.
 */

/** Set in the workers' environment when the primary holds a socket passed by systemd. */
export const SYSTEMD_SOCKET_ENV = 'IPREP_SYSTEMD_SOCKET';

/**
 * Set by a primary that starts its successor (cluster/succession.ts) to its own pid: the successor
 * takes descriptor 3 (LISTEN_FDS=1) from its parent, whose pid LISTEN_PID could not name in advance.
 */
export const SUCCESSOR_ENV = 'IPREP_SUCCESSOR_OF';

/** The first descriptor passed (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;

/**
 * The listening descriptor passed by systemd, or undefined. As sd_listen_fds(3): only when LISTEN_PID
 * names this process (a variable inherited by a child is not meant for it) and LISTEN_FDS counts at
 * least one; the variables are removed either way, so that no process started from here takes them.
 * Or, without LISTEN_PID, when SUCCESSOR_ENV names the parent (`ppid`): a primary handing over to its
 * successor. More than one descriptor: an error (spoa listens on one port).
 */
export function takeListenFd(env: NodeJS.ProcessEnv = process.env, pid: number = process.pid, ppid: number = process.ppid): number | undefined {
  const listenPid = env['LISTEN_PID'];
  const listenFds = env['LISTEN_FDS'];
  const successorOf = env[SUCCESSOR_ENV];
  delete env['LISTEN_PID'];
  delete env['LISTEN_FDS'];
  delete env['LISTEN_FDNAMES'];
  delete env[SUCCESSOR_ENV];
  const forUs =
    listenPid === undefined
      ? successorOf !== undefined && /^\d{1,10}$/.test(successorOf) && Number(successorOf) === ppid
      : /^\d{1,10}$/.test(listenPid) && Number(listenPid) === pid;
  if (listenFds === undefined || !forUs) return undefined;
  if (!/^\d{1,4}$/.test(listenFds)) throw new Error(`LISTEN_FDS must be a count of descriptors: ${listenFds.slice(0, 40)}`);
  const count = Number(listenFds);
  if (count === 0) return undefined;
  if (count > 1) throw new Error(`systemd passed ${count} sockets: spoa listens on one (give the .socket unit one ListenStream)`);
  return LISTEN_FDS_START;
}
