import {mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import type {CheckReport} from '../../src/analysis/check.js'
import type {ApplyReport} from '../../src/apply/events.js'
import type {Plan} from '../../src/plan/types.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {killMasterAndWait, leaveNothing, runMha, serverStates, startSandbox, type TestSandbox} from './harness.js'

// What MHA 0.58 refuses up front and mha must too (issue 26), on one GTID sandbox reconfigured between cases:
// differing replication filters, a busy target or a held table lock, an old master that cannot be re-pointed;
// then what `mha check` says agreeing with what plan and apply do.
let sandbox: TestSandbox
let work: string
const cluster = 'itrefuse'

/** A copy of the sandbox's cluster file, changed by `edit`. */
function configWith(name: string, edit: (yaml: string) => string): string {
  const file = join(work, `${name}.yaml`)
  writeFileSync(file, edit(readFileSync(sandbox.configFile, 'utf8')))
  return file
}

async function checkJson(config = sandbox.configFile): Promise<{code: number; report: CheckReport}> {
  const result = await runMha(['check', '--config', config, '--json'])
  return {code: result.code, report: JSON.parse(result.stdout) as CheckReport}
}

/** Writes one row on the master and waits until every replica has it: positions settled before comparing states. */
async function settle(): Promise<void> {
  const pos = String((await sandbox.sql('db1', (c) => c.queryOne('SELECT @@gtid_binlog_pos AS p')))!.p)
  for (const host of ['db2', 'db3']) await waitFor(`${host} to reach ${pos}`, 20_000, async () => String((await sandbox.sql(host, (c) => c.queryOne('SELECT @@gtid_slave_pos AS p')))!.p) === pos)
}

const planFile = (name: string) => {
  mkdirSync(join(work, 'plans', cluster), {recursive: true})
  return join(work, 'plans', cluster, `${Date.now()}-${name}.json`)
}

/** A switchover plan made now from the sandbox's own cluster file (exit 2, it has changes). */
async function plannedSwitchover(name: string): Promise<string> {
  const file = planFile(name)
  const plan = await runMha(['plan', '--config', sandbox.configFile, '--plans-dir', join(work, 'plans'), '--switchover', '--to', 'db2', '-o', file])
  expect(plan.code, plan.stderr).toBe(2)
  return file
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'mha-it-refusals-'))
  sandbox = await startSandbox(cluster, 67, {gtid: true})
  await sandbox.sql('db1', (c) => c.execute('CREATE TABLE mhatest.t (id INT PRIMARY KEY, v INT)'))
  await sandbox.sql('db1', (c) => c.execute('INSERT INTO mhatest.t VALUES (1, 1)'))
  await settle()
}, 120_000)

afterAll(async () => {
  await leaveNothing(undefined, sandbox, [work])
})

describe('refused before the first effect, with one clear line', () => {
  it('differing replication filters: a master started with replicate-do-table is refused by check, plan, switchover and apply', async () => {
    const before = await serverStates(sandbox)
    // A master replicates from nobody, so SHOW SLAVE STATUS shows nothing: its filters are its global settings.
    await sandbox.sql('db1', (c) => c.execute("SET GLOBAL replicate_do_table = 'mhatest.t'"))
    try {
      const {code, report} = await checkJson()
      expect(code).toBe(2)
      expect(report.findings.filter((f) => f.code === 'filters_differ').map((f) => f.message)).toEqual([
        expect.stringMatching(/^replicate_do_table differs: db1 has "mhatest\.t", db2 has ""/),
      ])

      const line = /^mha: switchover refused: replication filters differ \(replicate_do_table differs: db1 has "mhatest\.t", db2 has ""\): give every server the same replication and binlog filters/
      const plan = await runMha(['plan', '--config', sandbox.configFile, '--switchover', '--to', 'db2', '-o', planFile('filters')])
      expect(plan.code).toBe(1)
      expect(plan.stderr.trim().split('\n')).toEqual([expect.stringMatching(line)])
      const switched = await runMha(['switchover', '--config', sandbox.configFile, '--plans-dir', join(work, 'plans'), '--to', 'db2', '--auto-approve'])
      expect(switched.code).toBe(1)
      expect(switched.stderr.trim().split('\n')).toEqual([expect.stringMatching(line)])
      expect(await serverStates(sandbox)).toBe(before)

      // Planned while the filters agreed, applied after they stopped agreeing: apply's first step refuses it.
      await sandbox.sql('db1', (c) => c.execute("SET GLOBAL replicate_do_table = ''"))
      const file = await plannedSwitchover('filters-at-apply')
      await sandbox.sql('db1', (c) => c.execute("SET GLOBAL replicate_do_table = 'mhatest.t'"))
      const applied = await runMha(['apply', file, '--config', sandbox.configFile, '--json'])
      expect(applied.code).toBe(1)
      const report2 = JSON.parse(applied.stdout) as ApplyReport
      expect(report2.message).toMatch(/switchover refused: replication filters differ \(replicate_do_table differs: db1 has "mhatest\.t", db2 has ""\).*nothing was changed/)
      expect(await serverStates(sandbox)).toBe(before)
    } finally {
      await sandbox.sql('db1', (c) => c.execute("SET GLOBAL replicate_do_table = ''"))
    }
  })

  it('a busy target: 15 long queries on the new master refuse the switchover (switchover.running_seconds_limit)', async () => {
    const config = configWith('busy', (y) => `${y}switchover:\n  running_seconds_limit: 2\n`)
    const before = await serverStates(sandbox)
    const sessions: Promise<unknown>[] = []
    for (let i = 0; i < 15; i++) sessions.push(sandbox.sql('db2', (c) => c.query('SELECT SLEEP(300) AS busy', [], 310_000)).catch(() => undefined))
    try {
      await waitFor('15 queries running 2 s on db2', 20_000, async () => Number((await sandbox.sql('db2', (c) => c.queryOne("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(300)%' AND TIME >= 2")))!.n) === 15)
      const plan = await runMha(['plan', '--config', config, '--switchover', '--to', 'db2', '-o', planFile('busy')])
      expect(plan.code).toBe(1)
      expect(plan.stderr.trim().split('\n')).toEqual([
        expect.stringMatching(/^mha: switchover refused: db2 is busy: 15 client statements have run 2 s or more \(longest: thread \d+, mha, \d+ s: SELECT SLEEP\(300\) AS busy\); limit switchover.running_seconds_limit=2$/),
      ])
      // The same plan made before the target got busy is refused by apply's first step.
      await killSleepers('db2')
      await Promise.all(sessions)
      const file = planFile('busy-at-apply')
      expect((await runMha(['plan', '--config', config, '--switchover', '--to', 'db2', '-o', file])).code).toBe(2)
      sessions.length = 0
      for (let i = 0; i < 15; i++) sessions.push(sandbox.sql('db2', (c) => c.query('SELECT SLEEP(300) AS busy', [], 310_000)).catch(() => undefined))
      await waitFor('15 queries running 2 s on db2 again', 20_000, async () => Number((await sandbox.sql('db2', (c) => c.queryOne("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(300)%' AND TIME >= 2")))!.n) === 15)
      const applied = await runMha(['apply', file, '--config', config])
      expect(applied.code).toBe(1)
      expect(applied.stderr).toMatch(/switchover refused: db2 is busy: 15 client statements have run 2 s or more .*nothing was changed/)
      expect(await serverStates(sandbox)).toBe(before)
    } finally {
      await killSleepers('db2')
      await Promise.all(sessions)
    }
  })

  it('a table lock held on the old master refuses the switchover', async () => {
    const config = configWith('locked', (y) => `${y}switchover:\n  running_seconds_limit: 2\n`)
    const held = sandbox.sql('db1', async (c) => {
      await c.execute('LOCK TABLES mhatest.t WRITE')
      // Held until the test's UNLOCK below ends this session's wait.
      await c.query('SELECT SLEEP(300)', [], 310_000).catch(() => undefined)
      await c.execute('UNLOCK TABLES')
    })
    let waiter: Promise<unknown> | undefined
    try {
      // The reader only after the lock is held (its holder sleeping), or it reads at once and never waits.
      await waitFor('db1 to hold the table lock', 20_000, async () => Number((await sandbox.sql('db1', (c) => c.queryOne("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE INFO = 'SELECT SLEEP(300)'")))!.n) === 1)
      waiter = sandbox.sql('db1', (c) => c.query('SELECT * FROM mhatest.t', [], 310_000)).catch(() => undefined)
      await waitFor('a session on db1 waiting 2 s for the table lock', 20_000, async () => Number((await sandbox.sql('db1', (c) => c.queryOne("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE STATE LIKE 'Waiting for table%lock' AND TIME >= 2")))!.n) === 1)
      const plan = await runMha(['plan', '--config', config, '--switchover', '--to', 'db2', '-o', planFile('locked')])
      expect(plan.code).toBe(1)
      expect(plan.stderr.trim()).toMatch(/^mha: switchover refused: db1: 1 session \(thread \d+ mha\) has waited 2 s or more for a table lock someone holds \(Waiting for table metadata lock\); release it/)
    } finally {
      await killSleepers('db1')
      await held
      await waiter
    }
  })

  it('an old master that cannot be re-pointed (no repl_password): refused by plan, switchover and apply, no server changed', async () => {
    await settle()
    const before = await serverStates(sandbox)
    const noRepl = configWith('no-repl-password', (y) => y.replace(/repl_password:\n\s+file: .*repl\.password\n/, ''))
    expect(readFileSync(noRepl, 'utf8')).not.toMatch(/repl_password/)
    const line = /^mha: switchover refused: db1 could not be re-pointed to db2: repl_password is not set in .*no-repl-password\.yaml and db1 replicates from nobody, so it has no replication password of its own; set repl_password, or switchover\.orig_master_is_new_slave: false$/
    const plan = await runMha(['plan', '--config', noRepl, '--switchover', '--to', 'db2', '-o', planFile('no-repl')])
    expect(plan.code).toBe(1)
    expect(plan.stderr.trim().split('\n')).toEqual([expect.stringMatching(line)])
    const switched = await runMha(['switchover', '--config', noRepl, '--plans-dir', join(work, 'plans'), '--to', 'db2', '--auto-approve'])
    expect(switched.code).toBe(1)
    expect(switched.stderr.trim().split('\n')).toEqual([expect.stringMatching(line)])
    expect(await serverStates(sandbox)).toBe(before)

    // A plan made where the password was set, applied from a manager host that has none: its CHANGE MASTER previews
    // (with a password) are not what apply would run, and it is refused before its first step.
    const file = await plannedSwitchover('no-repl-at-apply')
    const applied = await runMha(['apply', file, '--config', noRepl])
    expect(applied.code).toBe(1)
    expect(applied.stderr).toMatch(/the plan disagrees with .*no-repl-password\.yaml: step repoint_replica:db3 params\.preview: the plan shows .*MASTER_PASSWORD = '\*{8}'.*, apply would run "[^"]*MASTER_USER = 'repl', MASTER_USE_GTID/)
    expect(await serverStates(sandbox)).toBe(before)
  })
})

describe("mha check's verdict agrees with what plan and apply do", () => {
  it('writable replicas are a warning that lets a failover go ahead; a failover that leaves one out ends with exit 10 naming it', async () => {
    for (const host of ['db2', 'db3']) await sandbox.sql(host, (c) => c.execute('SET GLOBAL read_only = 0'))
    const {code, report} = await checkJson()
    expect(code).toBe(0)
    expect(report.verdict).toBe('ok')
    expect(report.findings.filter((f) => f.code === 'replica_writable').map((f) => [f.severity, f.server])).toEqual([
      ['warning', 'db2'],
      ['warning', 'db3'],
    ])
    const human = await runMha(['check', '--config', sandbox.configFile])
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(/WARNING db2 is a replica but read_only=0/)
    expect(human.stdout).toMatch(/^verdict: OK, a failover is possible now \(\d+ warnings above\)$/m)

    // A client writes on the writable db3 (an errant transaction), then the master dies: a failover promotes db2 and
    // cannot keep db3. check says so first, as a warning; plan plans it; apply does it and says what is left.
    await sandbox.sql('db3', (c) => c.execute('INSERT INTO mhatest.t VALUES (3, 3)'))
    await killMasterAndWait(sandbox)
    const dead = await checkJson()
    expect(dead.code).toBe(0)
    expect(dead.report.verdict).toBe('master_dead')
    expect(dead.report.findings.filter((f) => f.code === 'failover_leaves_out').map((f) => [f.severity, f.server])).toEqual([['warning', 'db3']])

    const file = planFile('failover')
    const plan = await runMha(['plan', '--config', sandbox.configFile, '--plans-dir', join(work, 'plans'), '-o', file])
    expect(plan.code, plan.stderr).toBe(2)
    const planned = JSON.parse(readFileSync(file, 'utf8')) as Plan
    expect([planned.kind, planned.decision.newMaster, planned.decision.dataLoss.abandoned]).toEqual(['failover', 'db2', ['db3']])

    const applied = await runMha(['apply', file, '--config', sandbox.configFile, '--json'])
    expect(applied.code, applied.stderr).toBe(10)
    const result = JSON.parse(applied.stdout) as ApplyReport
    expect(result.status).toBe('partial')
    expect(result.leftOut.map((l) => l.server)).toEqual(['db3'])
    expect(result.leftOut[0]!.reason).toMatch(/errant transactions/)
    expect(applied.stderr).toMatch(/mha: failover applied: .*1 replica left out as planned: db3 \(has errant transactions/)
    expect(applied.stderr).toMatch(/mha: next: db3: rebuild db3 from db2/)
    // The new master takes writes.
    expect(Number((await sandbox.sql('db2', (c) => c.queryOne('SELECT @@global.read_only+0 AS ro')))!.ro)).toBe(0)
  })
})

/** Ends the test's own long statements on `host` (found by their text), whatever waits on them. */
async function killSleepers(host: string): Promise<void> {
  await sandbox.sql(host, async (c) => {
    const rows = await c.query("SELECT ID AS id FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(300)%' OR INFO = 'SELECT * FROM mhatest.t'")
    for (const r of rows) await c.execute(`KILL QUERY ${Number(r.id)}`).catch(() => undefined)
  })
}
