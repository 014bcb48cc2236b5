import {Flags} from '@oclif/core'
import {BaseCommand} from '../src/cli/base-command.js'
import {UserError} from '../src/util/errors.js'
import {readWatchState, writeWatchState} from '../src/watch/state.js'

export default class Ack extends BaseCommand<typeof Ack> {
  static override summary = "Acknowledge a cluster's last failover, so that watch may fail it over again automatically."
  static override flags = {'plans-dir': Flags.string({description: 'Where watch keeps its state.', default: 'plans'})}

  // eslint-disable-next-line @typescript-eslint/require-await
  async run(): Promise<void> {
    const name = this.flags.cluster
    if (!name) throw new UserError('name the cluster: mha ack --cluster NAME')
    const state = readWatchState(this.flags['plans-dir'], name)
    if (!state.lastFailover) throw new UserError(`cluster ${name} has no failover to acknowledge in ${this.flags['plans-dir']}`)
    if (state.acknowledged) this.say(`the last failover of ${name} (${state.lastFailover.at}) was already acknowledged`)
    else {
      writeWatchState(this.flags['plans-dir'], name, {...state, acknowledged: true})
      this.say(`acknowledged the failover of ${name} at ${state.lastFailover.at} (${state.lastFailover.plan}); automatic failover is allowed again`)
    }
  }
}
