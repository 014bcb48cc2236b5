import type {ApplyReport} from '../apply/events.js'
import {applyPlan, type ApplyOptions} from '../apply/executor.js'
import {lockCluster} from '../apply/lock.js'
import type {Plan} from '../plan/types.js'
import {oneLine, UserError} from '../util/errors.js'
import {recordManualApply} from '../watch/record-apply.js'
import {describeNewMaster, lineReporter, listrReporter} from './apply-reporter.js'
import {ExitCode} from './exit-codes.js'

/**
 * Apply a plan from a command, as `mha apply` and `mha switchover` both do: under the cluster lock, with
 * listr2 progress on a terminal (lines elsewhere, nothing with --json), recorded for watch and status.
 * Returns the report and the exit code the command ends with.
 */
export async function applyFromCommand(options: Omit<ApplyOptions, 'listener'> & {json: boolean; say: (line: string) => void}): Promise<{report: ApplyReport; exitCode: number}> {
  const {plan, planFile, cluster, json, say} = options
  const interval = options.progressIntervalMs ?? progressIntervalMs()
  const unlock = lockCluster(cluster.name, `mha apply ${planFile}`)
  const tty = process.stdout.isTTY && !json
  const listr = tty ? await listrReporter(plan) : undefined
  const listener = json ? () => undefined : (listr?.listener ?? lineReporter(say))
  let report: ApplyReport
  try {
    report = await applyPlan({...options, progressIntervalMs: interval, listener})
  } finally {
    listr?.stop()
    await listr?.run
    unlock()
  }
  record(planFile, plan, report)
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
function record(planFile: string, plan: Plan, report: ApplyReport): void {
  try {
    recordManualApply(planFile, plan, report)
  } catch (error) {
    process.stderr.write(`mha: could not record this ${plan.kind} in the watch state: ${oneLine(error)}\n`)
  }
}
