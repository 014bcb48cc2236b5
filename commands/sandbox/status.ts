import {Flags} from '@oclif/core'
import {BaseCommand} from '../../src/cli/base-command.js'
import {renderTable} from '../../src/cli/table.js'
import {defaultSandboxRoot, sandboxStatus, requireState} from '../../src/sandbox/sandbox.js'

export default class SandboxStatus extends BaseCommand<typeof SandboxStatus> {
  static override summary = 'Show the sandbox hosts: processes, roles and replication sources.'
  static override flags = {dir: Flags.string({description: 'Root folder for sandbox data.', default: defaultSandboxRoot})}

  async run(): Promise<void> {
    const cluster = this.flags.cluster ?? 'app1'
    const state = requireState(this.flags.dir, cluster)
    const rows = await sandboxStatus(state)
    this.say(
      renderTable(
        ['host', 'address', 'mariadbd', 'sshd', 'role', 'source'],
        rows.map((r) => [r.host.name, r.host.ip, r.mariadbd ? `pid ${r.host.mariadbdPid}` : 'stopped', r.sshd ? `pid ${r.host.sshdPid}` : 'stopped', r.role, r.source ?? '']),
      ),
    )
  }
}
