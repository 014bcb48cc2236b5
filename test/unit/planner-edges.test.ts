import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'
import {parseClusterConfig} from '../../src/config/load.js'
import type {SqlFacts, Snapshot} from '../../src/inspect/types.js'
import {planFor, type PlanOptions} from '../../src/plan/planner.js'

// Plans from recorded golden snapshots, each changed in the one way a test is about (as planner-failover.test.ts).
const goldenDir = join(dirname(fileURLToPath(import.meta.url)), '../golden')
const header = {tool: 'mha test', createdAt: '2026-01-01T00:00:00.000Z', configFile: 'cluster.yaml'}

function scenario(name: string, editYaml = (yaml: string) => yaml) {
  const file = join(goldenDir, name, 'cluster.yaml')
  const cluster = parseClusterConfig(editYaml(readFileSync(file, 'utf8')), file, {})
  const snapshot = JSON.parse(readFileSync(join(goldenDir, name, 'snapshot.json'), 'utf8')) as Snapshot
  const server = (n: string) => snapshot.servers.find((s) => s.name === n)!
  const sql = (n: string) => server(n).sql as SqlFacts
  return {cluster, snapshot, server, sql, plan: (options: PlanOptions = {}) => planFor(cluster, snapshot, header, options)}
}
const sshDown = {reachable: false as const, kind: 'connect' as const, message: 'cannot connect over SSH (ECONNREFUSED)'}

describe('two servers on one host, on different ports', () => {
  // db3 runs on db2's host, on port 3307: another server, with its own candidate verdict, recovery and re-pointing.
  function sameHost() {
    const s = scenario('mariadb-file-lagging', (yaml) => yaml.replace('hostname: 127.0.0.13\n', 'hostname: 127.0.0.12\n    port: 3307\n'))
    s.server('db3').address = '127.0.0.12:3307'
    return s
  }

  it('are two servers: each is judged, recovered and re-pointed to the other\'s port', () => {
    const s = sameHost()
    expect(s.cluster.servers.map((x) => `${x.ip}:${x.port}`)).toEqual(['127.0.0.11:3306', '127.0.0.12:3306', '127.0.0.12:3307'])
    const plan = s.plan()
    expect(plan.decision.newMaster).toBe('db2')
    expect(plan.decision.candidates.map((c) => [c.server, c.eligible, c.chosen])).toEqual([
      ['db2', true, true],
      ['db3', true, false],
    ])
    expect(plan.observed.servers.map((o) => [o.name, o.address, o.role, o.source])).toEqual([
      ['db1', '127.0.0.11:3306', 'down', null],
      ['db2', '127.0.0.12:3306', 'replica', 'db1'],
      ['db3', '127.0.0.12:3307', 'replica', 'db1'],
    ])
    expect(plan.steps.find((x) => x.id === 'save_relay_diff:db3')?.params).toMatchObject({target: 'db3', diff: {source: 'db2'}})
    expect(plan.steps.find((x) => x.id === 'repoint_replica:db3')?.params).toMatchObject({source: 'db2', host: '127.0.0.12', port: 3306})
    expect(plan.steps.some((x) => x.id === 'repoint_replica:db2')).toBe(false)
  })
})

describe('the loss when the dead master\'s host is down and the latest replica is left out', () => {
  it('an errant latest replica: the loss starts where the best kept replica read, stated exactly', () => {
    // db2 read up to 88412705 but holds errant transactions; db3, kept, read up to 88409705.
    const s = scenario('mysql-5.7-gtid-errant')
    s.server('db1').ssh = sshDown
    const plan = s.plan()
    expect(plan.decision.latest).toEqual(['db2'])
    expect(plan.decision.newMaster).toBe('db3')
    expect(plan.decision.dataLoss).toEqual({
      none: false,
      statement:
        "events after mysql-bin.000123:88409705 in db1's binlog are lost: db1's host cannot be reached over SSH (cannot connect over SSH (ECONNREFUSED)) (transactions after GTID 5d3a1f2e-4b7c-11ee-9c41-0242ac120002:1207-18824); db2 will not be recovered",
      lostAfter: {file: 'mysql-bin.000123', pos: 88409705},
      lostGtids: null,
      abandoned: ['db2'],
    })
    expect(plan.decision.notes).toContain('what db2 received after mysql-bin.000123:88409705 is not used, since it is left out')
  })

  it('a latest replica out of service since an earlier failover: the loss starts where the remaining one read', () => {
    const s = scenario('mariadb-file-ssh-down')
    s.server('db2').sql = {reachable: false, kind: 'unreachable', message: 'db2 (127.0.0.12:3306): cannot connect (ECONNREFUSED)'}
    const plan = s.plan({outOfService: ['db2']})
    expect(plan.decision.newMaster).toBe('db3')
    expect(plan.decision.latest).toEqual(['db3'])
    expect(plan.decision.dataLoss).toMatchObject({
      none: false,
      statement: expect.stringMatching(/^events after mysql-bin\.000001:3934896 in db1's binlog are lost: db1's host cannot be reached over SSH/) as unknown,
      lostAfter: {file: 'mysql-bin.000001', pos: 3934896},
    })
  })

  it('a no_master latest replica still gives its data: the loss starts at its read position', () => {
    const s = scenario('mariadb-file-ssh-down', (yaml) => yaml.replace('    candidate_master: true\n', '    no_master: true\n'))
    const plan = s.plan()
    expect(plan.decision.newMaster).toBe('db3')
    expect(plan.decision.dataLoss).toMatchObject({none: false, lostAfter: {file: 'mysql-bin.000001', pos: 20155307}})
    expect(plan.steps.find((x) => x.id === 'save_relay_diff:db3')?.params).toMatchObject({diff: {source: 'db2'}})
  })
})

describe('GTID: two replicas at the same position', () => {
  // db2 has caught up with db3: the same read coordinates and the same GTID position. MHA's order decides:
  // a candidate_master among the latest first, else the first latest replica in config order.
  function tie(editYaml?: (yaml: string) => string) {
    const s = scenario('mariadb-gtid-lagging-tail', editYaml)
    const db3 = s.sql('db3')
    Object.assign(s.sql('db2').replica!, {read: db3.replica!.read, executed: db3.replica!.executed, retrievedGtid: db3.replica!.retrievedGtid})
    s.sql('db2').gtid = {...db3.gtid}
    delete s.sql('db2').gtid.binlogState
    delete s.sql('db3').gtid.binlogState
    return s.plan()
  }
  const chosen = (plan: ReturnType<typeof tie>) => [plan.decision.newMaster, plan.decision.candidates.find((c) => c.chosen)!.reason]

  it('both are latest; the candidate_master wins whichever comes first', () => {
    expect(tie().decision.latest).toEqual(['db2', 'db3'])
    expect(chosen(tie())).toEqual(['db2', 'chosen: a candidate_master that has the newest data'])
    const db3Candidate = tie((yaml) => yaml.replace('    candidate_master: true\n', '').replace('hostname: 127.0.0.13\n', 'hostname: 127.0.0.13\n    candidate_master: true\n'))
    expect(chosen(db3Candidate)).toEqual(['db3', 'chosen: a candidate_master that has the newest data'])
  })

  it('without a candidate_master, config order breaks the tie', () => {
    const plan = tie((yaml) => yaml.replace('    candidate_master: true\n', ''))
    expect(chosen(plan)).toEqual(['db2', 'chosen: a replica that has the newest data (no candidate_master is eligible)'])
    expect(plan.decision.candidates.find((c) => c.server === 'db3')!.reason).toBe('eligible, not chosen: db2 comes first as a replica that has the newest data (no candidate_master is eligible)')
  })
})
