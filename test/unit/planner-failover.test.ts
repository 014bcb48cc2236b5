import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'
import {parseClusterConfig} from '../../src/config/load.js'
import type {SqlFacts, SshFacts, Snapshot} from '../../src/inspect/types.js'
import {planFor} from '../../src/plan/planner.js'
import {planProblems} from '../../src/plan/validate.js'

// Plans from recorded golden snapshots, each changed in the one way a test is about.
const goldenDir = join(dirname(fileURLToPath(import.meta.url)), '../golden')
const header = {tool: 'mha test', createdAt: '2026-01-01T00:00:00.000Z', configFile: 'cluster.yaml'}

function scenario(name: string) {
  const dir = join(goldenDir, name)
  const cluster = parseClusterConfig(readFileSync(join(dir, 'cluster.yaml'), 'utf8'), join(dir, 'cluster.yaml'), {})
  const snapshot = JSON.parse(readFileSync(join(dir, 'snapshot.json'), 'utf8')) as Snapshot
  const sql = (server: string) => snapshot.servers.find((s) => s.name === server)!.sql as SqlFacts
  const ssh = (server: string) => snapshot.servers.find((s) => s.name === server)!.ssh as SshFacts
  return {cluster, snapshot, sql, ssh, plan: () => planFor(cluster, snapshot, header)}
}

describe('dead master whose host is down right after a binlog rotation (MHA bug 143)', () => {
  // db1 rotated to mysql-bin.000002 just before dying; db2 (latest, candidate_master) has read into the new
  // file but its SQL thread is still in mysql-bin.000001; db3 lags in mysql-bin.000001. db1's host is down.
  function rotated() {
    const s = scenario('mariadb-file-ssh-down')
    expect(s.snapshot.servers[0]!.ssh.reachable).toBe(false)
    s.sql('db2').replica!.read = {file: 'mysql-bin.000002', pos: 1500}
    s.sql('db2').replica!.executed = {file: 'mysql-bin.000001', pos: 20155000}
    return s
  }
  const sizesFromRelay = [{source: 'db2', files: [{file: 'mysql-bin.000001', size: 20155307}], problem: null}]

  it('counts lag across files with the sizes read from the latest replica\'s relay logs, and plans the failover', () => {
    const s = rotated()
    s.snapshot.masterFileSizes = sizesFromRelay
    const plan = s.plan()
    expect(plan.kind).toBe('failover')
    expect(plan.decision.newMaster).toBe('db2')
    const rules = Object.fromEntries(plan.decision.candidates.map((c) => [c.server, c.rules.find((r) => r.rule === 'replication_delay')!.detail]))
    // db2: 20155307 - 20155000 + 1500; db3: 20155307 - 2016203 + 1500.
    expect(rules).toEqual({
      db2: '1807 bytes behind the latest replica (limit max_lag_bytes=100000000)',
      db3: '18140604 bytes behind the latest replica (limit max_lag_bytes=100000000)',
    })
    expect(plan.decision.dataLoss).toMatchObject({
      none: false,
      lostAfter: {file: 'mysql-bin.000002', pos: 1500},
      statement: expect.stringMatching(/^events after mysql-bin\.000002:1500 in db1's binlog are lost: db1's host cannot be reached over SSH/) as unknown,
    })
    expect(plan.steps.some((x) => x.type === 'save_master_binlog')).toBe(false)
  })

  it('without those sizes, no replica can be promoted, and the reason names the files', () => {
    const s = rotated()
    expect(() => s.plan()).toThrow(/no replica can become the new master: db2 rejected \(replication_delay\): executed mysql-bin\.000001:20155000 is in an older master file than mysql-bin\.000002:1500/)
  })

  it('a relay-log reading problem is told in the notes', () => {
    const s = rotated()
    s.snapshot.masterFileSizes = [...sizesFromRelay, {source: 'db3', files: [], problem: "db3's relay logs cannot be listed over SSH"}]
    expect(s.plan().decision.notes).toContain("db1's binlog file sizes: db3's relay logs cannot be listed over SSH")
  })

  it('sizes listed on the master\'s host over SSH win over those from relay logs', () => {
    const s = scenario('mariadb-file-lagging')
    s.sql('db2').replica!.read = {file: 'mysql-bin.000002', pos: 1500}
    s.sql('db2').replica!.executed = {file: 'mysql-bin.000001', pos: 20155000}
    s.ssh('db1').binlogs = [
      {file: 'mysql-bin.000001', size: 20155400},
      {file: 'mysql-bin.000002', size: 1500},
    ]
    s.snapshot.masterFileSizes = [{source: 'db2', files: [{file: 'mysql-bin.000001', size: 99}], problem: null}]
    const plan = s.plan()
    expect(plan.decision.candidates.find((c) => c.server === 'db2')!.rules.find((r) => r.rule === 'replication_delay')!.detail).toBe('1900 bytes behind the latest replica (limit max_lag_bytes=100000000)')
  })
})

describe('the dead master\'s binlog tail when files are missing on its host', () => {
  // db2 has read db1's binlog up to mysql-bin.000001:20155307; db1's host answers SSH.
  const dir = '/var/tmp/mha-sandbox/app1/host1/data'

  it('states the loss from the read position when the file it needs was purged', () => {
    const s = scenario('mariadb-file-lagging')
    s.ssh('db1').binlogs = [
      {file: 'mysql-bin.000002', size: 900},
      {file: 'mysql-bin.000003', size: 400},
    ]
    const plan = s.plan()
    expect(plan.decision.dataLoss).toEqual({
      none: false,
      statement: `events after mysql-bin.000001:20155307 in db1's binlog are lost: mysql-bin.000001 is no longer in ${dir} on db1`,
      lostAfter: {file: 'mysql-bin.000001', pos: 20155307},
      lostGtids: null,
      abandoned: [],
    })
    expect(plan.steps.some((x) => x.type === 'save_master_binlog')).toBe(false)
    expect(plan.steps.some((x) => x.type === 'apply_logs' && (x.params as {masterTail: unknown}).masterTail !== null)).toBe(false)
  })

  it('saves only up to a hole in the file list and states the loss from the hole', () => {
    const s = scenario('mariadb-file-lagging')
    s.ssh('db1').binlogs = [
      {file: 'mysql-bin.000001', size: 20155800},
      {file: 'mysql-bin.000003', size: 400},
    ]
    const plan = s.plan()
    expect(plan.decision.dataLoss).toEqual({
      none: false,
      statement:
        `events after mysql-bin.000001:20155800 in db1's binlog are lost: mysql-bin.000002 is missing from ${dir} on db1 (the list goes on at mysql-bin.000003), so nothing after it can be applied in order; ` +
        `db1's binlog after mysql-bin.000001:20155307 (493 bytes in mysql-bin.000001) is saved over SSH and applied`,
      lostAfter: {file: 'mysql-bin.000001', pos: 20155800},
      lostGtids: null,
      abandoned: [],
    })
    const save = plan.steps.find((x) => x.type === 'save_master_binlog')!
    expect(save.params).toMatchObject({dir, from: {file: 'mysql-bin.000001', pos: 20155307}, files: ['mysql-bin.000001']})
  })

  it('a hole right after a file read to its end leaves nothing to save', () => {
    const s = scenario('mariadb-file-lagging')
    s.ssh('db1').binlogs = [
      {file: 'mysql-bin.000001', size: 20155307},
      {file: 'mysql-bin.000003', size: 400},
    ]
    const plan = s.plan()
    expect(plan.decision.dataLoss).toMatchObject({
      none: false,
      statement: `events after mysql-bin.000001:20155307 in db1's binlog are lost: mysql-bin.000002 is missing from ${dir} on db1 (the list goes on at mysql-bin.000003), so nothing after it can be applied in order`,
      lostAfter: {file: 'mysql-bin.000001', pos: 20155307},
    })
    expect(plan.steps.some((x) => x.type === 'save_master_binlog')).toBe(false)
  })

  it('with every file in place, the whole tail is saved and nothing is lost', () => {
    const s = scenario('mariadb-file-lagging')
    s.ssh('db1').binlogs = [
      {file: 'mysql-bin.000001', size: 20155800},
      {file: 'mysql-bin.000002', size: 400},
    ]
    const plan = s.plan()
    expect(plan.decision.dataLoss).toMatchObject({none: true, lostAfter: null})
    expect(plan.steps.find((x) => x.type === 'save_master_binlog')!.params).toMatchObject({files: ['mysql-bin.000001', 'mysql-bin.000002']})
  })
})

describe('MariaDB errant transactions, judged from gtid_binlog_state', () => {
  // db1 (server_id 1) is dead; db2 (candidate_master) has executed 0-1-2, db3 (latest) 0-1-3.
  function gtidScenario(db2State: string, db3State: string) {
    const s = scenario('mariadb-gtid-lagging-tail')
    s.sql('db2').gtid.binlogState = db2State
    s.sql('db3').gtid.binlogState = db3State
    return s
  }

  it('a local write on a replica followed by replicated transactions is errant: the replica is neither promoted nor re-pointed', () => {
    // gtid_binlog_pos of db2 stays 0-1-2: the local write 0-2-1 shows only in its binlog state.
    const s = gtidScenario('0-1-2,0-2-1', '0-1-3')
    expect(s.sql('db2').gtid.binlogPos).toBe('0-1-2')
    const plan = s.plan()
    expect(plan.decision.newMaster).toBe('db3')
    const db2 = plan.decision.candidates.find((c) => c.server === 'db2')!
    expect(db2.reason).toBe('rejected (no_errant_transactions): it holds transactions no other server has: 0-2-1')
    expect(plan.decision.notes).toContain('db2 has errant transactions (0-2-1) that no other server has; it is neither promoted nor re-pointed: remove them or rebuild it, then re-point it by hand')
    expect(plan.decision.dataLoss.abandoned).toEqual(['db2'])
    expect(plan.steps.some((x) => x.server === 'db2' && x.type === 'repoint_replica')).toBe(false)
  })

  it('a clean set is not flagged: the dead master\'s transactions only the latest replica has, and an earlier master\'s that all have', () => {
    const plan = gtidScenario('0-5-1,0-1-2', '0-5-1,0-1-3').plan()
    expect(plan.decision.newMaster).toBe('db2')
    expect(plan.decision.candidates.every((c) => c.eligible)).toBe(true)
    expect(plan.decision.dataLoss).toMatchObject({none: true, abandoned: []})
    expect(plan.decision.notes).toEqual([])
  })
})

describe('GTID mode: how the new master gets what it lacks', () => {
  // db2 (candidate_master) executed up to mysql-bin.000001:747; db3, the latest, read up to 11717.
  const ids = (plan: ReturnType<typeof planFor>) => plan.steps.map((x) => x.id)
  const step = (plan: ReturnType<typeof planFor>, id: string) => plan.steps.find((x) => x.id === id)

  it("saves the dead master's binlog from the new master's executed position, so a transaction the latest replica holds only in part comes whole", () => {
    const plan = scenario('mariadb-gtid-lagging-tail').plan()
    expect(plan.decision.newMaster).toBe('db2')
    expect(step(plan, 'save_master_binlog:db1')?.params).toMatchObject({from: {file: 'mysql-bin.000001', pos: 747}})
    expect(step(plan, 'apply_logs:db2')?.params).toEqual({ownRelay: null, relayDiff: null, masterTail: {fromStep: 'save_master_binlog:db1', output: 'file'}})
    // First what db3 has (kept even if the binlog cannot be saved at apply time), then the binlog, softly.
    expect(step(plan, 'apply_logs:db2')?.after).toEqual(['catch_up_from:db2'])
    expect(step(plan, 'apply_logs:db2')?.settledAfter).toEqual(['save_master_binlog:db1'])
    expect(step(plan, 'save_master_binlog:db1')?.group).toBe('optional')
    expect(step(plan, 'catch_up_from:db2')?.group).toBe('master')
    expect(step(plan, 'wait_relay_log_applied:db3')?.group).toBe('master')
    expect(step(plan, 'repoint_replica:db3')?.group).toBe('replica:db3')
  })

  it('says when the new master holds a GTID domain back behind its executed position, and that the wait executes it first', () => {
    const s = scenario('mariadb-gtid-lagging-tail')
    // Parallel replication: domain 1 held at seq 5 of 9 received, domain 0 committed on to its end.
    s.sql('db2').replica!.retrievedGtid = '0-1-2,1-1-9'
    s.sql('db2').gtid.slavePos = '0-1-2,1-1-5'
    const plan = s.plan()
    expect(plan.decision.notes.filter((n) => n.includes('low-water mark'))).toEqual([
      "db2 has received transactions it has not executed in domain 1 (seq 6..9), while other domains committed on: its executed position mysql-bin.000001:747 is its furthest commit, not a low-water mark (parallel replication commits GTID domains independently); wait_relay_log_applied:db2 executes them in every domain before db1's binlog after that position is applied",
    ])
    expect(step(plan, 'save_master_binlog:db1')?.params).toMatchObject({from: {file: 'mysql-bin.000001', pos: 747}})
    // One domain behind is plain lag: nothing to say.
    s.sql('db2').replica!.retrievedGtid = '0-1-9'
    s.sql('db2').gtid.slavePos = '0-1-2'
    expect(s.plan().decision.notes.filter((n) => n.includes('low-water mark'))).toEqual([])
  })

  function hostDown() {
    const s = scenario('mariadb-gtid-lagging-tail')
    s.snapshot.servers[0]!.ssh = {reachable: false, kind: 'connect', message: 'cannot connect over SSH (ECONNREFUSED)'}
    return s
  }

  it('without that binlog, catches up from the latest replica by GTID when it logs what it replicates', () => {
    const plan = hostDown().plan()
    expect(ids(plan)).toContain('catch_up_from:db2')
    expect(step(plan, 'catch_up_from:db2')?.params).toEqual({source: 'db3'})
    expect(ids(plan).indexOf('wait_relay_log_applied:db3')).toBeLessThan(ids(plan).indexOf('catch_up_from:db2'))
  })

  it("with log_slave_updates off on the latest replica, copies from its relay log instead of a catch-up that would bring nothing", () => {
    const s = hostDown()
    s.sql('db3').logSlaveUpdates = false
    const plan = s.plan()
    expect(ids(plan)).not.toContain('catch_up_from:db2')
    expect(step(plan, 'save_relay_diff:db2')?.params).toMatchObject({target: 'db2', diff: {source: 'db3', offset: 1046}})
    expect(step(plan, 'apply_logs:db2')?.params).toEqual({
      ownRelay: {fromStep: 'wait_relay_log_applied:db2', output: 'position'},
      relayDiff: {fromStep: 'save_relay_diff:db2', output: 'file'},
      masterTail: null,
    })
  })

  it('says what the new master will lack when neither route exists', () => {
    const s = hostDown()
    s.sql('db3').logSlaveUpdates = false
    s.snapshot.relayLookups = []
    const plan = s.plan()
    expect(ids(plan)).not.toContain('catch_up_from:db2')
    expect(ids(plan)).not.toContain('save_relay_diff:db2')
    expect(plan.decision.dataLoss.none).toBe(false)
    expect(plan.decision.dataLoss.statement).toMatch(/db2 will lack the transactions after mysql-bin\.000001:747: db3 has log_bin or log_slave_updates off/)
  })
})

describe("a failover that leaves work to the operator (MHA's --skip_change_master, --skip_disable_read_only)", () => {
  it('recovers every survivor but re-points none, or leaves the new master read_only, and the plan says which; apply checks it holds', () => {
    const s = scenario('mariadb-file-lagging')
    const full = s.plan()
    const repointed = full.steps.filter((x) => x.type === 'repoint_replica').map((x) => x.server)
    expect(repointed.length).toBeGreaterThan(0)
    expect(full.decision.leftToOperator).toBeUndefined()

    const skipped = planFor(s.cluster, s.snapshot, header, {leave: {changeMaster: true, disableReadOnly: false}})
    expect(skipped.steps.filter((x) => x.type === 'repoint_replica')).toEqual([])
    expect(skipped.decision.leftToOperator).toMatchObject({repoint: repointed, disableReadOnly: false})
    // Recovered all the same: every apply_logs of the full plan is there.
    expect(skipped.steps.filter((x) => x.type === 'apply_logs').map((x) => x.id)).toEqual(full.steps.filter((x) => x.type === 'apply_logs').map((x) => x.id))
    expect(skipped.steps.some((x) => x.type === 'enable_writes')).toBe(true)
    expect(planProblems(skipped, s.cluster)).toEqual([])

    const readOnly = planFor(s.cluster, s.snapshot, header, {leave: {changeMaster: false, disableReadOnly: true}})
    expect(readOnly.steps.filter((x) => x.type === 'enable_writes')).toEqual([])
    expect(readOnly.steps.filter((x) => x.type === 'repoint_replica').map((x) => x.server)).toEqual(repointed)
    expect(readOnly.decision.leftToOperator).toEqual({repoint: [], disableReadOnly: true, todo: [`make ${readOnly.decision.newMaster} writable (SET GLOBAL read_only=0): it is left read_only`]})
    expect(planProblems(readOnly, s.cluster)).toEqual([])
    // Said left but not: refused.
    expect(planProblems({...full, decision: {...full.decision, leftToOperator: {repoint: [repointed[0]!], disableReadOnly: false, todo: []}}}, s.cluster)).toEqual([
      `decision.leftToOperator.repoint: the plan says re-pointing ${repointed[0]} is left to you, yet it has a repoint_replica step for it`,
    ])
  })
})
