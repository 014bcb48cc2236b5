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
   * The server the others replicate from. With replicas naming one server, that server; with replicas naming
   * two or more (a master-master pair, or replicas of replicas), MHA's rule: the single one of them that is
   * writable or down. Without replicas, the only server that replicates from nobody (or the only writable one
   * among several). Undefined when that cannot be told: then `conflict` says why when MHA's rule refused.
   */
  master: ServerConfig | undefined
  /** Servers that replicate from nobody and are reachable (more than one is a problem). */
  roots: ServerConfig[]
  /** Replicas of the master (in a pair, the standby master is one). */
  replicas: ServerConfig[]
  /** Reachable servers that replicate from some other server (multi-tier, or a stray source). */
  others: ServerConfig[]
  /** The server the master itself replicates from (a master-master pair's standby), when configured. */
  standby: ServerConfig | undefined
  /** The standby does not answer: the live writable master goes on; the standby must be rejoined. */
  standbyDown: boolean
  /** Replicas of replicas: each with the intermediate master it replicates from and its tier (master = 1). */
  lowerTiers: LowerTier[]
  /** Why no master could be told by MHA's rule for several sources (two writers, or none). */
  conflict: string | undefined
}

export interface LowerTier {
  server: ServerConfig
  /** The configured server it replicates from, not the master. */
  via: ServerConfig
  /** 3 for a replica of a replica of the master, 4 below that; null when the chain does not reach the master. */
  tier: number | null
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
  // Who names whom: each configured source with the reachable servers that replicate from it.
  const sourceOf = (s: ServerConfig) => {
    const replica = facts(s)?.replica
    return replica ? sourceServer(cluster, replica) : undefined
  }
  const namedBy = new Map<string, ServerConfig[]>()
  for (const s of cluster.servers) {
    const source = sourceOf(s)
    if (source) namedBy.set(source.name, [...(namedBy.get(source.name) ?? []), s])
  }
  const sources = cluster.servers.filter((s) => namedBy.has(s.name))
  const writable = (s: ServerConfig) => facts(s)?.readOnly === false
  const down = (s: ServerConfig) => facts(s) === undefined
  let master: ServerConfig | undefined
  let conflict: string | undefined
  if (sources.length === 0) {
    const writableRoots = roots.filter(writable)
    master = roots.length === 1 ? roots[0] : writableRoots.length === 1 ? writableRoots[0] : undefined
  } else if (sources.length === 1) master = sources[0]
  else {
    // MHA's rule for several sources (get_primary_master): the real master is the single one that is writable or
    // down; the others are read_only intermediate masters (a pair's standby, a tier's relay).
    const candidates = sources.filter((s) => down(s) || writable(s))
    master = candidates.length === 1 ? candidates[0] : undefined
    if (candidates.length === 0) conflict = `${sources.map((s) => s.name).join(', ')} all have replicas and all are read_only: no master takes writes; set read_only=0 on the master`
    else if (candidates.length > 1) conflict = `${candidates.map((s) => `${s.name} (${down(s) ? 'down' : 'writable'})`).join(' and ')} ${candidates.length === 2 ? 'both' : 'all'} have replicas: mha cannot tell which is the master (two writers, or a writer beside a dead master); set read_only=1 on every one but the master`
  }
  // A live writable server that replicates from a server that is down, which no one else replicates from: the
  // down one is its standby (a master-master pair), not a dead master to fail over from.
  if (master && down(master) && sources.length === 1) {
    const namers = namedBy.get(master.name) ?? []
    const writableRoots = roots.filter(writable)
    if (namers.length === 1 && writable(namers[0]!) && !followedOnly(facts(namers[0]!)!)) master = namers[0]
    else if (writableRoots.length > 0) {
      // A writable server that replicates from nobody beside a down one that others replicate from: the down one
      // may be a dead master or a dead intermediate master (MHA: "alive, but does not work as a slave").
      const names = namers.map((n) => n.name).join(', ')
      conflict = `${writableRoots.map((r) => r.name).join(' and ')} ${writableRoots.length === 1 ? 'is' : 'are'} writable and replicate${writableRoots.length === 1 ? 's' : ''} from nobody, while ${names} replicate${namers.length === 1 ? 's' : ''} from ${master.name}, which is down: ${master.name} is either a dead master (then set read_only=1 on ${writableRoots.map((r) => r.name).join(' and ')}) or an intermediate master that is down (then re-point ${names} at the master)`
      master = undefined
    }
  } else if (!master && conflict) {
    // Two candidates: a live writable one, and a down one that only the writable one replicates from (its standby).
    const candidates = sources.filter((s) => down(s) || writable(s))
    const live = candidates.filter((s) => !down(s))
    const standbyOfLive = candidates.filter((s) => down(s) && (namedBy.get(s.name) ?? []).every((n) => n === live[0]))
    if (live.length === 1 && standbyOfLive.length === candidates.length - 1) {
      master = live[0]
      conflict = undefined
    }
  }
  const standby = master ? sourceOf(master) : undefined
  const replicas: ServerConfig[] = []
  const others: ServerConfig[] = []
  for (const s of cluster.servers) {
    if (s === master) continue
    const replica = facts(s)?.replica
    if (!replica) continue
    if (master && sourceOf(s)?.name === master.name) replicas.push(s)
    else others.push(s)
  }
  const tierOf = (s: ServerConfig, seen: Set<string>): number | null => {
    if (s === master) return 1
    if (seen.has(s.name)) return null
    seen.add(s.name)
    const source = sourceOf(s)
    const above = source ? tierOf(source, seen) : null
    return above === null ? null : above + 1
  }
  const lowerTiers: LowerTier[] = master
    ? others.flatMap((s) => {
        const via = sourceOf(s)
        return via ? [{server: s, via, tier: tierOf(s, new Set())}] : []
      })
    : []
  return {master, roots, replicas, others, standby, standbyDown: standby !== undefined && down(standby), lowerTiers, conflict}
}

/**
 * MariaDB: the last transaction of every GTID domain in its binlog came from another server, so it has been following
 * a master rather than taking writes: a writable replica of a dead master, not a pair's active master whose standby is
 * down. Unknown (false) on MySQL, whose gtid_executed does not say which transaction came last.
 */
function followedOnly(f: SqlFacts): boolean {
  if (f.version.flavor !== 'mariadb') return false
  const origins = f.gtid.binlogPos
    .split(',')
    .map((g) => g.trim().split('-'))
    .filter((parts) => parts.length === 3)
    .map((parts) => Number(parts[1]))
  return origins.length > 0 && !origins.includes(f.serverId)
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
