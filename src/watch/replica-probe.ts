import {replicatesFrom} from '../analysis/topology.js'
import type {ClusterConfig, ServerConfig} from '../config/types.js'
import {dialectFor, parseServerVersion} from '../dialect/index.js'
import {endpointOf} from '../inspect/inspect.js'
import {ServerConnection} from '../inspect/mysql.js'
import {oneLine} from '../util/errors.js'

export interface ReplicaView {
  name: string
  /** Answers SQL and replicates from the current master with both threads running. */
  up: boolean
  reachable: boolean
  ioThread: 'running' | 'stopped' | 'connecting' | null
  sqlThread: 'running' | 'stopped' | null
  /** Seconds_Behind_Master, when the replica replicates from the master. */
  lagSeconds: number | null
  /** Why it is not up, in words; null when it is. */
  problem: string | null
}

/** One look at every server but the master: does it answer, and does it replicate from the master? */
export async function probeReplicas(cluster: ClusterConfig, master: ServerConfig): Promise<ReplicaView[]> {
  const timeout = cluster.monitor.connectTimeoutMs
  return await Promise.all(
    cluster.servers
      .filter((s) => s.name !== master.name)
      .map(async (server): Promise<ReplicaView> => {
        let conn: ServerConnection
        try {
          conn = await ServerConnection.open(endpointOf(cluster, server), timeout)
        } catch (error) {
          return {name: server.name, up: false, reachable: false, ioThread: null, sqlThread: null, lagSeconds: null, problem: `does not answer: ${oneLine(error)}`}
        }
        try {
          const row = await conn.queryOne('SELECT @@version AS v, @@version_comment AS c', [], timeout)
          const dialect = dialectFor(parseServerVersion(String(row?.v), typeof row?.c === 'string' ? row.c : ''))
          const raw = await conn.queryOne(dialect.showReplicaStatus, [], timeout)
          const status = raw ? dialect.parseReplicaStatus(raw) : null
          if (!status) return {name: server.name, up: false, reachable: true, ioThread: null, sqlThread: null, lagSeconds: null, problem: 'is not a replica'}
          const fromMaster = replicatesFrom(status, master)
          if (!fromMaster) return {name: server.name, up: false, reachable: true, ioThread: null, sqlThread: null, lagSeconds: null, problem: `replicates from ${status.sourceHost}:${status.sourcePort}, not from ${master.name}`}
          const up = status.ioThread === 'running' && status.sqlThread === 'running'
          const problem = up ? null : `IO thread ${status.ioThread}, SQL thread ${status.sqlThread}${status.lastIoError ? `: ${status.lastIoError}` : status.lastSqlError ? `: ${status.lastSqlError}` : ''}`
          return {name: server.name, up, reachable: true, ioThread: status.ioThread, sqlThread: status.sqlThread, lagSeconds: status.secondsBehind, problem}
        } catch (error) {
          return {name: server.name, up: false, reachable: true, ioThread: null, sqlThread: null, lagSeconds: null, problem: `cannot read its replication status: ${oneLine(error)}`}
        } finally {
          await conn.close()
        }
      }),
  )
}
