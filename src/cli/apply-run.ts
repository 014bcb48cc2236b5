import {hostname} from 'node:os'
import type {ApplyReport} from '../apply/events.js'
import {applyPlan, underLock, type ApplyOptions} from '../apply/executor.js'
import type {EtcdSettings} from '../coord/settings.js'
import {planDigest} from '../plan/plan-file.js'
import {endedRecord, recordedKind, startedRecord, type FailoverRecord} from '../store/cluster-state.js'
import {plansDirOf, recordManualApply} from '../store/manual-apply.js'
import {commandStore} from '../store/open.js'
import type {ClusterLock, ClusterStore} from '../store/store.js'
import type {Plan} from '../plan/types.js'
import {oneLine, UserError} from '../util/errors.js'
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
  const plansDir = plansDirOf(planFile, plan.cluster)
  // With etcd the lock is the one every manager takes: a watcher on another host and this apply exclude each other.
  const {store, lock, close} = await lockedStore(plansDir, cluster.name, options.etcd, `mha apply ${planFile}`)
  const tty = process.stdout.isTTY && !json
  const listr = tty ? await listrReporter(plan) : undefined
  const listener = json ? () => undefined : (listr?.listener ?? lineReporter(say))
  let report: ApplyReport
  try {
    const digest = planDigest(plan)
    // A failover or a switchover stopped part-way (killed, or fenced with etcd) leaves the cluster without a writable
    // master until someone finishes it: recorded, so that the manager that takes the lock next does.
    const recorded = plan.kind === 'failover' || plan.kind === 'switchover'
    const earlier = recorded ? unfinishedRecord(await store.failoverRecord(), plan, digest) : null
    let started: FailoverRecord | undefined
    // A rejoin puts back a server a failover took out: the state's out-of-service list and last failover say which
    // (with etcd, the state the managers share).
    const known = await store.readState()
    report = await applyPlan({
      ...options,
      roleState: {outOfService: (known.outOfService ?? []).map((o) => o.server), lastDeadMaster: known.lastFailover?.deadMaster ?? null},
      progressIntervalMs: interval,
      listener,
      ...(recorded
        ? {
            beforeFirstEffect: async () => {
              started = earlier ?? startedRecord(plan, planFile, thisApply())
              if (!earlier) await store.writeFailoverRecord(lock, started)
            },
          }
        : {}),
      // Journal and work files in the store (etcd): a manager that takes the lock after this process died finishes the plan.
      ...underLock(store, lock, plan, planFile),
    })
    // Ended whatever the outcome, as watch ends its own: a plan refused now (the cluster changed) is over too.
    const ended = started ?? earlier
    if (ended) await store.writeFailoverRecord(lock, endedRecord(ended, thisApply(), report))
    // Anti-flapping and mha status see a failover applied by hand as they see watch's own.
    await recordManualApply(store, planFile, plan, report, {lock}).catch((error: unknown) => process.stderr.write(`mha: could not record this ${plan.kind} in ${store.where}: ${oneLine(error)}\n`))
  } finally {
    listr?.stop()
    await listr?.run
    await lock.release()
    await close()
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

const thisApply = () => `mha apply (${hostname()} pid ${process.pid})`

/**
 * A failover or switchover applied by hand is recorded before its first step, as watch records its own: if this
 * process dies, a watch (on any manager, with etcd) finishes this plan (or rolls the switchover back) instead of
 * planning another over it. Another unfinished one is never applied over from here either: it is finished (or
 * refused as stale) first. Returns the record of this plan when an earlier run of it left one.
 */
function unfinishedRecord(earlier: FailoverRecord | null, plan: Plan, digest: string): FailoverRecord | null {
  if (!earlier || earlier.finished) return null
  if (earlier.digest === digest) return earlier
  throw new UserError(
    `cluster ${plan.cluster}: the ${recordedKind(earlier)} ${earlier.by} started at ${earlier.startedAt} (${earlier.planName}, digest ${earlier.digest}) is unfinished, and this plan would be applied over it; let mha watch finish it, or apply that plan (it finishes, or is refused if the cluster changed), then plan again; nothing was changed`,
  )
}

/** The cluster's store and its lock (in etcd under a short-lived session of this command's, when configured), or one clear refusal. */
async function lockedStore(plansDir: string, cluster: string, etcd: EtcdSettings | undefined, purpose: string): Promise<{store: ClusterStore; lock: ClusterLock; close: () => Promise<void>}> {
  const {store, close} = await commandStore(plansDir, cluster, etcd, 'nothing was changed')
  try {
    return {store, lock: await store.lock(purpose), close}
  } catch (error) {
    await close()
    throw error
  }
}
