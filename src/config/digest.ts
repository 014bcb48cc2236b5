import {createHash} from 'node:crypto'
import {canonical} from '../plan/plan-file.js'
import type {ClusterConfig} from './types.js'

/**
 * What each manager host sets for itself: how it reaches the servers and proxies (the address it connects to, its SSH host,
 * port, keys and known_hosts, the address its connections leave from, where its copies of the passwords lie),
 * how it watches, and where its file is. Several managers (etcd) each have their own; none of it changes what a
 * plan does to the cluster (replicas are pointed at `hostname`, which counts).
 */
/** switchover.running_seconds_limit's default in schemas/cluster.schema.json (MHA's). */
const defaultRunningSecondsLimit = 10

const LOCAL_TO_THE_MANAGER = new Set(['file', 'ip', 'ssh', 'sshHost', 'sshPort', 'sourceAddress', 'password', 'replPassword', 'monitor', 'runtimeApi', 'verifyPassword', 'loginFields'])

/**
 * sha256 of the settings of a cluster file that decide what a plan does (servers, users, replication, failover
 * and switchover rules, hooks), after validation and defaults: what a plan is checked against at apply. Not of
 * its bytes (a comment or a reordering changes nothing), and not of what is local to a manager host.
 */
export function settingsDigest(cluster: ClusterConfig): string {
  // A cluster without a routing section (or binlog servers) digests as it did before they existed; one that leaves a
  // newer setting at its default, as it did before that setting existed (so that plans made before keep applying).
  const omitted = (key: string, value: unknown) =>
    LOCAL_TO_THE_MANAGER.has(key) ||
    ((key === 'proxies' || key === 'binlogServers') && Array.isArray(value) && value.length === 0) ||
    (key === 'runningSecondsLimit' && value === defaultRunningSecondsLimit)
  // A server's own user counts only where it differs: a file without per-server logins digests as it did before them.
  const servers = cluster.servers.map(({user, ...rest}) => (user === cluster.user ? rest : {...rest, user}))
  const settings = JSON.parse(JSON.stringify({...cluster, servers}, (key, value: unknown) => (omitted(key, value) ? undefined : value))) as unknown
  return `sha256:${createHash('sha256').update(JSON.stringify(canonical(settings))).digest('hex')}`
}
