import {basename} from 'node:path'
import type {ApplyReport} from '../apply/events.js'
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
    /** Absent in records of a failover by watch (a switchover watch finished for a stopped apply says so). */
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

/** A change of the state: the new state, or null for none (nothing is written). */
export type StateChange = (state: WatchState) => WatchState | null

/** The state before anything was recorded. */
export const EMPTY_STATE: WatchState = {lastFailover: null, acknowledged: true}

/** A server watch set read only because it came back writable beside the master: the latest per server. */
export function withFenced(fenced: NonNullable<WatchState['fenced']>[number]): StateChange {
  return (state) => ({...state, fenced: [...(state.fenced ?? []).filter((f) => f.server !== fenced.server), fenced]})
}

/** `mha ack` of the failover it was shown (at `seenAt`): a newer failover recorded meanwhile is not acknowledged by it. */
export function acknowledge(seenAt: string): StateChange {
  return (state) => (state.lastFailover?.at === seenAt && !state.acknowledged ? {...state, acknowledged: true} : null)
}

/** A failover or switchover applied (by watch or by hand): the last failover, anti-flapping, and the dead master out of service. */
export function afterFailover(entry: {at: Date; planFile: string; reportFile: string; plan: Plan; status: string; by: 'watch' | 'apply'}): StateChange {
  const {plan} = entry
  return (previous) => {
    const at = entry.at.toISOString()
    const promoted = entry.status === 'applied' || entry.status === 'partial'
    const dead = plan.kind === 'failover' && promoted ? plan.decision.deadMaster : null
    return {
      ...previous,
      // The state's deadMaster is the master moved away from: a switchover records its live old master there.
      lastFailover: {
        at,
        plan: entry.planFile,
        report: entry.reportFile,
        status: entry.status,
        deadMaster: plan.decision.deadMaster ?? plan.decision.oldMaster ?? null,
        newMaster: plan.decision.newMaster,
        ...(entry.by === 'apply' ? {kind: plan.kind === 'switchover' ? ('switchover' as const) : ('failover' as const), by: 'apply' as const} : plan.kind === 'switchover' ? {kind: 'switchover' as const} : {}),
      },
      // A switchover is a planned change: it does not block the next automatic failover.
      acknowledged: plan.kind === 'switchover' ? previous.acknowledged || previous.lastFailover === null : false,
      // A failed-over master leaves the active topology until it is rejoined.
      ...(dead ? {outOfService: withOutOfService(previous, {server: dead, since: at, reason: `failed over to ${plan.decision.newMaster}${entry.by === 'apply' ? ' (mha apply)' : ''}`, plan: entry.planFile})} : {}),
    }
  }
}

/** A rejoined server is back in the active topology. */
export function afterRejoin(server: string): StateChange {
  return (previous) => ((previous.outOfService ?? []).some((o) => o.server === server) ? {...previous, outOfService: (previous.outOfService ?? []).filter((o) => o.server !== server)} : null)
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
 * A failover or switchover under way (started by watch or by mha apply), kept until it is finished (beside the
 * plans, or in etcd with several managers) so that a restarted watch or the next leader finishes it. The plan is
 * kept whole: another host may not have it.
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

/** What the recorded plan does: a failover, or a switchover (an unfinished one is finished or rolled back). */
export function recordedKind(record: FailoverRecord): 'failover' | 'switchover' {
  return (record.plan as {kind?: unknown} | null)?.kind === 'switchover' ? 'switchover' : 'failover'
}

/** The record of a failover about to take its first step. */
export function startedRecord(plan: Plan, planFile: string, by: string): FailoverRecord {
  return {digest: planDigest(plan), planName: basename(planFile), plan, by, startedAt: new Date().toISOString(), finished: false}
}

/** The same record once its apply returned, whatever the outcome: what to do next is in the report. */
export function endedRecord(record: FailoverRecord, by: string, report: Pick<ApplyReport, 'status' | 'message'>): FailoverRecord {
  return {...record, finished: true, finishedBy: by, status: report.status, message: report.message}
}
