import {hookAccepted, passwordsFor, runHook, stepHookPasswords} from '../hooks/run.js'
import type {Step} from '../plan/types.js'
import {hookPath} from '../plan/validate.js'
import type {StepHandler} from './types.js'

type Hook = Extract<Step, {type: 'run_hook'}>

/** MHA's master_ip_failover_script --command=start and report_script, with MHA's arguments. */
export const runHookStep: StepHandler<Hook> = {
  check() {
    // A hook's effect is outside mha's sight: only the journal can say it ran.
    return Promise.resolve({done: false})
  },
  async act(step, ctx) {
    const plan = ctx.plan
    // MHA's orig_master: a switchover's live old master or a failover's dead one. A switchover's rollback reverses
    // the switch: the old master is the new_master of its --command=start, and the target, which goes back to
    // replicating from it, the orig_master (so orig_master_is_new_slave holds).
    const reversed = step.params.origMaster !== undefined || step.params.newMaster !== undefined
    const origName = step.params.origMaster ?? plan.decision.oldMaster ?? plan.decision.deadMaster
    const newName = step.params.newMaster ?? plan.decision.newMaster
    const orig = origName ? ctx.server(origName) : undefined
    const neu = newName ? ctx.server(newName) : undefined
    const args =
      step.params.hook === 'master_ip_online_change'
        ? {
            command: step.params.command,
            orig_master_host: orig?.hostname,
            orig_master_ip: orig?.ip,
            orig_master_port: orig?.port,
            orig_master_user: orig?.user,
            new_master_host: neu?.hostname,
            new_master_ip: neu?.ip,
            new_master_port: neu?.port,
            new_master_user: neu?.user,
            orig_master_ssh_user: orig?.sshUser,
            new_master_ssh_user: neu?.sshUser,
            orig_master_is_new_slave: reversed || ctx.cluster.switchover.origMasterIsNewSlave,
          }
        : step.params.hook === 'master_ip_failover'
        ? {
            command: step.params.command,
            ssh_user: neu?.sshUser,
            orig_master_host: orig?.hostname,
            orig_master_ip: orig?.ip,
            orig_master_port: orig?.port,
            new_master_host: neu?.hostname,
            new_master_ip: neu?.ip,
            new_master_port: neu?.port,
            new_master_user: neu?.user,
          }
        : {
            orig_master_host: orig?.hostname,
            new_master_host: neu?.hostname,
            new_slave_hosts: plan.steps
              .filter((s) => s.type === 'repoint_replica')
              .map((s) => ctx.server(s.server).hostname)
              .join(','),
            conf: ctx.cluster.file,
            subject: `mha ${plan.kind} of ${plan.cluster}`,
            body: plan.decision.summary,
          }
    // The command comes from the cluster file; apply has checked that the plan shows the same.
    const path = hookPath(ctx.cluster.hooks, step.params.hook)
    if (!path) throw new Error(`the cluster file ${ctx.cluster.file} has no ${step.params.hook} hook`)
    const result = await runHook(path, args, ctx.timeoutMs, passwordsFor(ctx.cluster, stepHookPasswords(step.params.hook), {orig, new: neu}))
    if (step.params.hook === 'report') {
      ctx.note(`report hook exited ${result.code}`)
      return {exitCode: result.code}
    }
    if (!hookAccepted(result)) throw new Error(`${step.params.hook} hook exited ${result.code}: ${result.stderr.trim().split('\n')[0] ?? ''}`)
    return {exitCode: result.code}
  },
  verify() {
    return Promise.resolve()
  },
}
