import {Flags} from '@oclif/core'
import {BaseCommand} from '../../src/cli/base-command.js'
import {defaultSandboxRoot, sandboxDir, sandboxDown} from '../../src/sandbox/sandbox.js'

export default class SandboxDown extends BaseCommand<typeof SandboxDown> {
  static override summary = 'Stop what "sandbox up" started (by pid) and remove its data and cluster file.'
  static override flags = {dir: Flags.string({description: 'Root folder for sandbox data.', default: defaultSandboxRoot})}

  async run(): Promise<void> {
    const cluster = this.flags.cluster ?? 'app1'
    const state = await sandboxDown(sandboxDir(this.flags.dir, cluster))
    this.say(state ? `sandbox ${cluster} stopped and removed` : `no sandbox ${cluster} in ${this.flags.dir}; nothing to do`)
  }
}
