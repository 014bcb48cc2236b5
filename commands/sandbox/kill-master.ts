import {Flags} from '@oclif/core'
import {BaseCommand} from '../../src/cli/base-command.js'
import {defaultSandboxRoot, killMaster, requireState} from '../../src/sandbox/sandbox.js'

export default class SandboxKillMaster extends BaseCommand<typeof SandboxKillMaster> {
  static override summary = "SIGKILL the current master's mariadbd (its sshd stays up), as a crash would."
  static override flags = {dir: Flags.string({description: 'Root folder for sandbox data.', default: defaultSandboxRoot})}

  async run(): Promise<void> {
    const cluster = this.flags.cluster ?? 'app1'
    const state = requireState(this.flags.dir, cluster)
    const host = await killMaster(state)
    this.say(`killed mariadbd of ${host.name} (${host.ip}, pid ${host.mariadbdPid}) with SIGKILL`)
  }
}
