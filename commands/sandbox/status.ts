import {BaseCommand} from '../../src/cli/base-command.js'
import {jsonFlag, sandboxFlags} from '../../src/cli/flags.js'
import {renderTable} from '../../src/cli/table.js'
import {sandboxStatus, requireState} from '../../src/sandbox/sandbox.js'

export default class SandboxStatus extends BaseCommand<typeof SandboxStatus> {
  static override summary = 'Show the sandbox hosts: processes, roles and replication sources.'
  static override description =
    'Per host: its address, whether its mariadbd and sshd (the pids the sandbox recorded) are running, its role (master or replica, from SHOW SLAVE STATUS) and its replication source.'
  static override examples = ['<%= config.bin %> sandbox status', '<%= config.bin %> sandbox status --cluster app1 --json']
  static override flags = {...sandboxFlags, ...jsonFlag('{cluster, hosts: [{name, address, mariadbd, sshd, role, source}]} (schemas/sandbox-status.schema.json)')}

  async run(): Promise<void> {
    const cluster = this.flags.cluster
    const state = requireState(this.flags.dir, cluster)
    const rows = await sandboxStatus(state)
    if (this.flags.json) {
      const process = (running: boolean, pid: number | undefined) => ({running, pid: running ? (pid ?? null) : null})
      return this.print({cluster, hosts: rows.map((r) => ({name: r.host.name, address: r.host.ip, mariadbd: process(r.mariadbd, r.host.mariadbdPid), sshd: process(r.sshd, r.host.sshdPid), role: r.role, source: r.source ?? null}))})
    }
    this.say(
      renderTable(
        ['host', 'address', 'mariadbd', 'sshd', 'role', 'source'],
        rows.map((r) => [r.host.name, r.host.ip, r.mariadbd ? `pid ${r.host.mariadbdPid}` : 'stopped', r.sshd ? `pid ${r.host.sshdPid}` : 'stopped', r.role, r.source ?? '']),
      ),
    )
  }
}
