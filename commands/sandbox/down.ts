import {BaseCommand} from '../../src/cli/base-command.js'
import {sandboxFlags} from '../../src/cli/flags.js'
import {sandboxDir, sandboxDown} from '../../src/sandbox/sandbox.js'

export default class SandboxDown extends BaseCommand<typeof SandboxDown> {
  static override summary = 'Stop what "sandbox up" started (by pid) and remove its data and cluster file.'
  static override description =
    'Stops mariadbd and sshd of every host of the sandbox, and its haproxy (--haproxy), by the pids it recorded (never by name), removes its data folder and the cluster file it wrote. Without a sandbox of that name it does nothing.'
  static override examples = ['<%= config.bin %> sandbox down', '<%= config.bin %> sandbox down --cluster app2 --dir /var/tmp/mha-sandbox']
  static override flags = {...sandboxFlags}

  async run(): Promise<void> {
    const cluster = this.flags.cluster
    const state = await sandboxDown(sandboxDir(this.flags.dir, cluster))
    this.say(state ? `sandbox ${cluster} stopped and removed` : `no sandbox ${cluster} in ${this.flags.dir}; nothing to do`)
  }
}
