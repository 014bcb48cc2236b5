import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import type {Plan, Step} from '../../src/plan/types.js'
import {confirmedTargetOf} from '../../src/plan/validate.js'
import {startHost} from '../../src/sandbox/sandbox.js'
import {killMasterAndWait, planAndApply, root, runMha, serverStates, startSandbox, type TestSandbox} from './harness.js'

// "Never the master" is re-derived from the live servers at apply, not taken from the plan's own word: a rejoin,
// rebuild or remove plan made for a replica and edited to aim at the live master (its observed section the live
// cluster's, so that it passes the file checks and the staleness check) is refused before any change.

let sandbox: TestSandbox | undefined
let plansDir: string | undefined
afterEach(async () => {
  await sandbox?.down()
  // The sandbox's folder (servers, cluster file) too: startSandbox makes it under the temp folder.
  if (sandbox) rmSync(dirname(dirname(sandbox.configFile)), {recursive: true, force: true})
  sandbox = undefined
  if (plansDir) rmSync(plansDir, {recursive: true, force: true})
  plansDir = undefined
  rmSync(join(root, 'plans', 'itroles'), {recursive: true, force: true})
})

/** Every server's state (serverStates, with the row count of roles.t) and the out-of-service list. */
async function state(s: TestSandbox, dir: string): Promise<string> {
  const rows = await serverStates(s, 'SELECT COUNT(*) AS n FROM roles.t')
  const stateFile = join(dir, 'itroles', 'watch-state.json')
  const out = existsSync(stateFile) ? ((JSON.parse(readFileSync(stateFile, 'utf8')) as {outOfService?: {server: string}[]}).outOfService ?? []).map((o) => o.server) : []
  return [rows, `out of service: ${out.join(', ') || 'none'}`].join('\n')
}

/** A real sandbox (GTID unless said), a table with rows on the master, and a plans folder. */
async function cluster(gtid = true): Promise<{s: TestSandbox; dir: string}> {
  sandbox = await startSandbox('itroles', 215, {gtid})
  plansDir = mkdtempSync(join(tmpdir(), 'mha-it-roles-'))
  mkdirSync(join(plansDir, 'itroles'), {recursive: true})
  await sandbox.sql('db1', async (c) => {
    await c.execute('CREATE DATABASE roles')
    await c.execute('CREATE TABLE roles.t (id INT PRIMARY KEY)')
    await c.execute('INSERT INTO roles.t VALUES (1), (2), (3)')
  })
  await settle(sandbox)
  return {s: sandbox, dir: plansDir}
}

/** Both replicas have every row of the master. */
async function settle(s: TestSandbox): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const pos = await Promise.all(s.state.hosts.map((h) => s.sql(h.name, async (c) => String((await c.queryOne('SELECT @@global.gtid_binlog_pos AS p'))!.p))))
    if (pos.every((p) => p === pos[0])) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error('the replicas did not catch up')
}

async function plan(s: TestSandbox, dir: string, name: string, args: string[]): Promise<Plan> {
  const file = join(dir, 'itroles', `${name}.json`)
  const made = await runMha(['plan', '--config', s.configFile, '--plans-dir', dir, '-o', file, ...args])
  expect(made.code, made.stdout + made.stderr).toBe(2)
  return JSON.parse(readFileSync(file, 'utf8')) as Plan
}

/** The steps of a plan made for `from`, aimed at `to`: every name of `from` (ids, targets, reasons) and its host's folder. */
function aim(steps: Step[], from: string, to: string): Step[] {
  const folder = (name: string) => `/host${name.slice(2)}/`
  return JSON.parse(JSON.stringify(steps).replaceAll(from, to).replaceAll(folder(from), folder(to))) as Step[]
}

/** The live cluster's observed section says db1 is a replica and db2 the master (what the plan's own word rests on). */
function masterIs(plan: Plan, name: string): Plan['observed'] {
  const observed = structuredClone(plan.observed)
  for (const server of observed.servers) server.role = server.name === name ? 'master' : server.reachable ? 'replica' : 'down'
  return observed
}

async function applyCrafted(s: TestSandbox, dir: string, name: string, crafted: Plan): Promise<{code: number; stdout: string; stderr: string; before: string; after: string}> {
  const file = join(dir, 'itroles', `${name}.json`)
  writeFileSync(file, JSON.stringify(crafted, null, 2))
  // Today's checks of the plan against the cluster file pass: only the live roles tell it aims at the master.
  const shown = await runMha(['show', file, '--config', s.configFile])
  expect(shown.code, shown.stdout + shown.stderr).toBe(0)
  const before = await state(s, dir)
  // A rebuild or removal runs only on the server named with --target: named, so that only the roles refuse it.
  const target = confirmedTargetOf(crafted)
  const applied = await runMha(['apply', file, '--config', s.configFile, ...(target === null ? [] : ['--target', target])])
  await new Promise((r) => setTimeout(r, 500))
  return {...applied, before, after: await state(s, dir)}
}

/** Refused in one line that names db1 as the live master, exit 1, and nothing changed on any server. */
function expectRefused(result: Awaited<ReturnType<typeof applyCrafted>>, kind: string, reason = new RegExp(`db1 is the live master \\(db2, db3 replicate from it, read_only=0\\); a ${kind} plan never acts on the master`)): void {
  const output = result.stdout + result.stderr
  expect(result.after, `${kind} aimed at a server it must not touch changed the cluster:\n${output}`).toBe(result.before)
  expect(result.code, output).toBe(1)
  const lines = result.stderr.split('\n').filter((l) => l.startsWith('mha: ') && !l.startsWith('mha: next:'))
  expect(lines, output).toHaveLength(1)
  expect(lines[0]).toMatch(/the plan disagrees with the live roles: /)
  expect(lines[0]).toMatch(reason)
}

describe('roles re-derived at apply: crafted plans aimed at the live master (octet 215)', () => {
  it('a rejoin plan (read_only, save and rewind, RESET MASTER, re-point to a replica) aimed at the master db1 is refused', async () => {
    const {s, dir} = await cluster()
    // A genuine rejoin plan for db3, whose replication was stopped.
    await s.sql('db3', (c) => c.execute('STOP SLAVE'))
    const genuine = await plan(s, dir, 'rejoin-db3', ['--rejoin', 'db3'])
    expect(genuine.steps.map((st) => st.type)).toEqual(['set_read_only', 'repoint_replica', 'verify_replication'])
    await s.sql('db3', (c) => c.execute('START SLAVE'))
    // Transactions on db1 for the rewind to take back: from `from` to the end of its binlog.
    const from = await s.sql('db1', async (c) => (await c.queryOne('SHOW MASTER STATUS'))!)
    await s.sql('db1', (c) => c.execute('INSERT INTO roles.t VALUES (4), (5), (6)'))
    const end = await s.sql('db1', async (c) => (await c.queryOne('SHOW MASTER STATUS'))!)
    const gtids = await s.sql('db1', async (c) => String((await c.queryOne('SELECT @@global.gtid_binlog_pos AS p'))!.p))
    await settle(s)
    const fresh = await plan(s, dir, 'fresh', ['--switchover', '--to', 'db2'])
    const db1 = s.state.hosts.find((h) => h.name === 'db1')!
    const db2 = s.state.hosts.find((h) => h.name === 'db2')!
    const steps = aim(genuine.steps, 'db3', 'db1')
    const repoint = steps.find((st) => st.type === 'repoint_replica')! as Step & {type: 'repoint_replica'}
    repoint.params = {...repoint.params, source: 'db2', host: db2.ip, port: 3306, preview: repoint.params.preview.replace(`'${s.state.hosts[0]!.ip}'`, `'${db2.ip}'`)}
    const verify = steps.find((st) => st.type === 'verify_replication')! as Step & {type: 'verify_replication'}
    Object.assign(verify, {server: 'db2', params: {master: 'db2', replicas: ['db1']}})
    const save: Step = {id: 'save_master_binlog:db1', type: 'save_master_binlog', server: 'db1', group: 'replica:db1', params: {dir: db1.datadir, from: {file: String(from.File), pos: Number(from.Position)}, files: [String(from.File)]}, after: ['set_read_only:db1'], outputs: ['file', 'end'], reason: 'keep db1 extra transactions'}
    const flashback: Step = {
      id: 'flashback_binlog:db1',
      type: 'flashback_binlog',
      server: 'db1',
      group: 'replica:db1',
      params: {saved: {fromStep: save.id, output: 'file'}, from: {file: String(from.File), pos: Number(from.Position)}, end: {file: String(end.File), pos: Number(end.Position)}, transactions: 1, gtids: gtids, resetBinlog: true},
      after: [save.id],
      outputs: [],
      reason: 'rewind them',
    }
    repoint.after = [flashback.id]
    const crafted: Plan = {
      ...genuine,
      observed: masterIs(fresh, 'db2'),
      decision: {...genuine.decision, newMaster: 'db2', summary: 'db1 rejoins db2 as a replica', dataLoss: {none: false, statement: 'db1 extra transaction rewound', lostAfter: save.type === 'save_master_binlog' ? save.params.from : null, lostGtids: gtids, abandoned: []}},
      steps: [steps[0]!, save, flashback, repoint, verify],
    }
    expectRefused(await applyCrafted(s, dir, 'crafted-rejoin', crafted), 'rejoin')
  })

  it('a rebuild plan (stop, replace the datadir, replicate from a replica) aimed at the master db1 is refused', async () => {
    const {s, dir} = await cluster()
    // A genuine rebuild plan for db3, whose replication was stopped (a broken replica).
    await s.sql('db3', (c) => c.execute('STOP SLAVE'))
    const genuine = await plan(s, dir, 'rebuild-db3', ['--rebuild', 'db3'])
    expect(genuine.steps.map((st) => st.type)).toEqual(['copy_backup', 'stop_server', 'install_backup', 'start_server', 'replicate_from_copy', 'verify_replication'])
    await s.sql('db3', (c) => c.execute('START SLAVE'))
    const fresh = await plan(s, dir, 'fresh', ['--switchover', '--to', 'db2'])
    const db2 = s.state.hosts.find((h) => h.name === 'db2')!
    // Copied from db3 (a replica), installed on db1, which then replicates from db2.
    const steps = aim(genuine.steps, 'db3', 'db1').map((st) => {
      if (st.type === 'copy_backup') return {...st, params: {...st.params, source: 'db3'}}
      if (st.type === 'replicate_from_copy') return {...st, params: {...st.params, source: 'db2', host: db2.ip, port: 3306}}
      if (st.type === 'verify_replication') return {...st, params: {master: 'db2', replicas: ['db1']}}
      return st
    })
    const crafted: Plan = {...genuine, observed: masterIs(fresh, 'db2'), steps}
    expectRefused(await applyCrafted(s, dir, 'crafted-rebuild', crafted), 'rebuild')
  })

  it('a remove plan (replication reset, listed out of service) aimed at the master db1 is refused', async () => {
    const {s, dir} = await cluster()
    const genuine = await plan(s, dir, 'remove-db3', ['--remove', 'db3'])
    expect(genuine.steps.map((st) => st.type)).toEqual(['detach_replication', 'mark_out_of_service'])
    const fresh = await plan(s, dir, 'fresh', ['--switchover', '--to', 'db2'])
    const crafted: Plan = {...genuine, observed: masterIs(fresh, 'db2'), steps: aim(genuine.steps, 'db3', 'db1')}
    expectRefused(await applyCrafted(s, dir, 'crafted-remove', crafted), 'remove')
  })

  it('after a real failover, the old master\'s rejoin plan aimed at the new master, or at a replica the state does not list out of service, is refused; the genuine one applies', async () => {
    const {s, dir} = await cluster(false)
    await killMasterAndWait(s)
    await planAndApply(s, dir, 'failover')
    await startHost(s.state, 'db1')
    await s.sql('db1', (c) => c.execute('SET GLOBAL read_only = 1'))
    const genuine = await plan(s, dir, 'rejoin-db1', ['--rejoin', 'db1'])
    expect(genuine.steps.map((st) => st.type)).toEqual(['set_read_only', 'repoint_replica', 'verify_replication'])
    // Written on the new master after its promotion: a replica re-pointed to the promotion coordinates would get them twice.
    await s.sql('db2', (c) => c.execute('INSERT INTO roles.t VALUES (7), (8)'))
    for (let i = 0; i < 100 && Number((await s.sql('db3', (c) => c.queryOne('SELECT COUNT(*) AS n FROM roles.t')))!.n) !== 5; i++) await new Promise((r) => setTimeout(r, 100))
    // Aimed at the new master db2, re-pointed to its replica db3.
    const db3 = s.state.hosts[2]!
    const atMaster = aim(genuine.steps, 'db1', 'db2').map((st): Step => {
      if (st.type === 'repoint_replica') return {...st, params: {...st.params, source: 'db3', host: db3.ip, preview: st.params.preview.replace(`'${s.state.hosts[1]!.ip}'`, `'${db3.ip}'`)}}
      return st.type === 'verify_replication' ? {...st, server: 'db3', params: {master: 'db3', replicas: ['db2']}} : st
    })
    expectRefused(await applyCrafted(s, dir, 'crafted-rejoin-db2', {...genuine, decision: {...genuine.decision, newMaster: 'db3'}, steps: atMaster}), 'rejoin', /db2 is the live master \(db3 replicates from it, read_only=0\); a rejoin plan never acts on the master/)
    // db3's replication stopped for maintenance: a replica of the master, but not one the failover took out.
    await s.sql('db3', (c) => c.execute('STOP SLAVE'))
    const crafted: Plan = {...genuine, steps: aim(genuine.steps, 'db1', 'db3').map((st) => (st.type === 'verify_replication' ? {...st, server: 'db2', params: {master: 'db2', replicas: ['db3']}} : st))}
    expectRefused(await applyCrafted(s, dir, 'crafted-rejoin-db3', crafted), 'rejoin', /db3 is not listed out of service \(db1\) nor the dead master of the last failover \(db1\): a rejoin puts back a server a failover took out/)
    // The genuine plan, made for the server the failover took out, still applies.
    const applied = await runMha(['apply', join(dir, 'itroles', 'rejoin-db1.json'), '--config', s.configFile])
    expect(applied.code, applied.stdout + applied.stderr).toBe(0)
    const status = (await s.sql('db1', (c) => c.queryOne('SHOW SLAVE STATUS')))!
    expect([status.Master_Host, status.Slave_IO_Running, status.Slave_SQL_Running]).toEqual([s.state.hosts[1]!.ip, 'Yes', 'Yes'])
  })
})
