import {checkCluster} from '../src/analysis/check.js'
import {BaseCommand} from '../src/cli/base-command.js'
import {ExitCode} from '../src/cli/exit-codes.js'
import {clusterFlags, jsonFlag, plansDirFlag} from '../src/cli/flags.js'
import {renderCheck} from '../src/cli/render-check.js'
import {inspectCluster} from '../src/inspect/inspect.js'
import {observeProxies} from '../src/routing/observe.js'
import {readWatchState} from '../src/store/files.js'

export default class Check extends BaseCommand<typeof Check> {
  static override summary = "Verify that a failover is possible right now (MHA's check_repl and check_ssh)."
  static override description = "Reads every server over SQL, every host over SSH and each proxy's writer backend through its runtime API; changes nothing."
  static override examples = ['<%= config.bin %> check --cluster app1', '<%= config.bin %> check --cluster app1 --json']
  static override flags = {
    ...clusterFlags,
    ...jsonFlag('the report (schemas/check-report.schema.json)'),
    ...plansDirFlag('Where watch and apply keep the cluster state (servers a failover took out of service).'),
  }

  async run(): Promise<void> {
    const cluster = this.loadCluster()
    const [snapshot, proxies] = await Promise.all([inspectCluster(cluster, {binlogServers: 'always'}), observeProxies(cluster)])
    const report = checkCluster(cluster, snapshot, {outOfService: readWatchState(this.flags['plans-dir'], cluster.name).outOfService ?? [], proxies})
    if (this.flags.json) this.print(report)
    else this.say(renderCheck(report))
    if (!report.failoverPossible) this.exit(ExitCode.attention)
  }
}
