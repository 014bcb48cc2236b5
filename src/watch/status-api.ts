import {readFileSync} from 'node:fs'
import type {ClusterConfig} from '../config/types.js'
import {oneLine} from '../util/errors.js'
import {probeReplicas, type ReplicaView} from './replica-probe.js'
import {failoverBlocked, type WatchState} from '../store/cluster-state.js'
import {readWatchState} from '../store/files.js'
import type {ClusterWatcher} from './watcher.js'

/** One cluster as a running watch sees it: the document behind GET /status (schemas/watch-status.schema.json). */
export interface ClusterStatus {
  name: string
  /** False when the watch cannot judge the master: no master found, discovery failing, access refused. */
  monitored: boolean
  notMonitoredReason: string | null
  master: string | null
  /** Null until the replicas were looked at; each server of the cluster file but the master. */
  replicas: ReplicaView[] | null
  replicasCheckedAt: string | null
  verdict: {state: string; reason: string | null}
  lastPingAt: string | null
  lastPingOk: boolean | null
  lastSuccessfulPingAt: string | null
  failoverBlocked: boolean
  failoverBlockedReason: string | null
  /** From the watch state file: the last failover by this or an earlier watch, or by mha apply. */
  lastFailover: (NonNullable<WatchState['lastFailover']> & {acknowledged: boolean}) | null
  /** Failovers this watch process ran, by apply status, and how long the last one took (detection to report). */
  failoversByThisWatch: {applied: number; partial: number; failed: number}
  lastFailoverDurationSeconds: number | null
  /** With etcd: this manager's role for the cluster and the manager that leads it. */
  leadership?: {role: 'leader' | 'follower' | 'cut-off'; leader: string | null}
  /** With a routing section: each proxy's writer backend at the last look, and what is wrong with it. */
  routing?: {checkedAt: string; proxies: NonNullable<ClusterWatcher['health']['routing']>['proxies']} | null
}

export interface WatchStatus {
  format: 1
  watch: {pid: number; startedAt: string; listen: string; version: string}
  generatedAt: string
  /** With etcd: this manager's name and whether its lease is valid (false: no automatic failover). */
  etcd?: {id: string; up: boolean; problem: string | null}
  clusters: ClusterStatus[]
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString())

/** Looks at the replicas of one cluster every few seconds, only while --listen serves them. */
export class ReplicaMonitor {
  readonly watcher: ClusterWatcher
  replicas: ReplicaView[] | null = null
  checkedAt: number | null = null
  #timer: NodeJS.Timeout | undefined
  #stopping = false
  #busy: Promise<void> = Promise.resolve()

  constructor(watcher: ClusterWatcher) {
    this.watcher = watcher
  }

  get intervalMs(): number {
    return Math.max(5000, this.watcher.cluster.monitor.pingIntervalMs)
  }

  start(): void {
    this.#schedule(500)
  }

  async stop(): Promise<void> {
    this.#stopping = true
    clearTimeout(this.#timer)
    await this.#busy
  }

  #schedule(ms: number): void {
    if (this.#stopping) return
    this.#timer = setTimeout(() => {
      this.#busy = this.look().finally(() => this.#schedule(this.intervalMs))
    }, ms)
  }

  async look(): Promise<void> {
    const master = this.watcher.master
    if (!master) {
      this.replicas = null
      this.checkedAt = null
      return
    }
    try {
      this.replicas = await probeReplicas(this.watcher.cluster, master)
      this.checkedAt = Date.now()
    } catch {
      this.replicas = null
      this.checkedAt = null
    }
  }
}

function lastFailoverOf(state: WatchState): ClusterStatus['lastFailover'] {
  return state.lastFailover ? {...state.lastFailover, acknowledged: state.acknowledged} : null
}

const reportDurations = new Map<string, number | null>()
/** An apply report's durationMs, read once per report file. */
function reportDurationSeconds(file: string): number | null {
  if (!reportDurations.has(file)) {
    try {
      const ms = (JSON.parse(readFileSync(file, 'utf8')) as {durationMs?: unknown}).durationMs
      reportDurations.set(file, typeof ms === 'number' ? ms / 1000 : null)
    } catch {
      reportDurations.set(file, null)
    }
  }
  return reportDurations.get(file)!
}

/** A cluster whose file does not load: not monitored, and why; what the watch state file records of it. */
export function unloadedStatus(name: string, reason: string, plansDir: string): ClusterStatus {
  let lastFailover: ClusterStatus['lastFailover'] = null
  try {
    lastFailover = lastFailoverOf(readWatchState(plansDir, name))
  } catch {
    // Not monitored already says what matters.
  }
  return {
    name,
    monitored: false,
    notMonitoredReason: reason,
    master: null,
    replicas: null,
    replicasCheckedAt: null,
    verdict: {state: 'healthy', reason: null},
    lastPingAt: null,
    lastPingOk: null,
    lastSuccessfulPingAt: null,
    // Anti-flapping needs the cluster's last_failover_minute, in the file that does not load: no automatic failover anyway.
    failoverBlocked: false,
    failoverBlockedReason: null,
    lastFailover,
    failoversByThisWatch: {applied: 0, partial: 0, failed: 0},
    lastFailoverDurationSeconds: lastFailover ? reportDurationSeconds(lastFailover.report) : null,
  }
}

export function clusterStatus(cluster: ClusterConfig, watcher: ClusterWatcher, monitor: ReplicaMonitor | undefined, plansDir: string, now = Date.now()): ClusterStatus {
  const h = watcher.health
  let state: WatchState
  let stateProblem: string | null = null
  try {
    state = readWatchState(plansDir, cluster.name)
  } catch (error) {
    state = {lastFailover: null, acknowledged: true}
    stateProblem = `cannot read the watch state: ${oneLine(error)}`
  }
  const blocked = failoverBlocked(state, cluster.monitor.lastFailoverMinute, now)?.replace('<name>', cluster.name) ?? null
  const v = watcher.verdict
  let notMonitored = h.notMonitored ?? stateProblem
  if (!notMonitored && h.role === 'follower') notMonitored = `${h.leader ?? 'no manager yet'} leads this cluster; this manager follows, ready to take over`
  if (!notMonitored && v.state === 'refusing') notMonitored = `the master refuses mha's connections (${v.reason.replace(/: it answers, so it is alive$/, '')}): mha cannot check it`
  if (!notMonitored && h.lastPingAt === null) notMonitored = 'starting: the master was not pinged yet'
  const own = h.failovers
  const last = own.at(-1)
  const lastFailover = lastFailoverOf(state)
  return {
    name: cluster.name,
    monitored: notMonitored === null,
    notMonitoredReason: notMonitored,
    master: watcher.master?.name ?? null,
    replicas: monitor?.replicas ?? null,
    replicasCheckedAt: iso(monitor?.checkedAt ?? null),
    verdict: {state: v.state, reason: 'reason' in v ? v.reason : null},
    lastPingAt: iso(h.lastPingAt),
    lastPingOk: h.lastPingOk,
    lastSuccessfulPingAt: iso(h.lastSuccessfulPingAt),
    failoverBlocked: blocked !== null,
    failoverBlockedReason: blocked,
    lastFailover,
    failoversByThisWatch: {applied: own.filter((f) => f.status === 'applied').length, partial: own.filter((f) => f.status === 'partial').length, failed: own.filter((f) => f.status !== 'applied' && f.status !== 'partial').length},
    lastFailoverDurationSeconds: last && lastFailover?.at !== undefined && Date.parse(last.at) >= Date.parse(lastFailover.at) ? last.durationMs / 1000 : lastFailover ? reportDurationSeconds(lastFailover.report) : null,
    ...(h.role === 'single' ? {} : {leadership: {role: h.role, leader: h.leader}}),
    ...(cluster.proxies.length > 0 ? {routing: h.routing ? {checkedAt: new Date(h.routing.checkedAt).toISOString(), proxies: h.routing.proxies} : null} : {}),
  }
}
