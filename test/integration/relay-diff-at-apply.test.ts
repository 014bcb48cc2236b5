import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, afterEach, describe, expect, it} from 'vitest'
import type {ApplyReport} from '../../src/apply/events.js'
import {EventType, fileSource, readBinlogEvents} from '../../src/binlog/index.js'
import type {Plan, Step} from '../../src/plan/types.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {killMasterAndWait, runMha, serverStates, startSandbox, type TestSandbox} from './harness.js'

// save_relay_diff copies the part of the latest replica's relay log that a lagging replica lacks, from the byte
// offset the plan gives. That offset is plan data: at apply the step derives it again from the source's relay logs
// (the planner's own lookup) and refuses a plan whose offset disagrees, so that an offset at an earlier event never
// applies a transaction twice on the lagging replica. Octet 126 only (127.0.0.126-128).

let sandbox: TestSandbox | undefined
const dir = mkdtempSync(join(tmpdir(), 'mha-it-relaydiff-'))
afterEach(async () => {
  await sandbox?.down()
  sandbox = undefined
})
afterAll(() => rmSync(dir, {recursive: true, force: true}))

type SaveDiff = Step & {type: 'save_relay_diff'}
const rows = 'SELECT COUNT(*) AS n FROM relay.log'

/** Each id's row count on `host`: the table has no key, so a transaction applied twice shows as an id counted twice. */
async function idCounts(s: TestSandbox, host: string): Promise<Map<number, number>> {
  const found = await s.sql(host, (c) => c.query('SELECT id, COUNT(*) AS n FROM relay.log GROUP BY id ORDER BY id'))
  return new Map(found.map((r) => [Number(r.id), Number(r.n)]))
}

const once = (ids: number) => new Map(Array.from({length: ids}, (_, i) => [i + 1, 1]))

/**
 * File/position: ids 1-10 everywhere, then db3's IO thread stopped and ids 11-30 written (one transaction each),
 * which db2 receives; then the master dies. The failover plan copies db3's missing range from db2's relay log.
 */
async function laggingFailover(name: string): Promise<{s: TestSandbox; file: string; plan: Plan; save: SaveDiff}> {
  sandbox = await startSandbox(name, 126)
  const s = sandbox
  await s.sql('db1', async (c) => {
    await c.execute('CREATE DATABASE relay')
    await c.execute('CREATE TABLE relay.log (id INT NOT NULL)')
    for (let id = 1; id <= 10; id++) await c.execute(`INSERT INTO relay.log VALUES (${id})`)
  })
  const master = async () => (await s.sql('db1', (c) => c.queryOne('SHOW MASTER STATUS')))!
  const caughtUp = async (host: string) => {
    const at = await master()
    await waitFor(`${host} to execute all of db1's binlog`, 30_000, async () => {
      const status = (await s.sql(host, (c) => c.queryOne('SHOW SLAVE STATUS')))!
      return status.Relay_Master_Log_File === at.File && Number(status.Exec_Master_Log_Pos) === Number(at.Position)
    })
  }
  for (const host of ['db2', 'db3']) await caughtUp(host)
  await s.sql('db3', (c) => c.execute('STOP SLAVE IO_THREAD'))
  await s.sql('db1', async (c) => {
    for (let id = 11; id <= 30; id++) await c.execute(`INSERT INTO relay.log VALUES (${id})`)
  })
  await caughtUp('db2')
  await killMasterAndWait(s)
  mkdirSync(join(dir, name), {recursive: true})
  const file = join(dir, name, 'failover.json')
  const planned = await runMha(['plan', '--config', s.configFile, '--plans-dir', dir, '-o', file])
  expect(planned.code, planned.stdout + planned.stderr).toBe(2)
  const plan = JSON.parse(readFileSync(file, 'utf8')) as Plan
  expect(plan.decision.newMaster).toBe('db2')
  const save = plan.steps.find((st) => st.id === 'save_relay_diff:db3') as SaveDiff | undefined
  expect(save, plan.steps.map((st) => st.id).join(', ')).toBeDefined()
  expect(save!.params.diff.source).toBe('db2')
  expect(await idCounts(s, 'db3')).toEqual(once(10))
  return {s, file, plan, save: save!}
}

async function apply(s: TestSandbox, file: string): Promise<{code: number; report: ApplyReport; stderr: string}> {
  const result = await runMha(['apply', file, '--config', s.configFile, '--json'])
  return {code: result.code, report: JSON.parse(result.stdout) as ApplyReport, stderr: result.stderr}
}

function tampered(plan: Plan, file: string, name: string, change: (diff: SaveDiff['params']['diff']) => void): string {
  const copy = structuredClone(plan)
  change((copy.steps.find((st) => st.id === 'save_relay_diff:db3') as SaveDiff).params.diff)
  const out = join(file, '..', `${name}.json`)
  writeFileSync(out, JSON.stringify(copy, null, 2))
  return out
}

describe('save_relay_diff derives its range again at apply (octet 126)', () => {
  it('an offset moved to an earlier event in db2\'s relay log: the step fails naming it, nothing is copied, db3 is left out with no transaction twice', async () => {
    const {s, file, plan, save} = await laggingFailover('itrelaydiff')
    const diff = save.params.diff

    // diff.after is checked before any change: it must be db3's read position, a fact apply checks live.
    const before = await serverStates(s, rows)
    const after = await apply(s, tampered(plan, file, 'after', (d) => (d.after = {file: d.after.file, pos: 4})))
    expect(after.code, after.report.message).toBe(1)
    expect(after.report.status).toBe('refused')
    expect(after.report.message).toMatch(new RegExp(`step save_relay_diff:db3 params\\.diff\\.after: the plan says ${diff.after.file}:4, its observed facts give db3 the read position ${diff.after.file}:${diff.after.pos}`))
    expect(await serverStates(s, rows)).toBe(before)

    // An earlier event in the same relay file: the one after the GTID event that starts the last transaction db3
    // has, the offset a crafted plan would give to apply that transaction's row again on db3 (without its GTID, so
    // that apply_logs cannot tell it is there already).
    const events = (await readBinlogEvents(fileSource(diff.files[0]!))).events
    const db2Id = Number((await s.sql('db2', (c) => c.queryOne('SELECT @@server_id AS id')))!.id)
    const master = events.filter((e) => e.serverId !== db2Id && e.offset < diff.offset)
    const gtid = master.findLastIndex((e) => e.type === EventType.MARIADB_GTID)
    const earlier = master[gtid + 1]
    expect(gtid >= 0 && earlier !== undefined, `a transaction before ${diff.files[0]}:${diff.offset}`).toBe(true)
    const offsetFile = tampered(plan, file, 'offset', (d) => (d.offset = earlier!.offset))
    const applied = await apply(s, offsetFile)
    // db2 is promoted; db3 is left out, named, with the step's one line.
    expect(applied.code, applied.report.message).toBe(10)
    expect(applied.report.status).toBe('partial')
    expect(applied.report.leftOut.map((l) => l.server)).toEqual(['db3'])
    const reason = `step save_relay_diff:db3 params.diff.offset: the plan says ${diff.files[0]}:${earlier!.offset}, db2's relay log gives ${diff.files[0]}:${diff.offset} for the events after ${diff.after.file}:${diff.after.pos} (db3's read position); nothing was copied`
    expect(applied.report.leftOut[0]!.reason).toBe(reason)
    expect(applied.report.steps.find((st) => st.id === 'save_relay_diff:db3')).toMatchObject({status: 'failed', reason})
    expect(applied.report.steps.find((st) => st.id === 'apply_logs:db3')?.status).toBe('blocked')
    expect(applied.stderr).toContain(reason)
    // Nothing was copied, and db3 has each of its rows exactly once; db2 has them all, once.
    const work = offsetFile.replace(/\.json$/, '.work')
    expect(existsSync(work) ? readdirSync(work).filter((f) => f.startsWith('relay-diff-')) : []).toEqual([])
    expect(await idCounts(s, 'db3')).toEqual(once(10))
    expect(await idCounts(s, 'db2')).toEqual(once(30))
    expect(Number((await s.sql('db2', (c) => c.queryOne('SELECT @@global.read_only+0 AS ro')))!.ro)).toBe(0)
  })

  it('the genuine plan applies: db3 gets every missing row, each exactly once', async () => {
    const {s, file} = await laggingFailover('itrelaydiffok')
    const applied = await apply(s, file)
    expect(applied.code, applied.report.message + applied.stderr).toBe(0)
    expect(applied.report.status).toBe('applied')
    expect(applied.report.steps.find((st) => st.id === 'save_relay_diff:db3')?.status).toBe('applied')
    expect(await idCounts(s, 'db3')).toEqual(once(30))
    expect(await idCounts(s, 'db2')).toEqual(once(30))
    const status = (await s.sql('db3', (c) => c.queryOne('SHOW SLAVE STATUS')))!
    expect([status.Master_Host, status.Slave_IO_Running, status.Slave_SQL_Running]).toEqual([s.state.hosts[1]!.ip, 'Yes', 'Yes'])
  })
})
