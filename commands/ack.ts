import {BaseCommand} from '../src/cli/base-command.js'
import {clusterFlags, etcdFlags, jsonFlag, plansDirFlag} from '../src/cli/flags.js'
import {etcdSettings} from '../src/coord/settings.js'
import {clusterFile, clusterNameOf} from '../src/config/load.js'
import {UsageError, UserError} from '../src/util/errors.js'
import {acknowledge, type WatchState} from '../src/store/cluster-state.js'
import {commandStore} from '../src/store/open.js'

export default class Ack extends BaseCommand<typeof Ack> {
  static override summary = "Acknowledge a cluster's last failover, so that watch may fail it over again automatically."
  static override description =
    "A failover (by watch or by mha apply) blocks the next automatic failover of the cluster for monitor.last_failover_minute (MHA's anti-flapping), until it is acknowledged here. Reads and writes only <plans-dir>/<cluster>/watch-state.json; no server is contacted, and the cluster file's secrets are not needed."
  static override examples = ['<%= config.bin %> ack --cluster app1', '<%= config.bin %> ack --config /etc/mha/app1.yaml --plans-dir /var/lib/mha/plans --json']
  static override flags = {...clusterFlags, ...plansDirFlag('Where watch and apply keep the cluster state.'), ...jsonFlag('{cluster, lastFailover, acknowledged, alreadyAcknowledged} (schemas/ack.schema.json)'), ...etcdFlags}

  async run(): Promise<void> {
    const name = this.flags.config ? clusterNameOf(clusterFile({config: this.flags.config})) : this.flags.cluster
    if (!name) throw new UsageError('name the cluster: mha ack --cluster NAME (or --config FILE)')
    const plansDir = this.flags['plans-dir']
    // With etcd the managers read the state there: the acknowledgement goes there (and this host's copy follows).
    const {store, close} = await commandStore(plansDir, name, etcdSettings(this.flags), 'nothing was acknowledged')
    try {
      const state = await store.readState()
      if (!state.lastFailover) throw new UserError(`cluster ${name} has no failover to acknowledge in ${store.where === 'etcd' ? `etcd or ${plansDir}` : plansDir}`)
      const already = state.acknowledged
      if (!already) {
        // The failover shown is the one acknowledged: one compare-and-swap, undoing no other update made meanwhile
        // (a fence record, a newer failover, which stays unacknowledged).
        const seen = state.lastFailover.at
        const after = await store.updateState(acknowledge(seen))
        if (after.lastFailover?.at !== seen)
          throw new UserError(
            `cluster ${name}: a newer failover (${after.lastFailover?.at ?? '?'}, ${after.lastFailover?.plan ?? '?'}) was recorded while acknowledging the one at ${seen}; the newer failover was NOT acknowledged, and automatic failover stays blocked: review it (mha status --cluster ${name}), then run mha ack again`,
          )
      }
      this.#said(name, state, already)
    } finally {
      await close()
    }
  }

  #said(name: string, state: WatchState, already: boolean): void {
    if (!state.lastFailover) return
    if (this.flags.json) return this.print({cluster: name, lastFailover: state.lastFailover, acknowledged: true, alreadyAcknowledged: already})
    if (already) this.say(`the last failover of ${name} (${state.lastFailover.at}) was already acknowledged`)
    else this.say(`acknowledged the failover of ${name} at ${state.lastFailover.at} (${state.lastFailover.plan}); automatic failover is allowed again`)
  }
}
