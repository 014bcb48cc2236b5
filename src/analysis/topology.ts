import type {ClusterConfig, ServerConfig} from '../config/types.js'
import type {ReplicaStatus} from '../dialect/types.js'
import type {ServerSnapshot, Snapshot, SqlFacts} from '../inspect/types.js'

/** The configured server a replica's Master_Host:Master_Port names, matched by hostname or ip. */
export function sourceServer(cluster: ClusterConfig, replica: ReplicaStatus): ServerConfig | undefined {
  return cluster.servers.find((s) => replicatesFrom(replica, s))
}

/** Does the replica's Master_Host:Master_Port name this server (by hostname or ip)? */
export function replicatesFrom(replica: Pick<ReplicaStatus, 'sourceHost' | 'sourcePort'>, server: Pick<ServerConfig, 'hostname' | 'ip' | 'port'>): boolean {
  return (replica.sourceHost === server.hostname || replica.sourceHost === server.ip) && replica.sourcePort === server.port
}

export function sqlFacts(server: ServerSnapshot): SqlFacts | undefined {
  return server.sql.reachable ? server.sql : undefined
}

export interface Topology {
  /**
   * The server the others replicate from: the one the replicas name (votes), or without votes the only
   * server that replicates from nobody (or the only writable one among several). Undefined when that
   * cannot be told: tied votes, or several writable servers that replicate from nobody and no replica.
   */
  master: ServerConfig | undefined
  /** Servers that replicate from nobody and are reachable (more than one is a problem). */
  roots: ServerConfig[]
  /** Replicas of the master. */
  replicas: ServerConfig[]
  /** Reachable servers that replicate from some other server (multi-tier, or a stray source). */
  others: ServerConfig[]
}

export function topologyOf(cluster: ClusterConfig, snapshot: Snapshot): Topology {
  const byName = new Map(snapshot.servers.map((s) => [s.name, s]))
  const facts = (s: ServerConfig) => {
    const snap = byName.get(s.name)
    return snap ? sqlFacts(snap) : undefined
  }
  const roots = cluster.servers.filter((s) => {
    const f = facts(s)
    return f !== undefined && f.replica === null
  })
  // Votes from the replicas decide when the master is down or when several servers replicate from nobody.
  const votes = new Map<string, number>()
  for (const s of cluster.servers) {
    const replica = facts(s)?.replica
    const source = replica ? sourceServer(cluster, replica) : undefined
    if (source) votes.set(source.name, (votes.get(source.name) ?? 0) + 1)
  }
  const most = Math.max(0, ...votes.values())
  const voted = cluster.servers.filter((s) => most > 0 && votes.get(s.name) === most)
  // A tie is broken only by the top of a chain (multi-tier): a voted server that replicates from nobody
  // or cannot be asked. Two servers with as many replicas each are not guessed between.
  const top = voted.length > 1 ? voted.filter((s) => !facts(s)?.replica) : voted
  const writableRoots = roots.filter((s) => facts(s)?.readOnly === false)
  const master =
    voted.length > 0
      ? top.length === 1
        ? top[0]
        : undefined
      : roots.length === 1
        ? roots[0]
        : writableRoots.length === 1
          ? writableRoots[0]
          : undefined
  const replicas: ServerConfig[] = []
  const others: ServerConfig[] = []
  for (const s of cluster.servers) {
    if (s === master) continue
    const replica = facts(s)?.replica
    if (!replica) continue
    if (master && sourceServer(cluster, replica)?.name === master.name) replicas.push(s)
    else others.push(s)
  }
  return {master, roots, replicas, others}
}

/** What one look at a server says about its role: enough to tell a returning old master. */
export interface RoleView {
  name: string
  /** read_only=0: clients can write to it. */
  writable: boolean
  /** The configured server it replicates from (host:port when not in the cluster file); null for nobody. */
  source: string | null
  /** Its IO thread is connected to that source (Slave_IO_Running: Yes). */
  connected: boolean
}

export function roleViewsOf(cluster: ClusterConfig, snapshot: Snapshot): RoleView[] {
  return snapshot.servers.flatMap((s) => {
    const f = sqlFacts(s)
    return f ? [roleView(cluster, s.name, !f.readOnly, f.replica)] : []
  })
}

export function roleView(cluster: ClusterConfig, name: string, writable: boolean, replica: ReplicaStatus | null): RoleView {
  const source = replica ? (sourceServer(cluster, replica)?.name ?? `${replica.sourceHost}:${replica.sourcePort}`) : null
  return {name, writable, source, connected: replica?.ioThread === 'running'}
}

/**
 * Servers that replicate from nobody and take writes while `master` is the master that replicas are
 * connected to: typically the old master restarted after a failover, writable from its my.cnf (split
 * brain). None when no replica is connected to `master`: then which server is the master is not clear,
 * and nothing is named (a caller that acts on this must never act on a guess).
 */
export function returningMasters(master: string, views: readonly RoleView[]): RoleView[] {
  if (!views.some((v) => v.name !== master && v.source === master && v.connected)) return []
  return views.filter((v) => v.name !== master && v.source === null && v.writable)
}
