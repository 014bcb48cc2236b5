import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import mysql from 'mysql2/promise'
import {afterEach, describe, expect, it} from 'vitest'
import type {ApplyReport} from '../../src/apply/events.js'
import {WriteLoad} from '../../src/sandbox/load.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {secretsOf} from '../../src/sandbox/sandbox.js'
import {expectRoles, runMha, startSandbox, tableOfOneRow, type TestSandbox} from './harness.js'

let sandbox: TestSandbox | undefined
const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-switch-'))

afterEach(async () => {
  await sandbox?.down()
  sandbox = undefined
})

const names = (s: TestSandbox) => s.state.hosts.map((h) => h.name)

async function switchTo(s: TestSandbox, to: string, name: string): Promise<ApplyReport> {
  const file = join(plansDir, `${name}.json`)
  const plan = await runMha(['plan', '--config', s.configFile, '--switchover', '--to', to, '-o', file])
  expect(plan.code, plan.stderr + plan.stdout).toBe(2)
  const applied = await runMha(['apply', file, '--config', s.configFile, '--json'])
  const report = JSON.parse(applied.stdout) as ApplyReport
  expect(report.status, report.message).toBe('applied')
  const again = await runMha(['apply', file, '--config', s.configFile, '--json'])
  expect((JSON.parse(again.stdout) as ApplyReport).status).toBe('already_applied')
  return report
}

describe.each([
  ['file/position', false],
  ['GTID', true],
] as const)('online switchover (%s) on a real sandbox', (_mode, gtid) => {
  it('switches under write load without losing a write, and switches back', async () => {
    sandbox = await startSandbox(gtid ? 'itswitchg' : 'itswitchf', 131, {gtid})
    await WriteLoad.prepare(sandbox.state, 'db1')
    const load = new WriteLoad(sandbox.state)
    load.start()
    await new Promise((r) => setTimeout(r, 1000))
    const there = await switchTo(sandbox, 'db2', `${gtid ? 'g' : 'f'}-to-db2`)
    expect(there.steps.find((s) => s.id === 'repoint_replica:db1')?.status).toBe('applied')
    await new Promise((r) => setTimeout(r, 1000))
    await switchTo(sandbox, 'db1', `${gtid ? 'g' : 'f'}-back-to-db1`)
    await new Promise((r) => setTimeout(r, 1000))
    await load.stop()
    expect(load.acked.length).toBeGreaterThan(50)
    await expectRoles(sandbox, 'db1', load.acked)
  })
})

describe('online switchover rollback', () => {
  it("undoes the write block and the online-change hook's stop when the target cannot catch up before the promotion", async () => {
    sandbox = await startSandbox('itswitchr', 131)
    const s = sandbox
    // An MHA-style master_ip_online_change script that records how it is called.
    const hookDir = mkdtempSync(join(tmpdir(), 'mha-it-online-'))
    const hookLog = join(hookDir, 'calls.log')
    writeFileSync(join(hookDir, 'online'), `#!/bin/sh\necho "online $*" >> ${hookLog}\nexit 0\n`, {mode: 0o755})
    writeFileSync(s.configFile, readFileSync(s.configFile, 'utf8') + `failover: {wait_timeout: 2}\nhooks:\n  master_ip_online_change: ${hookDir}/online\n`)
    await tableOfOneRow(s)
    const file = join(plansDir, 'rollback.json')
    const planned = await runMha(['plan', '--config', s.configFile, '--switchover', '--to', 'db2', '-o', file])
    expect(planned.code, planned.stderr + planned.stdout).toBe(2)
    // mha show renders the undo as apply will run it: the switch reversed.
    const [db1ip, db2ip] = [s.state.hosts[0]!.ip, s.state.hosts[1]!.ip]
    const shown = await runMha(['show', file, '--config', s.configFile])
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.stdout).toContain(
      `      run_hook:online_change_start_db1 (undoes run_hook:online_change_stop)\n        run ${hookDir}/online --command=start --orig_master_host=${db2ip} --new_master_host=${db1ip} with MHA's arguments`,
    )

    // A transaction on db2 holds the row, so db2's SQL thread cannot apply db1's next update in time.
    const db2 = s.state.hosts[1]!
    const holder = await mysql.createConnection({host: db2.ip, user: 'mha', password: secretsOf(s.state.dir).admin.reveal()})
    await holder.query('BEGIN')
    await holder.query('SELECT * FROM mhatest.t WHERE id = 1 FOR UPDATE')
    await s.sql('db1', (c) => c.execute('UPDATE mhatest.t SET v = 2 WHERE id = 1'))
    const applied = await runMha(['apply', file, '--config', s.configFile, '--json'])
    await holder.query('ROLLBACK')
    await holder.end()
    const report = JSON.parse(applied.stdout) as ApplyReport
    expect(applied.code).toBe(1)
    expect(report.status).toBe('failed')
    expect(report.message).toMatch(/^wait_caught_up:db2 failed: db2 did not reach mysql-bin\.000001:\d+ within 2 s\..*; rolled back \(unblock_writes:db1, run_hook:online_change_start_db1\): db1 takes writes again$/)
    expect(Number((await s.sql('db1', (c) => c.queryOne('SELECT @@global.read_only+0 AS ro')))!.ro)).toBe(0)
    // MHA's arguments: stop with db1 as orig_master, then the undo, start with the switch reversed (db1 the new_master);
    // the forward start (after the promotion) never ran.
    const masters = (orig: string, neu: string) =>
      `--orig_master_host=${orig} --orig_master_ip=${orig} --orig_master_port=3306 --orig_master_user=mha --new_master_host=${neu} --new_master_ip=${neu} --new_master_port=3306 --new_master_user=mha --orig_master_ssh_user=root --new_master_ssh_user=root --orig_master_is_new_slave`
    expect(readFileSync(hookLog, 'utf8').trim().split('\n')).toEqual([`online --command=stop ${masters(db1ip, db2ip)}`, `online --command=start ${masters(db2ip, db1ip)}`])
    await waitFor('db2 to catch up with db1 again', 20_000, async () => {
      const r = (await s.sql('db2', (c) => c.queryOne('SHOW SLAVE STATUS')))!
      return r.Master_Host === s.state.hosts[0]!.ip && r.Slave_SQL_Running === 'Yes' && Number((await s.sql('db2', (c) => c.queryOne('SELECT v FROM mhatest.t WHERE id = 1')))!.v) === 2
    })
  })
})

describe('online switchover preconditions', () => {
  it('refuses a lagging target and a long-running update, and changes nothing', async () => {
    sandbox = await startSandbox('itswitchp', 131)
    const s = sandbox
    const before = await Promise.all(names(s).map((n) => s.sql(n, async (c) => String((await c.queryOne('SELECT @@gtid_binlog_pos AS p'))!.p))))

    await s.sql('db2', (c) => c.execute('STOP SLAVE SQL_THREAD'))
    const lagging = await runMha(['plan', '--config', s.configFile, '--switchover', '--to', 'db2', '-o', join(plansDir, 'refused-lag.json')])
    expect(lagging.code).toBe(1)
    expect(lagging.stderr.trim()).toMatch(/^mha: switchover refused: db2's replication is not healthy \(io=running sql=stopped\); db2 lags an unknown time behind db1/)
    await s.sql('db2', (c) => c.execute('START SLAVE SQL_THREAD'))

    const db1 = s.state.hosts[0]!
    const app = await mysql.createConnection({host: db1.ip, user: 'app', password: secretsOf(s.state.dir).app.reveal(), database: 'mhatest'})
    await app.query('CREATE TABLE slow (id INT PRIMARY KEY)')
    const slow = app.query('INSERT INTO slow SELECT SLEEP(4)').catch(() => undefined)
    await new Promise((r) => setTimeout(r, 1500))
    const updating = await runMha(['plan', '--config', s.configFile, '--switchover', '-o', join(plansDir, 'refused-update.json')])
    expect(updating.code).toBe(1)
    expect(updating.stderr.trim()).toMatch(/^mha: switchover refused: db1 has an update running for \d+ s \(thread \d+, app: INSERT INTO slow SELECT SLEEP\(4\)\); limit running_updates_limit=1$/)
    await slow
    await app.end()

    expect(Number((await s.sql('db1', (c) => c.queryOne('SELECT @@global.read_only+0 AS ro')))!.ro)).toBe(0)
    // Only the test's own table and row were written, on db1, and replicated (the slow insert has just committed).
    await waitFor('every server to have the same GTID position', 10_000, async () => {
      const after = await Promise.all(names(s).map((n) => s.sql(n, async (c) => String((await c.queryOne('SELECT @@gtid_binlog_pos AS p'))!.p))))
      return after.every((p) => p === after[0])
    })
    expect(before.every((p) => p === before[0])).toBe(true)
  })
})
