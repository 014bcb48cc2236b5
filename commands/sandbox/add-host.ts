import {BaseCommand} from '../../src/cli/base-command.js'
import {sandboxFlags} from '../../src/cli/flags.js'
import {requireState, sandboxAddHost} from '../../src/sandbox/sandbox.js'

export default class SandboxAddHost extends BaseCommand<typeof SandboxAddHost> {
  static override summary = 'Add a new, empty host to a running sandbox (sshd, empty datadir, my.cnf; no mariadbd) and its entry to the cluster file, ready for "mha plan --rebuild".'
  static override description =
    'Starts one more host after the last one (the next loopback address): sshd with the sandbox key, an empty datadir and a my.cnf, but no mariadbd, and lists it in the cluster file with its rebuild commands. It is what mha plan --rebuild fills.'
  static override examples = ['<%= config.bin %> sandbox add-host', '<%= config.bin %> plan --cluster app1 --rebuild db4']
  static override flags = {
    ...sandboxFlags,
  }

  async run(): Promise<void> {
    const cluster = this.flags.cluster
    const state = requireState(this.flags.dir, cluster)
    const host = await sandboxAddHost(state)
    this.say(`added ${host.name} (${host.ip}): sshd running, empty datadir ${host.datadir}, no mariadbd; ${state.configFile} lists it\nnext: mha plan --cluster ${cluster} --rebuild ${host.name}`)
  }
}
