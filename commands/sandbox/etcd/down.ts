import {BaseCommand} from '../../../src/cli/base-command.js'
import {etcdSandboxFlags} from '../../../src/cli/flags.js'
import {stopEtcdCluster} from '../../../src/sandbox/etcd.js'

export default class SandboxEtcdDown extends BaseCommand<typeof SandboxEtcdDown> {
  static override summary = 'Stop what "sandbox etcd up" started (by pid) and remove its folder.'
  static override description =
    'Stops every etcd member by the pid the sandbox recorded (never by name; a system etcd is left alone) and removes the folder with its data and logs. Without an etcd sandbox in --dir it does nothing.'
  static override examples = ['<%= config.bin %> sandbox etcd down', '<%= config.bin %> sandbox etcd down --dir /var/tmp/mha-sandbox-etcd']
  static override flags = {...etcdSandboxFlags}

  async run(): Promise<void> {
    const state = await stopEtcdCluster(this.flags.dir)
    this.say(state ? `etcd sandbox in ${state.dir} stopped and removed` : `no etcd sandbox in ${this.flags.dir}; nothing to do`)
  }
}
