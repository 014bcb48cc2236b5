import {hostname} from 'node:os'
import type {ApplyReport} from '../apply/events.js'
import {applyPlan, journalFileOf, type ApplyOptions} from '../apply/executor.js'
import {lockCluster} from '../store/lock.js'
import type {EtcdSettings} from '../coord/settings.js'
import {planDigest} from '../plan/plan-file.js'
import {endedRecord, readWatchState, startedRecord, type FailoverRecord, type StateChange} from '../store/cluster-state.js'
import {failoverRecordIn, recordFailover} from '../coord/records.js'
import {plansDirOf} from '../store/manual-apply.js'
import type {Plan} from '../plan/types.js'
import {oneLine, UserError} from '../util/errors.js'
import {manualApplyChange, recordManualApply} from '../store/manual-apply.js'
import {describeNewMaster, lineReporter, listrReporter} from './apply-reporter.js'
import {ExitCode} from './exit-codes.js'

/**
 * Apply a plan from a command, as `mha apply` and `mha switchover` both do: under the cluster lock, with
 * listr2 progress on a terminal (lines elsewhere, nothing with --json), recorded for watch and status.
 * Returns the report and the exit code the command ends with.
 */
export async function applyFromCommand(options: Omit<ApplyOptions, 'listener'> & {json: boolean; say: (line: string) => void; etcd?: EtcdSettings | undefined}): Promise<{report: ApplyReport; exitCode: number}> {
  const {plan, planFile, cluster, json, say} = options
  const interval = options.progressIntervalMs ?? progressIntervalMs()
  // With etcd the lock is the one every manager takes: a watcher on another host and this apply exclude each other.
  const shared = options.etcd ? await etcdLock(options.etcd, cluster.name, `mha apply ${planFile}`) : undefined
  const unlock = shared ? () => undefined : lockCluster(cluster.name, `mha apply ${planFile}`)
  const tty = process.stdout.isTTY && !json
  const listr = tty ? await listrReporter(plan) : undefined
  const listener = json ? () => undefined : (listr?.listener ?? lineReporter(say))
  let report: ApplyReport
  try {
    const digest = planDigest(plan)
    const plansDir = plansDirOf(planFile, plan.cluster)
    const recorded = plan.kind === 'failover'
    const earlier = recorded ? unfinishedRecord(await failoverRecordIn(plansDir, plan.cluster, shared?.coord), plan, digest) : null
    let started: FailoverRecord | undefined
    // A rejoin puts back a server a failover took out: the state's out-of-service list and last failover say which
    // (with etcd, the state the managers share).
    const known = (await shared?.coord.readState(plan.cluster)) ?? readWatchState(plansDir, plan.cluster)
    report = await applyPlan({
      ...options,
      roleState: {outOfService: (known.outOfService ?? []).map((o) => o.server), lastDeadMaster: known.lastFailover?.deadMaster ?? null},
      progressIntervalMs: interval,
      listener,
      ...(recorded
        ? {
            beforeFirstEffect: async () => {
              started = earlier ?? startedRecord(plan, planFile, thisApply())
              if (!earlier) await recordFailover(plansDir, plan.cluster, shared, started)
            },
          }
        : {}),
      // Journal and work files in etcd: a manager that takes the lock after this process died finishes the plan.
      ...(shared ? {guard: shared.lock.guard, journal: shared.coord.journal(shared.lock, digest, journalFileOf(planFile)), artifacts: shared.coord.artifacts(shared.lock, digest)} : {}),
    })
    // Ended whatever the outcome, as watch ends its own: a plan refused now (the cluster changed) is over too.
    const ended = started ?? earlier
    if (ended) await recordFailover(plansDir, plan.cluster, shared, endedRecord(ended, thisApply(), report))
    const change = record(planFile, plan, report)
    // The managers' anti-flapping reads the state from etcd: the same change, applied to what etcd holds now.
    if (shared && change) await shared.coord.updateState(cluster.name, change, shared.lock).catch((error: unknown) => process.stderr.write(`mha: could not record this ${plan.kind} in etcd: ${oneLine(error)}\n`))
  } finally {
    listr?.stop()
    await listr?.run
    unlock()
    await shared?.lock.release()
    await shared?.coord.stop()
  }
  if (!json && tty) {
    say(`${report.status}: ${report.message}`)
    if (report.dataLoss) say(`data loss: ${report.dataLoss}`)
    if (report.newMaster) say(describeNewMaster(report.newMaster))
    for (const note of report.notes) say(`note: ${note}`)
  }
  if (report.status === 'failed' || report.status === 'refused' || report.status === 'partial') process.stderr.write(`mha: ${report.message}\n`)
  if (report.nextAction) process.stderr.write(`mha: next: ${report.nextAction}\n`)
  // MHA's code for "master promoted, some replicas failed".
  const exitCode = report.status === 'failed' || report.status === 'refused' ? ExitCode.error : report.status === 'partial' ? ExitCode.partial : ExitCode.ok
  return {report, exitCode}
}

/** MHA_PROGRESS_INTERVAL_MS: how often a long step (a rebuild's copy) reports its progress; 10 s unless set. */
export function progressIntervalMs(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.MHA_PROGRESS_INTERVAL_MS
  if (text === undefined || text === '') return 10_000
  if (!/^\d+$/.test(text) || Number(text) < 100) throw new UserError(`MHA_PROGRESS_INTERVAL_MS=${text}: give a whole number of milliseconds, 100 or more`)
  return Number(text)
}

/** Anti-flapping and mha status see a failover applied by hand as they see watch's own. */
function record(planFile: string, plan: Plan, report: ApplyReport): StateChange | null {
  try {
    return recordManualApply(planFile, plan, report)
  } catch (error) {
    process.stderr.write(`mha: could not record this ${plan.kind} in the watch state: ${oneLine(error)}\n`)
    return manualApplyChange(planFile, plan, report)
  }
}

const thisApply = () => `mha apply (${hostname()} pid ${process.pid})`

/**
 * A failover applied by hand is recorded before its first step, as watch records its own: if this process
 * dies, a watch (on any manager, with etcd) finishes this plan instead of planning another over it. Another
 * unfinished failover is never planned over from here either: it is finished (or refused as stale) first.
 * Returns the record of this plan when an earlier run of it left one.
 */
function unfinishedRecord(earlier: FailoverRecord | null, plan: Plan, digest: string): FailoverRecord | null {
  if (!earlier || earlier.finished) return null
  if (earlier.digest === digest) return earlier
  throw new UserError(
    `cluster ${plan.cluster}: the failover ${earlier.by} started at ${earlier.startedAt} (${earlier.planName}, digest ${earlier.digest}) is unfinished, and this plan would be applied over it; let mha watch finish it, or apply that plan (it finishes, or is refused if the cluster changed), then plan again; nothing was changed`,
  )
}

/** A short-lived etcd session for one command: the cluster lock under its own lease, or one clear refusal. */
async function etcdLock(settings: EtcdSettings, cluster: string, purpose: string) {
  const coord = await (await import('../coord/coordinator.js')).commandCoordinator(settings, 'nothing was changed')
  try {
    return {coord, lock: await coord.lock(cluster, purpose)}
  } catch (error) {
    await coord.stop()
    throw error
  }
}
