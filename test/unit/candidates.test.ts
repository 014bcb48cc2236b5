import {describe, expect, it} from 'vitest'
import {binlogSequence} from '../../src/binlog/coordinates.js'
import {parseClusterConfig} from '../../src/config/load.js'
import {parseServerVersion} from '../../src/dialect/index.js'
import type {SqlFacts} from '../../src/inspect/types.js'
import {bytesBetween, rankCandidates, type ReplicaView} from '../../src/plan/candidates.js'

const clusterText = (extra = '') => `name: c
user: u
password: p
repl_user: r
${extra}
servers:
  - {name: db1, hostname: h1}
  - {name: db2, hostname: h2, candidate_master: true}
  - {name: db3, hostname: h3}
  - {name: db4, hostname: h4, candidate_master: true}
`

function replica(cluster: ReturnType<typeof parseClusterConfig>, name: string, read: [string, number], executed: [string, number], facts: Partial<SqlFacts> = {}): ReplicaView {
  const server = cluster.servers.find((s) => s.name === name)!
  const base = {
    version: parseServerVersion('10.11.19-MariaDB'),
    logBin: true,
    replica: {lastSqlErrno: 0, lastSqlError: ''},
    ...facts,
  } as unknown as SqlFacts
  return {server, facts: base, read: {file: read[0], pos: read[1]}, executed: {file: executed[0], pos: executed[1]}}
}

const sizes = new Map([
  ['mysql-bin.000009', 1000],
  ['mysql-bin.000010', 5000],
  ['mysql-bin.000011', 700],
])

function rank(extra: string, build: (c: ReturnType<typeof parseClusterConfig>) => ReplicaView[], latestNames: string[]) {
  const cluster = parseClusterConfig(clusterText(extra), 'c.yaml', {})
  const replicas = build(cluster)
  return rankCandidates({
    cluster,
    replicas,
    latest: replicas.filter((r) => latestNames.includes(r.server.name)),
    unrecoverable: new Set(),
    errant: new Map(),
    masterFileSizes: sizes,
    sequenceOf: binlogSequence,
  })
}

describe('bytesBetween', () => {
  it('counts across files with known sizes, numerically ordered', () => {
    expect(bytesBetween({file: 'mysql-bin.000009', pos: 400}, {file: 'mysql-bin.000011', pos: 300}, sizes, binlogSequence)).toBe(600 + 5000 + 300)
    expect(bytesBetween({file: 'mysql-bin.000010', pos: 10}, {file: 'mysql-bin.000010', pos: 90}, sizes, binlogSequence)).toBe(80)
    expect(bytesBetween({file: 'mysql-bin.000008', pos: 10}, {file: 'mysql-bin.000010', pos: 90}, sizes, binlogSequence)).toBeNull()
  })
})

describe('rankCandidates (MHA selection rules)', () => {
  const at = (pos: number): [string, number] => ['mysql-bin.000011', pos]

  it('prefers a latest candidate_master, then any candidate in config order', () => {
    const latestCandidate = rank('', (c) => [replica(c, 'db2', at(100), at(100)), replica(c, 'db3', at(700), at(700)), replica(c, 'db4', at(700), at(700))], ['db3', 'db4'])
    expect(latestCandidate.chosen?.server.name).toBe('db4')
    expect(latestCandidate.candidates.find((x) => x.chosen)?.reason).toBe('chosen: a candidate_master that has the newest data')
    const anyCandidate = rank('', (c) => [replica(c, 'db2', at(100), at(100)), replica(c, 'db3', at(700), at(700))], ['db3'])
    expect(anyCandidate.chosen?.server.name).toBe('db2')
  })

  it('with latest_priority false, config order among candidates decides', () => {
    const r = rank('failover: {latest_priority: false}', (c) => [replica(c, 'db2', at(100), at(100)), replica(c, 'db4', at(700), at(700))], ['db4'])
    expect(r.chosen?.server.name).toBe('db2')
  })

  it('rejects no_master, log_bin off, a newer version and an SQL error, each with its rule', () => {
    const r = rank(
      '',
      (c) => [
        replica(c, 'db2', at(700), at(700), {logBin: false}),
        replica(c, 'db3', at(700), at(700), {version: parseServerVersion('11.4.2-MariaDB')}),
        replica(c, 'db4', at(700), at(700), {replica: {lastSqlErrno: 1062, lastSqlError: 'Duplicate entry'}} as unknown as Partial<SqlFacts>),
        {...replica(c, 'db1', at(700), at(700), {version: parseServerVersion('10.11.2-MariaDB')}), server: {...c.servers[0]!, noMaster: true}},
      ],
      ['db1', 'db2', 'db3', 'db4'],
    )
    expect(r.chosen).toBeUndefined()
    expect(Object.fromEntries(r.candidates.map((x) => [x.server, x.reason.replace(/:.*/, '')]))).toEqual({
      db2: 'rejected (log_bin)',
      db3: 'rejected (oldest_version)',
      db4: 'rejected (sql_thread)',
      db1: 'rejected (no_master)',
    })
  })

  it('rejects a replica too far behind, counted in bytes across files', () => {
    const r = rank('failover: {max_lag_bytes: 5000}', (c) => [replica(c, 'db2', at(700), ['mysql-bin.000009', 400]), replica(c, 'db3', at(700), ['mysql-bin.000010', 900])], ['db2', 'db3'])
    expect(r.candidates[0]!.reason).toBe('rejected (replication_delay): 6300 bytes behind the latest replica (limit max_lag_bytes=5000)')
    expect(r.chosen?.server.name).toBe('db3')
    const off = rank('failover: {max_lag_bytes: 5000, check_repl_delay: false}', (c) => [replica(c, 'db2', at(700), ['mysql-bin.000009', 400])], ['db2'])
    expect(off.chosen?.server.name).toBe('db2')
  })

  it('lets a replica lag exactly max_lag_bytes, and rejects one byte more', () => {
    // db2 executed mysql-bin.000009:400, 6300 bytes behind the latest read position mysql-bin.000011:700.
    const lagging = (c: ReturnType<typeof parseClusterConfig>) => [replica(c, 'db2', at(700), ['mysql-bin.000009', 400]), replica(c, 'db3', at(700), at(700))]
    const atLimit = rank('failover: {max_lag_bytes: 6300}', lagging, ['db2', 'db3'])
    expect(atLimit.candidates[0]).toMatchObject({server: 'db2', eligible: true, chosen: true})
    const over = rank('failover: {max_lag_bytes: 6299}', lagging, ['db2', 'db3'])
    expect(over.candidates[0]).toMatchObject({server: 'db2', eligible: false, reason: 'rejected (replication_delay): 6300 bytes behind the latest replica (limit max_lag_bytes=6299)'})
    expect(over.chosen?.server.name).toBe('db3')
  })

  it('without any candidate_master, latest_priority false takes config order and true the newest data', () => {
    // db1 and db3 are not candidates; db3 has the newest data.
    const plain = (c: ReturnType<typeof parseClusterConfig>) => [replica(c, 'db1', at(100), at(100)), replica(c, 'db3', at(700), at(700))]
    const byOrder = rank('failover: {latest_priority: false}', plain, ['db3'])
    expect(byOrder.chosen?.server.name).toBe('db1')
    expect(byOrder.candidates.find((x) => x.chosen)?.reason).toBe('chosen: the first eligible replica in config order')
    const byData = rank('', plain, ['db3'])
    expect(byData.chosen?.server.name).toBe('db3')
    expect(byData.candidates.find((x) => x.chosen)?.reason).toBe('chosen: a replica that has the newest data (no candidate_master is eligible)')
  })
  it('with check_repl_filter, never promotes a replica whose filters differ from the others\' (the rest would miss what it skips)', () => {
    const none = {doDb: '', ignoreDb: '', doTable: '', ignoreTable: '', wildDoTable: '', wildIgnoreTable: ''}
    const filtered = {...none, doTable: 'app.orders'}
    // db2 is the latest candidate_master, and the one with replicate_do_table: db4 (also a candidate) goes instead.
    const build = (c: ReturnType<typeof parseClusterConfig>) => [
      replica(c, 'db2', at(700), at(700), {filters: filtered}),
      replica(c, 'db3', at(500), at(500), {filters: none}),
      replica(c, 'db4', at(500), at(500), {filters: none}),
    ]
    const r = rank('', build, ['db2'])
    expect(r.candidates[0]).toMatchObject({server: 'db2', eligible: false})
    expect(r.candidates[0]!.reason).toBe('rejected (same_filters): replicate_do_table differs: db2 has "app.orders", db3 has "": as the master it would log, or skip, other writes than the rest replicate')
    expect(r.chosen?.server.name).toBe('db4')
    // The operator's choice, as MHA's check_repl_filter=0: filters are not compared.
    expect(rank('failover: {check_repl_filter: false}', build, ['db2']).chosen?.server.name).toBe('db2')
  })
})
