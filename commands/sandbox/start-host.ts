import {Flags} from '@oclif/core'
import {BaseCommand} from '../../src/cli/base-command.js'
import {defaultSandboxRoot, requireState, startHost} from '../../src/sandbox/sandbox.js'

export default class SandboxStartHost extends BaseCommand<typeof SandboxStartHost> {
  static override summary = "Start one host's mariadbd again (after kill-master), from its own my.cnf and data: an old master comes back writable."
  static override examples = ['<%= config.bin %> sandbox start-host --host db1']
  static override flags = {
    dir: Flags.string({description: 'Root folder for sandbox data.', default: defaultSandboxRoot}),
    host: Flags.string({description: 'The host: db1, its address, or its number.', required: true}),
  }

  async run(): Promise<void> {
    const cluster = this.flags.cluster ?? 'app1'
    const state = requireState(this.flags.dir, cluster)
    const host = await startHost(state, this.flags.host)
    this.say(`started mariadbd of ${host.name} (${host.ip}, pid ${host.mariadbdPid}); it answers SQL`)
  }
}
