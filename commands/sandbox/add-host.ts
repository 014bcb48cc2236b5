import {Flags} from '@oclif/core'
import {BaseCommand} from '../../src/cli/base-command.js'
import {defaultSandboxRoot, requireState, sandboxAddHost} from '../../src/sandbox/sandbox.js'

export default class SandboxAddHost extends BaseCommand<typeof SandboxAddHost> {
  static override summary = 'Add a new, empty host to a running sandbox (sshd, empty datadir, my.cnf; no mariadbd) and its entry to the cluster file, ready for "mha plan --rebuild".'
  static override examples = ['<%= config.bin %> sandbox add-host', '<%= config.bin %> plan --cluster app1 --rebuild db4']
  static override flags = {
    dir: Flags.string({description: 'Root folder for sandbox data.', default: defaultSandboxRoot}),
  }

  async run(): Promise<void> {
    const cluster = this.flags.cluster ?? 'app1'
    const state = requireState(this.flags.dir, cluster)
    const host = await sandboxAddHost(state)
    this.say(`added ${host.name} (${host.ip}): sshd running, empty datadir ${host.datadir}, no mariadbd; ${state.configFile} lists it\nnext: mha plan --cluster ${cluster} --rebuild ${host.name}`)
  }
}
