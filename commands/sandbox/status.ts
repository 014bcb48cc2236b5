import {BaseCommand} from '../../src/cli/base-command.js'
import {jsonFlag, sandboxFlags} from '../../src/cli/flags.js'
import {renderTable} from '../../src/cli/table.js'
import {haproxyStatus, sandboxStatus, requireState} from '../../src/sandbox/sandbox.js'

export default class SandboxStatus extends BaseCommand<typeof SandboxStatus> {
  static override summary = 'Show the sandbox hosts: processes, roles and replication sources.'
  static override description =
    'Per host: its address, whether its mariadbd and sshd (the pids the sandbox recorded) are running, its role (master or replica, from SHOW SLAVE STATUS) and its replication source; then the haproxy of --haproxy, if any, and whether its pid runs.'
  static override examples = ['<%= config.bin %> sandbox status', '<%= config.bin %> sandbox status --cluster app1 --json']
  static override flags = {...sandboxFlags, ...jsonFlag('{cluster, hosts: [{name, address, mariadbd, sshd, role, source}], haproxy?} (schemas/sandbox-status.schema.json)')}

  async run(): Promise<void> {
    const cluster = this.flags.cluster
    const state = requireState(this.flags.dir, cluster)
    const rows = await sandboxStatus(state)
    const proxy = haproxyStatus(state)
    if (this.flags.json) {
      const process = (running: boolean, pid: number | undefined) => ({running, pid: running ? (pid ?? null) : null})
      return this.print({
        cluster,
        hosts: rows.map((r) => ({name: r.host.name, address: r.host.ip, mariadbd: process(r.mariadbd, r.host.mariadbdPid), sshd: process(r.sshd, r.host.sshdPid), role: r.role, source: r.source ?? null})),
        ...(proxy
          ? {haproxy: {frontend: `${proxy.proxy.address}:${proxy.proxy.frontendPort}`, runtimeApi: `${proxy.proxy.address}:${proxy.proxy.apiPort}`, socket: proxy.proxy.socket, backend: proxy.proxy.backend, process: process(proxy.running, proxy.proxy.pid)}}
          : {}),
      })
    }
    this.say(
      renderTable(
        ['host', 'address', 'mariadbd', 'sshd', 'role', 'source'],
        rows.map((r) => [r.host.name, r.host.ip, r.mariadbd ? `pid ${r.host.mariadbdPid}` : 'stopped', r.sshd ? `pid ${r.host.sshdPid}` : 'stopped', r.role, r.source ?? '']),
      ),
    )
    if (proxy)
      this.say(`haproxy  ${proxy.proxy.address}:${proxy.proxy.frontendPort} -> backend ${proxy.proxy.backend}, runtime API ${proxy.proxy.address}:${proxy.proxy.apiPort}: ${proxy.running ? `pid ${proxy.proxy.pid}` : 'stopped'}`)
  }
}
