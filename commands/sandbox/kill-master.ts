import {BaseCommand} from '../../src/cli/base-command.js'
import {sandboxFlags} from '../../src/cli/flags.js'
import {killMaster, requireState} from '../../src/sandbox/sandbox.js'

export default class SandboxKillMaster extends BaseCommand<typeof SandboxKillMaster> {
  static override summary = "SIGKILL the current master's mariadbd (its sshd stays up), as a crash would."
  static override description =
    'Finds the writable server that replicates from nobody and sends its mariadbd SIGKILL; sshd stays up, so its binlog can still be read over SSH, as after a crash of the database alone.'
  static override examples = ['<%= config.bin %> sandbox kill-master', '<%= config.bin %> sandbox kill-master --cluster app1 && mha plan --cluster app1']
  static override flags = {...sandboxFlags}

  async run(): Promise<void> {
    const cluster = this.flags.cluster
    const state = requireState(this.flags.dir, cluster)
    const host = await killMaster(state)
    this.say(`killed mariadbd of ${host.name} (${host.ip}, pid ${host.mariadbdPid}) with SIGKILL`)
  }
}
