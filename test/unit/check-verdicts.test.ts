import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'
import {checkCluster} from '../../src/analysis/check.js'
import {renderCheck} from '../../src/cli/render-check.js'
import {parseClusterConfig} from '../../src/config/load.js'
import type {Snapshot, SqlFacts} from '../../src/inspect/types.js'
import {Secret} from '../../src/util/secret.js'

// mha check's verdicts, from recorded snapshots changed in the one way each case is about.
const goldenDir = join(dirname(fileURLToPath(import.meta.url)), '../golden')

function scenario(name: string) {
  const dir = join(goldenDir, name)
  const cluster = parseClusterConfig(readFileSync(join(dir, 'cluster.yaml'), 'utf8'), join(dir, 'cluster.yaml'), {})
  const snapshot = JSON.parse(readFileSync(join(dir, 'snapshot.json'), 'utf8')) as Snapshot
  snapshot.manager = {mysqlbinlog: '/usr/bin/mariadb-binlog', mysqlClient: '/usr/bin/mariadb'}
  const sql = (server: string) => snapshot.servers.find((s) => s.name === server)!.sql as SqlFacts
  return {cluster, snapshot, sql}
}
const errors = (report: ReturnType<typeof checkCluster>) => report.findings.filter((f) => f.severity === 'error').map((f) => f.code)

describe('mha check verdicts that fit the moment', () => {
  it('with the master dead and a failover plannable: "master dead, a failover is possible now", not advice to restart IO threads', () => {
    const {cluster, snapshot} = scenario('mariadb-file-lagging')
    const report = checkCluster(cluster, snapshot)
    expect(errors(report)).toEqual([])
    expect(report).toMatchObject({verdict: 'master_dead', failoverPossible: true, master: 'db1'})
    expect(report.findings.map((f) => f.code)).toContain('io_thread_lost_master')
    expect(report.findings.map((f) => f.message).join('\n')).not.toMatch(/START SLAVE IO_THREAD/)
  })

  it('with the master dead but no failover possible, says why', () => {
    const {cluster, snapshot, sql} = scenario('mariadb-file-lagging')
    // Both replicas still stream from it: a network problem, no failover.
    for (const name of ['db2', 'db3']) sql(name).replica!.ioThread = 'running'
    const report = checkCluster(cluster, snapshot)
    expect(report.verdict).toBe('not_ok')
    expect(report.findings.find((f) => f.code === 'failover_not_plannable')?.message).toMatch(/network problem, not a dead master/)
  })

  it('a healthy cluster is ok', () => {
    const {cluster, snapshot} = scenario('mariadb-healthy')
    expect(checkCluster(cluster, snapshot)).toMatchObject({verdict: 'ok', failoverPossible: true})
  })

  it('a wrong replication password is an error naming the server and the file', () => {
    const {cluster, snapshot, sql} = scenario('mariadb-healthy')
    const withPassword = {...cluster, replPassword: new Secret('configured', 'repl_password')}
    sql('db2').replLogin = {ok: false, kind: 'auth', message: "db2 (127.0.0.12:3306): access denied for user repl"}
    const report = checkCluster(withPassword, snapshot)
    expect(report.verdict).toBe('not_ok')
    expect(report.findings.find((f) => f.code === 'repl_password_wrong')).toMatchObject({server: 'db2', message: expect.stringMatching(/the replication user repl cannot log in with repl_password from .*cluster\.yaml/) as unknown})
    sql('db2').replLogin = {ok: true}
    expect(errors(checkCluster(withPassword, snapshot))).toEqual([])
  })

  it("a manager without the mysqlbinlog or mysql client cannot apply binlogs: an error each", () => {
    const {cluster, snapshot} = scenario('mariadb-healthy')
    snapshot.manager = {mysqlbinlog: null, mysqlClient: null}
    expect(errors(checkCluster(cluster, snapshot))).toEqual(['manager_mysqlbinlog_missing', 'manager_mysql_missing'])
  })

  it('warns when slave_net_timeout makes the replicas slow to notice a silent master', () => {
    const {cluster, snapshot, sql} = scenario('mariadb-healthy')
    sql('db2').slaveNetTimeout = 60
    sql('db3').slaveNetTimeout = 10
    const slow = checkCluster(cluster, snapshot).findings.filter((f) => f.code === 'slow_detection')
    expect(slow.map((f) => f.server)).toEqual(['db2'])
    expect(slow[0]!.severity).toBe('warning')
  })

  it('warns when the heartbeat period makes a silent master slow to see: off, long, or not below slave_net_timeout', () => {
    const {cluster, snapshot, sql} = scenario('mariadb-healthy')
    for (const name of ['db2', 'db3']) sql(name).slaveNetTimeout = 10
    const heartbeat = () => checkCluster(cluster, snapshot).findings.filter((f) => f.code === 'slow_heartbeat')
    // Not read (a snapshot recorded before), or not known (performance_schema off): nothing to say.
    expect(heartbeat()).toEqual([])
    sql('db2').heartbeatPeriod = null
    sql('db3').heartbeatPeriod = 1
    expect(heartbeat()).toEqual([])
    sql('db2').heartbeatPeriod = 0
    sql('db3').heartbeatPeriod = 30
    expect(heartbeat().map((f) => [f.server, f.severity])).toEqual([
      ['db2', 'warning'],
      ['db3', 'warning'],
    ])
    expect(heartbeat()[0]!.message).toMatch(/^db2: heartbeats are off .*; run STOP SLAVE; CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD = 1; START SLAVE$/)
    expect(heartbeat()[1]!.message).toMatch(/^db3: heartbeat period 30 s is not below slave_net_timeout=10 s/)
    sql('db3').slaveNetTimeout = 60
    expect(heartbeat()[1]!.message).toMatch(/^db3: heartbeat period 30 s: mha watch counts this replica as having lost a master gone without a TCP reset only after 90 s/)
    sql('db3').heartbeatPeriod = 5
    expect(heartbeat().map((f) => f.server)).toEqual(['db2'])
    // Warnings only: a failover is still possible.
    expect(checkCluster(cluster, snapshot).failoverPossible).toBe(true)
  })
})

describe("mha check's word agrees with what a failover does", () => {
  it('a writable replica is a warning: a failover still goes ahead, and the verdict says ok', () => {
    const {cluster, snapshot, sql} = scenario('mariadb-healthy')
    sql('db2').readOnly = false
    sql('db3').readOnly = false
    const report = checkCluster(cluster, snapshot)
    expect(report.findings.filter((f) => f.code === 'replica_writable').map((f) => [f.severity, f.server])).toEqual([
      ['warning', 'db2'],
      ['warning', 'db3'],
    ])
    expect(report).toMatchObject({verdict: 'ok', failoverPossible: true})
    expect(renderCheck(report)).toMatch(/^verdict: OK, a failover is possible now \(\d+ warnings above\)$/m)
  })

  it('the master\'s own replicate-* filters count: one that differs from the replicas\' is an error naming both', () => {
    const {cluster, snapshot, sql} = scenario('mariadb-healthy')
    const none = sql('db2').replica!.filters
    sql('db1').filters = {...none, doTable: 'app.t'}
    const report = checkCluster(cluster, snapshot)
    expect(report.findings.filter((f) => f.code === 'filters_differ').map((f) => [f.severity, f.message.replace(/: give every.*/, '')])).toEqual([['error', 'replicate_do_table differs: db1 has "app.t", db2 has ""']])
    expect(renderCheck(report)).toMatch(/^verdict: NOT OK, 1 problem would stop a failover/m)
    // The same filters in another order are the same; off with check_repl_filter: false.
    for (const name of ['db1', 'db2', 'db3']) sql(name).filters = {...none, doTable: name === 'db1' ? 'app.b, app.a' : 'app.a,app.b'}
    expect(checkCluster(cluster, snapshot).findings.filter((f) => f.code === 'filters_differ')).toEqual([])
    sql('db1').filters = {...none, doTable: 'app.t'}
    expect(checkCluster({...cluster, failover: {...cluster.failover, checkReplFilter: false}}, snapshot).findings.filter((f) => f.code === 'filters_differ')).toEqual([])
  })

  it('with the master dead, a replica the failover would leave out is a warning naming it, and the verdict is still "master dead"', () => {
    const {cluster, snapshot} = scenario('mariadb-file-lagging')
    const lookup = snapshot.relayLookups.find((l) => l.target === 'db3')
    expect(lookup).toBeDefined()
    // Its missing events were not found in the latest replica's relay log: the failover cannot recover it.
    lookup!.found = null
    lookup!.problem = 'the relay log was purged'
    const report = checkCluster(cluster, snapshot)
    expect(report.verdict).toBe('master_dead')
    expect(report.findings.filter((f) => f.code === 'failover_leaves_out').map((f) => [f.severity, f.server])).toEqual([['warning', 'db3']])
  })
})
