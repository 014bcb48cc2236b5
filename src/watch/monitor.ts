import {replicatesFrom, sourceServer} from '../analysis/topology.js'
import type {ServerConfig} from '../config/types.js'
import {dialectFor, parseServerVersion} from '../dialect/index.js'
import {endpointOf, quickAnswerMs, sshTargetOf} from '../inspect/inspect.js'
import {ServerConnection, SqlError} from '../inspect/mysql.js'
import {oneLine} from '../util/errors.js'
import {ContactClock} from './contact.js'
import type {ClusterContext} from './context.js'
import type {MasterAnswer, ReplicaObservation} from './judge.js'
import {secondOpinion, type SecondOpinion} from './second-opinion.js'

/**
 * Servers last seen connected to the master are looked at again (a new connection each) only this often, or
 * sooner when the master's replication threads change: with a thousand clusters, connections cost more than pings.
 */
export const fullLookEveryMs = 60_000

/** The master's host answering SSH: a live one does in well under a second; one gone never does. */
const sshProbeMs = 1000

/** A route's TCP connect to the master: on a LAN a live port answers far sooner; a blackholed one never does. */
const probeTimeoutMs = 1000

/** How late the silence timer may fire before this process counts as too busy to tell silence from its own lag. */
const busyLagMs = 100

/** A failed ping answered this fast was a refusal from a live host's kernel, not a silence. */
const promptAnswerMs = 100

/** How soon a prompt refusal is tried again: the second try confirms it; the replicas still have to agree. */
const promptRetryMs = 50

/** What one look at the master gave: its answer, and whether a retry beside a silent ping failed too (two failures). */
export interface MasterLook {
  result: MasterAnswer
  retried: boolean
  /** The other routes and the master's SSH were started during this look (a silent ping on kept sessions). */
  probed: boolean
}

/** A server's source as a look saw it: a configured server's name, host:port, or null for nobody. */
export interface SeenSource {
  name: string
  source: string | null
}

/** What the monitor tells the loop of, as it happens. */
export interface MonitorEvents {
  /** The kept connection to the master was closed or reset: look now, not at the next ping. */
  lost(): void
  /** The sources the replicas named while asked (a failover done by hand moves them). */
  sources(master: ServerConfig, seen: readonly SeenSource[]): void
}

/**
 * While the master fails, look again sooner: death still needs several failures and the replicas' word. A
 * refusal that came at once (a crashed mysqld on a live host) is asked again at once; a silent one in 250 ms.
 */
export function nextPingDelayMs(intervalMs: number, failures: number, lastFailedPingMs: number): number {
  if (failures === 0) return intervalMs
  return Math.min(intervalMs, lastFailedPingMs < promptAnswerMs ? promptRetryMs : 250)
}

/**
 * The monitor phase of one cluster: the master's pings on a kept connection (and their overlapped retry), the
 * questions to the replicas while it fails, and the other routes and the master's SSH asked beside them. It
 * decides nothing: what it sees goes to the judge.
 */
export class Monitor {
  readonly #ctx: ClusterContext
  readonly #events: MonitorEvents
  #conn: ServerConnection | undefined
  /** The master said read_only at the last ping or retry: the loop looks at the topology again. */
  readOnly = false
  /** How long the last failed ping took (a prompt refusal or a silence). */
  lastFailedPingMs = 0
  /** When the last ping (or its retry) failed: the failover's fence takes a fresh one as its own look. */
  lastFailureAt = 0
  /** Servers seen replicating from the master (IO thread connected) at the last look. */
  readonly followers = new Set<string>()
  /** How long each replica has heard nothing from the master, from the looks taken while it fails. */
  readonly #contact = new ContactClock()
  /** Asked at the first failure, beside the next pings: the other routes to the master, and its host's SSH. */
  #routesProbe: Promise<SecondOpinion> | undefined
  #sshProbe: Promise<boolean> | undefined

  constructor(ctx: ClusterContext, events: MonitorEvents) {
    this.#ctx = ctx
    this.#events = events
  }

  get #cluster() {
    return this.#ctx.cluster
  }

  /** A new master: what was seen of the old one (followers, silence, routes, its kept connection) says nothing of it. */
  newMaster(): void {
    this.followers.clear()
    this.#contact.clear()
    this.forgetProbes()
    this.dropConnection()
  }

  /** The kept connection is closed (another manager leads the cluster, or the master changed). */
  dropConnection(): void {
    const old = this.#conn
    this.#conn = undefined
    void old?.close().catch(() => undefined)
  }

  async close(): Promise<void> {
    await this.#conn?.close()
  }

  /**
   * The ping; and when a healthy master's ping stays silent for half its timeout (a host gone without a reset, or
   * a stall), its retry on a connection of its own and the other routes start beside it, not after it: a silent
   * master costs one timeout and a half, not three in a row. A retry that answers wins: the master is alive.
   */
  async look(master: ServerConfig, failures: number): Promise<MasterLook> {
    const pinging = this.#ping(master, failures)
    if (failures > 0) return {result: await pinging, retried: false, probed: false}
    let timer: NodeJS.Timeout | undefined
    // A healthy master's ping without an answer for this long has its retry started beside it: half the ping's own timeout.
    const wait = quickAnswerMs(this.#cluster) / 2
    const armed = performance.now()
    const silence = new Promise<'silent'>((resolve) => (timer = setTimeout(() => resolve('silent'), wait)))
    const first = await Promise.race([pinging, silence])
    clearTimeout(timer)
    if (first !== 'silent') return {result: first, retried: false, probed: false}
    // The SSH probes start here only on kept sessions (a command each, no handshake) and while this process keeps
    // time: a timer that fired late says it is busy (a thousand clusters starting) and the ping may only be
    // waiting for it. Otherwise they wait for a failed ping, as they would without the overlap.
    const probeNow = this.#cluster.monitor.keepSshOpen && performance.now() - armed <= wait + busyLagMs
    if (probeNow) this.startProbes(master)
    const retry = this.#retryPing(master)
    const result = await pinging
    if (result.ok) {
      void retry.then((r) => r.conn?.close().catch(() => undefined))
      return {result, retried: false, probed: probeNow}
    }
    const again = await retry
    if (!again.conn) {
      this.lastFailureAt = Date.now()
      return {result, retried: true, probed: probeNow}
    }
    // The retry answered: the master is alive, and its connection is the one kept.
    this.readOnly = again.readOnly
    if (this.#cluster.monitor.pingType === 'connect') await again.conn.close()
    else this.#keep(again.conn)
    return {result: {ok: true}, retried: false, probed: probeNow}
  }

  #keep(conn: ServerConnection): void {
    this.#conn = conn
    // A crashed mysqld's host resets the kept connection at once: that starts the judgement, not the next ping.
    conn.onLost(() => this.#events.lost())
  }

  /** A second look at a master whose ping is silent: a new connection and the same question, at most one short timeout. */
  async #retryPing(master: ServerConfig): Promise<{conn?: ServerConnection; readOnly: boolean}> {
    const timeout = quickAnswerMs(this.#cluster)
    let conn: ServerConnection | undefined
    try {
      conn = await ServerConnection.open(endpointOf(this.#cluster, master), timeout)
      const row = await conn.queryOne('SELECT @@global.read_only AS ro', [], timeout)
      return {conn, readOnly: Number(row?.ro) === 1}
    } catch {
      conn?.destroy()
      return {readOnly: false}
    }
  }

  async #ping(master: ServerConfig, failures: number): Promise<MasterAnswer> {
    const cluster = this.#cluster
    // After a failure the next tries come quickly and wait at most a second each: a silent master costs one
    // full timeout, not failures_before_dead of them.
    const timeout = failures > 0 ? quickAnswerMs(cluster) : cluster.monitor.connectTimeoutMs
    const started = Date.now()
    try {
      if (cluster.monitor.pingType === 'connect' || !this.#conn) {
        await this.#conn?.close()
        this.#conn = await ServerConnection.open(endpointOf(cluster, master), timeout)
        if (cluster.monitor.pingType !== 'connect') this.#keep(this.#conn)
      }
      if (cluster.monitor.pingType === 'insert') {
        await this.#conn.execute('CREATE DATABASE IF NOT EXISTS mha_heartbeat', timeout)
        await this.#conn.execute('CREATE TABLE IF NOT EXISTS mha_heartbeat.heartbeat (id TINYINT PRIMARY KEY, at TIMESTAMP(6) NOT NULL)', timeout)
        await this.#conn.execute('INSERT INTO mha_heartbeat.heartbeat VALUES (1, NOW(6)) ON DUPLICATE KEY UPDATE at = NOW(6)', timeout)
      } else {
        // The same round trip tells whether it is still a master: an external switchover sets it read only.
        // A trivial query on an open connection answers in milliseconds: a second without one is a failure
        // (only suspect: death still needs the replicas or the other routes to agree).
        const row = await this.#conn.queryOne('SELECT @@global.read_only AS ro', [], quickAnswerMs(cluster))
        this.readOnly = Number(row?.ro) === 1
      }
      if (cluster.monitor.pingType === 'connect') {
        await this.#conn.close()
        this.#conn = undefined
      }
      return {ok: true}
    } catch (error) {
      // A failed connection is dropped, not closed politely: a silent master would hold the goodbye for a second.
      this.#conn?.destroy()
      this.#conn = undefined
      const e = error instanceof SqlError ? error : new SqlError('sql', 'UNKNOWN', oneLine(error))
      this.lastFailedPingMs = Date.now() - started
      this.lastFailureAt = Date.now()
      return {ok: false, kind: e.kind, message: e.message}
    }
  }

  /** The other routes, the master's SSH and a first look at the replicas, asked once per outage, beside the pings. */
  startProbes(master: ServerConfig): void {
    if (this.#routesProbe) return
    this.#routesProbe = secondOpinion(this.#cluster, master, this.#routes(master), probeTimeoutMs, this.#ctx.pool.run)
    this.#sshProbe = this.#sshReachable(master)
    // A first look at the replicas' heartbeat counts and positions: their silence is dated from it.
    void this.askReplicas(master)
  }

  /** What the master's host said to SSH, once asked (null: not asked in this outage). */
  async sshAnswer(): Promise<boolean | null> {
    return (await this.#sshProbe) ?? null
  }

  /** What the other routes said, once asked (null: not asked in this outage). */
  async routesAnswer(): Promise<SecondOpinion | null> {
    return (await this.#routesProbe) ?? null
  }

  forgetProbes(): void {
    // An answer nobody waits for any more must not surface as an unhandled rejection.
    this.#routesProbe?.catch(() => undefined)
    this.#routesProbe = undefined
    this.#sshProbe = undefined
  }

  /** The other routes to the master: the hosts of the servers that replicate from it (or of all the others). */
  #routes(master: ServerConfig): ServerConfig[] {
    const out = this.#ctx.outOfService()
    const others = this.#cluster.servers.filter((s) => s !== master && !out.includes(s.name))
    const following = others.filter((s) => this.followers.has(s.name))
    return following.length > 0 ? following : others
  }

  /** The ids of the master's binlog dump threads, one per connected replica; undefined without a kept connection. */
  async replicationThreads(): Promise<string | undefined> {
    if (!this.#conn || this.#cluster.monitor.pingType === 'connect') return undefined
    try {
      const rows = await this.#conn.query("SELECT ID AS id FROM information_schema.PROCESSLIST WHERE COMMAND IN ('Binlog Dump', 'Binlog Dump GTID') ORDER BY ID", [], quickAnswerMs(this.#cluster))
      return rows.map((r) => String(r.id)).join(',')
    } catch {
      return undefined
    }
  }

  /** Each replica (not out of service): does it still replicate from the master, and has it heard from it lately? */
  async askReplicas(master: ServerConfig): Promise<ReplicaObservation[]> {
    const cluster = this.#cluster
    const gone = this.#ctx.outOfService()
    const others = cluster.servers.filter((s) => s !== master && !gone.includes(s.name))
    const timeout = cluster.monitor.connectTimeoutMs
    const sources: SeenSource[] = []
    const asked = await Promise.all(
      others.map(async (server): Promise<ReplicaObservation> => {
        try {
          const conn = await ServerConnection.open(endpointOf(cluster, server), timeout)
          try {
            const row = await conn.queryOne('SELECT @@version AS v, @@version_comment AS c', [], timeout)
            const dialect = dialectFor(parseServerVersion(String(row?.v), typeof row?.c === 'string' ? row.c : ''))
            const status = await conn.queryOne(dialect.showReplicaStatus, [], timeout)
            const parsed = status ? dialect.parseReplicaStatus(status) : null
            sources.push({name: server.name, source: parsed ? (sourceServer(cluster, parsed)?.name ?? `${parsed.sourceHost}:${parsed.sourcePort}`) : null})
            const fromMaster = parsed && replicatesFrom(parsed, master)
            if (!fromMaster) return {name: server.name, reachable: true, ioThread: null, lastIoError: ''}
            // What moves while the master talks to it: an IO thread that says Yes over a silent master does not.
            const heartbeat = await conn
              .query(dialect.replicaHeartbeatQuery, [], timeout)
              .then((rows) => dialect.parseReplicaHeartbeat(rows))
              .catch(() => null)
            const ages = [heartbeat?.lastHeartbeatAgeSeconds, heartbeat?.lastEventAgeSeconds].filter((a): a is number => typeof a === 'number')
            const silentForS = this.#contact.observe(
              server.name,
              {source: `${parsed.sourceHost}:${parsed.sourcePort}`, read: `${parsed.read.file}:${parsed.read.pos}`, heartbeats: heartbeat?.received ?? null, serverAgeS: ages.length > 0 ? Math.min(...ages) : null},
              Date.now(),
            )
            return {name: server.name, reachable: true, ioThread: parsed.ioThread, lastIoError: parsed.lastIoError, heartbeatPeriodS: heartbeat?.periodSeconds ?? null, silentForS}
          } finally {
            await conn.close()
          }
        } catch {
          return {name: server.name, reachable: false, ioThread: null, lastIoError: ''}
        }
      }),
    )
    // Replicas re-pointed elsewhere while the master fails (a failover by hand): the topology is looked at again.
    this.#events.sources(master, sources)
    return asked.filter((r) => !r.reachable || r.ioThread !== null)
  }

  async #sshReachable(master: ServerConfig): Promise<boolean> {
    // Does the host answer SSH soon: a live host does in well under a second; a host gone never does. The kept
    // session is the one the failover will use; a host that does not answer on it loses it.
    const target = {...sshTargetOf(this.#cluster, master), connectTimeoutMs: Math.min(master.ssh.connectTimeoutMs, sshProbeMs)}
    try {
      const result = await this.#ctx.pool.run(target, (session) => session.exec('true', sshProbeMs))
      return result.code === 0
    } catch {
      this.#ctx.pool.drop(target)
      return false
    }
  }
}
