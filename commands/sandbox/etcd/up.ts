import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../../../src/cli/base-command.js'
import {etcdSandboxFlags} from '../../../src/cli/flags.js'
import {checkEtcdAddresses, defaultEtcdAddresses, startEtcdCluster} from '../../../src/sandbox/etcd.js'

export default class SandboxEtcdUp extends BaseCommand<typeof SandboxEtcdUp> {
  static override summary = 'Start a local etcd cluster: one member per loopback address, for the multi-manager mode.'
  static override description =
    "Member i (m1, m2, ...) runs Debian's etcd (package etcd-server) on its own loopback address, clients on :2379 and peers on :2380, with its data and log under --dir. Returns once every member is healthy and prints the endpoints to pass as --etcd. 127.0.0.1 is never used: a system etcd may live there."
  static override examples = ['<%= config.bin %> sandbox etcd up', '<%= config.bin %> sandbox etcd up --addresses 127.0.0.241,127.0.0.242,127.0.0.243 --dir /var/tmp/mha-sandbox-etcd']
  static override flags = {
    ...etcdSandboxFlags,
    addresses: Flags.string({description: 'Comma-separated loopback addresses, one member each (an odd number).', default: defaultEtcdAddresses.join(',')}),
  }

  async run(): Promise<void> {
    const started = Date.now()
    const addresses = checkEtcdAddresses(this.flags.addresses.split(',').map((a) => a.trim()))
    const state = await startEtcdCluster({dir: this.flags.dir, addresses})
    this.say(`etcd sandbox is up in ${((Date.now() - started) / 1000).toFixed(1)} s (${state.members.length} members, data in ${state.dir})`)
    for (const m of state.members) this.say(`  ${m.name}  ${m.clientUrl}  pid ${m.pid}`)
    const endpoints = state.members.map((m) => m.clientUrl).join(',')
    this.say(`endpoints: --etcd ${endpoints}`)
    this.say(`try: ETCDCTL_API=3 etcdctl --endpoints ${endpoints} endpoint status -w table`)
  }
}
