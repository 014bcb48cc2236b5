import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'
import {checkCluster} from '../../src/analysis/check.js'
import {topologyOf} from '../../src/analysis/topology.js'
import {importMhaConfig} from '../../src/config/import-mha.js'
import {parseClusterConfig} from '../../src/config/load.js'
import type {Snapshot, SqlFacts} from '../../src/inspect/types.js'
import {effectOf} from '../../src/plan/effects.js'
import {planFor} from '../../src/plan/planner.js'
import {planSwitchover} from '../../src/plan/switchover.js'
import {planProblems} from '../../src/plan/validate.js'

// Master-master pairs and replicas of replicas (MHA's dual-master and multi_tier_slave), from the recorded healthy
// snapshot (db1 writable, db2 and db3 its read_only replicas) changed into each topology.
const goldenDir = join(dirname(fileURLToPath(import.meta.url)), '../golden')
const header = {tool: 'mha test', createdAt: '2026-01-01T00:00:00.000Z', configFile: 'cluster.yaml'}

function scenario(options: {servers?: string[]; yaml?: string} = {}) {
  const dir = join(goldenDir, 'mariadb-healthy')
  let yaml = readFileSync(join(dir, 'cluster.yaml'), 'utf8') + (options.yaml ?? '')
  const snapshot = JSON.parse(readFileSync(join(dir, 'snapshot.json'), 'utf8')) as Snapshot
  snapshot.manager = {mysqlbinlog: '/usr/bin/mariadb-binlog', mysqlClient: '/usr/bin/mariadb'}
  if (options.servers) {
    // Only these servers: the others' blocks go from the cluster file and the snapshot.
    yaml = yaml.replace(/ {2}- name: (db\d)\n(?: {4}.*\n)*/g, (block, name: string) => (options.servers!.includes(name) ? block : ''))
    snapshot.servers = snapshot.servers.filter((s) => options.servers!.includes(s.name))
  }
  const cluster = parseClusterConfig(yaml, join(dir, 'cluster.yaml'), {})
  const sql = (server: string) => snapshot.servers.find((s) => s.name === server)!.sql as SqlFacts
  /** `server` replicates from `source` (a copy of db2's healthy replication, re-aimed). */
  const replicate = (server: string, source: string) => {
    const template = (snapshot.servers.find((s) => s.name === 'db2')!.sql as SqlFacts).replica!
    sql(server).replica = {...structuredClone(template), sourceHost: cluster.servers.find((s) => s.name === source)!.hostname}
  }
  const kill = (server: string) => {
    snapshot.servers.find((s) => s.name === server)!.sql = {reachable: false, kind: 'unreachable', message: `${server}: cannot connect (ECONNREFUSED)`}
    for (const s of snapshot.servers) {
      const f = s.sql.reachable ? s.sql : undefined
      if (f?.replica && f.replica.sourceHost === cluster.servers.find((c) => c.name === server)!.hostname) f.replica.ioThread = 'connecting'
    }
  }
  return {cluster, snapshot, sql, replicate, kill, plan: () => planFor(cluster, snapshot, header), switchover: (to?: string) => planSwitchover(cluster, snapshot, header, to)}
}
const codes = (report: ReturnType<typeof checkCluster>, severity: string) => report.findings.filter((f) => f.severity === severity).map((f) => f.code)

describe('a two-server master-master pair (db1 writable, db2 read_only, each replicating from the other)', () => {
  const pair = () => {
    const s = scenario({servers: ['db1', 'db2']})
    s.replicate('db1', 'db2')
    return s
  }

  it('has a master: the writable one (was "no master found": one vote each)', () => {
    const s = pair()
    const t = topologyOf(s.cluster, s.snapshot)
    expect([t.master?.name, t.standby?.name, t.replicas.map((r) => r.name), t.conflict]).toEqual(['db1', 'db2', ['db2'], undefined])
    expect(s.plan()).toMatchObject({kind: 'noop', decision: {summary: 'db1 is alive; no changes'}})
    expect(checkCluster(s.cluster, s.snapshot).master).toBe('db1')
  })

  it('the active master dies: the standby is promoted, and the plan says the dead one must be rejoined', () => {
    const s = pair()
    s.kill('db1')
    const plan = s.plan()
    expect([plan.kind, plan.decision.deadMaster, plan.decision.newMaster]).toEqual(['failover', 'db1', 'db2'])
    expect(plan.decision.notes).toContain(
      'db1 is not brought back by this plan and db2 is left without a standby: once db1 is up again, rejoin it as a replica of db2 ("mha plan --rejoin db1") or rebuild it, so that the pair is a pair again',
    )
    expect(planProblems(plan, s.cluster)).toEqual([])
  })

  it('the read_only standby dies: no failover, the live master stays; check says the same', () => {
    const s = pair()
    s.kill('db2')
    const plan = s.plan()
    expect(plan.kind).toBe('noop')
    expect(plan.decision.summary).toBe('db1 is alive; no changes')
    const standbyNote = 'db2, the standby master that db1 replicates from, does not answer: db1 is writable and stays the master, so nothing is failed over; start db2 again (it resumes replicating from db1) or rebuild it'
    expect(plan.decision.notes[0]).toBe(standbyNote)
    const report = checkCluster(s.cluster, s.snapshot)
    expect(report.master).toBe('db1')
    expect(report.findings.find((f) => f.code === 'standby_down')?.message).toBe(standbyNote)
  })

  it('a plain master and a replica left writable by mistake: the master dies, and the replica, whose binlog only follows db1, is promoted', () => {
    const s = scenario({servers: ['db1', 'db2']})
    s.sql('db2').readOnly = false
    const own = `0-${s.sql('db1').serverId}-500`
    s.sql('db2').gtid.binlogPos = own
    s.kill('db1')
    expect(topologyOf(s.cluster, s.snapshot)).toMatchObject({master: {name: 'db1'}, standbyDown: false})
    expect(s.plan()).toMatchObject({kind: 'failover', decision: {deadMaster: 'db1', newMaster: 'db2'}})
    // The same survivor that has taken writes itself (its own server id last in its binlog): a pair's active master.
    s.sql('db2').gtid.binlogPos = `0-${s.sql('db2').serverId}-501`
    expect(topologyOf(s.cluster, s.snapshot)).toMatchObject({master: {name: 'db2'}, standbyDown: true})
  })

  it('both writable: no master, switchover, failover or check verdict ok (two writers already)', () => {
    const s = pair()
    s.sql('db2').readOnly = false
    const why = 'db1 (writable) and db2 (writable) both have replicas: mha cannot tell which is the master (two writers, or a writer beside a dead master); set read_only=1 on every one but the master'
    expect(() => s.switchover('db2')).toThrow(`switchover refused: ${why}`)
    expect(() => s.plan()).toThrow(`app1: no failover is planned: ${why}`)
    const report = checkCluster(s.cluster, s.snapshot)
    expect(report.verdict).toBe('not_ok')
    expect(report.findings.find((f) => f.code === 'several_masters')?.message).toBe(`no failover or switchover can be planned: ${why}`)
  })

  it('a switch keeps the pair: db1 stops replicating from db2 under its write block, then follows db2', () => {
    const s = pair()
    const plan = s.switchover('db2')
    expect(plan.steps.find((x) => x.type === 'block_writes')!.params).toEqual({stopReplication: true})
    expect(plan.steps.find((x) => x.id === 'repoint_replica:db1')!.params).toMatchObject({source: 'db2', formerMaster: true})
    expect(plan.steps.find((x) => x.type === 'verify_replication')!.params).toEqual({master: 'db2', replicas: ['db1']})
    expect(plan.rollback!.steps.find((x) => x.type === 'unblock_writes')!.params).toEqual({startReplication: true})
    // What the reviewer is shown runs exactly that: the replication stop first, its restart in the undo.
    expect(effectOf(plan.steps.find((x) => x.type === 'block_writes')!, plan, s.cluster)[0]).toBe('db1 (127.0.0.11:3306): STOP SLAVE')
    expect(effectOf(plan.rollback!.steps.find((x) => x.type === 'unblock_writes')!, plan, s.cluster).at(-1)).toBe('db1 (127.0.0.11:3306): START SLAVE')
    expect(plan.decision.notes).toContain('db1 and db2 are a master-master pair: after the switch db2 is the writable master and db1 its read_only standby, replicating from it')
    expect(planProblems(plan, s.cluster)).toEqual([])
  })

  it('a two-server cluster whose master replicates from nobody is switched as a pair too, even without orig_master_is_new_slave', () => {
    const s = scenario({servers: ['db1', 'db2'], yaml: 'switchover:\n  orig_master_is_new_slave: false\n'})
    expect(s.cluster.switchover.origMasterIsNewSlave).toBe(false)
    const plan = s.switchover('db2')
    expect(plan.steps.find((x) => x.type === 'block_writes')!.params).toEqual({})
    expect(plan.steps.find((x) => x.id === 'repoint_replica:db1')!.params).toMatchObject({source: 'db2', formerMaster: true})
  })
})

describe('a master-master pair with replicas (2+N): db1 active, db2 standby, db3 a replica of db1', () => {
  const pair = () => {
    const s = scenario()
    s.replicate('db1', 'db2')
    return s
  }

  it('the standby dies: MHA\'s rule finds two masters (db1 writable, db2 dead); only db1 names db2, so db1 stays master', () => {
    const s = pair()
    s.kill('db2')
    expect(topologyOf(s.cluster, s.snapshot)).toMatchObject({master: {name: 'db1'}, standbyDown: true, conflict: undefined})
    expect(s.plan().kind).toBe('noop')
  })

  it('the active dies: a failover from db1, every survivor re-pointed', () => {
    const s = pair()
    s.kill('db1')
    const plan = s.plan()
    expect([plan.kind, plan.decision.deadMaster, plan.decision.newMaster]).toEqual(['failover', 'db1', 'db2'])
    expect(plan.steps.find((x) => x.id === 'repoint_replica:db3')!.params).toMatchObject({source: 'db2'})
  })

  it('switching to a replica that is not the standby: the old master follows the new one, not its old standby', () => {
    const s = pair()
    const plan = s.switchover('db3')
    expect(plan.steps.filter((x) => x.type === 'repoint_replica').map((x) => [x.server, x.params.source])).toEqual([
      ['db2', 'db3'],
      ['db1', 'db3'],
    ])
    expect(plan.decision.notes).toContain('db1 replicated from db2 (a master-master pair); after the switch both replicate from db3')
  })
})

describe('replicas of replicas (db3 replicates from db2, a replica of db1)', () => {
  const tiers = (yaml = '') => {
    const s = scenario({yaml})
    s.replicate('db3', 'db2')
    return s
  }
  const multiTier = 'failover:\n  multi_tier_slave: true\n'

  it('without multi_tier_slave: failover and switchover refused with one line, check an error with the same advice', () => {
    const s = tiers()
    expect(() => s.switchover('db2')).toThrow(
      'switchover refused: db3 replicates from db2, not from the master db1 (a multi-tier topology); set failover.multi_tier_slave: true in ' +
        `${s.cluster.file} to keep it under its intermediate master, or re-point it at db1`,
    )
    const report = checkCluster(s.cluster, s.snapshot)
    expect(report.findings.find((f) => f.code === 'wrong_source')).toMatchObject({severity: 'error', message: expect.stringContaining('a failover or switchover is refused; set failover.multi_tier_slave: true') as unknown})
    s.kill('db1')
    expect(() => s.plan()).toThrow(/^failover refused: db3 replicates from db2, not from the master db1 \(a multi-tier topology\)/)
  })

  it('with multi_tier_slave: a failover promotes db2 and names tier 3, which stays under it', () => {
    const s = tiers(multiTier)
    s.kill('db1')
    const plan = s.plan()
    expect([plan.kind, plan.decision.newMaster]).toEqual(['failover', 'db2'])
    expect(plan.decision.notes).toContain('db3 (tier 3) replicates from db2, not from db1: with multi_tier_slave it stays under db2, which becomes the master, and is neither stopped nor re-pointed')
    expect(plan.steps.filter((x) => x.server === 'db3')).toEqual([])
    expect(checkCluster(s.cluster, s.snapshot).findings.find((f) => f.code === 'lower_tier')?.message).toBe(
      'db3 (tier 3) replicates from db2, not from db1: with multi_tier_slave it stays under db2, which replicates from db1, and is neither stopped nor re-pointed',
    )
  })

  it('with multi_tier_slave: a switchover to db2 names tier 3; check is ok and says the same', () => {
    const s = tiers(multiTier)
    const plan = s.switchover('db2')
    expect(plan.decision.notes).toContain('db3 (tier 3) replicates from db2, not from db1: with multi_tier_slave it stays under db2, which replicates from db1, and is neither stopped nor re-pointed')
    expect(plan.steps.filter((x) => x.server === 'db3')).toEqual([])
    const report = checkCluster(s.cluster, s.snapshot)
    expect(codes(report, 'error')).toEqual([])
  })

  it('the intermediate master dies: no failover of the live master (was: db2 "failed over" to db3, two writers)', () => {
    const s = tiers(multiTier)
    s.kill('db2')
    const why =
      'db1 is writable and replicates from nobody, while db3 replicates from db2, which is down: db2 is either a dead master (then set read_only=1 on db1) or an intermediate master that is down (then re-point db3 at the master)'
    expect(() => s.plan()).toThrow(`app1: no failover is planned: ${why}`)
    expect(checkCluster(s.cluster, s.snapshot).findings.find((f) => f.code === 'several_masters')?.message).toBe(`no failover or switchover can be planned: ${why}`)
  })

  it('four tiers: each lower tier is numbered under its own intermediate master, and a failover names both', () => {
    // db4, a copy of db3 on 127.0.0.14, replicates from db3, which replicates from db2.
    const yaml = readFileSync(join(goldenDir, 'mariadb-healthy', 'cluster.yaml'), 'utf8') + '  - name: db4\n    hostname: 127.0.0.14\n    master_binlog_dir: /var/tmp/mha-sandbox/app1/host4/data\n' + multiTier
    const four = scenario({yaml: ''})
    const cluster = parseClusterConfig(yaml, four.cluster.file, {})
    const db4 = structuredClone(four.snapshot.servers.find((x) => x.name === 'db3')!)
    db4.name = 'db4'
    db4.address = '127.0.0.14:3306'
    four.snapshot.servers.push(db4)
    four.replicate('db3', 'db2')
    ;(db4.sql as SqlFacts).replica!.sourceHost = '127.0.0.13'
    const t = topologyOf(cluster, four.snapshot)
    expect(t.lowerTiers.map((x) => [x.server.name, x.via.name, x.tier])).toEqual([
      ['db3', 'db2', 3],
      ['db4', 'db3', 4],
    ])
    four.kill('db1')
    const plan = planFor(cluster, four.snapshot, header)
    expect(plan.decision.newMaster).toBe('db2')
    expect(plan.decision.notes.filter((n) => / \(tier \d\)/.test(n))).toEqual([
      'db3 (tier 3) replicates from db2, not from db1: with multi_tier_slave it stays under db2, which becomes the master, and is neither stopped nor re-pointed',
      'db4 (tier 4) replicates from db3, not from db1: with multi_tier_slave it stays under db3, which this plan leaves as it is, and is neither stopped nor re-pointed',
    ])
  })
})

describe('skip_reset_slave in a switchover (MHA 0.56+: the new master keeps its replication settings)', () => {
  it('detach_replication does not RESET SLAVE ALL, and apply\'s validation agrees', () => {
    const s = scenario({yaml: 'failover:\n  skip_reset_slave: true\n'})
    const plan = s.switchover('db2')
    expect(plan.steps.find((x) => x.type === 'detach_replication')!.params).toEqual({resetSlaveAll: false})
    expect(planProblems(plan, s.cluster)).toEqual([])
  })
})

describe('an MHA app1.cnf with skip_reset_slave and multi_tier_slave, imported', () => {
  it('gives a switchover that keeps the new master\'s replication settings and keeps tier 3 under its intermediate master', () => {
    const cnf = [
      '[server default]',
      'user=mha',
      'repl_user=repl',
      'repl_password=unused-in-tests',
      'ssh_user=root',
      'skip_reset_slave=1',
      'multi_tier_slave=1',
      ...[1, 2, 3].flatMap((i) => [`[server${i}]`, `hostname=127.0.0.1${i}`, `master_binlog_dir=/var/tmp/mha-sandbox/app1/host${i}/data`]),
    ].join('\n')
    const imported = importMhaConfig({appText: cnf, appFile: '/etc/masterha/app1.cnf', clusterName: 'app1'})
    // The recorded snapshot names its servers db1..db3; MHA's blocks are server1..server3. No secret file is written.
    const cluster = parseClusterConfig(imported.yaml.replace(/name: server(\d)/g, 'name: db$1').replace(/password: \{ file: .* \}/g, 'password: unused-in-tests'), '/etc/mha/app1.yaml', {})
    expect([cluster.failover.skipResetSlave, cluster.failover.multiTierSlave]).toEqual([true, true])
    const s = scenario()
    s.replicate('db3', 'db2')
    const plan = planSwitchover(cluster, s.snapshot, header, 'db2')
    expect(plan.steps.find((x) => x.type === 'detach_replication')!.params).toEqual({resetSlaveAll: false})
    expect(plan.decision.notes).toContain('db3 (tier 3) replicates from db2, not from db1: with multi_tier_slave it stays under db2, which replicates from db1, and is neither stopped nor re-pointed')
  })
})
