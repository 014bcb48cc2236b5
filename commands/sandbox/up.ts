import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../../src/cli/base-command.js'
import {sandboxFlags} from '../../src/cli/flags.js'
import {defaultConfigDir} from '../../src/config/load.js'
import {UsageError} from '../../src/util/errors.js'
import {sandboxUp} from '../../src/sandbox/sandbox.js'

export default class SandboxUp extends BaseCommand<typeof SandboxUp> {
  static override summary = 'Start a real local MariaDB replication cluster (one master, N replicas) with one sshd per host.'
  static override description =
    'Host i gets its own loopback address 127.0.0.(10+i) with mariadbd on 3306 and sshd on 22, a data directory under --dir, and key-only SSH. Writes <config-dir>/<cluster>.yaml.'
  static override examples = ['<%= config.bin %> sandbox up', '<%= config.bin %> sandbox up --replicas 3 --gtid --semisync', '<%= config.bin %> sandbox up --haproxy']
  static override flags = {
    replicas: Flags.integer({description: 'Number of replicas.', default: 2, min: 1, max: 8}),
    gtid: Flags.boolean({description: 'Replicas use GTID (MASTER_USE_GTID=slave_pos) instead of binlog file/position.', default: false, allowNo: true}),
    semisync: Flags.boolean({description: 'Enable semi-synchronous replication.', default: false}),
    ...sandboxFlags,
    'config-dir': Flags.string({description: 'Where to write the cluster file <cluster>.yaml.', default: defaultConfigDir}),
    'first-address': Flags.string({description: 'Address of host 1; the others follow.', default: '127.0.0.11'}),
    haproxy: Flags.boolean({
      description: 'Also start haproxy in front of the hosts (clients on ADDRESS:3306, runtime API on ADDRESS:9999 and a unix socket in the sandbox folder, writes to db1) and write its routing section into the cluster file.',
    }),
    'haproxy-address': Flags.string({description: 'Address of the haproxy (default: the address after the last host).', dependsOn: ['haproxy']}),
  }

  async run(): Promise<void> {
    const started = Date.now()
    const firstOctet = Number(/^127\.0\.0\.(\d{1,3})$/.exec(this.flags['first-address'])?.[1] ?? NaN)
    if (!(firstOctet >= 2 && firstOctet + this.flags.replicas <= 254)) throw new UsageError(`--first-address ${this.flags['first-address']}: must be 127.0.0.N with room for ${this.flags.replicas + 1} hosts below 127.0.0.255`)
    const haproxyAddress = this.flags.haproxy ? (this.flags['haproxy-address'] ?? `127.0.0.${firstOctet + this.flags.replicas + 1}`) : undefined
    if (haproxyAddress !== undefined && !/^127\.0\.0\.(\d{1,3})$/.test(haproxyAddress)) throw new UsageError(`--haproxy-address ${haproxyAddress}: must be a loopback address 127.0.0.N`)
    const state = await sandboxUp(
      {
        cluster: this.flags.cluster,
        replicas: this.flags.replicas,
        gtid: this.flags.gtid,
        semisync: this.flags.semisync,
        dir: this.flags.dir,
        configDir: this.flags['config-dir'],
        firstOctet,
        haproxyAddress,
      },
      (line) => this.say(`  ${line}`),
    )
    this.say(`sandbox ${state.cluster} is up in ${((Date.now() - started) / 1000).toFixed(1)} s (${state.gtid ? 'GTID' : 'file/position'} replication${state.semisync ? ', semi-sync' : ''})`)
    for (const host of state.hosts) this.say(`  ${host.name}  ${host.ip}  ${host.index === 1 ? 'master' : 'replica of db1'}`)
    if (state.haproxy) this.say(`  haproxy  ${state.haproxy.address}:${state.haproxy.frontendPort} -> ${state.haproxy.backend} (db1), runtime API ${state.haproxy.address}:${state.haproxy.apiPort} and ${state.haproxy.socket}`)
    this.say(`cluster file: ${state.configFile}`)
    this.say(`next: mha check --cluster ${state.cluster}`)
  }
}
