import {writeFileSync} from 'node:fs'
import type {ClusterConfig} from '../config/types.js'
import type {Snapshot} from '../inspect/types.js'
import {defaultPlanPath, planDigest, serializePlan, toolVersion, validatePlan, writePlan} from '../plan/plan-file.js'
import {planFor} from '../plan/planner.js'
import {planRejoin} from '../plan/rejoin.js'
import type {rejoinInput} from '../plan/rejoin-inputs.js'
import {planRebuild, planRemove} from '../plan/service.js'
import {planSwitchover} from '../plan/switchover.js'
import type {Plan} from '../plan/types.js'
import {confirmedTargetOf} from '../plan/validate.js'
import {validator} from '../schema/validator.js'
import {outOfService} from '../store/files.js'
import {phase} from '../util/phases.js'
import {renderPlan} from './render-plan.js'

/** The flags of `mha plan` that decide the plan and where it goes. */
export interface PlanFlags {
  output?: string | undefined
  'archive-noop'?: boolean | undefined
  'plans-dir': string
  json: boolean
  'save-snapshot'?: string | undefined
  switchover?: boolean | undefined
  to?: string | undefined
  rejoin?: string | undefined
  flashback?: boolean | undefined
  rebuild?: string | undefined
  remove?: string | undefined
  'force-dead'?: string | undefined
  'skip-change-master'?: boolean | undefined
  'skip-disable-read-only'?: boolean | undefined
}

/** What planning needs first, loaded ahead (while the inspection waits on the network): the plan's validator. */
export function preparePlanning(): void {
  validator('plan.schema.json')
}

/**
 * What `mha plan` does with what it observed: decide, then write or print the plan. A module of its own, which
 * the command loads while its inspection waits on the network. Returns the plan written or printed.
 */
export async function planAndPublish(cluster: ClusterConfig, snapshot: Snapshot, flags: PlanFlags): Promise<Plan> {
  if (flags['save-snapshot']) writeFileSync(flags['save-snapshot'], JSON.stringify(snapshot, null, 2) + '\n')
  const header = {tool: toolVersion(), createdAt: new Date().toISOString(), configFile: cluster.file}
  const plan = flags.rejoin
    ? planRejoin(cluster, snapshot, header, await rejoinInputOf(cluster, snapshot, flags['plans-dir'], flags.rejoin, flags.flashback === true))
    : flags.rebuild
      ? planRebuild(cluster, snapshot, header, flags.rebuild)
      : flags.remove
        ? planRemove(cluster, snapshot, header, flags.remove)
        : flags.switchover
          ? planSwitchover(cluster, snapshot, header, flags.to)
          : planFor(cluster, snapshot, header, {
              outOfService: outOfService(flags['plans-dir'], cluster.name),
              ...(flags['force-dead'] ? {forceDead: flags['force-dead']} : {}),
              leave: {changeMaster: flags['skip-change-master'] === true, disableReadOnly: flags['skip-disable-read-only'] === true},
            })
  phase('planned')
  const output = flags.output
  const toStdout = output === '-'
  // A noop is news, not a record: archived only when asked (-o FILE, --archive-noop).
  const file = toStdout ? undefined : (output ?? (plan.kind !== 'noop' || flags['archive-noop'] ? defaultPlanPath(plan, flags['plans-dir']) : undefined))
  if (file) writePlan(plan, file)
  else validatePlan(plan, 'the plan')
  const digest = planDigest(plan)
  const where = file ? `Plan written to ${file}` : toStdout ? 'Plan written to stdout' : 'No changes: the plan is not archived (-o FILE or --archive-noop keeps it)'
  // A rebuild or removal runs only on the server named again at apply.
  const target = confirmedTargetOf(plan)
  const confirm = target === null ? '' : ` --target ${target}`
  const next = plan.kind === 'noop' ? '' : `\nDigest: ${digest}${file ? `\nReview it ("mha show ${file}" shows what apply will run), then: mha apply ${file} --expect-digest ${digest}${confirm}` : ''}`
  if (flags.json || toStdout) process.stdout.write(serializePlan(plan))
  if (!flags.json) (toStdout ? process.stderr : process.stdout).write(`${renderPlan(plan)}\n\n${where}${next}\n`)
  phase('printed')
  return plan
}

/** The rejoin's inputs (the failover's record, the former master's binlog), from a module loaded only for --rejoin: it brings the apply code it reads journals with. */
async function rejoinInputOf(...args: Parameters<typeof rejoinInput>): ReturnType<typeof rejoinInput> {
  const inputs = await import('../plan/rejoin-inputs.js')
  return await inputs.rejoinInput(...args)
}
