import * as Flags from '@oclif/core/flags'
import {lockManager, processStartTime} from '../src/store/lock.js'
import {BaseCommand} from '../src/cli/base-command.js'
import {ExitCode} from '../src/cli/exit-codes.js'
import {clusterFlags, etcdFlags, plansDirFlag} from '../src/cli/flags.js'
import {etcdSettings} from '../src/coord/settings.js'
import {toolVersion} from '../src/plan/plan-file.js'
import {formatListenAddress, parseListenAddress} from '../src/watch/listen-address.js'
import {sayEtcdHealth} from '../src/watch/etcd-health.js'
import {processLoopLag, sayOverload} from '../src/watch/loop-lag.js'
import {selectClusters} from '../src/watch/load-clusters.js'
import {makeLogger} from '../src/watch/log.js'
import {removePresence, writePresence} from '../src/watch/presence.js'
import {UnloadedCluster, type WatchedCluster} from '../src/watch/unloaded.js'
import {ClusterWatcher} from '../src/watch/watcher.js'
import {storesFor} from '../src/store/open.js'

export default class Watch extends BaseCommand<typeof Watch> {
  static override summary = 'Monitor clusters; when a master is dead (and its replicas agree), plan, apply and archive a failover.'
  static override description =
    `Pings every master each ping_interval. After failures_before_dead failed pings it asks the replicas and, when they still show an IO thread, the other routes (each replica's host over SSH, the secondary_check hook): the master is dead only when they lost it too (access denied and too many connections mean alive). Then the same plan and apply as the commands, archived under <plans-dir>/<cluster>/, and monitoring goes on with the topology, which it follows (external switchovers included). A second automatic failover within last_failover_minute waits for "mha ack". A server that comes back writable and replicating from nobody while replicas follow the master (an old master restarted after a failover) is set read only at once. A cluster that cannot be monitored (its file does not load, logins refused, no master) is said at once and again, and shown by /status and the metrics; none at all: exit 1. Without etcd one watch per cluster and host: a second one is refused at start, naming the running one.`
  static override examples = ['<%= config.bin %> watch --config-dir clusters/', '<%= config.bin %> watch --cluster app1 --git --log-format json', '<%= config.bin %> watch --listen 127.0.0.1:9104', '<%= config.bin %> watch --config /etc/mha/app1.yaml']
  static override flags = {
    ...clusterFlags,
    ...plansDirFlag('Where plans, reports and watch state are kept.'),
    git: Flags.boolean({description: 'Commit each archived plan and report to the git repository of the plans folder.', default: false}),
    'log-format': Flags.option({options: ['text', 'json'] as const, default: 'text', description: 'Log format.'})(),
    only: Flags.string({description: 'Watch only these clusters of the folder (repeatable).', multiple: true, exclusive: ['config']}),
    'auto-rejoin': Flags.boolean({description: 'Rejoin a server taken out by a failover as a replica as soon as it answers again (never one with transactions the master lacks). Off by default.', default: false}),
    heartbeat: Flags.integer({description: 'Seconds between two "heartbeat" lines summing up every cluster (0: none).', default: 60, min: 0}),
    listen: Flags.string({description: 'Serve GET /metrics (Prometheus) and GET /status (JSON) on ADDR:PORT, for example 127.0.0.1:9104. Off by default.'}),
    ...etcdFlags,
  }

  async run(): Promise<void> {
    const names = [...(this.flags.only ?? []), ...(this.flags.cluster ? [this.flags.cluster] : [])]
    const listen = this.flags.listen === undefined ? undefined : parseListenAddress(this.flags.listen)
    const {clusters, unloadable} = selectClusters({config: this.flags.config, configDir: this.flags['config-dir'], names})
    const plansDir = this.flags['plans-dir']
    const log = makeLogger(this.flags['log-format'], (line) => this.say(line))
    const etcd = etcdSettings(this.flags)
    // Without etcd nothing elects one manager per cluster: a second watch of a cluster on this host is refused, as
    // MHA's second masterha_manager is, before it does anything (with etcd several managers are the point).
    const releaseManager = etcd ? () => undefined : holdManagerLocks([...clusters.map((c) => ({name: c.name, file: c.file})), ...unloadable])
    // etcd3 (and gRPC) load only when etcd is used. A file that does not load yet has its leader too, for when it does.
    // The lease in a thread of its own: thousands of clusters keep the main thread too busy to send keepalives on time.
    const coord = etcd ? new (await import('../src/coord/coordinator.js')).Coordinator(etcd, [...clusters.map((c) => c.name), ...unloadable.map((u) => u.name)], {leaseInOwnThread: true}) : undefined
    // With etcd every cluster's store is there, shared by the managers and mha apply.
    const options = {plansDir, git: this.flags.git, log, autoRejoin: this.flags['auto-rejoin'], ...(coord ? {coord, store: await storesFor(plansDir, coord)} : {})}
    // A file that does not load is a cluster that cannot be monitored, said as such; the others are watched.
    const watchers: WatchedCluster[] = [...clusters.map((cluster) => new ClusterWatcher(cluster, options)), ...unloadable.map((u) => new UnloadedCluster(u, options))]
    // By name, not by a search through every cluster: the coordinator asks per cluster, thousands of times a round at the start.
    const byName = new Map(watchers.map((w) => [w.name, w]))
    const loaded = (name: string) => {
      const found = byName.get(name)
      if (!found) return undefined
      const w = found instanceof ClusterWatcher ? found : found.watcher
      return w?.cluster.name === name ? w : watchers.map((x) => (x instanceof ClusterWatcher ? x : x.watcher)).find((x) => x?.cluster.name === name)
    }
    if (coord) {
      coord.log = (event, message) => log('*', event, message)
      // Leadership moves to the manager it belongs to only while nothing is under way there.
      coord.canHandOver = (name) => {
        const w = loaded(name)
        return w === undefined || (!w.failingOver && w.verdict.state === 'healthy')
      }
      coord.onFailoverRecord = (name, record) => loaded(name)?.leaderActed(record)
      // A loop that follows sleeps until its role changes: woken then, not at every ping.
      coord.onRoleChange = (name) => loaded(name)?.roleChanged()
      await coord.start()
      if (!coord.session.valid()) log('*', 'etcd down', `etcd (${etcd!.endpoints.join(', ')}) cannot be used: ${coord.session.problem}; no cluster is watched by this manager until it answers`)
    }
    const startedAt = new Date().toISOString()
    // prom-client and the HTTP server load only for --listen: every command starts faster without them.
    const etcdView = coord ? () => ({id: coord.settings.id, up: coord.session.valid(), problem: coord.session.problem}) : undefined
    const server = listen ? new (await import('../src/watch/http.js')).StatusServer({watchers, plansDir, address: listen, version: toolVersion(), startedAt, ...(etcdView ? {etcd: etcdView} : {})}) : undefined
    const bound = server ? formatListenAddress(await server.start()) : null
    writePresence(plansDir, {pid: process.pid, started: processStartTime(process.pid), startedAt, clusters: watchers.map((w) => w.name), listen: bound})
    log('*', 'watch', `watching ${watchers.map((w) => w.name).join(', ')}${bound ? `; /metrics and /status on http://${bound}` : ''}${etcd ? `; with etcd ${etcd.endpoints.join(',')} as ${etcd.id}` : ''}`, {pid: process.pid, ...(bound ? {listen: bound} : {})})
    // etcd away is said at once and again while it lasts, and its return too; this process too late to judge, too.
    const stopEtcdHealth = coord ? sayEtcdHealth(coord, log) : undefined
    const stopOverload = sayOverload(processLoopLag(), log)
    // Heard from before the first look: a SIGTERM sent as soon as a cluster is said healthy (its first look not
    // over yet) stops the watch the ordinary way, once that look is over, instead of killing it.
    const signalled = new Promise<string>((resolve) => {
      process.once('SIGTERM', () => resolve('SIGTERM'))
      process.once('SIGINT', () => resolve('SIGINT'))
    })
    for (const w of watchers) w.start()
    // Loud at start: a cluster that cannot be monitored is said at once (by its watcher); none at all is fatal.
    await Promise.all(watchers.map((w) => w.firstLook))
    if (watchers.every((w) => w.unmonitored !== null)) {
      log('*', 'error', `no cluster can be monitored: ${watchers.map((w) => `${w.name}: ${w.unmonitored}`).join('; ')}`)
      await Promise.all(watchers.map((w) => w.stop()))
      releaseManager()
      this.exit(ExitCode.error)
    }
    const heartbeat =
      this.flags.heartbeat > 0
        ? setInterval(() => {
            const by = (test: (w: WatchedCluster) => boolean) => watchers.filter(test).map((w) => w.name)
            const unmonitored = by((w) => w.unmonitored !== null)
            const troubled = by((w) => w.unmonitored === null && w.verdict.state !== 'healthy')
            const role = (w: WatchedCluster) => (w instanceof ClusterWatcher ? w : w.watcher)?.health.role
            const leading = coord ? `; leading ${by((w) => role(w) === 'leader').length}, following ${by((w) => role(w) === 'follower').length}${coord.session.valid() ? '' : '; etcd DOWN: no automatic failover'}` : ''
            log('*', 'heartbeat', `${watchers.length} cluster(s): ${watchers.length - unmonitored.length - troubled.length} healthy${troubled.length ? `; not healthy: ${troubled.join(', ')}` : ''}${unmonitored.length ? `; cannot be monitored: ${unmonitored.join(', ')}` : ''}${leading}`)
          }, this.flags.heartbeat * 1000)
        : undefined
    const signal = await signalled
    log('*', 'stop', `${signal}: finishing what is under way`)
    await Promise.all([...watchers.map((w) => w.stop()), server?.stop()])
    clearInterval(heartbeat)
    stopEtcdHealth?.()
    stopOverload()
    // The lease is revoked: the other managers take this one's clusters at once, not after the TTL.
    await coord?.stop()
    removePresence(plansDir)
    releaseManager()
    log('*', 'stopped', 'every cluster loop has stopped')
    // A socket a library still holds (an SSH session a step opened as the loops stopped, seen with 1000 clusters on
    // one overloaded sandbox) must not keep a stopped daemon alive: it exits soon after, with its logs written.
    setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref()
  }
}

/** This process becomes the one manager of every cluster it watches, or of none: the first one held elsewhere refuses it all. */
function holdManagerLocks(clusters: {name: string; file: string}[]): () => void {
  const releases: (() => void)[] = []
  const releaseAll = () => releases.splice(0).forEach((release) => release())
  try {
    for (const c of clusters) releases.push(lockManager(c.name, `mha watch of ${c.file}`))
  } catch (error) {
    releaseAll()
    throw error
  }
  return releaseAll
}
