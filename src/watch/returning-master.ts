import {lockCluster} from '../store/lock.js'
import {returningMasters, roleView, sqlFacts, topologyOf, type RoleView} from '../analysis/topology.js'
import type {ClusterConfig, ServerConfig} from '../config/types.js'
import {dialectFor, parseServerVersion, type Dialect} from '../dialect/index.js'
import {endpointOf} from '../inspect/inspect.js'
import {ServerConnection} from '../inspect/mysql.js'
import type {Snapshot} from '../inspect/types.js'
import {oneLine} from '../util/errors.js'

/** One light look at a server over a short-lived connection, kept open so that fencing needs no second connect. */
export interface Look {
  server: ServerConfig
  view: RoleView
  conn: ServerConnection
  dialect: Dialect
}

/** One connect (monitor timeouts), one SELECT and SHOW SLAVE STATUS. A server that does not answer is skipped. */
export async function lookAt(cluster: ClusterConfig, servers: readonly ServerConfig[]): Promise<Look[]> {
  const timeout = cluster.monitor.connectTimeoutMs
  const looks = await Promise.all(
    servers.map(async (server): Promise<Look | undefined> => {
      let conn: ServerConnection | undefined
      try {
        conn = await ServerConnection.open(endpointOf(cluster, server), timeout)
        const row = (await conn.queryOne('SELECT @@version AS v, @@version_comment AS c, @@global.read_only+0 AS ro', [], timeout))!
        const dialect = dialectFor(parseServerVersion(String(row.v), typeof row.c === 'string' ? row.c : ''))
        const status = await conn.queryOne(dialect.showReplicaStatus, [], timeout)
        const view = roleView(cluster, server.name, Number(row.ro) === 0, status ? dialect.parseReplicaStatus(status) : null)
        return {server, view, conn, dialect}
      } catch {
        await conn?.close()
        return undefined
      }
    }),
  )
  return looks.filter((l): l is Look => l !== undefined)
}

export async function closeLooks(looks: readonly Look[]): Promise<void> {
  await Promise.all(looks.map((l) => l.conn.close()))
}

export interface Fenced {
  server: string
  master: string
  at: string
  reason: string
}

/** Takes the cluster lock (this host's file, or etcd's with several managers); resolves to its release. */
export type TakeLock = (purpose: string) => Promise<() => Promise<void>>

export function localLock(cluster: string): TakeLock {
  return (purpose) => {
    const release = lockCluster(cluster, purpose)
    return Promise.resolve(() => Promise.resolve(release()))
  }
}

export type FenceOutcome = {fenced: Fenced[]; failed: {server: string; message: string}[]; skipped: string | null}

/**
 * The master watch monitors, kept when a look at the topology finds no master only because the server the last
 * failover replaced by it (`replaced`) is back writable and replicating from nobody (two writable servers and no
 * replica to vote: a two-server cluster). Without that server the topology must name `current` again; then it
 * is still the master, and the returning one is fenced next. Otherwise undefined: nothing is guessed.
 */
export function masterDespiteReturned(cluster: ClusterConfig, snapshot: Snapshot, current: ServerConfig | undefined, replaced: string | null): ServerConfig | undefined {
  if (!current || !replaced || replaced === current.name) return undefined
  const returned = snapshot.servers.find((s) => s.name === replaced)
  const facts = returned ? sqlFacts(returned) : undefined
  if (!facts || facts.replica !== null || facts.readOnly !== false) return undefined
  const without = topologyOf(cluster, {...snapshot, servers: snapshot.servers.filter((s) => s.name !== replaced)}).master
  return without?.name === current.name ? current : undefined
}

/** A writable server that replicates from nobody beside the master, and why it is taken for a returning old master. */
export interface Stray {
  name: string
  why: string
}

/**
 * The servers to fence while `master` is the master: the writable ones that replicate from nobody when a
 * replica connected to `master` tells which is the master; and, with or without replicas (a two-server
 * cluster has none left after its failover), the one the last failover replaced by `master` (`replaced`, from
 * the watch state's record), if it is back writable and replicating from nobody. Nothing else is a guess
 * worth acting on.
 */
export function strayMasters(master: string, views: readonly RoleView[], replaced: string | null): Stray[] {
  const followers = views.filter((v) => v.name !== master && v.source === master && v.connected).map((v) => v.name)
  const byReplicas = `${master} is the master (${followers.join(', ')} replicate${followers.length === 1 ? 's' : ''} from it)`
  const byRecord = `${master} is the master (it replaced ${replaced} at the last failover)`
  const named = new Set(returningMasters(master, views).map((v) => v.name))
  return views
    .filter((v) => named.has(v.name) || (v.name === replaced && v.name !== master && v.source === null && v.writable))
    .map((v) => ({name: v.name, why: `${v.name} replicates from nobody and was writable (read_only=0) while ${named.has(v.name) ? byReplicas : byRecord}`}))
}

/**
 * Sets read_only (super_read_only on MySQL) on every server strayMasters names while `master` is the master
 * (`replaced`: the server the last failover replaced by `master`, from the watch state, or null). Under the
 * cluster lock, on a fresh look at every server but the master: an apply (a switchover promotes a server that
 * briefly looks just like this) holds the lock, so it is never interfered with. Never touches `master`.
 */
export async function fenceReturningMasters(cluster: ClusterConfig, master: ServerConfig, takeLock: TakeLock = localLock(cluster.name), replaced: string | null = null): Promise<FenceOutcome> {
  let unlock: () => Promise<void>
  try {
    unlock = await takeLock(`mha watch (pid ${process.pid}): fencing a returning master`)
  } catch (error) {
    return {fenced: [], failed: [], skipped: oneLine(error)}
  }
  const looks = await lookAt(
    cluster,
    cluster.servers.filter((s) => s !== master),
  ).catch(() => [] as Look[])
  try {
    const strays = new Map(strayMasters(master.name, looks.map((l) => l.view), replaced).map((s) => [s.name, s.why]))
    if (strays.size === 0) return {fenced: [], failed: [], skipped: `no replica is connected to ${master.name} and no recorded failover put ${master.name} in their place, so which server is the master is not clear`}
    const outcome: FenceOutcome = {fenced: [], failed: [], skipped: null}
    for (const look of looks) {
      const reason = strays.get(look.server.name)
      if (reason === undefined) continue
      try {
        for (const sql of look.dialect.setReadOnly(true)) await look.conn.execute(sql, cluster.monitor.connectTimeoutMs)
        outcome.fenced.push({server: look.server.name, master: master.name, at: new Date().toISOString(), reason})
      } catch (error) {
        outcome.failed.push({server: look.server.name, message: oneLine(error)})
      }
    }
    return outcome
  } finally {
    await closeLooks(looks)
    await unlock()
  }
}
