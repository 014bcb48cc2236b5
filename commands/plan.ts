import {writeFileSync} from 'node:fs'
import {Flags} from '@oclif/core'
import {BaseCommand} from '../src/cli/base-command.js'
import {renderPlan} from '../src/cli/render-plan.js'
import {inspectCluster, readSnapshot} from '../src/inspect/inspect.js'
import {defaultPlanPath, planDigest, serializePlan, toolVersion, writePlan} from '../src/plan/plan-file.js'
import {planFor} from '../src/plan/planner.js'
import {planRejoin} from '../src/plan/rejoin.js'
import {rejoinInput} from '../src/plan/rejoin-inputs.js'
import {planRebuild, planRemove} from '../src/plan/service.js'
import {planSwitchover} from '../src/plan/switchover.js'
import {outOfService} from '../src/watch/state.js'

export default class PlanCommand extends BaseCommand<typeof PlanCommand> {
  static override summary = 'Inspect the live cluster and write a reviewable plan (failover when the master is dead).'
  static override description =
    'Reads every server over SQL and every host over SSH (changes nothing), decides, and writes the plan to plans/<cluster>/<UTC time>-<kind>.json. Exit 0: no changes; 2: a plan with changes; 1: error.'
  static override examples = ['<%= config.bin %> plan --cluster app1', '<%= config.bin %> plan --cluster app1 -o plans/app1-failover.json --json']
  static override flags = {
    output: Flags.string({char: 'o', description: 'Write the plan here instead of plans/<cluster>/<time>-<kind>.json.'}),
    'plans-dir': Flags.string({description: 'Folder for plans.', default: 'plans'}),
    json: Flags.boolean({description: 'Print the plan JSON instead of the summary.', default: false}),
    'from-snapshot': Flags.string({description: 'Plan from a snapshot recorded with --save-snapshot instead of the live cluster.'}),
    'save-snapshot': Flags.string({description: 'Also write what was observed (plain data, no secrets) to this file.'}),
    switchover: Flags.boolean({description: 'Plan an online switch of the live master (MHA masterha_master_switch --master_state=alive).', default: false}),
    to: Flags.string({description: 'With --switchover: the new master; default: the best candidate by the failover rules.', dependsOn: ['switchover']}),
    rejoin: Flags.string({description: 'Plan putting this former master (taken out by a failover) back as a replica of the master; refused if it has transactions the master lacks, unless --flashback.', exclusive: ['switchover', 'force-dead']}),
    flashback: Flags.boolean({description: 'With --rejoin: save the former master\'s extra transactions beside the plan and rewind them (mariadb-binlog --flashback) before re-pointing it.', dependsOn: ['rejoin']}),
    rebuild: Flags.string({description: 'Plan the rebuild of this server (empty, new or diverged) from a physical copy of a healthy replica (MariaDB, mariadb-backup).', exclusive: ['switchover', 'remove', 'force-dead']}),
    remove: Flags.string({description: 'Plan taking this server out of the active topology (not the master, nothing replicating from it).', exclusive: ['switchover', 'rebuild', 'force-dead']}),
    'force-dead': Flags.string({description: 'Plan a failover although replicas still replicate from the unreachable master; the reason is recorded in the plan (and apply then skips the same check).'}),
  }

  async run(): Promise<void> {
    const cluster = this.loadCluster()
    const snapshot = this.flags['from-snapshot'] ? readSnapshot(this.flags['from-snapshot']) : await inspectCluster(cluster)
    if (this.flags['save-snapshot']) writeFileSync(this.flags['save-snapshot'], JSON.stringify(snapshot, null, 2) + '\n')
    const header = {tool: toolVersion(), createdAt: new Date().toISOString(), configFile: cluster.file}
    const plan = this.flags.rejoin
      ? planRejoin(cluster, snapshot, header, await rejoinInput(cluster, snapshot, this.flags['plans-dir'], this.flags.rejoin, this.flags.flashback === true))
      : this.flags.rebuild
        ? planRebuild(cluster, snapshot, header, this.flags.rebuild)
        : this.flags.remove
          ? planRemove(cluster, snapshot, header, this.flags.remove)
          : this.flags.switchover
            ? planSwitchover(cluster, snapshot, header, this.flags.to)
            : planFor(cluster, snapshot, header, {outOfService: outOfService(this.flags['plans-dir'], cluster.name), ...(this.flags['force-dead'] ? {forceDead: this.flags['force-dead']} : {})})
    const file = this.flags.output ?? defaultPlanPath(plan, this.flags['plans-dir'])
    writePlan(plan, file)
    if (this.flags.json) process.stdout.write(serializePlan(plan))
    else this.say(`${renderPlan(plan)}\n\nPlan written to ${file}${plan.kind === 'noop' ? '' : `\nDigest: ${planDigest(plan)}\nReview it ("mha show ${file}" shows what apply will run), then: mha apply ${file} --expect-digest ${planDigest(plan)}`}`)
    if (plan.kind !== 'noop') this.exit(2)
  }
}
