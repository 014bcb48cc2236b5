import type {ClusterConfig} from '../config/types.js'
import {SshSessions} from '../remote/session-pool.js'
import {phase} from '../util/phases.js'
import {sshTargetOf} from './targets.js'

/**
 * Every host's SSH handshake, started now: the slowest part of an inspection (sshd's side of it above all), so
 * that a command can start it as soon as it has read the cluster file, before it loads the SQL client and the
 * planner. Hosts for which `skip` says so (known to be down) get none. The sessions serve the hosts' probes and
 * relay lookups; whoever opened them closes them.
 */
export function openHostSessions(cluster: ClusterConfig, skip: (server: string) => boolean = () => false): SshSessions {
  const sessions = new SshSessions()
  for (const server of cluster.servers) {
    if (skip(server.name)) continue
    // Its failure is reported by the probe that awaits it.
    sessions.open(sshTargetOf(cluster, server)).then(
      () => phase(`ssh ${server.name} ready`),
      () => undefined,
    )
  }
  return sessions
}
