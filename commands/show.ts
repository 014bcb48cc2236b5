import {existsSync} from 'node:fs'
import * as Args from '@oclif/core/args'
import {BaseCommand} from '../src/cli/base-command.js'
import {ExitCode} from '../src/cli/exit-codes.js'
import {clusterFlags, jsonFlag} from '../src/cli/flags.js'
import {renderPlan} from '../src/cli/render-plan.js'
import {clusterFile, loadClusterFile} from '../src/config/load.js'
import {effectOf} from '../src/plan/effects.js'
import {planDigest, readPlan} from '../src/plan/plan-file.js'
import {confirmedTargetOf, planProblems} from '../src/plan/validate.js'
import {UserError} from '../src/util/errors.js'

export default class Show extends BaseCommand<typeof Show> {
  static override summary = 'Show a plan file the way apply will execute it.'
  static override description =
    'Reads a plan and its cluster file (no server is contacted) and prints, per step, what apply will run: hosts and ports from the cluster file, the statements, the hook commands; then the plan digest that `mha apply --expect-digest` checks. A plan whose parameters disagree with the cluster file is listed with each disagreement.'
  static override examples = ['<%= config.bin %> show plans/app1/20261123T213000Z-failover.json', '<%= config.bin %> show plans/app1/20261123T213000Z-failover.json --json']
  static override args = {file: Args.string({description: 'The plan file written by mha plan.', required: true})}
  static override flags = {...clusterFlags, ...jsonFlag('{file, digest, problems, steps: [{id, group, after, effect}], rollback: {ifFailedBefore, steps: [{id, after, effect}]} | null}')}

  run(): Promise<void> {
    const file = this.args.file
    const plan = readPlan(file)
    const configFile = clusterFile({cluster: this.flags.cluster ?? plan.cluster, config: this.flags.config, configDir: this.flags['config-dir']})
    if (!existsSync(configFile)) throw new UserError(`${file}: the plan is for cluster ${plan.cluster}, but ${configFile} does not exist; give its cluster file with --config`)
    const cluster = loadClusterFile(configFile)
    const problems = planProblems(plan, cluster)
    const digest = planDigest(plan)
    // A rebuild or removal runs only on the server named again at apply.
    const target = confirmedTargetOf(plan)
    const steps = plan.steps.map((step) => ({id: step.id, group: step.group ?? null, after: step.after, effect: effectOf(step, plan, cluster)}))
    const rollback = plan.rollback ? {ifFailedBefore: plan.rollback.ifFailedBefore, steps: plan.rollback.steps.map((step) => ({id: step.id, after: step.after, effect: effectOf(step, plan, cluster)}))} : null
    if (this.flags.json) this.print({file, digest, problems, steps, rollback})
    else {
      const lines = [renderPlan(plan), '', `What apply will run (hosts, statements and hooks from ${cluster.file}):`]
      steps.forEach((step, i) => lines.push(`  ${String(i + 1).padStart(2)}. ${step.id}${step.group ? ` [${step.group}]` : ''}${step.after.length ? ` (after ${step.after.join(', ')})` : ''}`, ...step.effect.map((e) => `        ${e}`)))
      if (rollback) {
        lines.push(`  Rollback, if the plan fails before ${rollback.ifFailedBefore} is done, each undo only if the step it names began:`)
        for (const step of rollback.steps) lines.push(`      ${step.id} (undoes ${step.after.join(', ')})`, ...step.effect.map((e) => `        ${e}`))
      }
      if (problems.length > 0) lines.push('', `The plan disagrees with ${cluster.file}; apply will refuse it:`, ...problems.map((p) => `  - ${p}`))
      lines.push('', `Digest: ${digest}`, `Approve exactly this plan with: mha apply ${file} --expect-digest ${digest}${target === null ? '' : ` --target ${target}`}`)
      this.say(lines.join('\n'))
    }
    if (problems.length > 0) this.exit(ExitCode.error)
    return Promise.resolve()
  }
}
