import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import type {Plan} from '../../src/plan/types.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {killMasterAndWait, leaveNothing, runMha, serverStates, startSandbox, type TestSandbox} from './harness.js'

// MHA's masterha_master_switch --skip_change_master --skip_disable_read_only: the failover recovers every
// survivor (the new master and the others get what they lacked) and leaves re-pointing and writes to the operator.
let sandbox: TestSandbox
let work: string
const count = (host: string) => sandbox.sql(host, async (c) => Number((await c.queryOne('SELECT COUNT(*) AS n FROM skiptest.t'))!.n))

beforeAll(async () => {
  sandbox = await startSandbox('itskip', 147)
  work = mkdtempSync(join(tmpdir(), 'mha-it-skip-'))
  await sandbox.sql('db1', async (c) => {
    await c.execute('CREATE DATABASE skiptest')
    await c.execute('CREATE TABLE skiptest.t (id INT PRIMARY KEY)')
    await c.execute('INSERT INTO skiptest.t VALUES (1), (2)')
  })
  await waitFor('db3 to have the first rows', 20_000, async () => (await count('db3')) === 2)
  // db3 misses the next rows: its recovery needs db2's relay log, as in MHA's own test of these options.
  await sandbox.sql('db3', (c) => c.execute('STOP SLAVE IO_THREAD'))
  await sandbox.sql('db1', (c) => c.execute('INSERT INTO skiptest.t VALUES (3), (4), (5)'))
  await waitFor('db2 to have every row', 20_000, async () => (await count('db2')) === 5)
  await killMasterAndWait(sandbox)
})

afterAll(async () => {
  await leaveNothing(undefined, sandbox, [work])
})

describe('a failover that leaves re-pointing and writes to the operator (MHA --skip_change_master --skip_disable_read_only)', () => {
  const file = () => join(work, 'failover.json')

  it('is planned with what is left to the operator in the plan, which mha show says', async () => {
    const planned = await runMha(['plan', '--config', sandbox.configFile, '--plans-dir', work, '-o', file(), '--skip-change-master', '--skip-disable-read-only'])
    expect(planned.code, planned.stdout + planned.stderr).toBe(2)
    const plan = JSON.parse(readFileSync(file(), 'utf8')) as Plan
    expect(plan.decision.newMaster).toBe('db2')
    expect(plan.decision.leftToOperator).toEqual({
      repoint: ['db3'],
      disableReadOnly: true,
      todo: ["re-point db3 to db2 (each is recovered to db2's data and left stopped, still configured to replicate from db1)", 'make db2 writable (SET GLOBAL read_only=0): it is left read_only'],
    })
    expect(plan.steps.filter((s) => s.type === 'repoint_replica' || s.type === 'enable_writes')).toEqual([])
    // db3 is still recovered: the rows it lacks come from db2's relay log.
    expect(plan.steps.some((s) => s.type === 'apply_logs' && s.server === 'db3')).toBe(true)
    const shown = await runMha(['show', file(), '--config', sandbox.configFile])
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.stdout).toContain('LEFT TO YOU (on request): re-point db3 to db2')
    expect(shown.stdout).toContain('LEFT TO YOU (on request): make db2 writable')
  })

  it('a plan whose steps disagree with what it says it leaves is refused at apply, before any change', async () => {
    const edited = JSON.parse(readFileSync(file(), 'utf8')) as Plan
    edited.decision.leftToOperator!.disableReadOnly = false
    const editedFile = join(work, 'edited.json')
    writeFileSync(editedFile, JSON.stringify(edited, null, 2))
    const before = await serverStates(sandbox, 'SELECT COUNT(*) AS n FROM skiptest.t')
    const apply = await runMha(['apply', editedFile, '--config', sandbox.configFile])
    expect(apply.code).toBe(1)
    expect(apply.stderr).toMatch(/a failover plan must make exactly one server writable, its new master db2; this one has no enable_writes step/)
    expect(await serverStates(sandbox, 'SELECT COUNT(*) AS n FROM skiptest.t')).toBe(before)
    const refused = await runMha(['plan', '--config', sandbox.configFile, '--switchover', '--skip-change-master'])
    expect(refused.code).toBe(64)
  })

  it('apply recovers both survivors, leaves db2 read_only and db3 un-repointed, exits 0 and says what is left', async () => {
    const apply = await runMha(['apply', file(), '--config', sandbox.configFile])
    expect(apply.code, apply.stdout + apply.stderr).toBe(0)
    expect(apply.stderr).toMatch(/mha: next: left to you, as the plan says: re-point db3 to db2 .*; make db2 writable/)
    expect(await count('db2')).toBe(5)
    expect(await count('db3')).toBe(5)
    expect(Number((await sandbox.sql('db2', (c) => c.queryOne('SELECT @@global.read_only+0 AS ro')))!.ro)).toBe(1)
    const db3 = (await sandbox.sql('db3', (c) => c.queryOne('SHOW SLAVE STATUS')))!
    expect([db3.Master_Host, db3.Slave_IO_Running]).toEqual([sandbox.state.hosts[0]!.ip, 'No'])
  })
})
