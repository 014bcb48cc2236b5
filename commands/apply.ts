import {existsSync} from 'node:fs'
import {Args, Flags} from '@oclif/core'
import {applyPlan} from '../src/apply/executor.js'
import {lockCluster} from '../src/apply/lock.js'
import {describeNewMaster, lineReporter, listrReporter} from '../src/cli/apply-reporter.js'
import {BaseCommand} from '../src/cli/base-command.js'
import {ExitCode} from '../src/cli/exit-codes.js'
import {clusterFlags, jsonFlag} from '../src/cli/flags.js'
import {clusterFile, loadClusterFile} from '../src/config/load.js'
import {readPlan} from '../src/plan/plan-file.js'
import {oneLine, UserError} from '../src/util/errors.js'
import {recordManualApply} from '../src/watch/record-apply.js'

export default class Apply extends BaseCommand<typeof Apply> {
  static override summary = 'Execute a plan: idempotent, resumable, verified.'
  static override description =
    'Re-inspects the cluster and refuses a stale plan; takes a per-cluster lock; runs each step (check, act, verify), journaling it beside the plan, so that running apply again resumes after a crash or does nothing. When a step fails it says what was done, what was not, and what to do next.'
  static override examples = ['<%= config.bin %> apply plans/app1/20261123T213000Z-failover.json']
  static override args = {file: Args.string({description: 'The plan file written by mha plan.', required: true})}
  static override flags = {
    ...clusterFlags,
    ...jsonFlag('the apply report (schemas/apply-report.schema.json)'),
    'expect-digest': Flags.string({description: 'Apply only if the plan is exactly the approved one: its sha256 digest, as mha plan and mha show print it.'}),
  }

  async run(): Promise<void> {
    const planFile = this.args.file
    const plan = readPlan(planFile)
    const configFile = this.flags.config || this.flags.cluster ? clusterFile({cluster: this.flags.cluster, config: this.flags.config, configDir: this.flags['config-dir']}) : existsSync(plan.header.configFile) ? plan.header.configFile : clusterFile({cluster: plan.cluster, configDir: this.flags['config-dir']})
    if (!existsSync(configFile)) throw new UserError(`${planFile}: the plan is for cluster ${plan.cluster}, but ${configFile} does not exist; give its cluster file with --config`)
    const cluster = loadClusterFile(configFile)
    if (cluster.name !== plan.cluster) throw new UserError(`${planFile}: the plan is for cluster ${plan.cluster}, but ${configFile} describes ${cluster.name}`)
    const unlock = lockCluster(cluster.name, `mha apply ${planFile}`)
    const tty = process.stdout.isTTY && !this.flags.json
    const listr = tty ? listrReporter(plan) : undefined
    const listener = this.flags.json ? () => undefined : (listr?.listener ?? lineReporter((line) => this.say(line)))
    let report
    try {
      report = await applyPlan({planFile, plan, cluster, listener, ...(this.flags['expect-digest'] ? {expectDigest: this.flags['expect-digest']} : {})})
    } finally {
      listr?.stop()
      await listr?.run
      unlock()
    }
    // Anti-flapping and mha status see a failover applied by hand as they see watch's own.
    try {
      recordManualApply(planFile, plan, report)
    } catch (error) {
      process.stderr.write(`mha: could not record this ${plan.kind} in the watch state: ${oneLine(error)}\n`)
    }
    if (this.flags.json) this.print(report)
    else if (tty) {
      this.say(`${report.status}: ${report.message}`)
      if (report.dataLoss) this.say(`data loss: ${report.dataLoss}`)
      if (report.newMaster) this.say(describeNewMaster(report.newMaster))
      for (const note of report.notes) this.say(`note: ${note}`)
    }
    if (report.status === 'failed' || report.status === 'refused' || report.status === 'partial') process.stderr.write(`mha: ${report.message}\n`)
    if (report.nextAction) process.stderr.write(`mha: next: ${report.nextAction}\n`)
    if (report.status === 'failed' || report.status === 'refused') this.exit(ExitCode.error)
    // MHA's code for "master promoted, some replicas failed".
    if (report.status === 'partial') this.exit(ExitCode.partial)
  }
}
