import {spawn} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import type {ApplyReport} from '../../src/apply/events.js'
import {journalFileOf} from '../../src/apply/executor.js'
import {formatCoordinates} from '../../src/binlog/coordinates.js'
import type {Plan} from '../../src/plan/types.js'
import {WriteLoad} from '../../src/sandbox/load.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {secretsOf, stopSshd} from '../../src/sandbox/sandbox.js'
import type {ServerConnection} from '../../src/inspect/mysql.js'
import {expectConsistent, killMasterAndWait, planFailover, replicateInParallel, root, runMha, startSandbox, survivors, type TestSandbox} from './harness.js'

// Each test: a real sandbox under write load (each write a two-row transaction, one row in a table without
// a unique key), a fault, plan and apply as a user runs them, then every acknowledged write on the new master,
// none twice, and the survivors equal.

let sandbox: TestSandbox | undefined
const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-noloss-'))
const OCTET = 71

afterEach(async () => {
  await sandbox?.down()
  sandbox = undefined
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function apply(s: TestSandbox, file: string): Promise<{code: number; report: ApplyReport}> {
  const result = await runMha(['apply', file, '--config', s.configFile, '--json'])
  return {code: result.code, report: JSON.parse(result.stdout) as ApplyReport}
}

async function replicaStatus(s: TestSandbox, host: string): Promise<Record<string, unknown>> {
  return (await s.sql(host, (c) => c.queryOne('SHOW SLAVE STATUS')))!
}

/** A new sandbox with the write load running on db1 for `warmMs`. */
async function underLoad(name: string, gtid: boolean, warmMs: number): Promise<{s: TestSandbox; load: WriteLoad}> {
  sandbox = await startSandbox(name, OCTET, {gtid})
  await WriteLoad.prepare(sandbox.state, 'db1')
  const load = new WriteLoad(sandbox.state)
  load.start()
  await sleep(warmMs)
  return {s: sandbox, load}
}

describe('no acknowledged write lost, none applied twice', () => {
  /** The plan said no loss, and so does the apply report: what the tests then check against the servers. */
  function expectNoLossStated(plan: Plan, report: ApplyReport): void {
    expect(plan.decision.dataLoss.none, plan.decision.dataLoss.statement).toBe(true)
    expect(plan.decision.dataLoss.statement).toMatch(/^none: /)
    expect(plan.decision.dataLoss.lostAfter).toBeNull()
    expect(report.dataLoss).toBe(plan.decision.dataLoss.statement)
  }

  /**
   * The candidate replicates with 4 optimistic parallel threads; a client holds a lock on it across the master's
   * kill (`hold` takes it on its own connection and resolves once it is held), so its workers wait while its
   * coordinator says it has read everything. Apply must wait for them, then promote it with everything.
   */
  async function parallelCase(name: string, hold: (c: ServerConnection) => Promise<void>, release: (c: ServerConnection) => Promise<void>, waiting: (s: TestSandbox) => Promise<boolean>): Promise<void> {
    sandbox = await startSandbox(name, OCTET)
    const s = sandbox
    await replicateInParallel(s, 4, 'optimistic')
    await WriteLoad.prepare(s.state, 'db1')
    const load = new WriteLoad(s.state)
    load.start()
    await sleep(1000)
    let let_go: () => void = () => undefined
    let taken: () => void = () => undefined
    const isHeld = new Promise<void>((resolve) => (taken = resolve))
    const held = s.sql('db2', async (c) => {
      await hold(c)
      taken()
      await new Promise<void>((resolve) => (let_go = resolve))
      await release(c)
    })
    await isHeld
    await sleep(1000)
    await killMasterAndWait(s)
    // The fault is in place at the kill: db2 has received more than it has executed, its workers wait on the lock.
    const db2 = await replicaStatus(s, 'db2')
    const behind = db2.Relay_Master_Log_File !== db2.Master_Log_File || Number(db2.Exec_Master_Log_Pos) < Number(db2.Read_Master_Log_Pos)
    expect(behind, `db2 executed ${String(db2.Relay_Master_Log_File)}:${String(db2.Exec_Master_Log_Pos)}, read ${String(db2.Master_Log_File)}:${String(db2.Read_Master_Log_Pos)}`).toBe(true)
    expect(await waiting(s), 'a replication worker waits for the lock').toBe(true)
    const {file, plan} = await planFailover(s, plansDir, name)
    expect(plan.decision.newMaster).toBe('db2')
    const applying = apply(s, file)
    await sleep(2500)
    let_go()
    await held
    const result = await applying
    expect(result.report.status, result.report.message).toBe('applied')
    expectNoLossStated(plan, result.report)
    await load.stop()
    expect(load.acked.length).toBeGreaterThan(50)
    await expectConsistent(s, 'db2', load.acked)
  }

  it('waits for parallel replication workers held by a table lock on the candidate, then promotes it with everything', async () => {
    // A backup-style read lock on the candidate.
    await parallelCase(
      'itnoloss1',
      (c) => c.execute('LOCK TABLES mhatest.acked READ'),
      (c) => c.execute('UNLOCK TABLES'),
      async (s) => (await s.sql('db2', (c) => c.query("SELECT id FROM information_schema.PROCESSLIST WHERE USER = 'system user' AND STATE LIKE 'Waiting for table%lock'"))).length > 0,
    )
  })

  it('waits for parallel replication workers held by a row lock on the candidate, then promotes it with everything', async () => {
    // A client's open transaction holds, FOR UPDATE, the rows the next replicated writes insert (every id above
    // those db2 has: a next-key lock on the end of the index), so the worker applying the next write waits on it.
    await parallelCase(
      'itnoloss6',
      async (c) => {
        await c.execute('BEGIN')
        const top = Number((await c.queryOne('SELECT COALESCE(MAX(id), 0) AS top FROM mhatest.acked'))!.top)
        await c.query('SELECT id FROM mhatest.acked WHERE id > ? FOR UPDATE', [top])
      },
      (c) => c.execute('ROLLBACK'),
      async (s) => (await s.sql('db2', (c) => c.query("SELECT trx_id FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'"))).length > 0,
    )
  })

  it('GTID mode: a lagging candidate gets a 150,000-row transaction that the latest replica holds only in part', async () => {
    sandbox = await startSandbox('itnoloss2', OCTET, {gtid: true})
    const s = sandbox
    await WriteLoad.prepare(s.state, 'db1')
    await s.sql('db1', (c) => c.execute('CREATE TABLE mhatest.big (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(100))'))
    const load = new WriteLoad(s.state)
    load.start()
    await sleep(800)
    // db2, the candidate, stops receiving; db3 receives slowly, so the big transaction is in flight at the kill.
    await s.sql('db2', (c) => c.execute('STOP SLAVE IO_THREAD'))
    await s.sql('db3', async (c) => {
      await c.execute('STOP SLAVE IO_THREAD')
      await c.execute('SET GLOBAL read_binlog_speed_limit = 3000')
      await c.execute('START SLAVE IO_THREAD')
    })
    const before = Number((await replicaStatus(s, 'db3')).Read_Master_Log_Pos)
    await s.sql('db1', (c) => c.execute("INSERT INTO mhatest.big (v) SELECT REPEAT('x', 100) FROM mhatest.seq_1_to_150000", 120_000))
    await waitFor('db3 to have received part of the big transaction', 60_000, async () => Number((await replicaStatus(s, 'db3')).Read_Master_Log_Pos) > before + 3_000_000)
    await killMasterAndWait(s)
    await s.sql('db3', (c) => c.execute('SET GLOBAL read_binlog_speed_limit = 0'))
    const db3 = await replicaStatus(s, 'db3')
    // The fault is in place: db3's relay log ends inside the transaction, which it has not executed.
    expect(Number((await s.sql('db3', (c) => c.queryOne('SELECT COUNT(*) AS n FROM mhatest.big')))!.n)).toBe(0)
    expect(Number(db3.Read_Master_Log_Pos)).toBeGreaterThan(Number(db3.Exec_Master_Log_Pos))

    const {file, plan} = await planFailover(s, plansDir, 'gtid-big')
    expect(plan.decision.newMaster).toBe('db2')
    expect(plan.decision.dataLoss.none).toBe(true)
    const result = await apply(s, file)
    expect(result.report.status, result.report.message).toBe('applied')
    expect(result.report.dataLoss).toMatch(/^none: /)
    await load.stop()
    await expectConsistent(s, 'db2', load.acked)
    for (const host of survivors(s)) {
      await waitFor(`${host} to hold the big transaction`, 60_000, async () => Number((await s.sql(host, (c) => c.queryOne('SELECT COUNT(*) AS n FROM mhatest.big')))!.n) === 150_000)
    }
  })

  /** db3 stops receiving and db1 writes on: db3 then needs a relay-log diff of many transactions from db2. */
  async function laggingReplica(name: string, extraTransactions: number): Promise<{s: TestSandbox; load: WriteLoad}> {
    sandbox = await startSandbox(name, OCTET)
    const s = sandbox
    await WriteLoad.prepare(s.state, 'db1')
    const load = new WriteLoad(s.state)
    await s.sql('db1', (c) => c.execute('CREATE TABLE mhatest.filler (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(200))'))
    load.start()
    await sleep(500)
    await s.sql('db3', (c) => c.execute('STOP SLAVE IO_THREAD'))
    await s.sql('db1', async (c) => {
      for (let i = 0; i < extraTransactions; i++) await c.execute("INSERT INTO mhatest.filler (v) VALUES (REPEAT('f', 200))")
    })
    await sleep(500)
    await killMasterAndWait(s)
    return {s, load}
  }

  it('apply_logs failing part-way on a conflicting row, fixed, then applied again: the rest only', async () => {
    const {s, load} = await laggingReplica('itnoloss3', 200)
    const {file, plan} = await planFailover(s, plansDir, 'conflict')
    expect(plan.steps.map((step) => step.id)).toContain('save_relay_diff:db3')
    // A row db3 should receive from the diff is already there: the stream stops on a duplicate key.
    const conflicting = load.acked.at(-3)!
    await s.sql('db3', async (c) => {
      await c.execute('SET SESSION sql_log_bin = 0')
      await c.query('INSERT INTO mhatest.acked (id) VALUES (?)', [conflicting])
    })
    const first = await apply(s, file)
    // The new master does not wait for a replica's trouble: db2 takes writes, db3 is left out and named.
    expect(first.code).toBe(10)
    expect(first.report.status).toBe('partial')
    expect(first.report.leftOut.map((l) => l.server)).toEqual(['db3'])
    expect(first.report.leftOut[0]!.reason).toMatch(/Duplicate entry/)
    expect(first.report.leftOut[0]!.retry).toContain(`mha apply ${file}`)
    // The master has it all, but db3 is not proven complete: the report names it instead of saying "none".
    expect(first.report.dataLoss).not.toMatch(/^none/)
    expect(first.report.dataLoss).toMatch(/^db2 lacks nothing .*; left out, not proven complete: db3 \(.*Duplicate entry/)
    expect(Number((await s.sql('db2', (c) => c.queryOne('SELECT @@global.read_only+0 AS ro')))!.ro)).toBe(0)
    const partial = Number((await s.sql('db3', (c) => c.queryOne('SELECT COUNT(*) AS n FROM mhatest.filler')))!.n)
    expect(partial, 'the stream committed its first transactions before the conflict').toBeGreaterThan(0)

    await s.sql('db3', async (c) => {
      await c.execute('SET SESSION sql_log_bin = 0')
      await c.query('DELETE FROM mhatest.acked WHERE id = ?', [conflicting])
    })
    const second = await apply(s, file)
    expect(second.report.status, second.report.message).toBe('applied')
    expect(second.report.notes.join('\n')).toMatch(/db3 had \d+ of the \d+ transactions already/)
    expectNoLossStated(plan, second.report)
    await load.stop()
    await expectConsistent(s, 'db2', load.acked)
    const filler = await Promise.all(survivors(s).map((h) => s.sql(h, async (c) => String((await c.queryOne('CHECKSUM TABLE mhatest.filler'))!.Checksum))))
    expect(filler[0]).toBe(filler[1])
  })

  it('apply SIGKILLed while apply_logs streams into a replica, then applied again: every transaction once', async () => {
    const {s, load} = await laggingReplica('itnoloss4', 3000)
    const {file, plan} = await planFailover(s, plansDir, 'killed')
    const journal = journalFileOf(file)
    const child = spawn(process.execPath, [join(root, 'bin/run.js'), 'apply', file, '--config', s.configFile], {cwd: root, env: {...process.env, NODE_ENV: 'production'}, stdio: 'ignore'})
    const exited = new Promise((resolve) => child.on('close', resolve))
    const filler = async () => Number((await s.sql('db3', (c) => c.queryOne('SELECT COUNT(*) AS n FROM mhatest.filler')))!.n)
    const start = await filler()
    await waitFor('apply_logs:db3 to stream', 60_000, async () => existsSync(journal) && readFileSync(journal, 'utf8').includes('"step":"apply_logs:db3","event":"begin"') && (await filler()) > start)
    child.kill('SIGKILL')
    await exited
    const atKill = await filler()
    console.log(`apply killed with ${atKill - start} of db3's missing filler rows applied`)
    expect(readFileSync(journal, 'utf8')).not.toContain('"step":"apply_logs:db3","event":"end"')

    const resumed = await apply(s, file)
    expect(resumed.report.status, resumed.report.message).toBe('applied')
    expectNoLossStated(plan, resumed.report)
    await load.stop()
    await expectConsistent(s, 'db2', load.acked)
    expect(await filler()).toBe(Number((await s.sql('db2', (c) => c.queryOne('SELECT COUNT(*) AS n FROM mhatest.filler')))!.n))
    // No secret in what apply leaves behind (the journal, the report).
    const leftovers = readFileSync(journal, 'utf8') + JSON.stringify(resumed.report)
    for (const secret of Object.values(secretsOf(s.state.dir))) expect(leftovers).not.toContain(secret.reveal())
  })

  it("dead master's host down right after a binlog rotation, both replicas' SQL threads in the older file: a failover plan with the exact loss", async () => {
    const {s, load} = await underLoad('itnoloss5', false, 800)
    for (const host of survivors(s)) await s.sql(host, (c) => c.execute('STOP SLAVE SQL_THREAD'))
    await s.sql('db1', (c) => c.execute('FLUSH BINARY LOGS'))
    await sleep(800)
    await stopSshd(s.state, 'db1')
    await killMasterAndWait(s)
    const ackedAtKill = [...load.acked]
    for (const host of survivors(s)) {
      const status = await replicaStatus(s, host)
      expect([status.Relay_Master_Log_File, status.Master_Log_File]).toEqual(['mysql-bin.000001', 'mysql-bin.000002'])
    }
    const {file, plan} = await planFailover(s, plansDir, 'rotated')
    expect(plan.decision.newMaster).toBe('db2')
    const latest = plan.observed.servers.find((x) => x.name === 'db2')!.read!
    expect(plan.decision.dataLoss.none).toBe(false)
    expect(plan.decision.dataLoss.lostAfter).toEqual(latest)
    expect(plan.decision.dataLoss.statement).toMatch(new RegExp(`^events after ${formatCoordinates(latest).replace(/\./g, '\\.')} in db1's binlog are lost: db1's host cannot be reached over SSH`))
    const result = await apply(s, file)
    expect(result.report.status, result.report.message).toBe('applied')
    expect(result.report.dataLoss).toBe(plan.decision.dataLoss.statement)
    await load.stop()
    // What was lost is what the statement says: only writes db2 never received, the last ones.
    const present = new Set((await s.sql('db2', (c) => c.query('SELECT id FROM mhatest.acked'))).map((r) => Number(r.id)))
    const missing = load.acked.filter((id) => !present.has(id))
    console.log(`rotation with the host down: ${missing.length} of ${ackedAtKill.length} acknowledged writes were only on db1 after ${formatCoordinates(latest)}`)
    // Only writes acknowledged before the kill, and only the last of them (a suffix of what db1 acknowledged).
    const lastPresent = Math.max(0, ...ackedAtKill.filter((id) => present.has(id)))
    expect(missing.every((id) => ackedAtKill.includes(id) && id > lastPresent)).toBe(true)
    await expectConsistent(s, 'db2', load.acked.filter((id) => present.has(id)))
  })

  /**
   * Both replicas stop receiving while db1 writes on, then db1 dies with its host up: what they lack is only in
   * db1's binlog (the saved tail). A row that the tail carries is already on db2 (written with sql_log_bin=0),
   * so the first apply fails inside apply_logs:db2 on a duplicate key.
   */
  async function tailConflict(name: string, gtid: boolean): Promise<{s: TestSandbox; load: WriteLoad; file: string; plan: Plan; tailIds: number[]; conflicting: number}> {
    // The name is the plan file's too: unique in this file, or a journal of another test's plan refuses it.
    const {s, load} = await underLoad(name, gtid, 500)
    for (const host of survivors(s)) await s.sql(host, (c) => c.execute('STOP SLAVE IO_THREAD'))
    const stoppedAt = load.acked.length
    await waitFor('db1 to acknowledge 150 writes no replica receives', 30_000, () => Promise.resolve(load.acked.length >= stoppedAt + 150))
    await killMasterAndWait(s)
    const tailIds = load.acked.slice(stoppedAt)
    // The fault is in place: neither replica has any of the writes acknowledged after their IO threads stopped.
    for (const host of survivors(s)) expect((await load.missingOn(host)).filter((id) => tailIds.includes(id)).length, host).toBe(tailIds.length)
    const {file, plan} = await planFailover(s, plansDir, name)
    expect(plan.decision.newMaster).toBe('db2')
    expect(plan.steps.map((step) => step.id)).toContain('save_master_binlog:db1')
    expectNoLossPlanned(plan)
    const conflicting = tailIds[Math.floor(tailIds.length / 2)]!
    await s.sql('db2', async (c) => {
      await c.execute('SET SESSION sql_log_bin = 0')
      await c.query('INSERT INTO mhatest.acked (id) VALUES (?)', [conflicting])
    })
    return {s, load, file, plan, tailIds, conflicting}
  }

  function expectNoLossPlanned(plan: Plan): void {
    expect(plan.decision.dataLoss.none, plan.decision.dataLoss.statement).toBe(true)
    expect(plan.decision.dataLoss.statement).toMatch(/^none: /)
  }

  async function removeConflict(s: TestSandbox, id: number): Promise<void> {
    await s.sql('db2', async (c) => {
      await c.execute('SET SESSION sql_log_bin = 0')
      await c.query('DELETE FROM mhatest.acked WHERE id = ?', [id])
    })
  }

  for (const gtid of [false, true])
    it(`${gtid ? 'GTID' : 'file/position'}: the new master's apply_logs fails on a conflicting row, fixed, applied again: every survivor gets the saved tail`, async () => {
      const {s, load, file, plan, tailIds, conflicting} = await tailConflict(gtid ? 'itnoloss10' : 'itnoloss9', gtid)
      const first = await apply(s, file)
      expect(first.code, first.report.message).toBe(1)
      expect(first.report.status, first.report.message).toBe('failed')
      const step = (report: ApplyReport, id: string) => report.steps.find((x) => x.id === id)
      expect(step(first.report, 'apply_logs:db2')?.status).toBe('failed')
      expect(first.report.message).toMatch(/Duplicate entry/)
      // A replica's recovery that needs the tail waits for the tail on the new master: it does not end without it.
      if (!gtid) expect(['not_run', 'blocked']).toContain(step(first.report, 'apply_logs:db3')?.status)
      expect(first.report.dataLoss).not.toMatch(/^none/)

      await removeConflict(s, conflicting)
      const second = await apply(s, file)
      expect(second.code, second.report.message).toBe(0)
      expect(second.report.status, second.report.message).toBe('applied')
      expect(second.report.dataLoss).toBe(plan.decision.dataLoss.statement)
      await load.stop()
      await expectConsistent(s, 'db2', load.acked)
      for (const host of survivors(s)) expect(await load.missingOn(host), `${host} lacks acknowledged ids of the tail`).toEqual([])
      console.log(`${gtid ? 'GTID' : 'file/position'}: ${tailIds.length} acknowledged writes only in db1's binlog, on every survivor after the second apply`)
    })

  it("the final check on its own: a plan whose replica recovery may end without the tail (the old shape) still ends with db3 named as short of db2, exit 10, no \"none\"", async () => {
    const {s, load, file, tailIds, conflicting} = await tailConflict('itnoloss11', false)
    // The plan as the planner used to write it: db3's apply_logs only settled after db2's, so it ran without the tail.
    const edited = JSON.parse(readFileSync(file, 'utf8')) as Plan
    const db3Apply = edited.steps.find((x) => x.id === 'apply_logs:db3')!
    expect(db3Apply.after).toContain('apply_logs:db2')
    db3Apply.after = db3Apply.after.filter((x) => x !== 'apply_logs:db2')
    db3Apply.settledAfter = ['apply_logs:db2']
    writeFileSync(file, JSON.stringify(edited, null, 2))
    const first = await apply(s, file)
    expect(first.code).toBe(1)
    expect(first.report.steps.find((x) => x.id === 'apply_logs:db3')?.status, 'db3 ran without the tail, as before the fix').toBe('applied')
    expect(first.report.steps.find((x) => x.id === 'apply_logs:db3')?.outputs.tailApplied).toBe(false)

    await removeConflict(s, conflicting)
    const second = await apply(s, file)
    expect(second.code, second.report.message).toBe(10)
    expect(second.report.status).toBe('partial')
    expect(second.report.leftOut.map((l) => l.server)).toEqual(['db3'])
    expect(second.report.leftOut[0]!.reason).toMatch(/db3 lacks \d+ transactions, up to 0-1-\d+, that db2 held when it was promoted/)
    expect(second.report.leftOut[0]!.reason).toMatch(/db3 holds db1's binlog up to mysql-bin\.\d+:\d+ only, db2 up to/)
    expect(second.report.dataLoss).not.toMatch(/^none/)
    expect(second.report.dataLoss).toMatch(/left out, not proven complete: db3 \(db3 lacks/)
    expect(Number((await s.sql('db2', (c) => c.queryOne('SELECT @@global.read_only+0 AS ro')))!.ro)).toBe(0)
    await load.stop()
    expect(await load.missingOn('db2')).toEqual([])
    // What the statement says db3 lacks is what it lacks: the tail's writes.
    const lacking = await load.missingOn('db3')
    expect(lacking.length).toBeGreaterThanOrEqual(tailIds.length)
    expect(tailIds.every((id) => lacking.includes(id))).toBe(true)
    const db3 = await replicaStatus(s, 'db3')
    expect(db3.Master_Host, 'db3 is not re-pointed to db2').not.toBe(s.state.hosts[1]!.ip)
  })
})
