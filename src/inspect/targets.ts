import type {ClusterConfig, ServerConfig, SshHost} from '../config/types.js'
import type {SshTarget} from '../remote/ssh.js'
import type {Endpoint} from './mysql.js'

/** How mha reaches a server over SQL: the server's login (its own or the cluster's), from the manager's source address. */
export function endpointOf(cluster: ClusterConfig, server: ServerConfig): Endpoint {
  return {name: server.name, host: server.ip, port: server.port, user: server.user, password: server.password, loginFields: server.loginFields, localAddress: cluster.sourceAddress}
}

/**
 * How long a live server takes at most to answer a connect or a trivial query: a second, or monitor.connect_timeout
 * if shorter. The bound of watch's retried pings and of the fence's look at a master just found silent, which takes
 * such a ping, this recent, as its own.
 */
export function quickAnswerMs(cluster: ClusterConfig): number {
  return Math.min(cluster.monitor.connectTimeoutMs, 1000)
}

/** How mha reaches a server's host (or a binlog server) over SSH. */
export function sshTargetOf(cluster: ClusterConfig, server: SshHost): SshTarget {
  return {...server.ssh, name: server.name, host: server.sshHost, port: server.sshPort, user: server.sshUser, localAddress: cluster.sourceAddress}
}
