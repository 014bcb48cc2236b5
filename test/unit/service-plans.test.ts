import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'
import {parseClusterConfig} from '../../src/config/load.js'
import type {Snapshot} from '../../src/inspect/types.js'
import {effectOf} from '../../src/plan/effects.js'
import {validatePlan} from '../../src/plan/plan-file.js'
import {planRebuild, planRemove} from '../../src/plan/service.js'
import type {Plan} from '../../src/plan/types.js'
import {planProblems} from '../../src/plan/validate.js'
import {parseCopyPosition} from '../../src/steps/rebuild.js'

const dir = join(dirname(fileURLToPath(import.meta.url)), '../golden/mariadb-healthy')
const header = {tool: 'test', createdAt: '2026-12-01T00:00:00.000Z', configFile: 'cluster.yaml'}
const db4 = `  - name: db4
    hostname: 127.0.0.14
    master_binlog_dir: /var/tmp/mha-sandbox/app1/host4/data
    rebuild:
      datadir: /var/tmp/mha-sandbox/app1/host4/data
      stop_command: /usr/local/bin/stop-db
      start_command: /usr/local/bin/start-db
`

function fixture(options: {gtid?: 'on' | 'off'; replicasDown?: boolean} = {}) {
  let yaml = readFileSync(join(dir, 'cluster.yaml'), 'utf8') + db4
  if (options.gtid) yaml = yaml.replace(/gtid: \w+/, `gtid: ${options.gtid}`)
  const cluster = parseClusterConfig(yaml, join(dir, 'cluster.yaml'), {})
  const snapshot = JSON.parse(readFileSync(join(dir, 'snapshot.json'), 'utf8')) as Snapshot
  const empty = {name: 'db4', address: '127.0.0.14:3306', sql: {reachable: false as const, kind: 'unreachable' as const, message: 'db4 (127.0.0.14:3306): connection refused'}, ssh: {...(snapshot.servers[2]!.ssh as object), binlogs: [], relayLogs: []}}
  snapshot.servers.push(empty as unknown as Snapshot['servers'][number])
  if (options.replicasDown)
    for (const s of snapshot.servers.slice(1, 3)) {
      const sql = s.sql as {replica: {ioThread: string} | null}
      if (sql.replica) sql.replica.ioThread = 'stopped'
    }
  return {cluster, snapshot}
}

const accepted = (plan: Plan, cluster: ReturnType<typeof fixture>['cluster']) => {
  validatePlan(JSON.parse(JSON.stringify(plan)), 'test')
  expect(planProblems(plan, cluster)).toEqual([])
  for (const step of plan.steps) expect(effectOf(step, plan, cluster).join('\n')).not.toBe('')
}

describe('mha plan --rebuild', () => {
  it('copies a healthy replica, never the master, and the plan passes the schema and planProblems', () => {
    const {cluster, snapshot} = fixture()
    const plan = planRebuild(cluster, snapshot, header, 'db4')
    accepted(plan, cluster)
    expect(plan.kind).toBe('rebuild')
    const copy = plan.steps.find((s) => s.type === 'copy_backup')!
    expect(copy.type === 'copy_backup' && copy.params).toEqual({source: 'db2', dir: '/var/tmp/mha-sandbox/app1/host4/data.mha-rebuild'})
    expect(copy.reason).toMatch(/db2 is a healthy replica of db1.*not the master/)
    expect(plan.steps.map((s) => s.type)).toEqual(['copy_backup', 'stop_server', 'install_backup', 'start_server', 'replicate_from_copy', 'verify_replication'])
    expect(plan.decision.replicationMode).toBe('gtid')
    expect(JSON.stringify(plan)).not.toContain('unused-in-golden-tests')
  })

  it('file/position mode starts from the source replica’s executed master coordinates (--slave-info)', () => {
    const {cluster, snapshot} = fixture({gtid: 'off'})
    const plan = planRebuild(cluster, snapshot, header, 'db4')
    accepted(plan, cluster)
    expect(plan.decision.replicationMode).toBe('file')
    expect(plan.decision.notes.join(' ')).toMatch(/xtrabackup_slave_info/)
  })

  it('copies the master only when no replica is healthy, and says so', () => {
    const {cluster, snapshot} = fixture({replicasDown: true})
    const plan = planRebuild(cluster, snapshot, header, 'db4')
    accepted(plan, cluster)
    const copy = plan.steps.find((s) => s.type === 'copy_backup')!
    expect(copy.type === 'copy_backup' && copy.params.source).toBe('db1')
    expect(plan.decision.notes[0]).toMatch(/the master itself is copied/)
  })

  it('refuses the master, a healthy replica, MySQL, a server without rebuild settings, one line each', () => {
    const {cluster, snapshot} = fixture()
    expect(() => planRebuild(cluster, snapshot, header, 'db1')).toThrow(/^db1 is the master; a master is not rebuilt/)
    expect(() => planRebuild(cluster, snapshot, header, 'db3')).toThrow(/db3 replicates from db1 with both threads running/)
    expect(() => planRebuild(cluster, snapshot, header, 'db9')).toThrow(/--rebuild db9: no such server/)
    const mysql = structuredClone(snapshot)
    ;(mysql.servers[0]!.sql as {version: {flavor: string}}).version.flavor = 'mysql'
    expect(() => planRebuild(cluster, mysql, header, 'db4')).toThrow('db4: rebuild needs mariadb-backup; for MySQL use xtrabackup or the CLONE plugin: not supported by mha yet')
    const bare = {...cluster, servers: cluster.servers.map((s) => (s.name === 'db4' ? {...s, rebuild: {}} : s))}
    expect(() => planRebuild(bare, snapshot, header, 'db4')).toThrow(/db4: .*rebuild\.datadir is not set/)
  })

  it('a plan whose commands or folders differ from the cluster file is refused', () => {
    const {cluster, snapshot} = fixture()
    const plan = planRebuild(cluster, snapshot, header, 'db4')
    const edited = structuredClone(plan)
    const start = edited.steps.find((s) => s.type === 'start_server')!
    if (start.type === 'start_server') start.params.command = 'rm -rf /'
    const install = edited.steps.find((s) => s.type === 'install_backup')!
    if (install.type === 'install_backup') install.params.datadir = '/var/lib/mysql'
    const problems = planProblems(edited, cluster)
    expect(problems.join('\n')).toMatch(/start_server:db4 params\.command: the plan says "rm -rf \/"/)
    expect(problems.join('\n')).toMatch(/install_backup:db4 params\.datadir: the plan says \/var\/lib\/mysql/)
  })

  it('reads the position the copy records', () => {
    expect(parseCopyPosition('db2', 'mysql-bin.000003\t1234\t0-1-57\n', "CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000007', MASTER_LOG_POS=998;\n")).toEqual({
      source: 'db2',
      binlog: {file: 'mysql-bin.000003', pos: 1234, gtid: '0-1-57'},
      master: {file: 'mysql-bin.000007', pos: 998},
      gtidSlavePos: null,
    })
    expect(parseCopyPosition('db2', 'mysql-bin.000003\t1234\t0-1-57', "SET GLOBAL gtid_slave_pos = '0-1-57';\nCHANGE MASTER TO master_use_gtid = slave_pos\n").gtidSlavePos).toBe('0-1-57')
  })
})

describe('mha plan --remove', () => {
  it('detaches a replica and lists it out of service; the plan passes planProblems and names the block to delete', () => {
    const {cluster, snapshot} = fixture()
    const plan = planRemove(cluster, snapshot, header, 'db3')
    accepted(plan, cluster)
    expect(plan.steps.map((s) => s.id)).toEqual(['detach_replication:db3', 'mark_out_of_service:db3'])
    expect(plan.decision.notes.join(' ')).toMatch(/delete db3's block .* from servers in/)
  })

  it('refuses the master with one line', () => {
    const {cluster, snapshot} = fixture()
    expect(() => planRemove(cluster, snapshot, header, 'db1')).toThrow(/^db1 is the master and cannot be removed; switch over first/)
  })

  it('refuses a server another replicates from, with one line naming it; its replica itself can go', () => {
    const {cluster, snapshot} = fixture()
    // db3 replicates from db2 (an intermediate master), not from db1.
    const db3 = snapshot.servers.find((s) => s.name === 'db3')!.sql as {replica: {sourceHost: string}}
    db3.replica.sourceHost = '127.0.0.12'
    expect(() => planRemove(cluster, snapshot, header, 'db2')).toThrow(/^db2 cannot be removed: db3 replicates from it; re-point it first$/)
    const leaf = planRemove(cluster, snapshot, header, 'db3')
    accepted(leaf, cluster)
    expect(leaf.steps.map((s) => s.id)).toEqual(['detach_replication:db3', 'mark_out_of_service:db3'])
  })

  it('a remove plan that acts on the master is refused at apply', () => {
    const {cluster, snapshot} = fixture()
    const plan = structuredClone(planRemove(cluster, snapshot, header, 'db3'))
    for (const s of plan.steps) s.server = 'db1'
    expect(planProblems(plan, cluster).join('\n')).toMatch(/never acts on the master db1/)
  })
})
