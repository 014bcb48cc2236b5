import {existsSync, mkdirSync, readFileSync, renameSync, writeFileSync} from 'node:fs'
import {basename, dirname, join} from 'node:path'
import type {ApplyReport} from '../apply/events.js'
import type {ClusterLock, Coordinator} from '../coord/coordinator.js'
import {planDigest} from '../plan/plan-file.js'
import type {Plan} from '../plan/types.js'

/** What watch remembers per cluster across restarts: the last failover and whether it was acknowledged. */
export interface WatchState {
  lastFailover: {
    at: string
    plan: string
    report: string
    status: string
    deadMaster: string | null
    newMaster: string | null
    /** Absent in records written by watch (always a failover). */
    kind?: 'failover' | 'switchover'
    by?: 'watch' | 'apply'
  } | null
  acknowledged: boolean
  /** Servers that came back writable beside the master and that watch set read only, the latest per server. */
  fenced?: {server: string; master: string; at: string; reason: string}[]
  /**
   * Servers taken out of the active topology by a failover (the dead master): planning no longer waits for
   * them to answer. The cluster file is left as the user wrote it; a rejoin puts a server back.
   */
  outOfService?: {server: string; since: string; reason: string; plan: string}[]
}

type OutOfServiceEntry = NonNullable<WatchState['outOfService']>[number]

/** The out-of-service list with `entry` in it (replacing an older entry for the same server). */
export function withOutOfService(state: WatchState, entry: OutOfServiceEntry): OutOfServiceEntry[] {
  return [...(state.outOfService ?? []).filter((o) => o.server !== entry.server), entry]
}

/** The names of the servers a failover took out of service, for the planner. */
export function outOfService(plansDir: string, cluster: string): string[] {
  return (readWatchState(plansDir, cluster).outOfService ?? []).map((o) => o.server)
}

export function stateFile(plansDir: string, cluster: string): string {
  return join(plansDir, cluster, 'watch-state.json')
}

export function readWatchState(plansDir: string, cluster: string): WatchState {
  const file = stateFile(plansDir, cluster)
  if (!existsSync(file)) return {lastFailover: null, acknowledged: true}
  return JSON.parse(readFileSync(file, 'utf8')) as WatchState
}

export function writeWatchState(plansDir: string, cluster: string, state: WatchState): void {
  const file = stateFile(plansDir, cluster)
  mkdirSync(dirname(file), {recursive: true})
  // Written aside, then renamed: a crash never leaves half a state file.
  writeFileSync(file + '.tmp', JSON.stringify(state, null, 2) + '\n')
  renameSync(file + '.tmp', file)
}

export function recordFenced(plansDir: string, cluster: string, fenced: NonNullable<WatchState['fenced']>[number]): void {
  const state = readWatchState(plansDir, cluster)
  writeWatchState(plansDir, cluster, {...state, fenced: [...(state.fenced ?? []).filter((f) => f.server !== fenced.server), fenced]})
}

/** MHA's last_failover_minute: a second automatic failover waits for the window to pass or for `mha ack`. */
export function failoverBlocked(state: WatchState, windowMinutes: number, now = Date.now()): string | null {
  const last = state.lastFailover
  if (!last || state.acknowledged) return null
  const ageMinutes = (now - Date.parse(last.at)) / 60_000
  if (ageMinutes >= windowMinutes) return null
  return `the last failover (${last.deadMaster ?? '?'} -> ${last.newMaster ?? '?'} at ${last.at}, ${last.plan}) is ${Math.floor(ageMinutes)} min old, within last_failover_minute=${windowMinutes}; review it, then run "mha ack --cluster <name>" to allow another`
}

/**
 * A failover under way (started by watch or by mha apply), kept until it is finished (beside the plans, or in
 * etcd with several managers) so that a restarted watch or the next leader finishes it. The plan is kept whole:
 * another host may not have it.
 */
export interface FailoverRecord {
  digest: string
  planName: string
  plan: unknown
  by: string
  startedAt: string
  finished: boolean
  finishedBy?: string
  status?: string
  message?: string
}

function recordFile(plansDir: string, cluster: string): string {
  return join(plansDir, cluster, 'failover-record.json')
}

export function readFailoverRecord(plansDir: string, cluster: string): FailoverRecord | null {
  const file = recordFile(plansDir, cluster)
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as FailoverRecord) : null
}

export function writeFailoverRecord(plansDir: string, cluster: string, record: FailoverRecord): void {
  const file = recordFile(plansDir, cluster)
  mkdirSync(dirname(file), {recursive: true})
  writeFileSync(file + '.tmp', JSON.stringify(record) + '\n')
  renameSync(file + '.tmp', file)
}

/** The record of a failover about to take its first step. */
export function startedRecord(plan: Plan, planFile: string, by: string): FailoverRecord {
  return {digest: planDigest(plan), planName: basename(planFile), plan, by, startedAt: new Date().toISOString(), finished: false}
}

/** The same record once its apply returned, whatever the outcome: what to do next is in the report. */
export function endedRecord(record: FailoverRecord, by: string, report: Pick<ApplyReport, 'status' | 'message'>): FailoverRecord {
  return {...record, finished: true, finishedBy: by, status: report.status, message: report.message}
}

/** Where the failover under way is recorded: in etcd (written only under the cluster lock) with several managers, else beside the plans. */
export function failoverRecordIn(plansDir: string, cluster: string, coord: Coordinator | undefined): Promise<FailoverRecord | null> {
  return coord ? coord.failoverRecord(cluster) : Promise.resolve(readFailoverRecord(plansDir, cluster))
}

export async function recordFailover(plansDir: string, cluster: string, shared: {coord: Coordinator; lock: ClusterLock} | undefined, record: FailoverRecord): Promise<void> {
  if (shared) await shared.coord.writeFailoverRecord(shared.lock, record)
  else writeFailoverRecord(plansDir, cluster, record)
}
