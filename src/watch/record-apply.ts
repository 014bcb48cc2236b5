import {writeFileSync} from 'node:fs'
import {basename, dirname, resolve} from 'node:path'
import type {ApplyReport} from '../apply/events.js'
import type {Plan} from '../plan/types.js'
import {readWatchState, withOutOfService, writeWatchState} from './state.js'

/**
 * The plans folder of a plan file: <plans>/<cluster>/<time>-<kind>.json (defaultPlanPath's layout) gives <plans>;
 * a plan kept anywhere else is recorded under the default `plans`.
 */
export function plansDirOf(planFile: string, cluster: string): string {
  const folder = dirname(resolve(planFile))
  return basename(folder) === cluster ? dirname(folder) : 'plans'
}

/**
 * A failover or switchover applied by hand is recorded where watch keeps its own, so anti-flapping and
 * `mha status` see it. A failover blocks the next automatic one until `mha ack`, as one by watch does;
 * a switchover is a planned change and is recorded as acknowledged. Returns the state file's folder, or null.
 */
export function recordManualApply(planFile: string, plan: Plan, report: ApplyReport, now = new Date()): string | null {
  if (plan.kind === 'rejoin') return recordRejoin(planFile, plan, report)
  if (plan.kind !== 'failover' && plan.kind !== 'switchover') return null
  if (report.status !== 'applied' && report.status !== 'partial') return null
  const plansDir = plansDirOf(planFile, plan.cluster)
  const reportFile = planFile.replace(/\.json$/, '') + '.report.json'
  writeFileSync(reportFile, JSON.stringify(report, null, 2) + '\n')
  const previous = readWatchState(plansDir, plan.cluster)
  const dead = plan.kind === 'failover' ? plan.decision.deadMaster : null
  // The state's deadMaster is the master moved away from: a switchover records its live old master there.
  writeWatchState(plansDir, plan.cluster, {
    ...previous,
    lastFailover: {at: now.toISOString(), plan: planFile, report: reportFile, status: report.status, deadMaster: plan.decision.deadMaster ?? plan.decision.oldMaster ?? null, newMaster: plan.decision.newMaster, kind: plan.kind, by: 'apply'},
    acknowledged: plan.kind === 'switchover' ? previous.acknowledged || previous.lastFailover === null : false,
    // A failed-over master leaves the active topology until it is rejoined, as after watch's own failovers.
    ...(dead
      ? {outOfService: withOutOfService(previous, {server: dead, since: now.toISOString(), reason: `failed over to ${plan.decision.newMaster} (mha apply)`, plan: planFile})}
      : {}),
  })
  return plansDir
}

/** A rejoined server is back in the active topology: it leaves outOfService once the whole plan succeeded. */
function recordRejoin(planFile: string, plan: Plan, report: ApplyReport): string | null {
  if (report.status !== 'applied' && report.status !== 'already_applied') return null
  const server = plan.steps.find((s) => s.type === 'repoint_replica')?.server
  if (!server) return null
  const plansDir = plansDirOf(planFile, plan.cluster)
  const previous = readWatchState(plansDir, plan.cluster)
  if (!(previous.outOfService ?? []).some((o) => o.server === server)) return null
  writeWatchState(plansDir, plan.cluster, {...previous, outOfService: (previous.outOfService ?? []).filter((o) => o.server !== server)})
  return plansDir
}
