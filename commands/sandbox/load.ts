import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../../src/cli/base-command.js'
import {ExitCode} from '../../src/cli/exit-codes.js'
import {sandboxFlags} from '../../src/cli/flags.js'
import {longestGap, WriteLoad} from '../../src/sandbox/load.js'
import {requireState} from '../../src/sandbox/sandbox.js'
import {UserError} from '../../src/util/errors.js'

export default class SandboxLoad extends BaseCommand<typeof SandboxLoad> {
  static override summary = 'Write numbered rows to the sandbox for a while, following the writable master, then count lost acknowledged writes.'
  static override examples = ['<%= config.bin %> sandbox load --cluster app1 --seconds 12 --interval 20']
  static override description =
    'As a DML-only user (no READ ONLY ADMIN), one INSERT every --interval ms into mhatest.acked; when the master fails it looks for the server with read_only=0. At the end it checks every acknowledged id on the current master.'
  static override flags = {
    ...sandboxFlags,
    seconds: Flags.integer({description: 'How long to write.', default: 10, min: 1, max: 3600}),
    interval: Flags.integer({description: 'Milliseconds between inserts.', default: 20, min: 1}),
    'through-proxy': Flags.boolean({description: "Write through the sandbox's haproxy (sandbox up --haproxy) as an application does, instead of finding the writable server; also prints the longest gap between two acknowledged writes, the outage a client saw through the proxy."}),
  }

  async run(): Promise<void> {
    const cluster = this.flags.cluster
    const state = requireState(this.flags.dir, cluster)
    const proxy = state.haproxy
    if (this.flags['through-proxy'] && !proxy) throw new UserError(`sandbox ${cluster} has no haproxy: start it with "mha sandbox up --cluster ${cluster} --haproxy", or leave out --through-proxy`)
    const load = new WriteLoad(state, this.flags.interval, this.flags['through-proxy'] && proxy ? {through: {host: proxy.address, port: proxy.frontendPort}} : {})
    const master = await load.currentMaster()
    if (!master) throw new UserError(`sandbox ${cluster} has no writable server`)
    await WriteLoad.prepare(state, master)
    load.start()
    await new Promise((resolve) => setTimeout(resolve, this.flags.seconds * 1000))
    await load.stop()
    const now = await load.currentMaster()
    if (!now) throw new UserError(`after ${this.flags.seconds} s no server is writable; ${load.acked.length} writes were acknowledged`)
    const missing = await load.missingOn(now)
    this.say(`load: ${load.acked.length} writes acknowledged, ${load.errors} failed or unacknowledged; master now ${now}; acknowledged writes missing on ${now}: ${missing.length}`)
    if (this.flags['through-proxy'] && proxy) {
      this.say(`through the proxy (${proxy.address}:${proxy.frontendPort}): the longest time between two acknowledged writes was ${(longestGap(load.ackedAt) / 1000).toFixed(2)} s (writes every ${this.flags.interval} ms)`)
    }
    if (missing.length > 0) this.exit(ExitCode.attention)
  }
}
