import {checkCluster} from '../src/analysis/check.js'
import {BaseCommand} from '../src/cli/base-command.js'
import {clusterFlags, jsonFlag, plansDirFlag} from '../src/cli/flags.js'
import {renderTable} from '../src/cli/table.js'
import {inspectCluster} from '../src/inspect/inspect.js'
import {selectClusters} from '../src/watch/load-clusters.js'
import {watchViewOf} from '../src/watch/presence.js'
import {failoverBlocked, readWatchState} from '../src/watch/state.js'
import {automaticFailoverCell, automaticFailoverOf, watchLine} from '../src/watch/status-text.js'

export default class Status extends BaseCommand<typeof Status> {
  static override summary = 'Per cluster: master, replicas, health, the last failover, and whether automatic failover is blocked.'
  static override description =
    "Looks at the servers itself (SQL and SSH, changing nothing) and reads what watch and apply recorded under <plans-dir>: the last failover, whether anti-flapping blocks the next one until mha ack, servers out of service or fenced. When a mha watch runs for the cluster (its presence file, same pid and start time) it says what that watch sees, from its /status when it listens. Every cluster of --config-dir, or the one named by --cluster or --config."
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --cluster app1 --json', '<%= config.bin %> status --config /etc/mha/app1.yaml --plans-dir /var/lib/mha/plans']
  static override flags = {...clusterFlags, ...plansDirFlag('Where watch and apply keep the cluster state.'), ...jsonFlag('one object per cluster')}

  async run(): Promise<void> {
    const {clusters, unloadable} = selectClusters({config: this.flags.config, configDir: this.flags['config-dir'], names: this.flags.cluster ? [this.flags.cluster] : []})
    const plansDir = this.flags['plans-dir']
    const rows = await Promise.all([
      ...clusters.map(async (cluster) => {
        const report = checkCluster(cluster, await inspectCluster(cluster, {relayLookups: false}), {outOfService: readWatchState(this.flags['plans-dir'], cluster.name).outOfService ?? []})
        const state = readWatchState(this.flags['plans-dir'], cluster.name)
        const blocked = failoverBlocked(state, cluster.monitor.lastFailoverMinute)
        const watch = await watchViewOf(this.flags['plans-dir'], cluster.name)
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
    }
    for (const r of rows) this.say(watchLine(r.cluster, r.watch))
  }
}
