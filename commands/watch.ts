import {Flags} from '@oclif/core'
import {BaseCommand} from '../src/cli/base-command.js'
import {loadClusters} from '../src/watch/load-clusters.js'
import {makeLogger} from '../src/watch/log.js'
import {ClusterWatcher} from '../src/watch/watcher.js'

export default class Watch extends BaseCommand<typeof Watch> {
  static override summary = 'Monitor clusters; when a master is dead (and its replicas agree), plan, apply and archive a failover.'
  static override description =
    'Pings every master each ping_interval. After failures_before_dead failed pings it asks the replicas: the master is dead only when they lost it too (access denied and too many connections mean alive). Then the same plan and apply as the commands, archived under <plans-dir>/<cluster>/, and monitoring goes on with the new topology. A second automatic failover within last_failover_minute waits for "mha ack". A server that comes back writable and replicating from nobody while replicas follow the master (an old master restarted after a failover) is set read only at once.'
  static override examples = ['<%= config.bin %> watch --config-dir clusters/', '<%= config.bin %> watch --cluster app1 --git --log-format json']
  static override flags = {
    'plans-dir': Flags.string({description: 'Where plans, reports and watch state are kept.', default: 'plans'}),
    git: Flags.boolean({description: 'Commit each archived plan and report to the git repository of the plans folder.', default: false}),
    'log-format': Flags.option({options: ['text', 'json'] as const, default: 'text', description: 'Log format.'})(),
    only: Flags.string({description: 'Watch only these clusters of the folder (repeatable).', multiple: true}),
    heartbeat: Flags.integer({description: 'Seconds between two "heartbeat" lines summing up every cluster (0: none).', default: 60, min: 0}),
  }

  async run(): Promise<void> {
    const names = [...(this.flags.only ?? []), ...(this.flags.cluster ? [this.flags.cluster] : [])]
    const clusters = loadClusters(this.flags['config-dir'], names)
    const log = makeLogger(this.flags['log-format'], (line) => this.say(line))
    const watchers = clusters.map((cluster) => new ClusterWatcher(cluster, {plansDir: this.flags['plans-dir'], git: this.flags.git, log}))
    log('*', 'watch', `watching ${clusters.map((c) => c.name).join(', ')}`, {pid: process.pid})
    for (const w of watchers) w.start()
    // Loud at start: a cluster that cannot be monitored is said at once (by its watcher); none at all is fatal.
    await Promise.all(watchers.map((w) => w.firstLook))
    if (watchers.every((w) => w.unmonitored !== null)) {
      log('*', 'error', `no cluster can be monitored: ${watchers.map((w) => `${w.cluster.name}: ${w.unmonitored}`).join('; ')}`)
      await Promise.all(watchers.map((w) => w.stop()))
      this.exit(1)
    }
    const heartbeat =
      this.flags.heartbeat > 0
        ? setInterval(() => {
            const by = (test: (w: ClusterWatcher) => boolean) => watchers.filter(test).map((w) => w.cluster.name)
            const unmonitored = by((w) => w.unmonitored !== null)
            const troubled = by((w) => w.unmonitored === null && w.verdict.state !== 'healthy')
            log('*', 'heartbeat', `${watchers.length} cluster(s): ${watchers.length - unmonitored.length - troubled.length} healthy${troubled.length ? `; not healthy: ${troubled.join(', ')}` : ''}${unmonitored.length ? `; cannot be monitored: ${unmonitored.join(', ')}` : ''}`)
          }, this.flags.heartbeat * 1000)
        : undefined
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        log('*', 'stop', `${signal}: finishing what is under way`)
        void Promise.all(watchers.map((w) => w.stop())).then(() => resolve())
      }
      process.once('SIGTERM', () => stop('SIGTERM'))
      process.once('SIGINT', () => stop('SIGINT'))
    })
    clearInterval(heartbeat)
    log('*', 'stopped', 'every cluster loop has stopped')
  }
}
