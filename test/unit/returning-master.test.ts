import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'
import {checkCluster} from '../../src/analysis/check.js'
import {returningMasters, roleViewsOf, topologyOf} from '../../src/analysis/topology.js'
import {parseClusterConfig} from '../../src/config/load.js'
import type {ServerSnapshot, Snapshot, SqlFacts} from '../../src/inspect/types.js'
import {planFor} from '../../src/plan/planner.js'
import {masterDespiteReturned, strayMasters} from '../../src/watch/returning-master.js'

// The recorded healthy cluster (db1 master, db2 and db3 replicas), changed to the situations after a failover.
const dir = join(dirname(fileURLToPath(import.meta.url)), '../golden/mariadb-healthy')
const yaml = readFileSync(join(dir, 'cluster.yaml'), 'utf8')
const cluster = parseClusterConfig(yaml, 'cluster.yaml', {})
const recorded = JSON.parse(readFileSync(join(dir, 'snapshot.json'), 'utf8')) as Snapshot
const header = {tool: 'test', createdAt: '2026-01-01T00:00:00.000Z', configFile: 'cluster.yaml'}
const ip = {db1: '127.0.0.11', db2: '127.0.0.12', db3: '127.0.0.13', db4: '127.0.0.14'} as const

type Name = keyof typeof ip
type Role = {root: true; readOnly: boolean} | {from: Name; io?: 'running' | 'connecting' | 'stopped'; readOnly?: boolean} | 'down'

/** The healthy snapshot with each server's role replaced: replicating from a server, or from nobody. */
function snapshotWith(roles: Partial<Record<Name, Role>>): Snapshot {
  const snapshot = structuredClone(recorded)
  const replicaFacts = (snapshot.servers.find((s) => s.name === 'db2')!.sql as SqlFacts).replica!
  const servers = (Object.keys(roles) as Name[]).map((name): ServerSnapshot => {
    const base = structuredClone(snapshot.servers.find((s) => s.name === name) ?? {...snapshot.servers.find((s) => s.name === 'db3')!, name, address: `${ip[name]}:3306`})
    const role = roles[name]!
    if (role === 'down') return {...base, sql: {reachable: false, kind: 'unreachable', message: `${name} (${ip[name]}:3306): cannot connect (ECONNREFUSED)`}}
    const facts = structuredClone(base.sql.reachable ? base.sql : (snapshot.servers[1]!.sql as SqlFacts))
    if ('root' in role) {
      facts.replica = null
      facts.readOnly = role.readOnly
    } else {
      facts.replica = {...structuredClone(replicaFacts), sourceHost: ip[role.from], ioThread: role.io ?? 'running'}
      facts.readOnly = role.readOnly ?? true
    }
    return {...base, sql: facts}
  })
  return {...snapshot, servers}
}

const codes = (snapshot: Snapshot, c = cluster) => checkCluster(c, snapshot).findings.map((f) => `${f.code}:${f.server ?? '-'}`)

// After the failover: db2 promoted, db3 re-pointed to db2, and db1 restarted from its my.cnf, writable.
const returned = snapshotWith({db1: {root: true, readOnly: false}, db2: {root: true, readOnly: false}, db3: {from: 'db2'}})

describe('a returning old master', () => {
  it('does not confuse the topology: the master is the writable server the replicas follow', () => {
    const topology = topologyOf(cluster, returned)
    expect(topology.master?.name).toBe('db2')
    expect(topology.replicas.map((s) => s.name)).toEqual(['db3'])
  })

  it('mha check names it once, as an error, with what to do', () => {
    const report = checkCluster(cluster, returned)
    expect(report.master).toBe('db2')
    expect(report.failoverPossible).toBe(false)
    // The cluster file of this fixture sets no hooks: their warnings are not about db1.
    const about = report.findings.filter((f) => (f.server === 'db1' || f.server === null) && !['no_shutdown_hook', 'no_master_ip_failover_hook'].includes(f.code))
    expect(about).toEqual([
      {
        severity: 'error',
        code: 'returning_master',
        server: 'db1',
        message:
          'db1 is writable (read_only=0) and replicates from nobody while db2 is the master: clients can write to both (split brain); run SET GLOBAL read_only=ON on db1, then rejoin it as a replica of db2 or rebuild it',
      },
    ])
  })

  it('mha plan plans nothing destructive: a noop that carries the finding', () => {
    const plan = planFor(cluster, returned, header)
    expect(plan.kind).toBe('noop')
    expect(plan.steps).toEqual([])
    expect(plan.decision.notes.join('\n')).toMatch(/db1 is writable \(read_only=0\) and replicates from nobody while db2 is the master/)
  })

  it('once fenced (read_only=1) it is a server to rejoin, no longer a second master', () => {
    const fenced = snapshotWith({db1: {root: true, readOnly: true}, db2: {root: true, readOnly: false}, db3: {from: 'db2'}})
    expect(topologyOf(cluster, fenced).master?.name).toBe('db2')
    expect(codes(fenced)).toContain('not_replicating:db1')
    expect(codes(fenced).filter((c) => /returning_master|several_masters/.test(c))).toEqual([])
  })

  it('the master itself and a healthy cluster are never named', () => {
    expect(returningMasters('db1', roleViewsOf(cluster, recorded))).toEqual([])
    expect(codes(recorded).filter((c) => c.startsWith('returning_master'))).toEqual([])
    expect(returningMasters('db2', roleViewsOf(cluster, returned)).map((v) => v.name)).toEqual(['db1'])
  })

  it('a writable replica that still replicates is the existing replica_writable finding, not a returning master', () => {
    const writableReplica = snapshotWith({db1: {root: true, readOnly: false}, db2: {from: 'db1', readOnly: false}, db3: {from: 'db1'}})
    expect(codes(writableReplica)).toContain('replica_writable:db2')
    expect(codes(writableReplica).filter((c) => /returning_master|several_masters/.test(c))).toEqual([])
    expect(returningMasters('db1', roleViewsOf(cluster, writableReplica))).toEqual([])
  })

  it('is not named when no replica is connected to the master: which one is the master is then not clear', () => {
    const lost = snapshotWith({db1: {root: true, readOnly: false}, db2: {root: true, readOnly: false}, db3: {from: 'db2', io: 'connecting'}})
    expect(returningMasters('db2', roleViewsOf(cluster, lost))).toEqual([])
    // check still says that two servers take writes.
    expect(codes(lost)).toContain('several_masters:-')
  })
})

describe('ties: two writable servers, and nothing tells which is the master', () => {
  it('two writable servers that replicate from nobody and no replica: no master, said so, no plan', () => {
    const tie = snapshotWith({db1: {root: true, readOnly: false}, db2: {root: true, readOnly: false}, db3: 'down'})
    expect(topologyOf(cluster, tie).master).toBeUndefined()
    const report = checkCluster(cluster, tie)
    expect(report.master).toBeNull()
    expect(report.findings.find((f) => f.code === 'several_masters')?.message).toBe(
      'db1 and db2 are both writable and replicate from nobody, and no replica tells which is the master; set read_only=ON on every one but the master, then rejoin or rebuild them',
    )
    expect(report.findings.some((f) => f.code === 'returning_master')).toBe(false)
    expect(() => planFor(cluster, tie, header)).toThrow(/no master found/)
  })

  it('one writable and one read-only server that replicate from nobody, no replica: the writable one is the master', () => {
    const one = snapshotWith({db1: {root: true, readOnly: true}, db2: {root: true, readOnly: false}, db3: 'down'})
    expect(topologyOf(cluster, one).master?.name).toBe('db2')
  })

  const four = parseClusterConfig(yaml + '  - name: db4\n    hostname: 127.0.0.14\n', 'cluster.yaml', {})

  it('replicas split evenly between two writable servers: no master is guessed', () => {
    const split = snapshotWith({db1: {root: true, readOnly: false}, db2: {root: true, readOnly: false}, db3: {from: 'db1'}, db4: {from: 'db2'}})
    expect(topologyOf(four, split).master).toBeUndefined()
    expect(codes(split, four)).toContain('several_masters:-')
  })

  it('a chain (db3 replicates from db2, which replicates from db1) keeps db1 as its master', () => {
    const chain = snapshotWith({db1: {root: true, readOnly: false}, db2: {from: 'db1'}, db3: {from: 'db2'}, db4: {from: 'db1'}})
    expect(topologyOf(four, chain).master?.name).toBe('db1')
    const deadTop = snapshotWith({db1: 'down', db2: {from: 'db1', io: 'connecting'}, db3: {from: 'db2'}})
    expect(topologyOf(cluster, deadTop).master?.name).toBe('db1')
  })
})

describe('with no replica left to tell (a two-server cluster after its failover), the state\'s record decides', () => {
  // db2 replaced db1 at the last failover; db1 came back writable; db3 is not there (only two servers answer).
  const twoWritable = snapshotWith({db1: {root: true, readOnly: false}, db2: {root: true, readOnly: false}})
  const db2 = cluster.servers.find((s) => s.name === 'db2')!
  const db1 = cluster.servers.find((s) => s.name === 'db1')!

  it('the server the last failover replaced is fenced, said so; without the record nothing is', () => {
    const views = roleViewsOf(cluster, twoWritable)
    expect(strayMasters('db2', views, 'db1')).toEqual([{name: 'db1', why: 'db1 replicates from nobody and was writable (read_only=0) while db2 is the master (it replaced db1 at the last failover)'}])
    expect(strayMasters('db2', views, null)).toEqual([])
    // The record names the master itself, or a server that is not back writable: nothing.
    expect(strayMasters('db1', views, 'db1')).toEqual([])
    expect(strayMasters('db2', roleViewsOf(cluster, snapshotWith({db1: {root: true, readOnly: true}, db2: {root: true, readOnly: false}})), 'db1')).toEqual([])
    expect(strayMasters('db2', roleViewsOf(cluster, snapshotWith({db1: {from: 'db2', readOnly: false}, db2: {root: true, readOnly: false}})), 'db1')).toEqual([])
  })

  it('with replicas that follow the master, the replicas\' word is given as before', () => {
    expect(strayMasters('db2', roleViewsOf(cluster, returned), 'db1')).toEqual([{name: 'db1', why: 'db1 replicates from nobody and was writable (read_only=0) while db2 is the master (db3 replicates from it)'}])
  })

  it('the watched master stays the master when the only doubt is the server it replaced, back writable', () => {
    expect(topologyOf(cluster, twoWritable).master).toBeUndefined()
    expect(masterDespiteReturned(cluster, twoWritable, db2, 'db1')).toBe(db2)
    // Nothing is guessed without the record, for a master not watched yet, or for the replaced server itself.
    expect(masterDespiteReturned(cluster, twoWritable, db2, null)).toBeUndefined()
    expect(masterDespiteReturned(cluster, twoWritable, undefined, 'db1')).toBeUndefined()
    expect(masterDespiteReturned(cluster, twoWritable, db1, 'db1')).toBeUndefined()
    // A third writable server that replicates from nobody: still a tie without db1, not guessed.
    const three = snapshotWith({db1: {root: true, readOnly: false}, db2: {root: true, readOnly: false}, db3: {root: true, readOnly: false}})
    expect(masterDespiteReturned(cluster, three, db2, 'db1')).toBeUndefined()
    // db1 back read only: the topology already names db2 without help; the helper is not asked for it.
    expect(masterDespiteReturned(cluster, snapshotWith({db1: {root: true, readOnly: true}, db2: {root: true, readOnly: false}}), db2, 'db1')).toBeUndefined()
  })
})
