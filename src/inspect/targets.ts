import type {ClusterConfig, ServerConfig} from '../config/types.js'
import type {SshTarget} from '../remote/ssh.js'
import type {Endpoint} from './mysql.js'

/** How mha reaches a server over SQL: the server's login (its own or the cluster's), from the manager's source address. */
export function endpointOf(cluster: ClusterConfig, server: ServerConfig): Endpoint {
  return {name: server.name, host: server.ip, port: server.port, user: server.user, password: server.password, loginFields: server.loginFields, localAddress: cluster.sourceAddress}
}

/** How mha reaches a server's host over SSH. */
export function sshTargetOf(cluster: ClusterConfig, server: ServerConfig): SshTarget {
  return {...server.ssh, name: server.name, host: server.sshHost, port: server.sshPort, user: server.sshUser, localAddress: cluster.sourceAddress}
}
