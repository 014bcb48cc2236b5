import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, statSync, writeFileSync} from 'node:fs'
import {basename, dirname, join, resolve} from 'node:path'
import {applyPlan, underLock} from '../apply/executor.js'
import type {ApplyReport} from '../apply/events.js'
import type {Coordinator} from '../coord/coordinator.js'
import {FencedError} from '../util/fenced.js'
import type {Plan} from '../plan/types.js'
import {planDigest, readPlan} from '../plan/plan-file.js'
import {replicatesFrom, sourceServer, topologyOf} from '../analysis/topology.js'
import type {ClusterConfig, ServerConfig} from '../config/types.js'
import {dialectFor, parseServerVersion} from '../dialect/index.js'
import {endpointOf, inspectCluster, quickAnswerMs, sshTargetOf} from '../inspect/inspect.js'
import {ServerConnection, SqlError} from '../inspect/mysql.js'
import {defaultPlanPath, toolVersion, writePlan} from '../plan/plan-file.js'
import {planFor} from '../plan/planner.js'
import {planRejoin} from '../plan/rejoin.js'
import {rejoinInput} from '../plan/rejoin-inputs.js'
import {recordManualApply} from '../store/manual-apply.js'
import {SshPool} from '../remote/session-pool.js'
import {oneLine} from '../util/errors.js'
import {proxyFindings, type ProxyRow} from '../analysis/routing.js'
import {observeProxies} from '../routing/observe.js'
import {ContactClock} from './contact.js'
import {judge, silent, type Observation, type ReplicaObservation, type Verdict} from './judge.js'
import type {Logger} from './log.js'
import {closeLooks, fenceReturningMasters, lookAt, masterDespiteReturned} from './returning-master.js'
import {complaintPauseMs} from './complaints.js'
import {secondOpinion, type SecondOpinion} from './second-opinion.js'
import {afterFailover, endedRecord, failoverBlocked, type FailoverRecord, recordedKind, startedRecord, withFenced} from '../store/cluster-state.js'
import {failoverRecordFile, FileStore, outOfService, readWatchState} from '../store/files.js'
import type {ClusterLock, ClusterStore, StoreOf} from '../store/store.js'
import type {Snapshot} from '../inspect/types.js'

/**
 * Servers last seen connected to the master are looked at again (a new connection each) only this often, or
 * sooner when the master's replication threads change: with a thousand clusters, connections cost more than pings.
 */
const fullLookEveryMs = 60_000

/** What the loop last saw, for `--listen` (metrics and /status): read-only outside this class. */
export interface WatchHealth {
  /** Epoch ms of the last ping and whether it succeeded; null before the first. */
  lastPingAt: number | null
  lastPingOk: boolean | null
  lastSuccessfulPingAt: number | null
  /** Why the cluster cannot be monitored now (no master found, discovery failed); null when it can. */
  notMonitored: string | null
  /** Failovers this process ran to the end of apply, oldest first. */
  failovers: {at: string; status: string; durationMs: number}[]
  /** With etcd: this manager's role for the cluster and the manager that leads it. */
  role: Role
  leader: string | null
  /** The proxies of the cluster file's routing section at the last look (null: none configured, or not looked at yet). */
  routing: RoutingView | null
}

/** What each proxy's writer backend said at the last look, and what is wrong with it (empty: it routes writes to the master alone). */
export interface RoutingView {
  checkedAt: number
  proxies: (ProxyRow & {problems: string[]})[]
}

export interface WatchOptions {
  plansDir: string
  git: boolean
  log: Logger
  /** Rejoin a server taken out by a failover as soon as it answers again (never one with extra transactions). */
  autoRejoin?: boolean
  /** Several managers through etcd: only the cluster's leader pings, plans and applies. */
  coord?: Coordinator
  /** Where each cluster's state, failover record, journals and lock are kept: the files beside the plans unless given (etcd with a coordinator). */
  store?: StoreOf
}

/** With etcd: leads the cluster, follows another manager, or led it when etcd went away (pings, never fails over). */
export type Role = 'single' | 'leader' | 'follower' | 'cut-off'

/** The master's host answering SSH: a live one does in well under a second; one gone never does. */
const sshProbeMs = 1000

/** A route's TCP connect to the master: on a LAN a live port answers far sooner; a blackholed one never does. */
const probeTimeoutMs = 1000

/** A healthy master's ping without an answer for this long has its retry started beside it: half the ping's own timeout. */
const silentPingMs = (cluster: ClusterConfig) => quickAnswerMs(cluster) / 2

/** How late the silence timer may fire before this process counts as too busy to tell silence from its own lag. */
const busyLagMs = 100

/** A failed ping answered this fast was a refusal from a live host's kernel, not a silence. */
const promptAnswerMs = 100

/** How soon a prompt refusal is tried again: the second try confirms it; the replicas still have to agree. */
const promptRetryMs = 50

/** How often --auto-rejoin looks whether a server taken out by a failover answers again. */
const rejoinLookEveryMs = 5_000

/** How often a healthy cluster's proxies are looked at (writes routed elsewhere than the master are an alarm). */
const routingLookEveryMs = 5_000

/** How often a healthy cluster's topology is looked at again (an external switchover, a manual failover). */
const rediscoverEveryMs = 10_000

/**
 * With etcd, how often the loop of a cluster another manager leads looks at its role: the coordinator wakes it
 * as soon as the role changes (roleChanged), so this is only a safety net; 10,000 loops waking every ping to
 * find that they still follow were most of a manager's work.
 */
const followerLookMs = 10_000

/** Why no master can be found, in words an operator acts on. */
function whyNoMaster(cluster: ClusterConfig, snapshot: Snapshot): string {
  const failures = snapshot.servers.flatMap((s) => (s.sql.reachable ? [] : [{name: s.name, kind: s.sql.kind, message: s.sql.message}]))
  if (failures.length === snapshot.servers.length && failures.every((f) => f.kind === 'auth'))
    return cluster.servers.every((s) => s.loginFields === cluster.servers[0]!.loginFields && s.user === cluster.user)
      ? `every server refuses the login of ${cluster.user} (${failures[0]!.message}); fix user/password in ${cluster.file}`
      : `every server refuses mha's login (${failures.map((f) => f.message).join('; ')})`
  if (failures.length === snapshot.servers.length) return `no server answers (${failures.map((f) => f.message).join('; ')})`
  const answering = snapshot.servers.filter((s) => s.sql.reachable).map((s) => s.name)
  return `no master found among the servers that answer (${answering.join(', ')}): none is a writable server its replicas follow${failures.length ? `; not answering: ${failures.map((f) => f.message).join('; ')}` : ''}`
}

/** One cluster's loop: ping the master, ask the replicas when it fails, fail over through plan and apply. */
export class ClusterWatcher {
  readonly cluster: ClusterConfig
  readonly options: WatchOptions
  /** The cluster's state, failover record, journals and lock; with etcd this host's state file is a copy for status. */
  readonly #store: ClusterStore
  master: ServerConfig | undefined
  verdict: Verdict = {state: 'healthy'}
  failures = 0
  readonly health: WatchHealth = {lastPingAt: null, lastPingOk: null, lastSuccessfulPingAt: null, notMonitored: null, failovers: [], role: 'single', leader: null, routing: null}
  /** A failover (or its takeover) is under way in this process. */
  failingOver = false
  #leaderSaid: string | null = null
  #lastUnfinishedProblem = ''
  /** With etcd: another process's record is unfinished (told by the watch on the records), until found finished. */
  #unfinishedNoted = false
  /** Alone: the record file as last read (its size and time), and whether it was unfinished. */
  #recordLook: {key: string; unfinished: boolean} | null = null
  #conn: ServerConnection | undefined
  #stopping = false
  #timer: NodeJS.Timeout | undefined
  #busy: Promise<void> = Promise.resolve()
  #lastReport = ''
  #returningCheck: Promise<void> | undefined
  #routingLook: Promise<void> | undefined
  #lastRoutingLook = 0
  #lastRoutingSaid = ''
  /** Servers seen replicating from the master (IO thread connected) at the last look. */
  #followers = new Set<string>()
  /** Each server's source at its last look (a configured server's name, host:port, or null for nobody). */
  readonly #sources = new Map<string, string | null>()
  /** A change was seen: the next tick looks at the topology again, whatever the master's state. */
  #rediscover = false
  #lastFenceProblem = ''
  /** Why the cluster cannot be monitored (no master, logins refused), or null while it is. */
  unmonitored: string | null = null
  #unmonitoredSince = 0
  #nextUnmonitoredLog = 0
  #lastDiscovery = 0
  /** The last full look at every server (the light looks between them read the master alone). */
  #lastFullDiscovery = 0
  /** The master's binlog dump threads at the last full discovery. */
  #threadsAtDiscovery: string | undefined
  /** The next returning-master look looks at every server, not only those not seen following the master. */
  #fullLookDue = true
  #lastFullLook = 0
  #masterReadOnly = false
  #lastRejoinLook = 0
  #lastRejoinProblem = ''
  #firstLookDone: () => void = () => undefined
  readonly #firstLook = new Promise<void>((resolve) => (this.#firstLookDone = resolve))
  /** Asked at the first failure, beside the next pings: the other routes to the master, and its host's SSH. */
  #routesProbe: Promise<SecondOpinion> | undefined
  #sshProbe: Promise<boolean> | undefined
  /** How long each replica has heard nothing from the master, from the looks taken while it fails. */
  readonly #contact = new ContactClock()
  /** SSH sessions to the cluster's hosts, kept open while watching: a failover spends no handshake. */
  readonly #pool = new SshPool()
  #ticking = false
  #woken = false
  #lastPingMs = 0
  /** When the last ping (or its retry) failed: the failover's fence takes a fresh one as its own look. */
  #lastFailureAt = 0

  constructor(cluster: ClusterConfig, options: WatchOptions) {
    this.cluster = cluster
    this.options = options
    this.#store = options.store?.(cluster.name) ?? new FileStore(options.plansDir, cluster.name)
  }

  get name(): string {
    return this.cluster.name
  }

  start(): void {
    this.#schedule(0)
  }

  /** Resolves once the first look at the cluster is done (monitored or not). */
  get firstLook(): Promise<void> {
    return this.#firstLook
  }

  /** Stops after the current tick; a failover in progress finishes its step journal first. */
  async stop(): Promise<void> {
    this.#stopping = true
    clearTimeout(this.#timer)
    await this.#busy
    await this.#returningCheck
    await this.#routingLook
    await this.#conn?.close()
    await this.#pool.close()
  }

  #schedule(ms: number): void {
    if (this.#stopping) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#ticking = true
      this.#busy = this.tick()
        .finally(() => this.#firstLookDone())
        .finally(() => {
          this.#ticking = false
          const woken = this.#woken
          this.#woken = false
          this.#schedule(woken ? 0 : this.#nextDelay())
        })
    }, ms)
  }

  /**
   * While the master fails, look again sooner: death still needs several failures and the replicas' word. A
   * refusal that came at once (a crashed mysqld on a live host) is asked again at once; a silent one in 250 ms.
   */
  #nextDelay(): number {
    if (this.health.role === 'follower') return followerLookMs
    const interval = this.cluster.monitor.pingIntervalMs
    if (this.failures === 0) return interval
    return Math.min(interval, this.#lastPingMs < promptAnswerMs ? promptRetryMs : 250)
  }

  /** With etcd: this manager's role for the cluster may have changed (told by the coordinator); look now. */
  roleChanged(): void {
    this.#wake()
  }

  /** The kept connection to the master was closed or reset: look now, not at the next ping. */
  #wake(): void {
    if (this.#stopping) return
    if (this.#ticking) {
      this.#woken = true
      return
    }
    if (this.#timer === undefined) return
    clearTimeout(this.#timer)
    this.#schedule(0)
  }

  #say(event: string, message: string, fields?: Record<string, unknown>): void {
    this.options.log(this.cluster.name, event, message, fields)
  }

  async tick(): Promise<void> {
    try {
      if (this.options.coord && !(await this.#leadership(this.options.coord))) return
      // A failover or switchover left unfinished (this watch killed in the middle, an mha apply killed or fenced,
      // the previous leader gone) is finished, or the switchover rolled back, as soon as its lock is free.
      if (await this.#unfinishedPending()) await this.#finishUnfinished()
      // The topology is followed, not assumed: looked at again every few seconds while healthy, and at once
      // when the master stops being one (an external switchover sets it read only).
      if (!this.master || this.#rediscover || (this.failures === 0 && Date.now() - this.#lastDiscovery >= rediscoverEveryMs && !(await this.#unchangedSinceDiscovery()))) {
        this.#rediscover = false
        await this.#discover()
        if (!this.master) return
      }
      const master = this.master
      const looked = await this.#look(master)
      const observation: Observation = {master: looked.result, replicas: [], sshReachable: null}
      this.health.lastPingAt = Date.now()
      this.health.lastPingOk = observation.master.ok
      if (observation.master.ok) this.health.lastSuccessfulPingAt = this.health.lastPingAt
      if (this.#masterReadOnly) {
        this.#masterReadOnly = false
        await this.#discover()
        if (this.master !== master) return
      }
      // A silent ping and the retry started beside it are two failed looks.
      const failed = looked.retried ? 2 : 1
      const wasFailing = this.failures > 0 || looked.probed
      this.failures = observation.master.ok ? 0 : observation.master.kind === 'auth' || observation.master.kind === 'too_many_connections' ? 0 : this.failures + failed
      if (observation.master.ok) {
        this.#forgetProbes()
        // Sessions opened for an outage that did not happen are not kept unless the cluster file asks for it.
        if (wasFailing && !this.cluster.monitor.keepSshOpen && this.#pool.size > 0) void this.#pool.release()
      }
      // At the first failure, the other routes and the master's SSH are asked at once, beside the next pings,
      // so that their answers are there when the replicas still say Yes (a host gone without a reset).
      else if (this.failures > 0) this.#startProbes(master)
      if (!observation.master.ok && this.failures >= this.cluster.monitor.failuresBeforeDead) {
        observation.replicas = await this.#askReplicas(master)
        observation.sshReachable = (await this.#sshProbe) ?? null
        // The other routes decide only when a replica still streams from the master (a host gone without a
        // reset), and the user's secondary_check hook always has its say: otherwise they are not waited for.
        const streaming = observation.replicas.some((r) => r.reachable && r.ioThread === 'running' && !silent(r))
        if (streaming || this.cluster.hooks.secondaryCheck) observation.secondOpinion = (await this.#routesProbe) ?? null
        // A stale answer is not reused for the next judgement.
        this.#forgetProbes()
      }
      const verdict = judge(observation, this.failures, this.cluster.monitor.failuresBeforeDead)
      this.#report(verdict)
      this.verdict = verdict
      if (verdict.state === 'healthy') this.#checkForReturningMaster(this.master)
      if (verdict.state === 'healthy') this.#checkRouting(this.master)
      if (verdict.state === 'healthy' && this.options.autoRejoin) await this.#rejoinReturned()
      if (verdict.state === 'dead') await this.#failover(verdict.reason, observation)
    } catch (error) {
      if (!this.master) this.health.notMonitored = `cannot find the master: ${oneLine(error)}`
      this.#say('error', oneLine(error))
    }
  }

  /**
   * With etcd, only the cluster's leader pings it, plans and applies; the others follow lightly (nothing but
   * this look) and are ready to take over. A manager that becomes leader first finishes a failover that the
   * previous leader left unfinished. Returns whether this manager watches the cluster now.
   */
  async #leadership(coord: Coordinator): Promise<boolean> {
    const name = this.cluster.name
    const role: Role = coord.leads(name) ? 'leader' : coord.cutOff(name) ? 'cut-off' : 'follower'
    const was = this.health.role
    this.health.role = role
    this.health.leader = coord.leaderOf(name)
    if (role === 'leader' && was !== 'leader') {
      this.#say('leading', `this manager (${coord.settings.id}) leads ${name} now`)
      // The topology and the state are looked at afresh: another manager may have changed both.
      this.master = undefined
      this.failures = 0
      await this.#store.refreshLocalCopy()
      await this.#finishUnfinished()
    } else if (role === 'cut-off' && was !== 'cut-off') {
      this.#say('etcd down', `${coord.session.problem ?? 'etcd unreachable'}: still pinging ${this.master?.name ?? 'the master'}, but no automatic failover until etcd answers again`)
    } else if (role === 'follower' && was !== 'follower') {
      const old = this.#conn
      this.#conn = undefined
      void old?.close().catch(() => undefined)
      this.master = undefined
      this.failures = 0
      this.verdict = {state: 'healthy'}
      this.#lastReport = ''
      this.#forgetProbes()
      // What this manager could not monitor is the leader's business now.
      this.unmonitored = null
      this.health.notMonitored = null
    }
    if (role === 'follower' && this.health.leader !== null && this.health.leader !== this.#leaderSaid) this.#say('following', `${this.health.leader} leads ${name}; this manager (${coord.settings.id}) is ready to take over`)
    this.#leaderSaid = role === 'follower' ? this.health.leader : null
    if (role === 'follower') this.#firstLookDone()
    return role !== 'follower'
  }

  /** The failover in flight: in etcd with several managers, else beside the plans. */
  #readRecord(): Promise<FailoverRecord | null> {
    return this.#store.failoverRecord()
  }

  /**
   * Whether a record may be unfinished: with etcd, as told by the watch on the records (and looked at when this
   * manager became leader); alone, the record file read again whenever it changed (one stat per look otherwise).
   */
  async #unfinishedPending(): Promise<boolean> {
    if (this.options.coord) return this.#unfinishedNoted
    let key: string
    try {
      const stat = statSync(failoverRecordFile(this.options.plansDir, this.cluster.name))
      key = `${stat.mtimeMs}:${stat.size}:${stat.ino}`
    } catch {
      return false
    }
    if (this.#recordLook?.key !== key) this.#recordLook = {key, unfinished: (await this.#readRecord())?.finished === false}
    return this.#recordLook.unfinished
  }

  /**
   * A failover or switchover started and not finished (the previous leader died or lost etcd; this host's watch
   * was killed and started again; an mha apply was killed or fenced): finished from its journal once its lock is
   * free, never planned over. A switchover stopped before its promotion may then be rolled back by its own plan.
   */
  async #finishUnfinished(): Promise<void> {
    const record = await this.#readRecord()
    if (!record || record.finished) {
      this.#unfinishedNoted = false
      return
    }
    // Looked at again at each tick until it is found finished (a leader that found it under way when it took over
    // hears of no change to it while its apply runs on, and must try again once that apply is gone).
    this.#unfinishedNoted = true
    const coord = this.options.coord
    const kind = recordedKind(record)
    let held: ClusterLock
    try {
      held = await this.#lock(`mha watch finishing ${record.planName} (${coord ? coord.settings.id : `pid ${process.pid}`})`)
    } catch (error) {
      // Its own process may still be applying it: said once, looked at again at each tick.
      const message = `the ${kind} ${record.by} started at ${record.startedAt} (${record.planName}) is unfinished; it is finished here once its lock is free: ${oneLine(error)}`
      if (message !== this.#lastUnfinishedProblem) this.#say('locked', message)
      this.#lastUnfinishedProblem = message
      return
    }
    this.failingOver = true
    const started = Date.now()
    try {
      this.#say(coord ? 'takeover' : 'resume', `finishing the ${kind} ${record.by} started at ${record.startedAt} (${record.planName}) from its journal${coord ? ' in etcd' : ''}`)
      // The plan is data: (re)written to this manager's plans folder and read back through the same validation as any plan file.
      const planFile = join(this.options.plansDir, this.cluster.name, basename(record.planName))
      if (!existsSync(planFile)) {
        mkdirSync(dirname(planFile), {recursive: true})
        writeFileSync(planFile, JSON.stringify(record.plan, null, 2) + '\n')
      }
      const plan = readPlan(planFile)
      if (planDigest(plan) !== record.digest) throw new Error(`${planFile} does not match the digest ${record.digest} of the failover under way; finish it by hand`)
      const report = await this.#apply(plan, planFile, held)
      await this.#finished(plan, planFile, report, started, held, record)
    } catch (error) {
      if (error instanceof FencedError) this.#say('fenced', oneLine(error))
      else {
        // Said once per cause, not at every try.
        const message = `cannot finish the ${kind} ${record.by} started (${record.planName}): ${oneLine(error)}; no other failover of ${this.cluster.name} starts until it is finished (tried again at each look, or by hand with "mha apply" of that plan${coord ? ' and --etcd' : ''})`
        if (message !== this.#lastUnfinishedProblem) this.#say('error', message)
        this.#lastUnfinishedProblem = message
      }
    } finally {
      this.failingOver = false
      await held.release()
    }
  }

  /** Told of a failover record another manager wrote: followers say that the leader acted. */
  leaderActed(record: FailoverRecord): void {
    const me = this.options.coord?.settings.id
    // Another process's record (an mha apply, a leader before this one) unfinished: the next tick finishes it once its lock is free.
    if (!record.finished && record.by !== me) this.#unfinishedNoted = true
    if (record.finished) this.#unfinishedNoted = false
    const kind = recordedKind(record)
    if (record.finished && record.finishedBy !== me) this.#say('leader acted', `${record.finishedBy ?? record.by} finished a ${kind} of ${this.cluster.name} (${record.planName}): ${record.status ?? ''}: ${record.message ?? ''}`)
    else if (!record.finished && record.by !== me) this.#say('leader acting', `${record.by} started a ${kind} of ${this.cluster.name} (${record.planName})`)
  }

  /** The other routes, the master's SSH and a first look at the replicas, asked once per outage, beside the pings. */
  #startProbes(master: ServerConfig): void {
    if (this.#routesProbe) return
    this.#routesProbe = secondOpinion(this.cluster, master, this.#routes(master), probeTimeoutMs, this.#pool.run)
    this.#sshProbe = this.#sshReachable(master)
    // A first look at the replicas' heartbeat counts and positions: their silence is dated from it.
    void this.#askReplicas(master)
  }

  /**
   * The ping; and when a healthy master's ping stays silent for half its timeout (a host gone without a reset, or
   * a stall), its retry on a connection of its own and the other routes start beside it, not after it: a silent
   * master costs one timeout and a half, not three in a row. A retry that answers wins: the master is alive.
   */
  async #look(master: ServerConfig): Promise<{result: Observation['master']; retried: boolean; probed: boolean}> {
    const pinging = this.#ping(master)
    if (this.failures > 0) return {result: await pinging, retried: false, probed: false}
    let timer: NodeJS.Timeout | undefined
    const wait = silentPingMs(this.cluster)
    const armed = performance.now()
    const silence = new Promise<'silent'>((resolve) => (timer = setTimeout(() => resolve('silent'), wait)))
    const first = await Promise.race([pinging, silence])
    clearTimeout(timer)
    if (first !== 'silent') return {result: first, retried: false, probed: false}
    // The SSH probes start here only on kept sessions (a command each, no handshake) and while this process keeps
    // time: a timer that fired late says it is busy (a thousand clusters starting) and the ping may only be
    // waiting for it. Otherwise they wait for a failed ping, as they would without the overlap.
    const probeNow = this.cluster.monitor.keepSshOpen && performance.now() - armed <= wait + busyLagMs
    if (probeNow) this.#startProbes(master)
    const retry = this.#retryPing(master)
    const result = await pinging
    if (result.ok) {
      void retry.then((r) => r.conn?.close().catch(() => undefined))
      return {result, retried: false, probed: probeNow}
    }
    const again = await retry
    if (!again.conn) {
      this.#lastFailureAt = Date.now()
      return {result, retried: true, probed: probeNow}
    }
    // The retry answered: the master is alive, and its connection is the one kept.
    this.#masterReadOnly = again.readOnly
    if (this.cluster.monitor.pingType === 'connect') await again.conn.close()
    else {
      this.#conn = again.conn
      this.#conn.onLost(() => this.#wake())
    }
    return {result: {ok: true}, retried: false, probed: probeNow}
  }

  /** A second look at a master whose ping is silent: a new connection and the same question, at most one short timeout. */
  async #retryPing(master: ServerConfig): Promise<{conn?: ServerConnection; readOnly: boolean}> {
    const timeout = quickAnswerMs(this.cluster)
    let conn: ServerConnection | undefined
    try {
      conn = await ServerConnection.open(endpointOf(this.cluster, master), timeout)
      const row = await conn.queryOne('SELECT @@global.read_only AS ro', [], timeout)
      return {conn, readOnly: Number(row?.ro) === 1}
    } catch {
      conn?.destroy()
      return {readOnly: false}
    }
  }

  #forgetProbes(): void {
    // An answer nobody waits for any more must not surface as an unhandled rejection.
    this.#routesProbe?.catch(() => undefined)
    this.#routesProbe = undefined
    this.#sshProbe = undefined
  }

  /** The other routes to the master: the hosts of the servers that replicate from it (or of all the others). */
  #routes(master: ServerConfig): ServerConfig[] {
    const others = this.cluster.servers.filter((s) => s !== master && !this.#outOfService().includes(s.name))
    const following = others.filter((s) => this.#followers.has(s.name))
    return following.length > 0 ? following : others
  }

  #outOfService(): string[] {
    return outOfService(this.options.plansDir, this.cluster.name)
  }

  #report(verdict: Verdict): void {
    const key = verdict.state === 'suspect' ? `suspect${verdict.failures}` : verdict.state
    if (key === this.#lastReport || (key === 'dead' && this.#lastReport === 'blocked')) return
    this.#lastReport = key
    if (verdict.state === 'healthy') this.#say('healthy', `${this.master?.name ?? '?'} answers`)
    else this.#say(verdict.state, verdict.reason)
  }

  /**
   * The light look between full discoveries: the master's replication threads, read on the kept connection. The
   * same threads as at the last full discovery (under a minute ago) mean the same replicas still stream from it, and
   * no connection to every server is needed; any change (a replica re-pointed, stopped or reconnected, a new one)
   * makes the full look now, and the returning-master look too.
   */
  async #unchangedSinceDiscovery(): Promise<boolean> {
    const threads = await this.#replicationThreads()
    const unchanged = threads !== undefined && threads === this.#threadsAtDiscovery && Date.now() - this.#lastFullDiscovery < fullLookEveryMs
    if (unchanged) this.#lastDiscovery = Date.now()
    else this.#fullLookDue = true
    return unchanged
  }

  /** The ids of the master's binlog dump threads, one per connected replica; undefined without a kept connection. */
  async #replicationThreads(): Promise<string | undefined> {
    if (!this.#conn || this.cluster.monitor.pingType === 'connect') return undefined
    try {
      const rows = await this.#conn.query("SELECT ID AS id FROM information_schema.PROCESSLIST WHERE COMMAND IN ('Binlog Dump', 'Binlog Dump GTID') ORDER BY ID", [], quickAnswerMs(this.cluster))
      return rows.map((r) => String(r.id)).join(',')
    } catch {
      return undefined
    }
  }

  async #discover(): Promise<void> {
    this.#lastDiscovery = Date.now()
    this.#lastFullDiscovery = this.#lastDiscovery
    // The topology only: the replication login is tried by the inspection a failover makes.
    const snapshot = await inspectCluster(this.cluster, {relayLookups: false, ssh: false, replLogin: false})
    // The old master back writable beside the one that replaced it, and no replica to tell them apart: the
    // state's record of the failover keeps the master watched (and the old one is fenced by the next look).
    const master = topologyOf(this.cluster, snapshot).master ?? masterDespiteReturned(this.cluster, snapshot, this.master, this.#replacedBy(this.master))
    if (master && master.name !== this.master?.name) {
      this.#say('master', `monitoring ${master.name} (${master.ip}:${master.port})${this.master ? `, which replaced ${this.master.name}` : ''}`)
      this.#followers.clear()
      this.#contact.clear()
      // What the other routes say of the old master says nothing of the new one.
      this.#forgetProbes()
      this.#fullLookDue = true
      // The kept connection is to the old master: pinging it would say nothing of the new one.
      const old = this.#conn
      this.#conn = undefined
      void old?.close().catch(() => undefined)
      this.failures = 0
    }
    // Warm sessions for the failover; one lost since (a host rebooted) is opened again.
    if (master && this.cluster.monitor.keepSshOpen) {
      const out = this.#outOfService()
      for (const s of this.cluster.servers) if (!out.includes(s.name)) this.#pool.warm(sshTargetOf(this.cluster, s))
    }
    if (master && this.unmonitored) this.#say('monitored', `${this.cluster.name} can be monitored again (it could not for ${Math.round((Date.now() - this.#unmonitoredSince) / 1000)} s)`)
    if (master) this.unmonitored = null
    else this.#cannotMonitor(whyNoMaster(this.cluster, snapshot))
    this.master = master
    this.health.notMonitored = master ? null : this.unmonitored
    // What the light looks compare with until the next full one.
    this.#threadsAtDiscovery = master ? await this.#replicationThreads() : undefined
  }

  /** Said at once, then again with a growing pause (5 s, 10 s, ... 5 min): never silent, never a flood. */
  #cannotMonitor(reason: string): void {
    const now = Date.now()
    if (this.unmonitored === null) {
      this.#unmonitoredSince = now
      this.#nextUnmonitoredLog = 0
    }
    this.unmonitored = reason
    if (now < this.#nextUnmonitoredLog) return
    const pause = complaintPauseMs(this.#unmonitoredSince, now)
    this.#nextUnmonitoredLog = now + pause
    this.#say('unmonitored', `${this.cluster.name} cannot be monitored: ${reason}; no automatic failover until this is fixed (trying again every ${Math.round(this.cluster.monitor.pingIntervalMs / 1000)} s, said again in ${Math.round(pause / 1000)} s)`)
  }

  async #ping(master: ServerConfig): Promise<Observation['master']> {
    // After a failure the next tries come quickly and wait at most a second each: a silent master costs one
    // full timeout, not failures_before_dead of them.
    const timeout = this.failures > 0 ? quickAnswerMs(this.cluster) : this.cluster.monitor.connectTimeoutMs
    const started = Date.now()
    try {
      if (this.cluster.monitor.pingType === 'connect' || !this.#conn) {
        await this.#conn?.close()
        this.#conn = await ServerConnection.open(endpointOf(this.cluster, master), timeout)
        // A crashed mysqld's host resets the kept connection at once: that starts the judgement, not the next ping.
        if (this.cluster.monitor.pingType !== 'connect') this.#conn.onLost(() => this.#wake())
      }
      if (this.cluster.monitor.pingType === 'insert') {
        await this.#conn.execute('CREATE DATABASE IF NOT EXISTS mha_heartbeat', timeout)
        await this.#conn.execute('CREATE TABLE IF NOT EXISTS mha_heartbeat.heartbeat (id TINYINT PRIMARY KEY, at TIMESTAMP(6) NOT NULL)', timeout)
        await this.#conn.execute('INSERT INTO mha_heartbeat.heartbeat VALUES (1, NOW(6)) ON DUPLICATE KEY UPDATE at = NOW(6)', timeout)
      } else {
        // The same round trip tells whether it is still a master: an external switchover sets it read only.
        // A trivial query on an open connection answers in milliseconds: a second without one is a failure
        // (only suspect: death still needs the replicas or the other routes to agree).
        const row = await this.#conn.queryOne('SELECT @@global.read_only AS ro', [], quickAnswerMs(this.cluster))
        this.#masterReadOnly = Number(row?.ro) === 1
      }
      if (this.cluster.monitor.pingType === 'connect') {
        await this.#conn.close()
        this.#conn = undefined
      }
      return {ok: true}
    } catch (error) {
      // A failed connection is dropped, not closed politely: a silent master would hold the goodbye for a second.
      this.#conn?.destroy()
      this.#conn = undefined
      const e = error instanceof SqlError ? error : new SqlError('sql', 'UNKNOWN', oneLine(error))
      this.#lastPingMs = Date.now() - started
      this.#lastFailureAt = Date.now()
      return {ok: false, kind: e.kind, message: e.message}
    }
  }

  async #askReplicas(master: ServerConfig): Promise<ReplicaObservation[]> {
    const gone = this.#outOfService()
    const others = this.cluster.servers.filter((s) => s !== master && !gone.includes(s.name))
    const timeout = this.cluster.monitor.connectTimeoutMs
    const sources: {name: string; source: string | null}[] = []
    const asked = await Promise.all(
      others.map(async (server): Promise<ReplicaObservation> => {
        try {
          const conn = await ServerConnection.open(endpointOf(this.cluster, server), timeout)
          try {
            const row = await conn.queryOne('SELECT @@version AS v, @@version_comment AS c', [], timeout)
            const dialect = dialectFor(parseServerVersion(String(row?.v), typeof row?.c === 'string' ? row.c : ''))
            const status = await conn.queryOne(dialect.showReplicaStatus, [], timeout)
            const parsed = status ? dialect.parseReplicaStatus(status) : null
            sources.push({name: server.name, source: parsed ? (sourceServer(this.cluster, parsed)?.name ?? `${parsed.sourceHost}:${parsed.sourcePort}`) : null})
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
    this.#followSources(master, sources)
    return asked.filter((r) => !r.reachable || r.ioThread !== null)
  }

  async #sshReachable(master: ServerConfig): Promise<boolean> {
    // Does the host answer SSH soon: a live host does in well under a second; a host gone never does. The kept
    // session is the one the failover will use; a host that does not answer on it loses it.
    const target = {...sshTargetOf(this.cluster, master), connectTimeoutMs: Math.min(master.ssh.connectTimeoutMs, sshProbeMs)}
    try {
      const result = await this.#pool.run(target, (session) => session.exec('true', sshProbeMs))
      return result.code === 0
    } catch {
      this.#pool.drop(target)
      return false
    }
  }

  /**
   * --auto-rejoin: a server a failover took out that answers again is planned back as a replica, the same
   * plan as "mha plan --rejoin", archived and applied. One with transactions the master lacks is never
   * re-pointed (that needs a person: --flashback or a rebuild); that is said once.
   */
  async #rejoinReturned(): Promise<void> {
    if (Date.now() - this.#lastRejoinLook < rejoinLookEveryMs) return
    this.#lastRejoinLook = Date.now()
    const out = this.#outOfService()
    if (out.length === 0) return
    // The topology only: the replication login is tried by the inspection a failover makes.
    const snapshot = await inspectCluster(this.cluster, {relayLookups: false, ssh: false, replLogin: false})
    for (const name of out) {
      if (!snapshot.servers.find((s) => s.name === name)?.sql.reachable) continue
      let held: ClusterLock | undefined
      try {
        held = await this.#lock(`mha watch --auto-rejoin (pid ${process.pid})`)
        const full = await inspectCluster(this.cluster, {relayLookups: false})
        const plan = planRejoin(this.cluster, full, {tool: toolVersion(), createdAt: new Date().toISOString(), configFile: this.cluster.file}, await rejoinInput(this.cluster, full, this.options.plansDir, name, false))
        const planFile = defaultPlanPath(plan, this.options.plansDir)
        writePlan(plan, planFile)
        this.#say('rejoin', `${name} answers again: ${plan.decision.summary}`, {plan: planFile})
        const roleState = {outOfService: this.#outOfService(), lastDeadMaster: readWatchState(this.options.plansDir, this.cluster.name).lastFailover?.deadMaster ?? null}
        const report = await applyPlan({planFile, plan, cluster: this.cluster, roleState, listener: () => undefined, store: this.#store, lock: held, guard: held.guard})
        await recordManualApply(this.#store, planFile, plan, report, {lock: held})
        this.#say(report.status === 'applied' ? 'rejoined' : 'rejoin failed', report.message, {plan: planFile})
      } catch (error) {
        const message = `${name} answers again but is not rejoined automatically: ${oneLine(error)}`
        if (message !== this.#lastRejoinProblem) this.#say('rejoin refused', message)
        this.#lastRejoinProblem = message
      } finally {
        await held?.release()
      }
    }
  }

  /** In the background: a slow or silent server must never delay the master's pings. One at a time. */
  #checkForReturningMaster(master: ServerConfig): void {
    if (this.#returningCheck || this.#stopping) return
    this.#returningCheck = this.#lookForReturningMaster(master)
      .catch((error: unknown) => this.#say('error', oneLine(error)))
      .finally(() => {
        this.#returningCheck = undefined
      })
  }

  /**
   * An old master restarted after a failover comes back writable from its my.cnf: set it read only at once.
   * The cheap look (the servers not seen following the master, typically the old master itself) only
   * triggers; the decision is taken again under the cluster lock on a fresh look at every server.
   */
  async #lookForReturningMaster(master: ServerConfig): Promise<void> {
    const others = this.cluster.servers.filter((s) => s !== master)
    const full = this.#fullLookDue || Date.now() - this.#lastFullLook >= fullLookEveryMs
    if (full) {
      this.#fullLookDue = false
      this.#lastFullLook = Date.now()
    }
    const targets = full ? others : others.filter((s) => !this.#followers.has(s.name))
    if (targets.length === 0) return
    const looks = await lookAt(this.cluster, targets)
    await closeLooks(looks)
    for (const s of targets) this.#followers.delete(s.name)
    for (const l of looks) if (l.view.source === master.name && l.view.connected) this.#followers.add(l.server.name)
    this.#followSources(
      master,
      looks.map((l) => ({name: l.server.name, source: l.view.source})),
    )
    const suspects = looks.filter((l) => l.view.source === null && l.view.writable).map((l) => l.server.name)
    if (suspects.length === 0 || this.master !== master || this.#stopping) return
    // The state's record of the last failover names the server `master` replaced: with no replica left to
    // tell (a two-server cluster), that one coming back writable is the returning master.
    const outcome = await fenceReturningMasters(this.cluster, master, async (purpose) => (await this.#lock(purpose)).release, this.#replacedBy(master))
    for (const f of outcome.fenced) {
      this.#say('fenced returning master', `${f.reason}: set it read only; rejoin it as a replica of ${f.master} or rebuild it`, {server: f.server})
      // With etcd the state is shared: the next leader knows what this one fenced.
      await this.#store.updateState(withFenced(f)).catch((error: unknown) => this.#say(this.options.coord ? 'etcd' : 'error', `could not record the fence of ${f.server} in ${this.#store.where}: ${oneLine(error)}`))
    }
    // A problem that lasts is said once, not at every round.
    const problem = [...outcome.failed.map((f) => `could not set ${f.server} read only: ${f.message}; trying again`), ...(outcome.skipped ? [`${suspects.join(', ')} writable and replicating from nobody, left alone: ${outcome.skipped}`] : [])].join('; ')
    if (problem && problem !== this.#lastFenceProblem) this.#say(outcome.failed.length > 0 ? 'fence failed' : 'not fenced', problem)
    this.#lastFenceProblem = problem
  }

  /**
   * Every few seconds while the master is healthy, each proxy's writer backend is read (beside the pings, never
   * delaying them): writes routed to another server than the master, to two servers or to none are an alarm, said
   * when it starts and when it ends, and shown by /status and the metrics. Nothing is changed here: moving
   * writes is a plan's step, reviewed and verified.
   */
  #checkRouting(master: ServerConfig | undefined): void {
    if (!master || this.cluster.proxies.length === 0 || this.#routingLook || this.#stopping || this.failingOver) return
    if (Date.now() - this.#lastRoutingLook < routingLookEveryMs) return
    this.#lastRoutingLook = Date.now()
    this.#routingLook = this.#lookAtRouting(master)
      .catch((error: unknown) => this.#say('error', `looking at the proxies: ${oneLine(error)}`))
      .finally(() => (this.#routingLook = undefined))
  }

  async #lookAtRouting(master: ServerConfig): Promise<void> {
    const observed = await observeProxies(this.cluster, {ssh: this.#pool.run})
    // The topology moved meanwhile (a failover): what the proxies said is judged at the next look.
    if (this.master !== master || this.failingOver) return
    const judged = observed.map((o) => {
      const {rows, findings} = proxyFindings(this.cluster, [o], {name: master.name, dead: false})
      return {row: {...rows[0]!, problems: findings.map((f) => f.message)}, errors: findings.filter((f) => f.severity === 'error').map((f) => f.message), warnings: findings.filter((f) => f.severity !== 'error').map((f) => f.message)}
    })
    this.health.routing = {checkedAt: Date.now(), proxies: judged.map((j) => j.row)}
    const errors = judged.flatMap((j) => j.errors)
    const said = [...errors, ...judged.flatMap((j) => j.warnings)].join('; ')
    if (said === this.#lastRoutingSaid) return
    if (errors.length > 0) this.#say('routing alarm', said)
    else if (said !== '') this.#say('routing', said)
    else this.#say('routing ok', `every proxy sends writes to ${master.name} alone`)
    this.#lastRoutingSaid = said
  }

  /** The server the last failover (the watch state's record) replaced by `master`, or null. */
  #replacedBy(master: ServerConfig | undefined): string | null {
    const last = readWatchState(this.options.plansDir, this.cluster.name).lastFailover
    return master && last?.newMaster === master.name ? last.deadMaster : null
  }

  /**
   * A server whose source changed to another than the master (a failover or switchover done by hand, a
   * replica re-pointed, a new tier) changes the topology: it is looked at again at once, even while the master
   * fails (a dead master failed over by hand is then left for the new one). Seen by the looks at the servers
   * while the master answers, and by the questions to the replicas while it fails.
   */
  #followSources(master: ServerConfig, seen: readonly {name: string; source: string | null}[]): void {
    const moved: string[] = []
    for (const {name, source} of seen) {
      const before = this.#sources.get(name)
      this.#sources.set(name, source)
      if (before !== undefined && source !== before && source !== master.name) moved.push(`${name} now replicates from ${source ?? 'nobody'} (it replicated from ${before ?? 'nobody'})`)
    }
    if (moved.length === 0 || this.master !== master || this.#stopping) return
    this.#say('topology', `${moved.join('; ')}: looking at the topology again`)
    this.#rediscover = true
    this.#wake()
  }

  /** The cluster lock: this host's file alone, or with several managers the one in etcd that mha apply takes too. */
  #lock(purpose: string): Promise<ClusterLock> {
    return this.#store.lock(purpose)
  }

  /** No third code path: the same plan and apply as the commands, archived beside each other. */
  async #failover(reason: string, observation: Observation): Promise<void> {
    // A fencing look under way finishes (bounded by the monitor timeouts) before the topology changes.
    await this.#returningCheck
    const coord = this.options.coord
    if (coord && !coord.leads(this.cluster.name)) {
      // etcd lost: nobody may start a failover that another manager could start too.
      if (this.#lastReport !== 'blocked') this.#say('blocked', `${this.master?.name ?? 'the master'} is dead but no automatic failover: ${coord.session.problem ?? 'this manager no longer leads the cluster'}; it starts once etcd answers again`)
      this.#lastReport = 'blocked'
      return
    }
    const {plansDir} = this.options
    // A failover left unfinished (by another manager, or by this host's watch before a restart) is finished,
    // never planned over: a new plan would ignore what it already changed (a new master detached, not yet writable).
    const unfinished = await this.#readRecord()
    if (unfinished && !unfinished.finished) {
      await this.#finishUnfinished()
      return
    }
    await this.#store.refreshLocalCopy()
    const state = readWatchState(plansDir, this.cluster.name)
    const blocked = failoverBlocked(state, this.cluster.monitor.lastFailoverMinute)
    if (blocked) {
      // Said once per outage, not at every ping.
      if (this.#lastReport !== 'blocked') this.#say('blocked', `${this.master?.name ?? 'the master'} is dead but no automatic failover: ${blocked.replace('<name>', this.cluster.name)}`)
      this.#lastReport = 'blocked'
      return
    }
    let held: ClusterLock
    try {
      held = await this.#lock(`mha watch (${coord ? coord.settings.id : `pid ${process.pid}`})`)
    } catch (error) {
      this.#say('locked', oneLine(error))
      return
    }
    this.failingOver = true
    const started = Date.now()
    try {
      this.#say('failover', `starting: ${reason}`)
      const dead = this.master!
      // What the pings and the routes found is not waited for again: the dead master's SQL, and its SSH when
      // its host did not answer either (a host gone: each retry would cost a full timeout).
      const known = observation.master.ok
        ? []
        : [
            {
              server: dead.name,
              sql: {reachable: false as const, kind: observation.master.kind, message: observation.master.message, observedAt: this.#lastFailureAt},
              ...(observation.sshReachable === false ? {ssh: {reachable: false as const, kind: 'unreachable', message: `${dead.name}'s host did not answer SSH when watch declared it dead`}} : {}),
            },
          ]
      const snapshot = await inspectCluster(this.cluster, {knownDown: known, sshRunner: this.#pool.run})
      // When replicas still showed an IO thread, death was judged on the other routes or on their silence: the plan records that.
      const streaming = observation.replicas.some((r) => r.ioThread === 'running')
      const plan = planFor(this.cluster, snapshot, {tool: toolVersion(), createdAt: new Date().toISOString(), configFile: this.cluster.file}, {
        outOfService: this.#outOfService(),
        ...(streaming ? {forceDead: `mha watch: ${reason}`} : {}),
      })
      if (plan.kind === 'noop') {
        this.#say('failover', 'the master answers again; nothing to do')
        return
      }
      const planFile = defaultPlanPath(plan, plansDir)
      writePlan(plan, planFile)
      this.#say('plan', `${plan.decision.summary}; data loss: ${plan.decision.dataLoss.statement}`, {plan: planFile})
      const record = startedRecord(plan, planFile, coord ? coord.settings.id : `mha watch pid ${process.pid}`)
      // Before the first effect the failover is recorded (in etcd with several managers): whoever watches next finishes it.
      await this.#store.writeFailoverRecord(held, record)
      // Taken a moment ago: apply does not inspect again (and wait again for the dead master's timeouts).
      const report = await this.#apply(plan, planFile, held, snapshot)
      await this.#finished(plan, planFile, report, started, held, record)
    } catch (error) {
      if (!(error instanceof FencedError)) throw error
      this.#say('fenced', oneLine(error))
    } finally {
      this.failingOver = false
      await held.release()
    }
  }

  /** Apply through the same executor as the command; with etcd, journaled there, under the lock's guard. */
  #apply(plan: Plan, planFile: string, held: ClusterLock, snapshot?: Snapshot): Promise<ApplyReport> {
    return applyPlan({
      planFile,
      plan,
      cluster: this.cluster,
      ...(snapshot ? {snapshot} : {}),
      sshPool: this.#pool,
      ...underLock(this.#store, held, plan, planFile),
      listener: (event) => {
        if (event.kind === 'end' || event.kind === 'skip' || event.kind === 'fail') this.#say(`step ${event.kind}`, `${event.step.id}${event.kind === 'skip' ? `: ${event.reason}` : event.kind === 'fail' ? `: ${event.message}` : ''}`)
      },
    })
  }

  /** After apply: the report beside the plan, the state (anti-flapping, out of service), the log line, git. */
  async #finished(plan: Plan, planFile: string, report: ApplyReport, started: number, held: ClusterLock, record: FailoverRecord): Promise<void> {
    const {coord, git} = this.options
    const reportFile = planFile.replace(/\.json$/, '.report.json')
    writeFileSync(reportFile, JSON.stringify(report, null, 2) + '\n')
    try {
      held.guard()
    } catch (error) {
      // Another manager holds the cluster now and finishes the failover: nothing here is recorded as done.
      this.#say('fenced', `${report.message}; ${oneLine(error)}`, {plan: planFile})
      return
    }
    // One compare-and-swap of the state as the store holds it now (an ack or a fence record meanwhile is kept).
    await this.#store.updateState(afterFailover({at: new Date(), planFile, reportFile, plan, status: report.status, by: 'watch'}), held)
    // A failed apply is finished too: what to do next is in its report, and a new failover may be planned.
    await this.#store.writeFailoverRecord(held, endedRecord(record, coord ? coord.settings.id : `mha watch pid ${process.pid}`, report))
    // A switchover this watch finished for a stopped mha apply is not a failover: said as what it is.
    if (plan.kind === 'failover') this.health.failovers.push({at: new Date().toISOString(), status: report.status, durationMs: Date.now() - started})
    const rolledBack = report.status === 'failed' && report.message.includes('; rolled back (')
    const outcome = `${plan.kind === 'switchover' ? 'switchover' : 'failover'} ${report.status === 'applied' ? 'done' : report.status === 'partial' ? 'done, replicas left out' : rolledBack ? 'rolled back' : 'failed'}`
    this.#say(outcome, report.message + (report.dataLoss ? `; data loss: ${report.dataLoss}` : '') + (report.nextAction ? `; next: ${report.nextAction}` : ''), {plan: planFile, report: reportFile})
    if (git) this.#commit(planFile, reportFile, `mha watch: ${plan.cluster} ${report.status}: ${plan.decision.summary}`)
    this.master = undefined
    this.failures = 0
  }

  #commit(planFile: string, reportFile: string, message: string): void {
    // The repository is the one holding the plans folder, whatever watch's working directory is.
    const files = [resolve(planFile), resolve(reportFile)]
    const git = (args: string[]) => execFileSync('git', args, {cwd: dirname(files[0]!), stdio: 'pipe'}).toString().trim()
    try {
      let identity: string[] = []
      try {
        git(['config', 'user.email'])
      } catch {
        identity = ['-c', 'user.name=mha watch', '-c', 'user.email=mha-watch@localhost']
      }
      git(['add', '--', ...files])
      git([...identity, 'commit', '-q', '-m', message, '--', ...files])
      this.#say('git', `committed ${planFile} and its report`)
    } catch (error) {
      this.#say('git', `could not commit: ${oneLine(error)}`)
    }
  }
}
