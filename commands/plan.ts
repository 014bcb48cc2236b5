import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../src/cli/base-command.js'
import {ExitCode} from '../src/cli/exit-codes.js'
import {clusterFlags, plansDirFlag} from '../src/cli/flags.js'
import {openHostSessions} from '../src/inspect/host-sessions.js'
// Loaded with the command, not with the first session (as other commands do): plan's SSH handshakes start first.
import 'ssh2'
import type * as PlanRun from '../src/cli/plan-run.js'
import type {Snapshot} from '../src/inspect/types.js'
import {phase} from '../src/util/phases.js'

export default class PlanCommand extends BaseCommand<typeof PlanCommand> {
  static override summary = 'Inspect the live cluster and write a reviewable plan (failover when the master is dead).'
  static override description =
    'Reads every server over SQL and every host over SSH (changes nothing), decides, and writes a plan with changes to plans/<cluster>/<UTC time>-<kind>.json (or -o FILE). A plan without changes (noop) is printed, not archived, unless -o FILE or --archive-noop asks for it. -o - writes the plan JSON to stdout and the summary to stderr.'
  static override examples = [
    '<%= config.bin %> plan --cluster app1',
    '<%= config.bin %> plan --cluster app1 -o plans/app1-failover.json --json',
    '<%= config.bin %> plan --cluster app1 --switchover --to db2',
    '<%= config.bin %> plan --config /etc/mha/app1.yaml -o - | jq .decision',
  ]
  static override flags = {
    ...clusterFlags,
    output: Flags.string({char: 'o', description: 'Write the plan here instead of plans/<cluster>/<time>-<kind>.json (a noop plan too); "-": the plan JSON on stdout, the summary on stderr.'}),
    'archive-noop': Flags.boolean({description: 'Also archive a plan without changes under <plans-dir>/<cluster>/ (by default it is only printed).'}),
    ...plansDirFlag('Where plans are archived, and where watch and apply keep the cluster state (servers out of service).'),
    json: Flags.boolean({description: 'Print the plan JSON instead of the summary; errors too, as {"error": {code, message, kind}} (schemas/error.schema.json).', default: false}),
    'from-snapshot': Flags.string({description: 'Plan from a snapshot recorded with --save-snapshot instead of the live cluster.'}),
    'save-snapshot': Flags.string({description: 'Also write what was observed (plain data, no secrets) to this file.'}),
    // No default: --to depends on it, and oclif counts a defaulted flag as given.
    switchover: Flags.boolean({description: 'Plan an online switch of the live master (MHA masterha_master_switch --master_state=alive).'}),
    to: Flags.string({description: 'With --switchover: the new master; default: the best candidate by the failover rules.', dependsOn: ['switchover']}),
    rejoin: Flags.string({description: 'Plan putting this former master (taken out by a failover) back as a replica of the master; refused if it has transactions the master lacks, unless --flashback.', exclusive: ['switchover', 'rebuild', 'remove', 'force-dead']}),
    flashback: Flags.boolean({description: 'With --rejoin: save the former master\'s extra transactions beside the plan and rewind them (mariadb-binlog --flashback) before re-pointing it.', dependsOn: ['rejoin']}),
    rebuild: Flags.string({description: 'Plan the rebuild of this server (empty, new or diverged) from a physical copy of a healthy replica (MariaDB, mariadb-backup).', exclusive: ['switchover', 'rejoin', 'remove', 'force-dead']}),
    remove: Flags.string({description: 'Plan taking this server out of the active topology (not the master, nothing replicating from it).', exclusive: ['switchover', 'rejoin', 'rebuild', 'force-dead']}),
    'force-dead': Flags.string({description: 'Plan a failover although replicas still replicate from the unreachable master; the reason is recorded in the plan (and apply then skips the same check).', exclusive: ['switchover', 'rejoin', 'rebuild', 'remove']}),
    'skip-change-master': Flags.boolean({
      description: "Failover: recover every survivor to the new master's data but re-point none of them; you do that (MHA's --skip_change_master). The plan says so; apply exits 0 with what is left to you.",
      exclusive: ['switchover', 'rejoin', 'rebuild', 'remove'],
    }),
    'skip-disable-read-only': Flags.boolean({
      description: "Failover: leave the new master read_only; you make it writable (MHA's --skip_disable_read_only). The plan says so; apply exits 0 with what is left to you.",
      exclusive: ['switchover', 'rejoin', 'rebuild', 'remove'],
    }),
  }

  async run(): Promise<void> {
    const cluster = this.loadCluster()
    const fromSnapshot = this.flags['from-snapshot']
    // The SSH handshakes, the slowest part of the inspection, start before the SQL client and the planner are
    // loaded; the planner loads while the inspection waits on the network.
    // A switchover reads the servers over SQL only (switchoverInspection): no SSH session to open.
    const switchover = this.flags.switchover === true
    const sessions = fromSnapshot || switchover ? undefined : openHostSessions(cluster)
    let observed: [Snapshot, typeof PlanRun]
    try {
      const {inspectCluster, readSnapshot} = await import('../src/inspect/inspect.js')
      const options = switchover ? (await import('../src/plan/switchover.js')).switchoverInspection : sessions ? {sessions} : {}
      const observing = fromSnapshot ? Promise.resolve(readSnapshot(fromSnapshot)) : inspectCluster(cluster, options)
      const planning = import('../src/cli/plan-run.js').then((module) => {
        module.preparePlanning()
        return module
      })
      observed = await Promise.all([observing, planning])
    } finally {
      await sessions?.close()
    }
    phase('inspected')
    const [snapshot, {planAndPublish}] = observed
    const plan = await planAndPublish(cluster, snapshot, this.flags)
    if (plan.kind !== 'noop') this.exit(ExitCode.attention)
  }
}
