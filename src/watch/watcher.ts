import type {Coordinator} from '../coord/coordinator.js'
import {sqlFacts, topologyOf} from '../analysis/topology.js'
import type {ClusterConfig, ServerConfig} from '../config/types.js'
import {inspectCluster, sshTargetOf} from '../inspect/inspect.js'
import type {Snapshot} from '../inspect/types.js'
import type {FailoverRecord} from '../store/cluster-state.js'
import {oneLine} from '../util/errors.js'
import {Act} from './act.js'
import {complaintPauseMs} from './complaints.js'
import {ClusterContext, type WatchOptions} from './context.js'
import {Follow} from './follow.js'
import {Gate} from './gate.js'
import {failuresAfter, judge, observe, type Verdict} from './judge.js'
import {Monitor, nextPingDelayMs, replacedServers, type SeenSource, type ServerLook} from './monitor.js'
import {pingClock} from './ping-clock.js'
import {processLoopLag, type LoopLag} from './loop-lag.js'
import {masterDespiteReturned} from './returning-master.js'
import {RoutingLook, type RoutingView} from './routing-look.js'

export type {WatchOptions} from './context.js'
export type {RoutingView} from './routing-look.js'

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

/** With etcd: leads the cluster, follows another manager, or led it when etcd went away (pings, never fails over). */
export type Role = 'single' | 'leader' | 'follower' | 'cut-off'

/**
 * With etcd, how often the loop of a cluster another manager leads looks at its role: the coordinator wakes it
 * as soon as the role changes (roleChanged), so this is only a safety net; 10,000 loops waking every ping to
 * find that they still follow were most of a manager's work.
 */
const followerLookMs = 10_000

/** Full inspections at once in this process (a thousand clusters all start with one). */
const discoveries = new Gate(16)

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

/**
 * One cluster's loop, in the phases of a failover: **monitor** (the master's pings, the replicas' and other routes'
 * answers), **judge** (is the master dead: failures and second opinions, a pure verdict), **plan** (the failover
 * plan from one inspection), **act** (apply it under the cluster lock) and **follow** (after: the report and state,
 * unfinished records, a returning old master, rejoins). The loop itself schedules the looks and follows the topology.
 */
export class ClusterWatcher {
  readonly cluster: ClusterConfig
  readonly options: WatchOptions
  readonly #ctx: ClusterContext
  readonly #monitor: Monitor
  readonly #follow: Follow
  readonly #act: Act
  readonly #routing: RoutingLook
  readonly #lag: LoopLag
  master: ServerConfig | undefined
  verdict: Verdict = {state: 'healthy'}
  failures = 0
  readonly health: WatchHealth = {lastPingAt: null, lastPingOk: null, lastSuccessfulPingAt: null, notMonitored: null, failovers: [], role: 'single', leader: null, routing: null}
  #leaderSaid: string | null = null
  #stopping = false
  #timer: NodeJS.Timeout | undefined
  /** The ping interval whose next multiple this cluster waits for on the process's clock (healthy), if it does. */
  #onClock: number | undefined
  #busy: Promise<void> = Promise.resolve()
  /** A change was seen: the next tick looks at the topology again, whatever the master's state. */
  #rediscover = false
  /** Each server's source at its last look (a configured server's name, host:port, or null for nobody). */
  readonly #sources = new Map<string, string | null>()
  /** Why the cluster cannot be monitored (no master, logins refused), or null while it is. */
  unmonitored: string | null = null
  #unmonitoredSince = 0
  #nextUnmonitoredLog = 0
  /** Each server's @@server_id at the last discovery: another server answering at its address is another topology. */
  readonly #discoveredIds = new Map<string, number>()
  /** The light look at the other servers under way (one at a time, beside the pings). */
  #around: Promise<void> | undefined
  #firstLookDone: () => void = () => undefined
  readonly #firstLook = new Promise<void>((resolve) => (this.#firstLookDone = resolve))
  #ticking = false
  #woken = false

  constructor(cluster: ClusterConfig, options: WatchOptions) {
    this.cluster = cluster
    this.options = options
    this.#ctx = new ClusterContext(cluster, options)
    this.#lag = options.lag ?? processLoopLag()
    this.#monitor = new Monitor(this.#ctx, {lost: () => this.#wake(), sources: (master, seen) => this.#followSources(master, seen)})
    this.#follow = new Follow(this.#ctx, {
      currentMaster: () => this.master,
      applied: (plan, report, durationMs) => {
        if (plan.kind === 'failover') this.health.failovers.push({at: new Date().toISOString(), status: report.status, durationMs})
        this.master = undefined
        this.failures = 0
      },
    })
    this.#act = new Act(this.#ctx, {
      // A fencing look under way finishes (bounded by the monitor timeouts) before the topology changes.
      settle: async () => await this.#around,
      finishUnfinished: () => this.#follow.finishUnfinished(),
      finished: (...args) => this.#follow.finished(...args),
    })
    this.#routing = new RoutingLook(this.#ctx, () => this.master, this.health)
  }

  get name(): string {
    return this.cluster.name
  }

  /** A failover (or its takeover) is under way in this process. */
  get failingOver(): boolean {
    return this.#ctx.failingOver
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
    this.#leaveClock()
    // Said at once: no new fence, rejoin or look at the proxies starts while the tick under way ends.
    this.#follow.stop()
    const routingStopped = this.#routing.stop()
    await this.#busy
    await this.#around
    await routingStopped
    await this.#monitor.close()
    await this.#ctx.pool.close()
  }

  #schedule(ms: number): void {
    if (this.#stopping) return
    this.#timer = setTimeout(this.#due, ms)
  }

  /** A healthy master's next ping: at the next multiple of ping_interval, with every cluster of the process. */
  #scheduleOnClock(): void {
    if (this.#stopping) return
    this.#onClock = this.cluster.monitor.pingIntervalMs
    pingClock.at(this.#onClock, this.#due)
  }

  #leaveClock(): void {
    if (this.#onClock === undefined) return
    pingClock.cancel(this.#onClock, this.#due)
    this.#onClock = undefined
  }

  /** The tick, run from a timer or the clock; made once, so that a ping allocates no timer callback of its own. */
  readonly #due = (): void => {
    this.#timer = undefined
    this.#onClock = undefined
    this.#ticking = true
    this.#busy = this.tick().finally(this.#ticked)
  }

  readonly #ticked = (): void => {
    this.#firstLookDone()
    this.#ticking = false
    const woken = this.#woken
    this.#woken = false
    if (woken) this.#schedule(0)
    else if (this.health.role === 'follower') this.#schedule(followerLookMs)
    else if (this.failures === 0) this.#scheduleOnClock()
    else this.#schedule(nextPingDelayMs(this.cluster.monitor.pingIntervalMs, this.failures, this.#monitor.lastFailedPingMs))
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
    if (this.#timer === undefined && this.#onClock === undefined) return
    clearTimeout(this.#timer)
    this.#leaveClock()
    this.#schedule(0)
  }

  #say(event: string, message: string, fields?: Record<string, unknown>): void {
    this.#ctx.say(event, message, fields)
  }

  async tick(): Promise<void> {
    try {
      if (this.options.coord && !(await this.#leadership(this.options.coord))) return
      // A failover or switchover left unfinished (this watch killed in the middle, an mha apply killed or fenced,
      // the previous leader gone) is finished, or the switchover rolled back, as soon as its lock is free.
      // Looked at each tick unless the last ping found a writable master: a killed switchover leaves it read_only,
      // a failover starts when it fails; a healthy one has its record looked at every few seconds.
      const writable = this.master !== undefined && this.failures === 0 && !this.#monitor.readOnly
      if (await this.#follow.unfinishedPending(!writable)) await this.#follow.finishUnfinished()
      // The topology is followed, not assumed: looked at again when what the pings and the light looks read says
      // it changed (the master read only or another server, a server re-pointed or replaced), not on a timer.
      if (!this.master || this.#rediscover) {
        this.#rediscover = false
        await this.#discover()
        if (!this.master) return
      }
      const master = this.master
      // Monitor: the ping (and the retry beside a silent one), and how late this process was meanwhile.
      const since = performance.now()
      const looked = await this.#monitor.look(master, this.failures)
      this.health.lastPingAt = Date.now()
      this.health.lastPingOk = looked.result.ok
      if (looked.result.ok) this.health.lastSuccessfulPingAt = this.health.lastPingAt
      const replaced = this.#replacedServers([{server: master, serverId: this.#monitor.masterServerId}])
      if (this.#monitor.readOnly || replaced) {
        this.#monitor.readOnly = false
        if (replaced) this.#say('topology', `${replaced}: looking at the topology again`)
        await this.#discover()
        if (this.master !== master) return
      }
      const wasFailing = this.failures > 0 || looked.probed
      this.failures = failuresAfter(this.failures, looked, this.#lag.worstSince(since))
      if (looked.result.ok) {
        this.#monitor.forgetProbes()
        // The replicas asked while it failed are not kept connected: the master tells of them again.
        if (wasFailing) this.#monitor.releaseFollowers()
        // Sessions opened for an outage that did not happen are not kept unless the cluster file asks for it.
        if (wasFailing && !this.cluster.monitor.keepSshOpen && this.#ctx.pool.size > 0) void this.#ctx.pool.release()
      }
      // At the first failure, the other routes and the master's SSH are asked at once, beside the next pings,
      // so that their answers are there when the replicas still say Yes (a host gone without a reset).
      else if (this.failures > 0) this.#monitor.startProbes(master)
      // Judge: from failures_before_dead on, with the replicas' word and the other routes'.
      const limit = this.cluster.monitor.failuresBeforeDead
      const observation = await observe(looked.result, this.failures, limit, Boolean(this.cluster.hooks.secondaryCheck), {
        replicas: () => this.#monitor.askReplicas(master),
        ssh: () => this.#monitor.sshAnswer(),
        routes: () => this.#monitor.routesAnswer(),
      })
      // A stale answer is not reused for the next judgement.
      if (!looked.result.ok && this.failures >= limit) this.#monitor.forgetProbes()
      observation.lagMs = this.#lag.worstSince(since)
      const verdict = judge(observation, this.failures, limit)
      this.#report(verdict)
      this.verdict = verdict
      // Monitor, while healthy: the followers through the master (right after its ping, on its connection), then
      // in the background a look at the servers that need one of their own (and a returning old master, fenced).
      if (verdict.state === 'healthy') await this.#monitor.checkFollowers(master)
      if (verdict.state === 'healthy') this.#lookAround(master)
      // Follow, while healthy: the proxies, a server taken out that answers again.
      if (verdict.state === 'healthy') this.#routing.check(master)
      if (verdict.state === 'healthy' && this.options.autoRejoin) await this.#follow.rejoinReturned()
      // Plan and act: under the cluster lock.
      if (verdict.state === 'dead') await this.#act.failover({dead: master, reason: verdict.reason, observation, lastFailureAt: this.#monitor.lastFailureAt})
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
      await this.#ctx.store.refreshLocalCopy()
      await this.#follow.finishUnfinished()
    } else if (role === 'cut-off' && was !== 'cut-off') {
      this.#say('etcd down', `${coord.session.problem ?? 'etcd unreachable'}: still pinging ${this.master?.name ?? 'the master'}, but no automatic failover until etcd answers again`)
    } else if (role === 'follower' && was !== 'follower') {
      this.#monitor.dropConnections()
      this.master = undefined
      this.failures = 0
      this.verdict = {state: 'healthy'}
      this.#ctx.lastReport = ''
      this.#monitor.forgetProbes()
      // What this manager could not monitor is the leader's business now.
      this.unmonitored = null
      this.health.notMonitored = null
    }
    if (role === 'follower' && this.health.leader !== null && this.health.leader !== this.#leaderSaid) this.#say('following', `${this.health.leader} leads ${name}; this manager (${coord.settings.id}) is ready to take over`)
    this.#leaderSaid = role === 'follower' ? this.health.leader : null
    if (role === 'follower') this.#firstLookDone()
    return role !== 'follower'
  }

  /** Told of a failover record another manager wrote: followers say that the leader acted. */
  leaderActed(record: FailoverRecord): void {
    this.#follow.leaderActed(record)
  }

  #report(verdict: Verdict): void {
    // Said once for the whole process (watch's "overloaded" line), not once per cluster.
    if (verdict.state === 'suspect' && verdict.overloaded) return
    const key = verdict.state === 'suspect' ? `suspect${verdict.failures}` : verdict.state
    const last = this.#ctx.lastReport
    if (key === last || (key === 'dead' && last === 'blocked')) return
    this.#ctx.lastReport = key
    if (verdict.state === 'healthy') this.#say('healthy', `${this.master?.name ?? '?'} answers`)
    else this.#say(verdict.state, verdict.reason)
  }

  /**
   * A server whose source changed to another than the master (a failover or switchover done by hand, a
   * replica re-pointed, a new tier) changes the topology: it is looked at again at once, even while the master
   * fails (a dead master failed over by hand is then left for the new one). Seen by the looks at the servers
   * while the master answers, and by the questions to the replicas while it fails.
   */
  #followSources(master: ServerConfig, seen: readonly SeenSource[]): void {
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

  /**
   * The light look at the other servers, in the background (a slow or silent server must never delay the master's
   * pings), one at a time: what it reads follows the topology (a server re-pointed or replaced: looked at again
   * at once) and finds a returning old master (fenced by the follow phase).
   */
  #lookAround(master: ServerConfig): void {
    if (this.#around || this.#stopping || !this.#monitor.lookDue()) return
    this.#around = this.#monitor
      .lookAround(master)
      .then(async (looks) => {
        if (looks.length === 0) return
        this.#followSources(
          master,
          looks.flatMap((l) => (l.view ? [{name: l.server.name, source: l.view.source}] : [])),
        )
        const replaced = this.#replacedServers(looks)
        if (replaced && this.master === master && !this.#stopping) {
          this.#say('topology', `${replaced}: looking at the topology again`)
          this.#rediscover = true
          this.#wake()
        }
        await this.#follow.fenceReturning(master, looks)
      })
      .catch((error: unknown) => this.#say('error', oneLine(error)))
      .finally(() => (this.#around = undefined))
  }

  #replacedServers(looks: readonly Pick<ServerLook, 'server' | 'serverId'>[]): string | null {
    return replacedServers(this.#discoveredIds, looks)
  }

  async #discover(): Promise<void> {
    // The topology only: the replication login is tried by the inspection a failover makes.
    const snapshot = await discoveries.run(() => inspectCluster(this.cluster, {relayLookups: false, ssh: false, replLogin: false}))
    this.#discoveredIds.clear()
    for (const s of snapshot.servers) {
      const facts = sqlFacts(s)
      if (facts) this.#discoveredIds.set(s.name, facts.serverId)
    }
    // The old master back writable beside the one that replaced it, and no replica to tell them apart: the
    // state's record of the failover keeps the master watched (and the old one is fenced by the next look).
    const master = topologyOf(this.cluster, snapshot).master ?? masterDespiteReturned(this.cluster, snapshot, this.master, this.#ctx.replacedBy(this.master))
    if (master && master.name !== this.master?.name) {
      this.#say('master', `monitoring ${master.name} (${master.ip}:${master.port})${this.master ? `, which replaced ${this.master.name}` : ''}`)
      // What was seen of the old master (its followers, the replicas' silence, the other routes, its kept
      // connection) says nothing of the new one.
      this.#monitor.newMaster()
      this.failures = 0
    }
    // Warm sessions for the failover; one lost since (a host rebooted) is opened again.
    if (master && this.cluster.monitor.keepSshOpen) {
      const out = this.#ctx.outOfService()
      for (const s of this.cluster.servers) if (!out.includes(s.name)) this.#ctx.pool.warm(sshTargetOf(this.cluster, s))
    }
    if (master && this.unmonitored) this.#say('monitored', `${this.cluster.name} can be monitored again (it could not for ${Math.round((Date.now() - this.#unmonitoredSince) / 1000)} s)`)
    if (master) this.unmonitored = null
    else this.#cannotMonitor(whyNoMaster(this.cluster, snapshot))
    this.master = master
    this.health.notMonitored = master ? null : this.unmonitored
    // The next light look takes every server: its views are compared with this discovery's.
    this.#monitor.lookAtEveryServerNext()
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
}
