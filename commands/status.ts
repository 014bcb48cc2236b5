import {checkCluster} from '../src/analysis/check.js'
import {BaseCommand} from '../src/cli/base-command.js'
import {clusterFlags, etcdFlags, jsonFlag, plansDirFlag} from '../src/cli/flags.js'
import {etcdSettings} from '../src/coord/settings.js'
import {recordedKind, type FailoverRecord, type WatchState} from '../src/store/cluster-state.js'
import {renderTable} from '../src/cli/table.js'
import {inspectCluster} from '../src/inspect/inspect.js'
import {oneLine} from '../src/util/errors.js'
import {selectClusters} from '../src/watch/load-clusters.js'
import {watchViewOf} from '../src/watch/presence.js'
import {failoverBlocked} from '../src/store/cluster-state.js'
import {readFailoverRecord, readWatchState} from '../src/store/files.js'
import {automaticFailoverCell, automaticFailoverOf, watchLine} from '../src/watch/status-text.js'

export default class Status extends BaseCommand<typeof Status> {
  static override summary = 'Per cluster: master, replicas, health, the last failover, and whether automatic failover is blocked.'
  static override description =
    "Looks at the servers itself (SQL and SSH, changing nothing) and reads what watch and apply recorded under <plans-dir>: the last failover, whether anti-flapping blocks the next one until mha ack, servers out of service or fenced. When a mha watch runs for the cluster (its presence file, same pid and start time) it says what that watch sees, from its /status when it listens. Every cluster of --config-dir, or the one named by --cluster or --config."
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --cluster app1 --json', '<%= config.bin %> status --config /etc/mha/app1.yaml --plans-dir /var/lib/mha/plans']
  static override flags = {...clusterFlags, ...plansDirFlag('Where watch and apply keep the cluster state.'), ...jsonFlag('one object per cluster'), ...etcdFlags}

  async run(): Promise<void> {
    const {clusters, unloadable} = selectClusters({config: this.flags.config, configDir: this.flags['config-dir'], names: this.flags.cluster ? [this.flags.cluster] : []})
    const plansDir = this.flags['plans-dir']
    const shared = await this.#fromEtcd(clusters.map((c) => c.name))
    const rows = await Promise.all([
      ...clusters.map(async (cluster) => {
        // With etcd, the shared state wins over this host's copy: another manager may have failed the cluster over.
        const state = shared?.states.get(cluster.name) ?? readWatchState(plansDir, cluster.name)
        const report = checkCluster(cluster, await inspectCluster(cluster, {relayLookups: false}), {outOfService: state.outOfService ?? []})
        const blocked = failoverBlocked(state, cluster.monitor.lastFailoverMinute)
        const watch = await watchViewOf(this.flags['plans-dir'], cluster.name)
        const record = shared ? (shared.records.get(cluster.name) ?? null) : readFailoverRecord(plansDir, cluster.name)
        return {
          cluster: cluster.name,
          master: report.master,
          replicas: report.servers.filter((s) => s.role === 'replica').map((s) => s.name),
          healthy: report.failoverPossible,
          problems: report.findings.filter((f) => f.severity === 'error').map((f) => f.message),
          outOfService: report.findings.filter((f) => f.code === 'out_of_service').map((f) => f.message),
          lastFailover: state.lastFailover,
          failoverBlocked: blocked,
          automaticFailover: automaticFailoverOf(watch, blocked !== null),
          watch,
          fenced: state.fenced ?? [],
          unfinished: unfinishedOf(record),
          ...(shared ? {leader: shared.leaders.get(cluster.name) ?? null, etcd: shared.problem ?? 'up'} : {}),
        }
      }),
      // A file that does not load is a cluster nobody can look at: said as its one problem, beside the others.
      ...unloadable.map(async (u) => {
        const watch = await watchViewOf(plansDir, u.name)
        return {
          cluster: u.name,
          master: null,
          replicas: [],
          healthy: false,
          problems: [`cannot load ${u.file}: ${u.problem}`],
          outOfService: [],
          lastFailover: readWatchState(plansDir, u.name).lastFailover,
          failoverBlocked: null,
          automaticFailover: automaticFailoverOf(watch, false),
          watch,
          fenced: [],
          unfinished: unfinishedOf(readFailoverRecord(plansDir, u.name)),
        }
      }),
    ])
    if (this.flags.json) return this.print(rows)
    this.say(
      renderTable(
        ['cluster', 'master', 'replicas', 'health', 'last failover', 'automatic failover'],
        rows.map((r) => [r.cluster, r.master ?? '-', r.replicas.join(',') || '-', r.healthy ? 'ok' : `${r.problems.length} problem(s)`, r.lastFailover ? `${r.lastFailover.at} ${r.lastFailover.deadMaster}->${r.lastFailover.newMaster} ${r.lastFailover.status}` : '-', automaticFailoverCell(r.watch, r.failoverBlocked !== null)]),
      ),
    )
    for (const r of rows) {
      for (const o of r.outOfService) this.say(`${r.cluster}: ${o}`)
      for (const p of r.problems) this.say(`${r.cluster}: ${p}`)
      for (const f of r.fenced) this.say(`${r.cluster}: ${f.server}: returned writable while ${f.master} is the master, set read_only by watch at ${f.at}`)
      const u = r.unfinished
      if (u) this.say(`${r.cluster}: UNFINISHED: the ${u.kind} ${u.by} started at ${u.startedAt} (${u.plan}) has not finished; a running mha watch finishes it (a switchover: or rolls it back) once its lock is free, or run "mha apply" of that plan; no other failover starts meanwhile`)
    }
    for (const r of rows) this.say(watchLine(r.cluster, r.watch))
    if (shared) {
      this.say(`etcd: ${shared.problem ?? 'up'}; managers: ${shared.managers.join(', ') || 'none'}`)
      for (const r of rows) this.say(`${r.cluster}: led by ${('leader' in r ? r.leader : null) ?? 'no manager (no automatic failover)'}`)
    }
  }

  /** Leaders, managers and shared state from etcd; an etcd that cannot answer is said, not fatal. */
  async #fromEtcd(names: string[]): Promise<{leaders: Map<string, string>; managers: string[]; states: Map<string, WatchState>; records: Map<string, FailoverRecord>; problem: string | null} | undefined> {
    const settings = etcdSettings(this.flags)
    if (!settings) return undefined
    const {Coordinator} = await import('../src/coord/coordinator.js')
    const coord = new Coordinator(settings)
    await coord.start()
    try {
      const leaders = await coord.leadersNow()
      const managers = (await coord.managersNow()).filter((m) => m.id !== settings.id).map((m) => `${m.id} (${m.clusters} cluster(s))`)
      const states = new Map<string, WatchState>()
      const records = new Map<string, FailoverRecord>()
      const {EtcdStore} = await import('../src/store/etcd.js')
      await Promise.all(
        names.map(async (name) => {
          const store = new EtcdStore(coord, this.flags['plans-dir'], name)
          const [state, record] = await Promise.all([store.sharedState(), store.failoverRecord()])
          if (state) states.set(name, state)
          if (record) records.set(name, record)
        }),
      )
      return {leaders, managers, states, records, problem: null}
    } catch (error) {
      return {leaders: new Map(), managers: [], states: new Map(), records: new Map(), problem: `DOWN (${oneLine(error)})`}
    } finally {
      await coord.stop()
    }
  }
}

/** A failover or switchover recorded and not finished (its apply killed or fenced): what status says of it, or null. */
function unfinishedOf(record: FailoverRecord | null): {kind: 'failover' | 'switchover'; by: string; startedAt: string; plan: string} | null {
  return record && !record.finished ? {kind: recordedKind(record), by: record.by, startedAt: record.startedAt, plan: record.planName} : null
}
