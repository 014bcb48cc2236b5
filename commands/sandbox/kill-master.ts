import {Flags} from '@oclif/core'
import {BaseCommand} from '../../src/cli/base-command.js'
import {defaultSandboxRoot, killMaster, readState, sandboxDir} from '../../src/sandbox/sandbox.js'
import {UserError} from '../../src/util/errors.js'

export default class SandboxKillMaster extends BaseCommand<typeof SandboxKillMaster> {
  static override summary = "SIGKILL the current master's mariadbd (its sshd stays up), as a crash would."
  static override flags = {dir: Flags.string({description: 'Root folder for sandbox data.', default: defaultSandboxRoot})}

  async run(): Promise<void> {
    const cluster = this.flags.cluster ?? 'app1'
    const state = readState(sandboxDir(this.flags.dir, cluster))
    if (!state) throw new UserError(`no sandbox ${cluster} in ${this.flags.dir}; run "mha sandbox up"`)
    const host = await killMaster(state)
    this.say(`killed mariadbd of ${host.name} (${host.ip}, pid ${host.mariadbdPid}) with SIGKILL`)
  }
}
