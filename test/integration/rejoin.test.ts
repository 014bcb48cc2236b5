import {execFileSync} from 'node:child_process'
import {existsSync, mkdtempSync, readdirSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import type {Plan} from '../../src/plan/types.js'
import {WriteLoad} from '../../src/sandbox/load.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {startHost, startSshd, stopSshd} from '../../src/sandbox/sandbox.js'
import {killMasterAndWait, planAndApply, runMha, spawnWatch, startSandbox, type TestSandbox} from './harness.js'

let sandbox: TestSandbox | undefined
afterEach(async () => {
  await sandbox?.down()
  sandbox = undefined
})

const checksums = async (s: TestSandbox, table: string) => Promise.all(['db1', 'db2', 'db3'].map((h) => s.sql(h, async (c) => String((await c.queryOne(`CHECKSUM TABLE mhatest.${table}`))!.Checksum))))

describe('mha plan --rejoin (file/position)', () => {
  it('after a failover under write load, the restarted old master rejoins the new master; data equal on all three, mha check OK', async () => {
    sandbox = await startSandbox('itrejoin', 171)
    const s = sandbox
    const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-rejoin-plans-'))
    await WriteLoad.prepare(s.state, 'db1')
    const load = new WriteLoad(s.state)
    load.start()
    await new Promise((r) => setTimeout(r, 1000))
    await killMasterAndWait(s)
    await planAndApply(s, plansDir, 'failover')
    const state = JSON.parse(readFileSync(join(plansDir, s.state.cluster, 'watch-state.json'), 'utf8')) as {outOfService: {server: string}[]}
    expect(state.outOfService.map((o) => o.server)).toEqual(['db1'])
    await startHost(s.state, 'db1')
    // The load found db2 writable; it must not find db1 once it is back (host 1 comes back writable).
    await s.sql('db1', (c) => c.execute('SET GLOBAL read_only = 1'))
    const file = await planAndApply(s, plansDir, 'rejoin', ['--rejoin', 'db1'])
    const plan = JSON.parse(readFileSync(file, 'utf8')) as Plan
    expect(plan.kind).toBe('rejoin')
    expect(plan.steps.map((st) => st.type)).toEqual(['set_read_only', 'repoint_replica', 'verify_replication'])
    await new Promise((r) => setTimeout(r, 1000))
    await load.stop()
    const status = (await s.sql('db1', (c) => c.queryOne('SHOW SLAVE STATUS')))!
    expect([status.Master_Host, status.Slave_IO_Running, status.Slave_SQL_Running]).toEqual([s.state.hosts[1]!.ip, 'Yes', 'Yes'])
    // Wait for both replicas to reach the master's position, then compare.
    for (let i = 0; i < 100; i++) {
      const [a, b] = [await checksums(s, 'acked'), await checksums(s, 'acked_log')]
      if (a.every((x) => x === a[0]) && b.every((x) => x === b[0])) break
      await new Promise((r) => setTimeout(r, 200))
    }
    for (const table of ['acked', 'acked_log']) {
      const sums = await checksums(s, table)
      expect(sums.every((x) => x === sums[0]), `${table}: ${sums.join(', ')}`).toBe(true)
    }
    expect(await load.missingOn('db1')).toEqual([])
    const after = JSON.parse(readFileSync(join(plansDir, s.state.cluster, 'watch-state.json'), 'utf8')) as {outOfService: {server: string}[]}
    expect(after.outOfService).toEqual([])
    const check = await runMha(['check', '--config', s.configFile, '--plans-dir', plansDir])
    expect(check.code, check.stdout + check.stderr).toBe(0)
    expect(readdirSync(join(plansDir, s.state.cluster)).some((f) => f.endsWith('-rejoin.json'))).toBe(true)
    expect(existsSync(file)).toBe(true)
  }, 240_000)
})

/** Every table equal on the three servers, once replication has caught up. */
async function expectEqual(s: TestSandbox, tables: string[]): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const sums = await Promise.all(tables.map((t) => checksums(s, t)))
    if (sums.every((x) => x.every((y) => y === x[0]))) break
    await new Promise((r) => setTimeout(r, 200))
  }
  for (const table of tables) {
    const sums = await checksums(s, table)
    expect(sums.every((x) => x === sums[0]), `${table}: ${sums.join(', ')}`).toBe(true)
  }
}

describe('mha plan --rejoin (GTID)', () => {
  it('after a failover under write load, the restarted old master rejoins by GTID; data equal on all three, mha check OK', async () => {
    sandbox = await startSandbox('itrejoin2', 171, {gtid: true})
    const s = sandbox
    const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-rejoin-plans-'))
    await WriteLoad.prepare(s.state, 'db1')
    const load = new WriteLoad(s.state)
    load.start()
    await new Promise((r) => setTimeout(r, 1000))
    await killMasterAndWait(s)
    await planAndApply(s, plansDir, 'failover')
    await startHost(s.state, 'db1')
    await s.sql('db1', (c) => c.execute('SET GLOBAL read_only = 1'))
    const file = await planAndApply(s, plansDir, 'rejoin', ['--rejoin', 'db1'])
    expect((JSON.parse(readFileSync(file, 'utf8')) as Plan).decision.replicationMode).toBe('gtid')
    await new Promise((r) => setTimeout(r, 1000))
    await load.stop()
    const status = (await s.sql('db1', (c) => c.queryOne('SHOW SLAVE STATUS')))!
    expect([status.Master_Host, status.Slave_IO_Running, status.Slave_SQL_Running, status.Using_Gtid]).toEqual([s.state.hosts[1]!.ip, 'Yes', 'Yes', 'Slave_Pos'])
    await expectEqual(s, ['acked', 'acked_log'])
    expect(await load.missingOn('db1')).toEqual([])
    const check = await runMha(['check', '--config', s.configFile, '--plans-dir', plansDir])
    expect(check.code, check.stdout + check.stderr).toBe(0)
  }, 240_000)
})

/** What `mariadb-binlog -v` decodes from a saved binlog: its transactions (GTIDs) and the ids its row events insert, per table. */
function decodeSaved(file: string): {gtids: string[]; inserted: Map<string, number[]>; rowEvents: number} {
  const text = execFileSync('mariadb-binlog', ['--no-defaults', '--base64-output=decode-rows', '-v', file], {encoding: 'utf8'})
  const gtids = [...text.matchAll(/^#.*\tGTID (\d+-\d+-\d+) trans$/gm)].map((m) => m[1]!)
  const inserted = new Map<string, number[]>()
  // One row per "### INSERT INTO `db`.`table`", its first column on the "###   @1=" line after "### SET".
  for (const m of text.matchAll(/^### INSERT INTO `mhatest`\.`(\w+)`\n### SET\n### {3}@1=(-?\d+)/gm)) inserted.set(m[1]!, [...(inserted.get(m[1]!) ?? []), Number(m[2])])
  const rowEvents = [...text.matchAll(/^#.*\tWrite_rows(_v1)?: table id/gm)].length
  return {gtids, inserted, rowEvents}
}

const ids = (s: TestSandbox, host: string, table: string) => s.sql(host, async (c) => (await c.query(`SELECT id FROM mhatest.${table} ORDER BY id`)).map((r) => Number(r.id)))

/**
 * Under write load: the replicas stop receiving, db1 goes on committing (the load's transactions and 4 of our
 * own), its host goes away with it (nothing can be saved), the failover loses them. Back, db1 is ahead: the plan
 * lists exactly those transactions and refuses; with --flashback it saves them beside the plan, rewinds them and
 * db1 rejoins, equal to the new master, and mha check is OK.
 */
async function rejoinWithExtraTransactions(name: string, gtid: boolean): Promise<void> {
  sandbox = await startSandbox(name, 171, {gtid})
  const s = sandbox
  const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-rejoin-plans-'))
  await WriteLoad.prepare(s.state, 'db1')
  await s.sql('db1', (c) => c.execute('CREATE TABLE mhatest.extra (id INT PRIMARY KEY, v VARCHAR(20))'))
  const load = new WriteLoad(s.state)
  load.start()
  await new Promise((r) => setTimeout(r, 1000))
  // The replicas stop receiving; db1 goes on committing the load's transactions and 4 of ours, that only it will ever have.
  for (const host of ['db2', 'db3']) await s.sql(host, (c) => c.execute('STOP SLAVE IO_THREAD'))
  const ackedBefore = load.acked.length
  await s.sql('db1', async (c) => {
    for (let i = 1; i <= 4; i++) await c.execute(`INSERT INTO mhatest.extra VALUES (${i}, 'only on db1')`)
  })
  await waitFor('the load to commit more on db1 alone', 10_000, () => load.acked.length >= ackedBefore + 5)
  // Its host is gone too, so the failover cannot save them: they are lost to the new master.
  await stopSshd(s.state, 'db1')
  await killMasterAndWait(s)
  const failover = JSON.parse(readFileSync(await planAndApply(s, plansDir, 'failover'), 'utf8')) as Plan
  const nm = failover.decision.newMaster!
  const nmIp = s.state.hosts.find((h) => h.name === nm)!.ip
  // The load carries on on the new master.
  const ackedAtFailover = load.acked.length
  await waitFor(`the load to write on ${nm}`, 20_000, () => load.acked.length > ackedAtFailover + 5)
  await startSshd(s.state, 'db1')
  await startHost(s.state, 'db1')
  await s.sql('db1', (c) => c.execute('SET GLOBAL read_only = 1'))

  // What db1 has that the new master lacks: the load's rows of the window, and ours.
  const onNm = new Set(await ids(s, nm, 'acked'))
  const onlyOnDb1 = (await ids(s, 'db1', 'acked')).filter((id) => !onNm.has(id))
  const lostAcked = load.acked.filter((id) => onlyOnDb1.includes(id))
  expect(lostAcked.length, 'acknowledged writes of the window').toBeGreaterThanOrEqual(5)
  expect(await ids(s, 'db1', 'extra')).toEqual([1, 2, 3, 4])
  expect(await ids(s, nm, 'extra')).toEqual([])
  const transactions = onlyOnDb1.length + 4
  // Each load transaction inserts one row into acked and one into acked_log.
  const rowEvents = 2 * onlyOnDb1.length + 4
  // GTID mode: db1's own GTIDs after the last one the new master has of db1 (server 1), to db1's last.
  let gtids: string | null = null
  if (gtid) {
    const pos = (host: string, v: string) => s.sql(host, async (c) => String((await c.queryOne(`SELECT @@global.${v} AS p`))!.p))
    const last = Number(/0-1-(\d+)/.exec(await pos('db1', 'gtid_binlog_pos'))![1])
    const held = Number(/0-1-(\d+)/.exec(await pos(nm, 'gtid_binlog_state'))![1])
    expect(last - held).toBe(transactions)
    gtids = `0-1-${held + 1}..0-1-${last}`
  }
  const listing = `db1 has ${transactions} extra transaction\\(s\\) ${nm} lacks \\(${gtid ? gtids!.replaceAll('.', '\\.') : 'binlog mysql-bin\\.\\d+:\\d+ to mysql-bin\\.\\d+:\\d+'}, ${rowEvents} row event\\(s\\)\\)`

  const refused = await runMha(['plan', '--config', s.configFile, '--plans-dir', plansDir, '--rejoin', 'db1', '-o', join(plansDir, 'refused.json')])
  expect(refused.code).toBe(1)
  expect(refused.stderr.trim()).toMatch(new RegExp(`^mha: ${listing}; re-pointing it would keep them silently: plan again with --flashback`))
  expect(existsSync(join(plansDir, 'refused.json'))).toBe(false)
  // Nothing changed: db1 still replicates from nobody and has the rows.
  expect(await s.sql('db1', (c) => c.queryOne('SHOW SLAVE STATUS'))).toBeUndefined()

  const file = await planAndApply(s, plansDir, 'rejoin', ['--rejoin', 'db1', '--flashback'])
  const plan = JSON.parse(readFileSync(file, 'utf8')) as Plan
  expect(plan.decision.replicationMode).toBe(gtid ? 'gtid' : 'file')
  const flashback = plan.steps.find((st) => st.type === 'flashback_binlog')!
  expect(flashback.type === 'flashback_binlog' && [flashback.params.transactions, flashback.params.gtids]).toEqual([transactions, gtids])
  expect(plan.decision.dataLoss.statement).toMatch(new RegExp(`^db1's ${transactions} extra transaction\\(s\\) \\(${rowEvents} row event\\(s\\); `))
  // The rewound transactions are kept for the operator, beside the plan: exactly those, row by row.
  const work = file.replace(/\.json$/, '.work')
  const saved = readdirSync(work).filter((f) => f.endsWith('.binlog'))
  expect(saved).toHaveLength(1)
  const decoded = decodeSaved(join(work, saved[0]!))
  expect(decoded.gtids).toHaveLength(transactions)
  if (gtid) expect([decoded.gtids[0], decoded.gtids.at(-1)]).toEqual(gtids!.split('..'))
  expect(decoded.rowEvents).toBe(rowEvents)
  expect(decoded.inserted.get('acked')).toEqual(onlyOnDb1)
  expect(decoded.inserted.get('acked_log')).toEqual(onlyOnDb1)
  expect(decoded.inserted.get('extra')).toEqual([1, 2, 3, 4])

  expect(await ids(s, 'db1', 'extra')).toEqual([])
  const status = (await s.sql('db1', (c) => c.queryOne('SHOW SLAVE STATUS')))!
  expect([status.Master_Host, status.Slave_IO_Running, status.Slave_SQL_Running]).toEqual([nmIp, 'Yes', 'Yes'])
  if (gtid) expect(status.Using_Gtid).toBe('Slave_Pos')
  await s.sql(nm, (c) => c.execute("INSERT INTO mhatest.extra VALUES (100, 'after the rejoin')"))
  await new Promise((r) => setTimeout(r, 1000))
  await load.stop()
  await expectEqual(s, ['acked', 'acked_log', 'extra'])
  // The acknowledged writes lost in the failover are gone from db1 too, and only they.
  expect(await load.missingOn('db1')).toEqual(lostAcked)
  expect(await load.missingOn(nm)).toEqual(lostAcked)
  const check = await runMha(['check', '--config', s.configFile, '--plans-dir', plansDir])
  expect(check.code, check.stdout + check.stderr).toBe(0)
}

describe('mha plan --rejoin with transactions that never left the old master', () => {
  it('file/position, under write load: lists exactly them and refuses; with --flashback saves and rewinds them, and the old master rejoins equal to the new one', async () => {
    await rejoinWithExtraTransactions('itrejoin3', false)
  }, 240_000)

  it('GTID, under write load: lists exactly their GTIDs and refuses; with --flashback rewinds them, and the old master rejoins by GTID', async () => {
    await rejoinWithExtraTransactions('itrejoin5', true)
  }, 240_000)
})

describe('mha watch --auto-rejoin', () => {
  it('fails over, then rejoins the old master on its own once it answers again', async () => {
    sandbox = await startSandbox('itrejoin4', 171)
    const s = sandbox
    const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-rejoin-plans-'))
    await WriteLoad.prepare(s.state, 'db1')
    const load = new WriteLoad(s.state)
    load.start()
    const watch = spawnWatch(['--config-dir', join(s.configFile, '..'), '--plans-dir', plansDir, '--auto-rejoin'])
    try {
      await waitFor('watch to see db1 healthy', 20_000, () => watch.lines.some((l) => l.event === 'healthy'))
      await killMasterAndWait(s)
      await waitFor('the failover', 40_000, () => watch.lines.some((l) => l.event === 'failover done'))
      await startHost(s.state, 'db1')
      const rejoined = await waitFor('the rejoin', 40_000, () => watch.lines.some((l) => l.event === 'rejoined')).then(() => watch.lines.find((l) => l.event === 'rejoined')!)
      expect(rejoined.message).toMatch(/^rejoin applied: /)
      await new Promise((r) => setTimeout(r, 1000))
      await load.stop()
      const status = (await s.sql('db1', (c) => c.queryOne('SHOW SLAVE STATUS')))!
      expect([status.Master_Host, status.Slave_IO_Running, status.Slave_SQL_Running]).toEqual([s.state.hosts[1]!.ip, 'Yes', 'Yes'])
      await expectEqual(s, ['acked', 'acked_log'])
      expect(await load.missingOn('db1')).toEqual([])
      expect(watch.lines.filter((l) => l.event === 'error')).toEqual([])
    } finally {
      watch.child.kill('SIGTERM')
      await watch.exited
    }
  }, 240_000)
})

