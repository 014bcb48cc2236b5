import {lockCluster} from '../apply/lock.js'
import {returningMasters, roleView, type RoleView} from '../analysis/topology.js'
import type {ClusterConfig, ServerConfig} from '../config/types.js'
import {dialectFor, parseServerVersion, type Dialect} from '../dialect/index.js'
import {endpointOf} from '../inspect/inspect.js'
import {ServerConnection} from '../inspect/mysql.js'
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
 * Sets read_only (super_read_only on MySQL) on every server that replicates from nobody and is writable
 * while `master` is the master that replicas are connected to. Under the cluster lock, on a fresh look at
 * every server but the master: an apply (a switchover promotes a server that briefly looks just like this)
 * holds the lock, so it is never interfered with. Never touches `master`.
 */
export async function fenceReturningMasters(cluster: ClusterConfig, master: ServerConfig, takeLock: TakeLock = localLock(cluster.name)): Promise<FenceOutcome> {
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
    const strays = new Set(returningMasters(master.name, looks.map((l) => l.view)).map((v) => v.name))
    if (strays.size === 0) return {fenced: [], failed: [], skipped: `no replica is connected to ${master.name}, so which server is the master is not clear`}
    const followers = looks.filter((l) => l.view.source === master.name && l.view.connected).map((l) => l.server.name)
    const outcome: FenceOutcome = {fenced: [], failed: [], skipped: null}
    for (const look of looks.filter((l) => strays.has(l.server.name))) {
      try {
        for (const sql of look.dialect.setReadOnly(true)) await look.conn.execute(sql, cluster.monitor.connectTimeoutMs)
        outcome.fenced.push({
          server: look.server.name,
          master: master.name,
          at: new Date().toISOString(),
          reason: `${look.server.name} replicates from nobody and was writable (read_only=0) while ${master.name} is the master (${followers.join(', ')} replicate${followers.length === 1 ? 's' : ''} from it)`,
        })
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
