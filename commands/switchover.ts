import {createInterface} from 'node:readline/promises'
import * as Flags from '@oclif/core/flags'
import {applyFromCommand} from '../src/cli/apply-run.js'
import {BaseCommand} from '../src/cli/base-command.js'
import {clusterFlags, etcdFlags, plansDirFlag} from '../src/cli/flags.js'
import {etcdSettings} from '../src/coord/settings.js'
import {renderPlan} from '../src/cli/render-plan.js'
import {inspectCluster} from '../src/inspect/inspect.js'
import type {ServerConnection} from '../src/inspect/mysql.js'
import {defaultPlanPath, planDigest, toolVersion, writePlan} from '../src/plan/plan-file.js'
import {planSwitchover, switchoverInspection} from '../src/plan/switchover.js'
import {UsageError, UserError} from '../src/util/errors.js'

export default class Switchover extends BaseCommand<typeof Switchover> {
  static override summary = 'Plan an online switchover, show it, and apply it in the same process (MHA masterha_master_switch --master_state=alive).'
  static override description =
    'The same plan as "mha plan --switchover" and the same apply as "mha apply", without a second process inspecting the cluster again: the plan is shown and archived under plans/<cluster>/ first, then applied after a yes on the terminal, or at once with --auto-approve (then the inspection the plan was made from is the one apply checks it against).'
  static override examples = ['<%= config.bin %> switchover --cluster app1 --to db2', '<%= config.bin %> switchover --cluster app1 --to db2 --auto-approve']
  static override flags = {
    ...clusterFlags,
    ...plansDirFlag('Where the plan is archived (with its journal and report), and where watch and apply keep the cluster state.'),
    to: Flags.string({description: 'The new master; default: the best candidate by the failover rules.'}),
    'auto-approve': Flags.boolean({description: 'Apply without asking (required without a terminal).'}),
    // No default: oclif counts a defaulted flag as given, and this one depends on --auto-approve.
    json: Flags.boolean({description: 'Print the apply report as JSON on stdout (requires --auto-approve); errors too, as {"error": {code, message, kind}}.', dependsOn: ['auto-approve']}),
    ...etcdFlags,
  }

  async run(): Promise<void> {
    const approved = this.flags['auto-approve'] === true
    if (!approved && !process.stdin.isTTY) throw new UsageError('mha switchover asks before it changes anything, and there is no terminal to ask on: add --auto-approve, or use "mha plan --switchover" and "mha apply"')
    const cluster = this.loadCluster()
    // Approved at once, the apply runs over the connections the inspection opened a moment ago (its statements need
    // no new handshake); asked on a terminal, it opens its own, since the answer may take a while.
    const kept = approved ? new Map<string, ServerConnection>() : undefined
    try {
      const snapshot = await inspectCluster(cluster, {...switchoverInspection, ...(kept ? {keepConnections: kept} : {})})
      const plan = planSwitchover(cluster, snapshot, {tool: toolVersion(), createdAt: new Date().toISOString(), configFile: cluster.file}, this.flags.to)
      const planFile = defaultPlanPath(plan, this.flags['plans-dir'])
      writePlan(plan, planFile)
      const show = (text: string) => (this.flags.json ? process.stderr : process.stdout).write(text + '\n')
      show(`${renderPlan(plan)}\n\nPlan written to ${planFile}\nDigest: ${planDigest(plan)}`)
      if (!approved && !(await confirm(`Apply this switchover now? [y/N] `))) throw new UserError(`not applied; the plan stays in ${planFile} ("mha apply ${planFile}" applies it while it is not stale)`)
      // Approved at once: the inspection is a moment old, so apply checks the plan against it instead of a second one.
      const {report, exitCode} = await applyFromCommand({
        planFile,
        plan,
        cluster,
        json: this.flags.json === true,
        etcd: etcdSettings(this.flags),
        say: (line) => this.say(line),
        ...(approved ? {snapshot} : {}),
        ...(kept ? {connections: kept} : {}),
      })
      if (this.flags.json) this.print(report)
      if (exitCode !== 0) this.exit(exitCode)
    } finally {
      // Closed by the apply when it ran; here when something refused the switchover before.
      await Promise.all([...(kept?.values() ?? [])].map((c) => c.close()))
    }
  }
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({input: process.stdin, output: process.stdout})
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim())
  } finally {
    rl.close()
  }
}
