import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'
import {renderPlan} from '../../src/cli/render-plan.js'
import {parseClusterConfig} from '../../src/config/load.js'
import type {Snapshot, SqlFacts} from '../../src/inspect/types.js'
import {effectOf} from '../../src/plan/effects.js'
import {validatePlan} from '../../src/plan/plan-file.js'
import {planSwitchover} from '../../src/plan/switchover.js'
import type {Plan} from '../../src/plan/types.js'
import {planProblems} from '../../src/plan/validate.js'

// The recorded healthy GTID sandbox (db1 master, db2 candidate_master and db3 replicas, both caught up),
// changed in the one way each refusal is about.
const dir = join(dirname(fileURLToPath(import.meta.url)), '../golden/mariadb-gtid-switchover')
const header = {tool: 'mha test', createdAt: '2026-01-01T00:00:00.000Z', configFile: 'cluster.yaml'}

function scenario(extraYaml = '') {
  const file = join(dir, 'cluster.yaml')
  const cluster = parseClusterConfig(readFileSync(file, 'utf8') + extraYaml, file, {})
  const snapshot = JSON.parse(readFileSync(join(dir, 'snapshot.json'), 'utf8')) as Snapshot
  const sql = (server: string) => snapshot.servers.find((s) => s.name === server)!.sql as SqlFacts
  const plan = (to?: string) => planSwitchover(cluster, snapshot, header, to)
  const refusal = (to?: string): string => {
    try {
      plan(to)
    } catch (error) {
      return (error as Error).message
    }
    throw new Error('expected the switchover to be refused')
  }
  return {cluster, sql, plan, refusal, snapshot}
}

const snapshotOf = (s: ReturnType<typeof scenario>) => s.snapshot

describe('switchover refusals', () => {
  it('plans a switch of the recorded healthy cluster, to a named replica and to the best one', () => {
    const s = scenario()
    const named = s.plan('db3')
    expect(named.decision).toMatchObject({oldMaster: 'db1', deadMaster: null, newMaster: 'db3'})
    expect(named.decision.candidates.map((c) => [c.server, c.chosen, c.reason])).toEqual([
      ['db2', false, 'eligible, not chosen: db3 is named with --to'],
      ['db3', true, 'chosen: named with --to'],
    ])
    expect(planProblems(named, s.cluster)).toEqual([])
    expect(s.plan().decision.newMaster).toBe('db2')
  })

  it('is planned from SQL alone: a snapshot without SSH (as mha switchover and plan --switchover take it) records SSH as not inspected', () => {
    const s = scenario()
    for (const server of s.snapshot.servers) server.ssh = {reachable: false, kind: 'skipped', message: 'SSH not inspected'}
    const plan = s.plan('db2')
    expect(plan.observed.servers.map((o) => o.ssh)).toEqual([null, null, null])
    validatePlan(plan, 'the plan')
    expect(planProblems(plan, s.cluster)).toEqual([])
    // Inspected and unreachable stays false.
    const down = scenario()
    down.snapshot.servers[2]!.ssh = {reachable: false, kind: 'refused', message: 'db3: connection refused'}
    expect(down.plan('db2').observed.servers.map((o) => o.ssh)).toEqual([true, true, false])
  })

  it('refuses when a replica holds transactions the master lacks, the target or another one', () => {
    // A local write on db2 after it replicated 0-1-2: MariaDB shows it in gtid_binlog_state.
    const s = scenario()
    s.sql('db2').gtid.binlogState = '0-1-2,0-2-3'
    s.sql('db2').gtid.binlogPos = '0-2-3'
    expect(s.refusal('db3')).toBe('switchover refused: db2 has errant transactions (0-2-3) that db1 lacks')
    expect(s.refusal('db2')).toBe('switchover refused: db2 has errant transactions (0-2-3) that db1 lacks')
    const clean = scenario()
    clean.sql('db3').gtid.binlogState = '0-1-2'
    expect(clean.plan('db3').decision.newMaster).toBe('db3')
  })

  it('lets the target lag exactly switchover.max_lag_seconds, and refuses one second more or an unknown lag', () => {
    const s = scenario('switchover: {max_lag_seconds: 5}\n')
    s.sql('db3').replica!.secondsBehind = 5
    expect(s.plan('db3').decision.newMaster).toBe('db3')
    s.sql('db3').replica!.secondsBehind = 6
    expect(s.refusal('db3')).toBe('switchover refused: db3 lags 6 s behind db1 (limit switchover.max_lag_seconds=5)')
    s.sql('db3').replica!.secondsBehind = null
    expect(s.refusal('db3')).toBe('switchover refused: db3 lags an unknown time behind db1 (limit switchover.max_lag_seconds=5)')
  })

  it('judges the lag of the target only: another replica may lag', () => {
    const s = scenario()
    s.sql('db2').replica!.secondsBehind = 30
    expect(s.plan('db3').decision.newMaster).toBe('db3')
  })

  it('refuses when a replica\'s IO or SQL thread is not running, or has an error', () => {
    const io = scenario()
    io.sql('db2').replica!.ioThread = 'stopped'
    expect(io.refusal('db3')).toBe('switchover refused: db2\'s replication is not healthy (io=stopped sql=running)')
    const connecting = scenario()
    connecting.sql('db3').replica!.ioThread = 'connecting'
    expect(connecting.refusal('db2')).toBe('switchover refused: db3\'s replication is not healthy (io=connecting sql=running)')
    const sqlThread = scenario()
    sqlThread.sql('db2').replica!.sqlThread = 'stopped'
    expect(sqlThread.refusal('db3')).toBe('switchover refused: db2\'s replication is not healthy (io=running sql=stopped)')
    const ioError = scenario()
    Object.assign(ioError.sql('db3').replica!, {lastIoErrno: 2003, lastIoError: "error reconnecting to master 'repl@127.0.0.11:3306'"})
    expect(ioError.refusal('db2')).toBe("switchover refused: db3's replication is not healthy (io=running sql=running: error reconnecting to master 'repl@127.0.0.11:3306')")
  })

  const query = (seconds: number, statement: string) => ({id: 42, user: 'app', seconds, statement})

  it('is not blocked by long reads on the master, however long', () => {
    const s = scenario('switchover: {running_updates_limit: 10}\n')
    s.sql('db1').longQueries = [query(3600, 'SELECT SLEEP(3600)'), query(900, '  select count(*) from big'), query(600, 'WITH t AS (SELECT 1) SELECT * FROM t'), query(60, 'SHOW PROCESSLIST')]
    expect(s.plan('db3').decision.newMaster).toBe('db3')
  })

  it('is blocked by a write that has run running_updates_limit seconds, not by a younger one', () => {
    const s = scenario('switchover: {running_updates_limit: 10}\n')
    s.sql('db1').longQueries = [query(9, 'UPDATE t SET x = x + 1')]
    expect(s.plan('db3').decision.newMaster).toBe('db3')
    s.sql('db1').longQueries = [query(10, 'UPDATE t SET x = x + 1')]
    expect(s.refusal('db3')).toBe('switchover refused: db1 has an update running for 10 s (thread 42, app: UPDATE t SET x = x + 1); limit running_updates_limit=10')
    s.sql('db1').longQueries = [query(3600, 'SELECT SLEEP(3600)'), query(11, 'INSERT INTO t SELECT * FROM u')]
    expect(s.refusal('db3')).toMatch(/^switchover refused: db1 has an update running for 11 s \(thread 42, app: INSERT INTO t SELECT/)
  })

  it('states every reason at once', () => {
    const s = scenario()
    s.sql('db2').replica!.ioThread = 'stopped'
    s.sql('db3').replica!.secondsBehind = 9
    s.sql('db1').longQueries = [query(5, 'DELETE FROM t')]
    expect(s.refusal('db3')).toBe(
      "switchover refused: db2's replication is not healthy (io=stopped sql=running); db1 has an update running for 5 s (thread 42, app: DELETE FROM t); limit running_updates_limit=1; db3 lags 9 s behind db1 (limit switchover.max_lag_seconds=1)",
    )
  })
})

describe('switchover step order', () => {
  it('re-points the old master only after every other replica: until then they read its binlog, which would relay the new master\'s first writes', () => {
    const plan = scenario().plan('db2')
    const oldMaster = plan.steps.find((s) => s.id === 'repoint_replica:db1')!
    expect(oldMaster.after).toEqual(expect.arrayContaining(['repoint_replica:db3', 'release_write_block:db1', 'enable_writes:db2']))
    // And the other replica does not wait for the old master.
    expect(plan.steps.find((s) => s.id === 'repoint_replica:db3')!.after).not.toContain('repoint_replica:db1')
  })

  it('keeps only the new master\'s catch-up in the write block: the other replicas wait after its promotion', () => {
    const plan = scenario().plan('db2')
    expect(plan.steps.find((s) => s.id === 'wait_caught_up:db3')!.after).toEqual(['block_writes:db1', 'enable_writes:db2'])
    expect(plan.steps.find((s) => s.id === 'enable_writes:db2')!.after).toEqual(['record_position:db2'])
  })
})

describe('switchover rollback: every step before the promotion has its undo', () => {
  const online = 'hooks:\n  master_ip_online_change: /etc/mha/online_change\n'
  const rollbackOf = (plan: Plan) => plan.rollback!.steps.map((s) => ({id: s.id, server: s.server, after: s.after}))

  it('gives the writer address back to the old master: the online-change hook with --command=start, the old master as its new_master, only if the stop hook ran', () => {
    const s = scenario(online)
    const plan = s.plan('db2')
    expect(plan.steps.find((st) => st.id === 'run_hook:online_change_stop')).toMatchObject({server: 'db1', params: {command: 'stop'}})
    const undo = plan.rollback!.steps.find((st) => st.id === 'run_hook:online_change_start_db1')!
    expect(undo).toMatchObject({
      type: 'run_hook',
      server: 'db1',
      params: {hook: 'master_ip_online_change', command: 'start', path: '/etc/mha/online_change', origMaster: 'db2', newMaster: 'db1'},
      after: ['run_hook:online_change_stop'],
    })
    expect(plan.rollback!.ifFailedBefore).toBe('enable_writes:db2')
    expect(rollbackOf(plan).map((r) => r.id)).toEqual(['set_read_only:db2', 'unblock_writes:db1', 'run_hook:online_change_start_db1'])
    expect(planProblems(plan, s.cluster)).toEqual([])
    validatePlan(plan, 'with-hook.json')
    // The forward start (after the promotion) is not undone, and keeps the decision's servers.
    expect(plan.steps.find((st) => st.id === 'run_hook:online_change_start')!.params).toEqual({hook: 'master_ip_online_change', command: 'start', path: '/etc/mha/online_change'})
    // Review reads it: the plan's summary and mha show.
    expect(renderPlan(plan)).toContain('db1: run master_ip_online_change hook --command=start (new_master db1, orig_master db2)')
    expect(effectOf(undo, plan, s.cluster)).toEqual(["run /etc/mha/online_change --command=start --orig_master_host=127.0.0.12 --new_master_host=127.0.0.11 with MHA's arguments; the password in MHA_ORIG_MASTER_PASSWORD and MHA_NEW_MASTER_PASSWORD"])
    expect(effectOf(plan.steps.find((st) => st.id === 'run_hook:online_change_stop')!, plan, s.cluster)[0]).toContain('--command=stop --orig_master_host=127.0.0.11 --new_master_host=127.0.0.12')
  })

  it('undoes each step before the promotion that has an effect, the promotion included, the target read_only first; without the hook, no hook undo', () => {
    const plan = scenario().plan('db2')
    // Before the promotion: check (reads), block, the target's wait and its recorded position (reads), and the
    // promotion itself; the target stops replicating after it, before the old master's lock goes.
    expect(plan.steps.slice(0, plan.steps.findIndex((st) => st.id === 'enable_writes:db2') + 1).map((st) => st.id)).toEqual([
      'check_switchover:db1',
      'block_writes:db1',
      'wait_caught_up:db2',
      'record_position:db2',
      'enable_writes:db2',
    ])
    expect(plan.steps.find((st) => st.id === 'detach_replication:db2')!.after).toEqual(['enable_writes:db2'])
    expect(plan.steps.find((st) => st.id === 'release_write_block:db1')!.after).toEqual(['detach_replication:db2'])
    // Never detached before the promotion, the target needs no re-point back: it still replicates from db1.
    expect(rollbackOf(plan)).toEqual([
      {id: 'set_read_only:db2', server: 'db2', after: ['enable_writes:db2']},
      {id: 'unblock_writes:db1', server: 'db1', after: ['block_writes:db1']},
    ])
  })

  it('refuses a switchover plan that reads the position before the catch-up, promotes before it, or lets the lock go before the detach', () => {
    const s = scenario()
    const plan = s.plan('db2')
    const edited = (change: (p: Plan) => void) => {
      const copy = structuredClone(plan)
      change(copy)
      return planProblems(copy, s.cluster)
    }
    const step = (p: Plan, id: string) => p.steps.find((st) => st.id === id)!
    expect(edited((p) => (step(p, 'record_position:db2').after = ['block_writes:db1']))).toEqual(['record_position:db2 must come after wait_caught_up:db2'])
    expect(edited((p) => (step(p, 'enable_writes:db2').after = ['wait_caught_up:db2']))).toEqual(['enable_writes:db2 must come after record_position:db2'])
    expect(edited((p) => (step(p, 'release_write_block:db1').after = ['enable_writes:db2']))).toEqual(['release_write_block:db1 must come after detach_replication:db2: db2 stops replicating from db1 before its lock goes'])
  })

  it('refuses a plan whose rollback leaves a step undone, reverses a forward hook call, or adds an undo', () => {
    const s = scenario(online)
    const plan = s.plan('db2')
    const edited = (change: (p: Plan) => void) => {
      const copy = structuredClone(plan)
      change(copy)
      return planProblems(copy, s.cluster)
    }
    expect(edited((p) => p.rollback!.steps.splice(2, 1))).toEqual([
      'rollback.steps[2]: the plan has nothing, undoing the steps before the promotion gives run_hook:online_change_start_db1 ({"hook":"master_ip_online_change","command":"start","path":"/etc/mha/online_change","origMaster":"db2","newMaster":"db1"}, after run_hook:online_change_stop)',
    ])
    expect(
      edited((p) => {
        const hook = p.rollback!.steps[2]!
        if (hook.type === 'run_hook') hook.params.newMaster = 'db2'
      }),
    ).toEqual([expect.stringMatching(/^rollback\.steps\[2\]: the plan has run_hook:online_change_start_db1 with other fields, undoing/)])
    // The undos in another order: the target's read_only would no longer come first.
    expect(edited((p) => p.rollback!.steps.reverse())).toHaveLength(2)
    expect(
      edited((p) => {
        const hook = p.steps.find((st) => st.id === 'run_hook:online_change_start')!
        if (hook.type === 'run_hook') hook.params.newMaster = 'db1'
      }),
    ).toEqual(['step run_hook:online_change_start params.newMaster: db1; a hook call among the plan\'s steps takes its servers from the decision'])
    expect(edited((p) => p.rollback!.steps.push({id: 'enable_writes:db3', type: 'enable_writes', server: 'db3', params: {}, after: ['check_switchover:db1'], outputs: [], reason: 'x'}))).toEqual([
      'rollback.steps[3]: the plan has enable_writes:db3, undoing the steps before the promotion gives nothing',
    ])
    expect(edited((p) => (p.rollback!.ifFailedBefore = 'check_switchover:db1'))).toEqual(['rollback.ifFailedBefore: the plan says check_switchover:db1, the promotion is enable_writes:db2'])
    expect(edited((p) => delete p.rollback)).toEqual(['the plan has no rollback; it must list the undos set_read_only:db2, unblock_writes:db1, run_hook:online_change_start_db1, run if a step fails before enable_writes:db2'])
    // A step with an effect before the promotion that no undo exists for.
    expect(
      edited((p) => p.steps.splice(1, 0, {id: 'set_read_only:db3', type: 'set_read_only', server: 'db3', params: {}, after: ['check_switchover:db1'], outputs: [], reason: 'x'})),
    ).toEqual(['step set_read_only:db3 can run before the promotion, and a switchover has no undo for it'])
  })
})

describe('what a switchover needs, checked before its first effect', () => {
  const noFilters = {doDb: '', ignoreDb: '', doTable: '', ignoreTable: '', wildDoTable: '', wildIgnoreTable: ''}

  it('refuses a master whose own replicate-* filters differ from the replicas\', in one line naming both', () => {
    const s = scenario()
    s.sql('db1').filters = {...noFilters, doTable: 'app.t'}
    expect(s.refusal('db2')).toMatch(/^switchover refused: replication filters differ \(replicate_do_table differs: db1 has "app\.t", db2 has ""\): give every server the same/)
    const off = scenario('failover: {check_repl_filter: false}\n')
    off.sql('db1').filters = {...noFilters, doTable: 'app.t'}
    expect(off.plan('db2').decision.newMaster).toBe('db2')
  })

  it('refuses a busy target: any statement, a read too, running switchover.running_seconds_limit or more', () => {
    const s = scenario('switchover: {running_seconds_limit: 5}\n')
    s.sql('db2').longQueries = Array.from({length: 15}, (_, i) => ({id: 100 + i, user: 'app', seconds: 4 + (i % 3), statement: 'SELECT SLEEP(60)'}))
    expect(s.refusal('db2')).toBe('switchover refused: db2 is busy: 10 client statements have run 5 s or more (longest: thread 102, app, 6 s: SELECT SLEEP(60)); limit switchover.running_seconds_limit=5')
    // Younger ones do not count, nor those on a replica that is not the target.
    s.sql('db2').longQueries = [{id: 1, user: 'app', seconds: 4, statement: 'SELECT 1'}]
    s.sql('db3').longQueries = [{id: 2, user: 'app', seconds: 600, statement: 'SELECT 1'}]
    expect(s.plan('db2').decision.newMaster).toBe('db2')
  })

  it('refuses a session waiting on a held table lock on the master or the target', () => {
    const s = scenario('switchover: {running_seconds_limit: 2}\n')
    s.sql('db1').lockWaits = [{id: 7, user: 'app', seconds: 3, state: 'Waiting for table metadata lock'}]
    expect(s.refusal('db2')).toMatch(/^switchover refused: db1: 1 session \(thread 7 app\) has waited 2 s or more for a table lock someone holds \(Waiting for table metadata lock\); release it/)
    s.sql('db1').lockWaits = [{id: 7, user: 'app', seconds: 1, state: 'Waiting for table metadata lock'}]
    s.sql('db2').lockWaits = [{id: 8, user: 'system user', seconds: 9, state: 'Waiting for table level lock'}]
    expect(s.refusal('db2')).toMatch(/^switchover refused: db2: 1 session \(thread 8 system user\) has waited/)
  })

  it('refuses what re-pointing cannot do: no repl_password for an old master that replicates from nobody, no replication user on the target', () => {
    const s = scenario()
    const withoutPassword = {...s.cluster, replPassword: undefined}
    expect(() => planSwitchover(withoutPassword, snapshotOf(s), header, 'db2')).toThrow(
      /^switchover refused: db1 could not be re-pointed to db2: repl_password is not set in .*cluster\.yaml and db1 replicates from nobody, so it has no replication password of its own; set repl_password, or switchover\.orig_master_is_new_slave: false$/,
    )
    // The old master stays out of replication: nothing of it to re-point.
    expect(planSwitchover({...withoutPassword, switchover: {...s.cluster.switchover, origMasterIsNewSlave: false}}, snapshotOf(s), header, 'db2').decision.newMaster).toBe('db2')
    s.sql('db2').replUser = {exists: true, canReplicate: false}
    expect(s.refusal('db2')).toBe('switchover refused: db2: replication user repl lacks REPLICATION SLAVE, so no server could replicate from it; GRANT REPLICATION SLAVE ON *.* TO repl on db2')
  })
})
