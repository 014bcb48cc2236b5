import type {ClusterConfig, ServerConfig} from '../config/types.js'
import type {ReplicaStatus} from '../dialect/types.js'
import type {ServerSnapshot, Snapshot, SqlFacts} from '../inspect/types.js'

/** The configured server a replica's Master_Host:Master_Port names, matched by hostname or ip. */
export function sourceServer(cluster: ClusterConfig, replica: ReplicaStatus): ServerConfig | undefined {
  return cluster.servers.find((s) => (s.hostname === replica.sourceHost || s.ip === replica.sourceHost) && s.port === replica.sourcePort)
}

export function sqlFacts(server: ServerSnapshot): SqlFacts | undefined {
  return server.sql.reachable ? server.sql : undefined
}

export interface Topology {
  /** The server the others replicate from: the one that replicates from nobody, or else the one the replicas name. */
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
  const voted = [...votes.entries()].sort((a, b) => b[1] - a[1])[0]?.[0]
  const master =
    roots.length === 1 && (voted === undefined || voted === roots[0]!.name) ? roots[0] : cluster.servers.find((s) => s.name === voted) ?? (roots.length === 1 ? roots[0] : undefined)
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
