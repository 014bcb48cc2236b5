import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'
import {checkCluster} from '../../src/analysis/check.js'
import {parseClusterConfig} from '../../src/config/load.js'
import type {BinlogServerSnapshot, Snapshot, SshFacts} from '../../src/inspect/types.js'
import {planFor} from '../../src/plan/planner.js'
import type {Plan} from '../../src/plan/types.js'
import {planProblems} from '../../src/plan/validate.js'

// The recorded mariadb-file-ssh-down cluster (db1 dead, its host down over SSH; db2 the latest replica at
// mysql-bin.000001:20155307) with binlog servers added to its cluster file.
const dir = join(dirname(fileURLToPath(import.meta.url)), '../golden/mariadb-file-ssh-down')
const header = {tool: 'mha test', createdAt: '2026-01-01T00:00:00.000Z', configFile: 'cluster.yaml'}
const LATEST = 20155307

const withBinlogServers = `
binlog_servers:
  - name: binlog1
    hostname: 127.0.0.50
    master_binlog_dir: /srv/binlogs
  - name: binlog2
    hostname: 127.0.0.51
    ssh_port: 2222
    ssh_user: backup
    master_binlog_dir: [/data/a, /data/b]
`
const clusterWith = (extra: string) => parseClusterConfig(readFileSync(join(dir, 'cluster.yaml'), 'utf8') + extra, join(dir, 'cluster.yaml'), {})
const snapshot = () => JSON.parse(readFileSync(join(dir, 'snapshot.json'), 'utf8')) as Snapshot

const copy = (dir: string, files: {file: string; size: number}[]): SshFacts => ({reachable: true, binlogDir: dir, binlogReadable: true, mysqlbinlog: '/usr/bin/mariadb-binlog', workdirWritable: true, binlogs: files, relayLogs: []})
const down: BinlogServerSnapshot['ssh'] = {reachable: false, kind: 'unreachable', message: 'binlog2 (backup@127.0.0.51:2222): cannot connect over SSH (ECONNREFUSED)'}

function planWith(listed: BinlogServerSnapshot[]): Plan {
  const snap = snapshot()
  snap.binlogServers = listed
  return planFor(clusterWith(withBinlogServers), snap, header)
}
const saveStep = (plan: Plan) => plan.steps.find((s) => s.type === 'save_master_binlog')

describe('binlog_servers in the cluster file', () => {
  it('inherit the ssh section and server_defaults, and keep their own ssh port, user and directories', () => {
    const cluster = clusterWith(withBinlogServers)
    expect(cluster.binlogServers.map((b) => [b.name, b.sshHost, b.sshPort, b.sshUser, b.masterBinlogDirs, b.remoteWorkdir])).toEqual([
      ['binlog1', '127.0.0.50', 22, 'root', ['/srv/binlogs'], '/var/tmp/mha-sandbox/app1/work'],
      ['binlog2', '127.0.0.51', 2222, 'backup', ['/data/a', '/data/b'], '/var/tmp/mha-sandbox/app1/work'],
    ])
  })

  it('refuse a binlog server named like a server, naming the field', () => {
    expect(() => clusterWith(`\nbinlog_servers:\n  - name: db2\n    hostname: 127.0.0.50\n    master_binlog_dir: /srv\n`)).toThrow(/cluster\.yaml:\d+:\d+ binlog_servers\[0\]\.name: "db2" is also a server's name; give the binlog server a name of its own/)
  })

  it('inherit master_binlog_dir from server_defaults, as [binlogN] inherit [server default] in MHA', () => {
    expect(clusterWith(`\nbinlog_servers:\n  - name: b1\n    hostname: 127.0.0.50\n`).binlogServers[0]!.masterBinlogDirs).toEqual(['/var/lib/mysql', '/var/log/mysql'])
  })
})

describe('a dead master whose host cannot be read: the tail from a binlog server', () => {
  it('is saved from the binlog server whose copy reaches furthest, and the plan says from where and how many bytes', () => {
    const plan = planWith([
      {name: 'binlog1', ssh: copy('/srv/binlogs', [{file: 'mysql-bin.000001', size: LATEST + 300}])},
      {name: 'binlog2', ssh: copy('/data/b', [{file: 'mysql-bin.000001', size: LATEST + 900}])},
    ])
    expect(saveStep(plan)).toMatchObject({server: 'db1', params: {binlogServer: 'binlog2', dir: '/data/b', from: {file: 'mysql-bin.000001', pos: LATEST}, files: ['mysql-bin.000001']}})
    // Nothing proves the copy reaches the master's end: what lies past it is stated as lost, never as none.
    expect(plan.decision.dataLoss).toMatchObject({none: false, lostAfter: {file: 'mysql-bin.000001', pos: LATEST + 900}})
    expect(plan.decision.dataLoss.statement).toBe(
      `db1's binlog after mysql-bin.000001:${LATEST} (900 bytes in mysql-bin.000001) is saved over SSH from binlog server binlog2 and applied; db1's host cannot be read, so anything it wrote after mysql-bin.000001:${LATEST + 900}, the end of binlog2's copy, is lost`,
    )
    expect(plan.decision.summary).toContain(`save and apply db1's binlog after mysql-bin.000001:${LATEST} from binlog server binlog2`)
    expect(planProblems(plan, clusterWith(withBinlogServers))).toEqual([])
  })

  it('is lost when the only copies are behind what a replica read or unreachable, and the plan says why for each', () => {
    const plan = planWith([
      {name: 'binlog1', ssh: copy('/srv/binlogs', [{file: 'mysql-bin.000001', size: LATEST - 1000}])},
      {name: 'binlog2', ssh: down},
    ])
    expect(saveStep(plan)).toBeUndefined()
    expect(plan.decision.dataLoss).toMatchObject({none: false, lostAfter: {file: 'mysql-bin.000001', pos: LATEST}})
    expect(plan.decision.dataLoss.statement).toBe(
      `events after mysql-bin.000001:${LATEST} in db1's binlog are lost: db1's host cannot be reached over SSH (db1 (root@127.0.0.11:22): cannot connect over SSH (ECONNREFUSED)); the copy of mysql-bin.000001 on binlog server binlog1 ends at byte ${LATEST - 1000}, before mysql-bin.000001:${LATEST}; binlog server binlog2 cannot be reached over SSH (${down.message})`,
    )
  })

  it('stops at a hole in a copy and states what is lost after it', () => {
    const plan = planWith([{name: 'binlog1', ssh: copy('/srv/binlogs', [{file: 'mysql-bin.000001', size: LATEST + 100}, {file: 'mysql-bin.000003', size: 5000}])}])
    expect(saveStep(plan)).toMatchObject({params: {binlogServer: 'binlog1', files: ['mysql-bin.000001']}})
    expect(plan.decision.dataLoss.statement).toMatch(/^events after mysql-bin\.000001:20155407 in db1's binlog are lost: mysql-bin\.000002 is missing from \/srv\/binlogs on binlog server binlog1/)
  })

  it('a copy that ends exactly where the latest replica read: nothing to save, and the plan says the copy is all that is known', () => {
    const plan = planWith([{name: 'binlog1', ssh: copy('/srv/binlogs', [{file: 'mysql-bin.000001', size: LATEST}])}])
    expect(saveStep(plan)).toBeUndefined()
    expect(plan.decision.dataLoss).toMatchObject({none: false, lostAfter: {file: 'mysql-bin.000001', pos: LATEST}})
    expect(plan.decision.dataLoss.statement).toBe(
      `db2 has read as far as binlog server binlog1's copy of db1's binlog goes (mysql-bin.000001:${LATEST}); db1's host cannot be read, so anything it wrote after mysql-bin.000001:${LATEST}, the end of binlog1's copy, is lost`,
    )
  })

  it('is not used when the master\'s own host holds the binlog', () => {
    const snap = snapshot()
    snap.servers[0]!.ssh = copy('/var/tmp/mha-sandbox/app1/host1/data', [{file: 'mysql-bin.000001', size: LATEST + 50}])
    snap.binlogServers = [{name: 'binlog1', ssh: copy('/srv/binlogs', [{file: 'mysql-bin.000001', size: LATEST + 900}])}]
    const plan = planFor(clusterWith(withBinlogServers), snap, header)
    expect(saveStep(plan)).toMatchObject({params: {dir: '/var/tmp/mha-sandbox/app1/host1/data'}})
    expect(saveStep(plan)!.params).not.toHaveProperty('binlogServer')
  })

  it('a plan naming a binlog server or directory the cluster file does not have is refused before apply', () => {
    const plan = planWith([{name: 'binlog1', ssh: copy('/srv/binlogs', [{file: 'mysql-bin.000001', size: LATEST + 300}])}])
    const other = clusterWith(`\nbinlog_servers:\n  - name: binlog1\n    hostname: 127.0.0.50\n    master_binlog_dir: /elsewhere\n`)
    expect(planProblems(plan, other)).toEqual(expect.arrayContaining([expect.stringMatching(/params\.dir: \/srv\/binlogs is not one of binlog server binlog1's master_binlog_dir in the cluster file \(\/elsewhere\)/)]))
    expect(planProblems(plan, clusterWith(''))).toEqual(expect.arrayContaining([expect.stringMatching(/params\.binlogServer: binlog1 is not one of binlog_servers in the cluster file \(none\)/)]))
  })
})

describe('mha check and binlog servers', () => {
  it('warns about an unreachable binlog server, a copy not found and a missing mysqlbinlog, without stopping a failover', () => {
    const snap = snapshot()
    snap.binlogServers = [
      {name: 'binlog1', ssh: {...copy('/srv/binlogs', []), binlogDir: null, mysqlbinlog: null}},
      {name: 'binlog2', ssh: down},
    ]
    const cluster = clusterWith(withBinlogServers)
    const report = checkCluster(cluster, snap)
    const without = checkCluster(cluster, {...snap, binlogServers: [{name: 'binlog1', ssh: copy('/srv/binlogs', [])}, {name: 'binlog2', ssh: copy('/data/a', [])}]})
    const found = report.findings.filter((f) => f.code.startsWith('binlog_server_')).map((f) => [f.severity, f.code, f.server])
    expect(found).toEqual([
      ['warning', 'binlog_server_binlog_not_found', 'binlog1'],
      ['warning', 'binlog_server_mysqlbinlog_missing', 'binlog1'],
      ['warning', 'binlog_server_ssh_failed', 'binlog2'],
    ])
    expect(without.findings.filter((f) => f.code.startsWith('binlog_server_'))).toEqual([])
    expect(report.failoverPossible).toBe(without.failoverPossible)
  })
})
