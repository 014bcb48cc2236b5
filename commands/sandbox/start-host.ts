import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../../src/cli/base-command.js'
import {sandboxFlags} from '../../src/cli/flags.js'
import {requireState, startHost} from '../../src/sandbox/sandbox.js'

export default class SandboxStartHost extends BaseCommand<typeof SandboxStartHost> {
  static override summary = "Start one host's mariadbd again (after kill-master), from its own my.cnf and data: an old master comes back writable."
  static override description =
    'Starts the mariadbd of one host with its own my.cnf and data and waits until it answers SQL. A master killed by kill-master comes back writable and replicating from nobody, as a restarted old master does: what watch fences and mha plan --rejoin puts back.'
  static override examples = ['<%= config.bin %> sandbox start-host --host db1']
  static override flags = {
    ...sandboxFlags,
    host: Flags.string({description: 'The host: db1, its address, or its number.', required: true}),
  }

  async run(): Promise<void> {
    const cluster = this.flags.cluster
    const state = requireState(this.flags.dir, cluster)
    const host = await startHost(state, this.flags.host)
    this.say(`started mariadbd of ${host.name} (${host.ip}, pid ${host.mariadbdPid}); it answers SQL`)
  }
}
