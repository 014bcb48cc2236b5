import {BaseCommand} from '../../../src/cli/base-command.js'
import {etcdSandboxFlags, jsonFlag} from '../../../src/cli/flags.js'
import {renderTable} from '../../../src/cli/table.js'
import {etcdStatus, requireEtcdState} from '../../../src/sandbox/etcd.js'

export default class SandboxEtcdStatus extends BaseCommand<typeof SandboxEtcdStatus> {
  static override summary = 'Show the etcd sandbox members: running, and healthy (answering with a quorum).'
  static override description =
    "Per member: its client URL, whether its etcd (the pid the sandbox recorded) is running, and whether it is healthy: its GET /health answers true, which needs a leader and a quorum. With two members of three down, the one left runs but is not healthy."
  static override examples = ['<%= config.bin %> sandbox etcd status', '<%= config.bin %> sandbox etcd status --json']
  static override flags = {...etcdSandboxFlags, ...jsonFlag('{dir, members: [{name, address, clientUrl, pid, running, healthy}]} (schemas/sandbox-etcd-status.schema.json)')}

  async run(): Promise<void> {
    const state = requireEtcdState(this.flags.dir)
    const rows = await etcdStatus(state)
    if (this.flags.json)
      return this.print({
        dir: state.dir,
        members: rows.map((r) => ({name: r.member.name, address: r.member.address, clientUrl: r.member.clientUrl, pid: r.running ? (r.member.pid ?? null) : null, running: r.running, healthy: r.healthy})),
      })
    this.say(
      renderTable(
        ['member', 'client URL', 'etcd', 'health'],
        rows.map((r) => [r.member.name, r.member.clientUrl, r.running ? `pid ${r.member.pid}` : 'stopped', r.healthy ? 'healthy' : r.running ? 'unhealthy' : '']),
      ),
    )
  }
}
