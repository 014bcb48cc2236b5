import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'
import {parseClusterConfig} from '../../src/config/load.js'
import type {Snapshot, SqlFacts} from '../../src/inspect/types.js'
import {effectOf} from '../../src/plan/effects.js'
import {compareFilePosition, compareMariadbGtid, planRejoin, positionAfterRewind, type BinlogRange, type FailoverRecord} from '../../src/plan/rejoin.js'
import {validatePlan} from '../../src/plan/plan-file.js'
import {planProblems} from '../../src/plan/validate.js'
import {parseMariadbGtidPos} from '../../src/gtid/index.js'

const dir = join(dirname(fileURLToPath(import.meta.url)), '../golden/mariadb-healthy')
const header = {tool: 'test', createdAt: '2026-01-01T00:00:00.000Z', configFile: 'cluster.yaml'}
const failover: FailoverRecord = {plan: 'plans/app1/x-failover.json', newMaster: 'db2', held: {file: 'mysql-bin.000001', pos: 1000}, heldFrom: 'saved binlog end', promotion: {file: 'mysql-bin.000001', pos: 2000}}
const range = (transactions: (string | null)[], from = failover.held): BinlogRange => ({from, end: {file: 'mysql-bin.000002', pos: 900}, files: ['mysql-bin.000001', 'mysql-bin.000002'], dir: '/var/tmp/mha-sandbox/app1/host1/data', transactions: transactions.map((gtid) => ({gtid})), rowEvents: transactions.length * 2})

/** After a failover: db2 is the writable master, db3 replicates from it, db1 came back writable and replicates from nobody. */
function afterFailover(gtid: {db1State: string; db2State: string}, db1End = {file: 'mysql-bin.000002', pos: 900}) {
  const text = readFileSync(join(dir, 'cluster.yaml'), 'utf8')
  const cluster = parseClusterConfig(text, join(dir, 'cluster.yaml'), {})
  const snapshot = JSON.parse(readFileSync(join(dir, 'snapshot.json'), 'utf8')) as Snapshot
  const sql = (name: string) => snapshot.servers.find((s) => s.name === name)!.sql as SqlFacts
  sql('db1').binaryLog = {...sql('db1').binaryLog!, ...db1End}
  sql('db1').gtid = {...sql('db1').gtid, binlogPos: gtid.db1State, binlogState: gtid.db1State}
  sql('db2').replica = null
  sql('db2').readOnly = false
  sql('db2').gtid = {...sql('db2').gtid, binlogPos: gtid.db2State, binlogState: gtid.db2State}
  sql('db3').replica = {...sql('db3').replica!, sourceHost: '127.0.0.12'}
  return {cluster, snapshot}
}

describe('rejoin: the former master compared with the new master', () => {
  it('file/position: not ahead, ahead, diverged', () => {
    expect(compareFilePosition('db1', failover.held, failover, null).kind).toBe('not_ahead')
    // A restart only adds a new file's header: beyond the position, but no transaction.
    expect(compareFilePosition('db1', {file: 'mysql-bin.000002', pos: 385}, failover, range([])).kind).toBe('not_ahead')
    const ahead = compareFilePosition('db1', {file: 'mysql-bin.000002', pos: 900}, failover, range([null, null, null]))
    expect(ahead).toMatchObject({kind: 'ahead', transactions: 3, rowEvents: 6, from: failover.held})
    expect(compareFilePosition('db1', {file: 'mysql-bin.000001', pos: 500}, failover, null).kind).toBe('diverged')
    // Beyond the position and unreadable: never assumed empty.
    expect(compareFilePosition('db1', {file: 'mysql-bin.000002', pos: 900}, failover, null, 'ssh down').kind).toBe('diverged')
  })

  it('file/position: a recorded position inside a transaction counts that transaction as extra, from its start', () => {
    // The failover recorded 1000 (a replica's read position) inside a transaction db1 wrote from 700 on.
    const cut = {file: 'mysql-bin.000001', pos: 700}
    const last = compareFilePosition('db1', {file: 'mysql-bin.000002', pos: 900}, failover, range([null], cut))
    expect(last).toMatchObject({kind: 'ahead', transactions: 1, from: cut})
    expect(last.why).toMatch(/never received whole; the first one contains mysql-bin\.000001:1000, where db2's data ends \(saved binlog end\): db2 received only part of it/)
    expect(compareFilePosition('db1', {file: 'mysql-bin.000002', pos: 900}, failover, range([null, null, null], cut))).toMatchObject({kind: 'ahead', transactions: 3, from: cut})
    // A whole range after the recorded position says nothing of the bytes between: never taken as empty.
    expect(compareFilePosition('db1', {file: 'mysql-bin.000002', pos: 900}, failover, range([null], {file: 'mysql-bin.000001', pos: 1200})).kind).toBe('diverged')
  })

  it('MariaDB GTID: the new master\'s own later writes in the domain hide nothing', () => {
    expect(compareMariadbGtid('db1', 'db2', '0-1-104', '0-1-104,0-2-150', null).kind).toBe('not_ahead')
    const ahead = compareMariadbGtid('db1', 'db2', '0-1-107', '0-1-104,0-2-150', range(['0-1-105', '0-1-106', '0-1-107']))
    expect(ahead).toMatchObject({kind: 'ahead', transactions: 3, gtids: '0-1-105..0-1-107'})
    // The range holds a transaction db2 has: it cannot be rewound alone.
    expect(compareMariadbGtid('db1', 'db2', '0-1-107', '0-1-104,0-2-150', range(['0-1-104', '0-1-105', '0-1-106', '0-1-107'])).kind).toBe('diverged')
    // Extra transactions before the range start.
    expect(compareMariadbGtid('db1', 'db2', '0-1-107', '0-1-104,0-2-150', range(['0-1-107'])).kind).toBe('diverged')
    expect(compareMariadbGtid('db1', 'db2', '0-1-107', '0-1-104', null).kind).toBe('diverged')
    expect(positionAfterRewind('0-1-107', '0-1-104,0-2-150', ['0-1-105', '0-1-106', '0-1-107'].flatMap((g) => parseMariadbGtidPos(g)))).toBe('0-1-104')
  })
})

describe('rejoin plans', () => {
  it('not ahead (GTID): read only, then re-point by GTID from its own position; planProblems accepts it', () => {
    const {cluster, snapshot} = afterFailover({db1State: '0-1-104', db2State: '0-1-104,0-2-150'})
    const plan = planRejoin(cluster, snapshot, header, {server: 'db1', flashback: false, failover, range: null})
    expect(plan.kind).toBe('rejoin')
    expect(plan.steps.map((s) => s.id)).toEqual(['set_read_only:db1', 'repoint_replica:db1', 'verify_replication:db1'])
    expect(plan.steps[1]).toMatchObject({params: {source: 'db2', gtid: true, formerMaster: true}})
    expect(planProblems(plan, cluster)).toEqual([])
    validatePlan(JSON.parse(JSON.stringify(plan)), 'rejoin.json')
    for (const step of plan.steps) expect(effectOf(step, plan, cluster).join('\n')).not.toBe('')
  })

  it('ahead without --flashback: refused in one line naming the transactions and both options', () => {
    const {cluster, snapshot} = afterFailover({db1State: '0-1-107', db2State: '0-1-104,0-2-150'})
    expect(() => planRejoin(cluster, snapshot, header, {server: 'db1', flashback: false, failover, range: range(['0-1-105', '0-1-106', '0-1-107'])})).toThrow(
      /^db1 has 3 extra transaction\(s\) db2 lacks \(0-1-105\.\.0-1-107, 6 row event\(s\)\); .*--flashback.*rebuild db1 from db2$/,
    )
  })

  it('ahead with --flashback: saved, rewound, then re-pointed from the position it matches; planProblems accepts it and refuses a re-point before the rewind', () => {
    const {cluster, snapshot} = afterFailover({db1State: '0-1-107', db2State: '0-1-104,0-2-150'})
    const plan = planRejoin(cluster, snapshot, header, {server: 'db1', flashback: true, failover, range: range(['0-1-105', '0-1-106', '0-1-107'])})
    expect(plan.steps.map((s) => s.type)).toEqual(['set_read_only', 'save_master_binlog', 'flashback_binlog', 'repoint_replica', 'verify_replication'])
    expect(plan.steps[3]).toMatchObject({params: {gtidSlavePos: '0-1-104'}, after: ['flashback_binlog:db1']})
    expect(plan.decision.dataLoss).toMatchObject({none: false, lostGtids: '0-1-105..0-1-107'})
    expect(planProblems(plan, cluster)).toEqual([])
    validatePlan(JSON.parse(JSON.stringify(plan)), 'rejoin.json')
    const early = structuredClone(plan)
    early.steps[3]!.after = ['set_read_only:db1']
    expect(planProblems(early, cluster).join('\n')).toMatch(/repoint_replica:db1 must come after flashback_binlog:db1/)
  })

  it('file/position, the recorded position inside db1\'s last transaction: refused naming it, or saved and rewound from its start', () => {
    const {cluster, snapshot} = afterFailover({db1State: '', db2State: ''})
    const fileCluster = {...cluster, gtid: 'off' as const}
    const cut = {file: 'mysql-bin.000001', pos: 700}
    const input = {server: 'db1', failover, range: range([null], cut)}
    expect(() => planRejoin(fileCluster, snapshot, header, {...input, flashback: false})).toThrow(
      /^db1 has 1 extra transaction\(s\) db2 lacks \(binlog mysql-bin\.000001:700 to mysql-bin\.000002:900, 2 row event\(s\)\); re-pointing it would keep them silently/,
    )
    const plan = planRejoin(fileCluster, snapshot, header, {...input, flashback: true})
    expect(plan.steps.map((s) => s.type)).toEqual(['set_read_only', 'save_master_binlog', 'flashback_binlog', 'repoint_replica', 'verify_replication'])
    expect(plan.steps[1]).toMatchObject({params: {from: cut}})
    expect(plan.steps[2]).toMatchObject({params: {from: cut, transactions: 1}})
    expect(plan.decision.dataLoss).toMatchObject({none: false, lostAfter: cut})
    expect(planProblems(plan, fileCluster)).toEqual([])
  })

  it('file/position: re-pointed to the promotion coordinates from the failover journal', () => {
    const {cluster, snapshot} = afterFailover({db1State: '', db2State: ''}, failover.held)
    const fileCluster = {...cluster, gtid: 'off' as const}
    const plan = planRejoin(fileCluster, snapshot, header, {server: 'db1', flashback: false, failover, range: null})
    expect(plan.steps[1]).toMatchObject({type: 'repoint_replica', params: {gtid: false, at: failover.promotion, coordinates: null}})
    expect(planProblems(plan, fileCluster)).toEqual([])
    const moved = structuredClone(plan)
    ;(moved.steps[1]!.params as {at: unknown}).at = {file: 'mysql-bin.000001', pos: 4}
    expect(planProblems(moved, fileCluster).join('\n')).toMatch(/params\.preview/)
    expect(() => planRejoin(fileCluster, snapshot, header, {server: 'db1', flashback: false, failover: null, range: null})).toThrow(/no failover plan with db1 as dead master/)
  })
})
