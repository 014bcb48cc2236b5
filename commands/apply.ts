import {existsSync} from 'node:fs'
import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {applyFromCommand} from '../src/cli/apply-run.js'
import {BaseCommand} from '../src/cli/base-command.js'
import {clusterFlags, etcdFlags, jsonFlag} from '../src/cli/flags.js'
import {etcdSettings} from '../src/coord/settings.js'
import {clusterFile, loadClusterFile} from '../src/config/load.js'
import {readPlan} from '../src/plan/plan-file.js'
import {UserError} from '../src/util/errors.js'

export default class Apply extends BaseCommand<typeof Apply> {
  static override summary = 'Execute a plan: idempotent, resumable, verified.'
  static override description =
    'Re-inspects the cluster and refuses a stale plan; takes a per-cluster lock; runs each step (check, act, verify), journaling it beside the plan, so that running apply again resumes after a crash or does nothing. When a step fails it says what was done, what was not, and what to do next.'
  static override examples = ['<%= config.bin %> apply plans/app1/20261123T213000Z-failover.json', '<%= config.bin %> apply plans/app1/20261123T214500Z-rebuild.json --target db4']
  static override args = {file: Args.string({description: 'The plan file written by mha plan.', required: true})}
  static override flags = {
    ...clusterFlags,
    ...jsonFlag('the apply report (schemas/apply-report.schema.json)'),
    'expect-digest': Flags.string({description: 'Apply only if the plan is exactly the approved one: its sha256 digest, as mha plan and mha show print it.'}),
    target: Flags.string({
      description:
        'The server a rebuild or remove plan acts on, named again to confirm it (a rebuild replaces its datadir, a removal takes it out of service): such a plan is refused without it, or when it names another server. Refused with any other plan.',
    }),
    ...etcdFlags,
  }

  async run(): Promise<void> {
    const planFile = this.args.file
    const plan = readPlan(planFile)
    const configFile = clusterFile({cluster: this.flags.cluster ?? plan.cluster, config: this.flags.config, configDir: this.flags['config-dir']})
    if (!existsSync(configFile)) throw new UserError(`${planFile}: the plan is for cluster ${plan.cluster}, but ${configFile} does not exist; give its cluster file with --config`)
    const cluster = loadClusterFile(configFile)
    if (cluster.name !== plan.cluster) throw new UserError(`${planFile}: the plan is for cluster ${plan.cluster}, but ${configFile} describes ${cluster.name}`)
    const {report, exitCode} = await applyFromCommand({planFile, plan, cluster, json: this.flags.json, etcd: etcdSettings(this.flags), say: (line) => this.say(line), ...(this.flags['expect-digest'] ? {expectDigest: this.flags['expect-digest']} : {}), ...(this.flags.target === undefined ? {} : {target: this.flags.target})})
    if (this.flags.json) this.print(report)
    if (exitCode !== 0) this.exit(exitCode)
  }
}
