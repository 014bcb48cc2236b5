import {replicatesFrom, roleView, sourceServer, type RoleView} from '../analysis/topology.js'
import type {ServerConfig} from '../config/types.js'
import {endpointOf, quickAnswerMs, sshTargetOf} from '../inspect/inspect.js'
import {ServerConnection, SqlError} from '../inspect/mysql.js'
import {oneLine} from '../util/errors.js'
import {ContactClock} from './contact.js'
import type {ClusterContext} from './context.js'
import type {MasterAnswer, ReplicaObservation} from './judge.js'
import {Gate} from './gate.js'
import {ServerLinks, type Use} from './links.js'
import {secondOpinion, type SecondOpinion} from './second-opinion.js'

/**
 * Servers last seen replicating from the master are looked at again (on their kept connections) this often; the
 * others (an old master that may come back writable) at every healthy ping.
 */
export const followersLookEveryMs = 10_000

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

/** Light looks at once in this process: the first ones open a connection to every server of every cluster. */
const looks = new Gate(32)

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

/** One light look at a server other than the master: its role (null: it did not answer) and its @@server_id. */
export interface ServerLook {
  server: ServerConfig
  view: RoleView | null
  serverId: number | null
}

/**
 * Servers that answer with another @@server_id than at the last discovery (rebuilt, or another server at that
 * address: the topology is looked at again), in words; null if none. A server not seen at the discovery, or not
 * answering now, says nothing.
 */
export function replacedServers(discovered: ReadonlyMap<string, number>, looks: readonly Pick<ServerLook, 'server' | 'serverId'>[]): string | null {
  const changed = looks.filter((l) => l.serverId !== null && discovered.has(l.server.name) && discovered.get(l.server.name) !== l.serverId)
  return changed.length === 0 ? null : changed.map((l) => `${l.server.name} answers with server_id ${l.serverId} (it was ${discovered.get(l.server.name)})`).join('; ')
}

/**
 * The followers to look at themselves: those whose server_id (as their last look read it) is not among the replicas
 * registered with the master (stopped, re-pointed, disconnected), or not known; every follower when the master could
 * not tell (`registered` undefined).
 */
export function followersToLook(followers: readonly string[], serverIds: ReadonlyMap<string, number>, registered: ReadonlySet<number> | undefined): string[] {
  return followers.filter((name) => {
    const id = serverIds.get(name)
    return registered === undefined || id === undefined || !registered.has(id)
  })
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
export function nextPingDelayMs(intervalMs: number, failures: number, lastFailedPingMs: number, nowMs = monotonicNowMs()): number {
  if (failures === 0) return alignedPingDelayMs(intervalMs, nowMs)
  return Math.min(intervalMs, lastFailedPingMs < promptAnswerMs ? promptRetryMs : 250)
}

/**
 * A healthy master's next ping at the next multiple of the interval on this process's clock: one ping per interval,
 * start to start (a slow answer does not stretch the period), and every cluster of the process pinged in the same
 * turn of the event loop, so that a thousand pings wake the process once a second rather than a thousand times.
 */
export function alignedPingDelayMs(intervalMs: number, nowMs: number): number {
  return intervalMs - (nowMs % intervalMs)
}

/** Milliseconds on a clock that never steps back, shared by every cluster of the process. */
export const monotonicNowMs = (): number => performance.timeOrigin + performance.now()

/**
 * The monitor phase of one cluster: the master's pings on a kept connection (and their overlapped retry), the
 * followers checked through the master and the other servers looked at while it is healthy, the questions to the
 * replicas while it fails, and the other routes and the master's SSH asked beside them. It decides nothing: what it
 * sees goes to the judge, and to the loop that follows the topology.
 */
export class Monitor {
  readonly #ctx: ClusterContext
  readonly #events: MonitorEvents
  /**
   * A connection per server, kept to the master (its pings, and its registered replicas that tell of its followers) and
   * to the servers not following it (looked at every ping); a follower's is opened to ask it while the master fails.
   */
  readonly #links: ServerLinks
  /** The master being pinged: a reset of its kept connection starts the judgement. */
  #master: ServerConfig | undefined
  /** The master said read_only at the last ping or retry: the loop looks at the topology again. */
  readOnly = false
  /** The master's @@server_id at the last ping (null: not read): another server at its address is another topology. */
  masterServerId: number | null = null
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
  /** The next check of the followers has every server looked at itself (after a discovery). */
  #everyServerDue = true
  #lastEveryServerLook = 0
  /** Each server's @@server_id at its last look: how the master's registered replicas are told apart. */
  readonly #serverIds = new Map<string, number>()
  /** The master told of its replicas at the last check: the followers' connections need not be kept. */
  #masterTells = false
  /** Followers due for a look of their own (no longer registered with the master). */
  readonly #due = new Set<string>()

  constructor(ctx: ClusterContext, events: MonitorEvents) {
    this.#ctx = ctx
    this.#events = events
    this.#links = new ServerLinks(ctx.cluster, (server) => {
      if (server === this.#master) events.lost()
    })
  }

  get #cluster() {
    return this.#ctx.cluster
  }

  /** A new master: what was seen of the old one (followers, silence, routes) says nothing of it. */
  newMaster(): void {
    this.followers.clear()
    this.#due.clear()
    this.#contact.clear()
    this.forgetProbes()
    this.lookAtEveryServerNext()
    this.masterServerId = null
  }

  /** The next look around takes every server (the topology changed, or may have). */
  lookAtEveryServerNext(): void {
    this.#everyServerDue = true
  }

  /** The followers' connections are closed (opened to ask them while the master failed; it answers again). */
  releaseFollowers(): void {
    if (!this.#masterTells) return
    for (const s of this.#cluster.servers) if (this.followers.has(s.name)) this.#links.of(s).release()
  }

  /** Every kept connection is closed (another manager leads the cluster: it pings, not this one). */
  dropConnections(): void {
    this.#links.dropAll()
  }

  async close(): Promise<void> {
    await this.#links.close()
  }

  /**
   * The ping; and when a healthy master's ping stays silent for half its timeout (a host gone without a reset, or
   * a stall), its retry on a connection of its own and the other routes start beside it, not after it: a silent
   * master costs one timeout and a half, not three in a row. A retry that answers wins: the master is alive.
   */
  async look(master: ServerConfig, failures: number): Promise<MasterLook> {
    this.#master = master
    const pinging = this.#ping(master, failures)
    if (failures > 0) return {result: await pinging, retried: false, probed: false}
    // A healthy master's ping without an answer for this long has its retry started beside it: half the ping's own
    // timeout. One timer and no race: a ping that answers in time (nearly every one) costs nothing more.
    const wait = quickAnswerMs(this.#cluster) / 2
    const armed = performance.now()
    let beside: {retry: Promise<{conn?: ServerConnection; readOnly: boolean}>; probed: boolean} | undefined
    const timer = setTimeout(() => {
      // The SSH probes start here only on kept sessions (a command each, no handshake) and while this process keeps
      // time: a timer that fired late says it is busy (a thousand clusters starting) and the ping may only be
      // waiting for it. Otherwise they wait for a failed ping, as they would without the overlap.
      const probed = this.#cluster.monitor.keepSshOpen && performance.now() - armed <= wait + busyLagMs
      if (probed) this.startProbes(master)
      beside = {retry: this.#retryPing(master), probed}
    }, wait)
    const result = await pinging
    clearTimeout(timer)
    if (!beside) return {result, retried: false, probed: false}
    const {retry, probed} = beside
    if (result.ok) {
      void retry.then((r) => r.conn?.close().catch(() => undefined))
      return {result, retried: false, probed}
    }
    const again = await retry
    if (!again.conn) {
      this.lastFailureAt = Date.now()
      return {result, retried: true, probed}
    }
    // The retry answered: the master is alive, and its connection is the one kept.
    this.readOnly = again.readOnly
    if (this.#cluster.monitor.pingType === 'connect') await again.conn.close()
    else this.#links.of(master).adopt(again.conn)
    return {result: {ok: true}, retried: false, probed}
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
      // ping_type connect: the connection is the ping (opened and closed by the link, nothing kept).
      await this.#links.of(master).use(timeout, async (conn) => {
        if (cluster.monitor.pingType === 'insert') {
          await conn.execute('CREATE DATABASE IF NOT EXISTS mha_heartbeat', timeout)
          await conn.execute('CREATE TABLE IF NOT EXISTS mha_heartbeat.heartbeat (id TINYINT PRIMARY KEY, at TIMESTAMP(6) NOT NULL)', timeout)
          await conn.execute('INSERT INTO mha_heartbeat.heartbeat VALUES (1, NOW(6)) ON DUPLICATE KEY UPDATE at = NOW(6)', timeout)
        } else if (cluster.monitor.pingType === 'select') {
          // The same round trip tells whether it is still a master (an external switchover sets it read only) and
          // still the same server. A trivial query on an open connection answers in milliseconds: a second without
          // one is a failure (only suspect: death still needs the replicas or the other routes to agree).
          const row = await conn.queryOne('SELECT @@global.read_only AS ro, @@server_id AS id', [], quickAnswerMs(cluster))
          this.readOnly = Number(row?.ro) === 1
          this.masterServerId = row?.id === undefined ? null : Number(row.id)
        }
      })
      return {ok: true}
    } catch (error) {
      // The link dropped the failed connection without the goodbye a silent master would hold for a second.
      const e = error instanceof SqlError ? error : new SqlError('sql', 'UNKNOWN', oneLine(error))
      this.lastFailedPingMs = Date.now() - started
      this.lastFailureAt = Date.now()
      return {ok: false, kind: e.kind, message: e.message, silence: e.kind === 'timeout' || e.code === 'ETIMEDOUT'}
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

  /** `use` on each server's kept link at once (a connection found lost is opened again once); `failed` for one that does not answer. */
  #onEach<T>(servers: readonly ServerConfig[], timeoutMs: number, use: (server: ServerConfig) => Use<T>, failed: (server: ServerConfig) => T): Promise<T[]> {
    return Promise.all(servers.map((server) => this.#links.of(server).use(timeoutMs, use(server), true).catch(() => failed(server))))
  }

  /**
   * The followers are checked through the master itself every followersLookEveryMs: the replicas registered with it
   * (SHOW SLAVE HOSTS: their server ids), one query on its kept connection, right after a ping that answered (never
   * beside one). A follower no longer registered (stopped, re-pointed, disconnected), or whose server id is not
   * known, is due for a look of its own. Keeping a connection to every follower instead costs about 40 KB each in
   * this process (measured with mysql2): 80 MB at a thousand clusters of three servers.
   */
  async checkFollowers(master: ServerConfig): Promise<void> {
    if (!this.#everyServerDue && Date.now() - this.#lastEveryServerLook < followersLookEveryMs) return
    this.#lastEveryServerLook = Date.now()
    const registered = await this.#registeredReplicas(master)
    this.#masterTells = registered !== undefined
    // After a discovery every server is looked at itself once.
    const others = this.#cluster.servers.filter((s) => s !== master).map((s) => s.name)
    const due = this.#everyServerDue ? others : followersToLook(others.filter((name) => this.followers.has(name)), this.#serverIds, registered)
    for (const name of due) this.#due.add(name)
    this.#everyServerDue = false
  }

  /** Whether a look around is due now (called at every healthy ping: nothing is allocated when none is). */
  lookDue(): boolean {
    if (this.#due.size > 0) return true
    for (const s of this.#cluster.servers) if (s !== this.#master && !this.followers.has(s.name)) return true
    return false
  }

  /**
   * The light look at the other servers (never delaying the pings: the loop runs it in the background), each on its
   * own connection: those not seen following the master at every call (an old master coming back, kept connected
   * while it is not following), and the followers checkFollowers found due. What the looks read (read_only, the
   * source and its IO thread, @@server_id) is what the topology is followed by, and what tells a returning old
   * master. A server that does not answer has no view.
   */
  async lookAround(master: ServerConfig): Promise<ServerLook[]> {
    const cluster = this.#cluster
    const targets = cluster.servers.filter((s) => s !== master && (!this.followers.has(s.name) || this.#due.has(s.name)))
    this.#due.clear()
    if (targets.length === 0) return []
    const timeout = cluster.monitor.connectTimeoutMs
    const seen = await looks.run(() =>
      this.#onEach<ServerLook>(
        targets,
        timeout,
        (server) => async (conn, dialect) => {
          const row = await conn.queryOne('SELECT @@global.read_only+0 AS ro, @@server_id AS id', [], timeout)
          const d = await dialect()
          const status = await conn.queryOne(d.showReplicaStatus, [], timeout)
          return {server, view: roleView(cluster, server.name, Number(row?.ro) === 0, status ? d.parseReplicaStatus(status) : null), serverId: row?.id === undefined ? null : Number(row.id)}
        },
        (server) => ({server, view: null, serverId: null}),
      ),
    )
    for (const s of targets) this.followers.delete(s.name)
    for (const l of seen) {
      if (l.view?.source === master.name && l.view.connected) this.followers.add(l.server.name)
      if (l.serverId !== null) this.#serverIds.set(l.server.name, l.serverId)
    }
    // A follower's connection is not kept while the master tells of it (opened again to ask it when the master fails).
    if (this.#masterTells) for (const s of targets) if (this.followers.has(s.name)) this.#links.of(s).release()
    return seen
  }

  /** The server ids of the replicas registered with the master; undefined when it could not tell (not answered, not allowed). */
  async #registeredReplicas(master: ServerConfig): Promise<Set<number> | undefined> {
    const timeout = quickAnswerMs(this.#cluster)
    try {
      return await this.#links.of(master).use(timeout, async (conn, dialect) => new Set((await conn.query((await dialect()).showReplicaHosts, [], timeout)).map((r) => Number(r.Server_id))))
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
    const asked = await this.#onEach<ReplicaObservation>(
      others,
      timeout,
      (server) => async (conn, dialectOf) => {
        const dialect = await dialectOf()
        // What the replica says is dated from when it was asked: a late read of its answer adds no silence.
        const askedAt = Date.now()
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
          askedAt,
        )
        return {name: server.name, reachable: true, ioThread: parsed.ioThread, lastIoError: parsed.lastIoError, heartbeatPeriodS: heartbeat?.periodSeconds ?? null, silentForS}
      },
      (server) => ({name: server.name, reachable: false, ioThread: null, lastIoError: ''}),
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
