import {writeFileSync} from 'node:fs'
import {basename, dirname, resolve} from 'node:path'
import type {ApplyReport} from '../apply/events.js'
import type {Plan} from '../plan/types.js'
import {afterFailover, afterRejoin, type StateChange} from './cluster-state.js'
import type {ClusterLock, ClusterStore} from './store.js'

/**
 * The plans folder of a plan file: <plans>/<cluster>/<time>-<kind>.json (defaultPlanPath's layout) gives <plans>;
 * a plan kept anywhere else is recorded under the default `plans`.
 */
export function plansDirOf(planFile: string, cluster: string): string {
  const folder = dirname(resolve(planFile))
  return basename(folder) === cluster ? dirname(folder) : 'plans'
}

/**
 * What a plan applied by hand changes in the cluster's state, where watch keeps its own, so anti-flapping and
 * `mha status` see it; null when it changes nothing (a refused or failed plan, a rebuild). A failover blocks the
 * next automatic one until `mha ack`, as one by watch does; a switchover is a planned change and is not
 * blocking; a rejoined server leaves the out-of-service list once the whole plan succeeded.
 */
export function manualApplyChange(planFile: string, plan: Plan, report: ApplyReport, now = new Date()): StateChange | null {
  if (plan.kind === 'rejoin') {
    const server = plan.steps.find((s) => s.type === 'repoint_replica')?.server
    return server && (report.status === 'applied' || report.status === 'already_applied') ? afterRejoin(server) : null
  }
  if (plan.kind !== 'failover' && plan.kind !== 'switchover') return null
  if (report.status !== 'applied' && report.status !== 'partial') return null
  const reportFile = planFile.replace(/\.json$/, '') + '.report.json'
  return afterFailover({at: now, planFile, reportFile, plan, status: report.status, by: 'apply'})
}

/**
 * Records a plan applied by hand: the report file next to the plan, and the change in the cluster's store (one
 * compare-and-swap, under `lock` when given). Returns the change, or null when the plan changes nothing.
 */
export async function recordManualApply(store: ClusterStore, planFile: string, plan: Plan, report: ApplyReport, options: {lock?: ClusterLock; now?: Date} = {}): Promise<StateChange | null> {
  const change = manualApplyChange(planFile, plan, report, options.now)
  if (!change) return null
  if (plan.kind !== 'rejoin') writeFileSync(planFile.replace(/\.json$/, '') + '.report.json', JSON.stringify(report, null, 2) + '\n')
  await store.updateState(change, options.lock)
  return change
}
