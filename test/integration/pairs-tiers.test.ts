import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import type {ApplyReport} from '../../src/apply/events.js'
import type {CheckReport} from '../../src/analysis/check.js'
import type {Plan} from '../../src/plan/types.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {secretsOf, startHost} from '../../src/sandbox/sandbox.js'
import {leaveNothing, runMha, serverStates, startSandbox, type TestSandbox} from './harness.js'

// MHA 0.58's master-master pairs and multi-tier replicas (its tests t_mm*, t_online_mm*, t_*3tier*, t_4tier*), built
// with CHANGE MASTER on real sandbox servers, planned, applied and checked as an operator would.
const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-mmtiers-'))
const sandboxes: TestSandbox[] = []
afterAll(async () => {
  for (const s of sandboxes) await leaveNothing(undefined, s, [])
  await leaveNothing(undefined, undefined, [plansDir])
})

let count = 0
const ipOf = (s: TestSandbox, host: string) => s.state.hosts.find((h) => h.name === host)!.ip
const nameOf = (s: TestSandbox, ip: unknown) => s.state.hosts.find((h) => h.ip === ip)?.name ?? String(ip)

async function plan(s: TestSandbox, args: string[] = []): Promise<{code: number; out: string; plan: Plan | undefined; file: string}> {
  const file = join(plansDir, `${s.state.cluster}-${++count}.json`)
  const r = await runMha(['plan', '--config', s.configFile, '-o', file, ...args])
  let written: Plan | undefined
  try {
    written = JSON.parse(readFileSync(file, 'utf8')) as Plan
  } catch {
    written = undefined
  }
  return {code: r.code, out: r.stdout + r.stderr, plan: written, file}
}

async function applyPlan(s: TestSandbox, file: string): Promise<ApplyReport> {
  const r = await runMha(['apply', file, '--config', s.configFile, '--json'])
  const report = JSON.parse(r.stdout) as ApplyReport
  expect(report.status, `${report.message}\n${r.stderr}`).toBe('applied')
  return report
}

async function check(s: TestSandbox): Promise<{code: number; report: CheckReport}> {
  const r = await runMha(['check', '--config', s.configFile, '--json'])
  return {code: r.code, report: JSON.parse(r.stdout) as CheckReport}
}

/**
 * `replica` replicates from `source` from `source`'s current binlog position (both hold the same data); by GTID,
 * from what `replica`'s own binlog holds.
 */
async function replicateFrom(s: TestSandbox, replica: string, source: string, gtid = false): Promise<void> {
  const at = (await s.sql(source, (c) => c.queryOne('SHOW MASTER STATUS')))!
  const password = secretsOf(s.state.dir).repl.reveal()
  await s.sql(replica, async (c) => {
    await c.execute('STOP SLAVE')
    if (gtid) await c.execute('SET GLOBAL gtid_slave_pos = @@global.gtid_binlog_pos')
    const from = gtid ? 'MASTER_USE_GTID=slave_pos' : `MASTER_USE_GTID=no, MASTER_LOG_FILE='${String(at.File)}', MASTER_LOG_POS=${String(at.Position)}`
    await c.execute(`CHANGE MASTER TO MASTER_HOST='${ipOf(s, source)}', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='${password}', MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1, ${from}`)
    await c.execute('START SLAVE')
  })
}

/** Who each server replicates from, with both threads' state: ['db2', 'db1 Yes Yes'] or ['db1', 'none']. */
async function shape(s: TestSandbox): Promise<string[]> {
  return Promise.all(
    s.state.hosts.map(async (h) => {
      try {
        const row = await s.sql(h.name, async (c) => ({st: await c.queryOne('SHOW SLAVE STATUS'), ro: (await c.queryOne('SELECT @@global.read_only+0 AS ro'))!.ro}))
        return `${h.name} ${Number(row.ro) ? 'ro' : 'rw'} <- ${row.st ? `${nameOf(s, row.st.Master_Host)} ${String(row.st.Slave_IO_Running)} ${String(row.st.Slave_SQL_Running)}` : 'none'}`
      } catch {
        return `${h.name} down`
      }
    }),
  )
}

let row = 0
/** A row written on `master`; every live server in `hosts` must then hold every row written so far. */
async function writeAndSeeEverywhere(s: TestSandbox, master: string, hosts: string[]): Promise<void> {
  const id = ++row
  await s.sql(master, (c) => c.execute(`INSERT INTO mhatest.t (id) VALUES (${id})`))
  for (const host of hosts)
    await waitFor(`${host} to hold rows 1..${id}`, 20_000, async () => {
      const r = await s.sql(host, (c) => c.queryOne('SELECT COUNT(*) AS n, COALESCE(SUM(id), 0) AS total FROM mhatest.t')).catch(() => undefined)
      return Number(r?.n) === id && Number(r?.total) === (id * (id + 1)) / 2
    })
}

async function kill(s: TestSandbox, host: string): Promise<void> {
  process.kill(s.state.hosts.find((h) => h.name === host)!.mariadbdPid!, 'SIGKILL')
  await waitFor(`${host} to stop answering`, 20_000, async () => !(await s.sql(host, (c) => c.queryOne('SELECT 1 AS one')).catch(() => undefined)))
}

function setConfig(s: TestSandbox, original: string, extra: string): void {
  writeFileSync(s.configFile, original + extra)
}

describe('a two-server master-master pair (MHA t_mm, t_mm_noslaves, t_online_mm, t_online_mm_skip_reset)', () => {
  it('is managed: both writable refused, a failed switch rolled back to the pair, switched both ways staying a pair, skip_reset_slave kept, the standby down is no failover, the active down is', async () => {
    const s = await startSandbox('itmm2', 3, {replicas: 1})
    sandboxes.push(s)
    const original = readFileSync(s.configFile, 'utf8')
    const all = ['db1', 'db2']
    await s.sql('db1', (c) => c.execute('CREATE TABLE mhatest.t (id INT PRIMARY KEY)'))
    row = 0
    await writeAndSeeEverywhere(s, 'db1', all)
    await replicateFrom(s, 'db1', 'db2')
    await waitFor('db1 to replicate from db2', 10_000, async () => (await shape(s)).includes('db1 rw <- db2 Yes Yes'))

    // Was "no master found": one replica names each. Now the writable one is the master, and a check is ok.
    const healthy = await check(s)
    expect([healthy.code, healthy.report.master, healthy.report.verdict], JSON.stringify(healthy.report.findings)).toEqual([0, 'db1', 'ok'])
    const noop = await plan(s)
    expect([noop.code, noop.plan?.kind], noop.out).toEqual([0, 'noop'])

    // Both writable: two writers already; switchover, plan and check refuse, and nothing changes.
    await s.sql('db2', (c) => c.execute('SET GLOBAL read_only = 0'))
    const before = await serverStates(s)
    const twoWriters = await plan(s, ['--switchover', '--to', 'db2'])
    expect(twoWriters.code).toBe(1)
    expect(twoWriters.out).toContain('switchover refused: db1 (writable) and db2 (writable) both have replicas: mha cannot tell which is the master (two writers')
    expect((await check(s)).report.findings.find((f) => f.code === 'several_masters')?.severity).toBe('error')
    expect(await serverStates(s)).toBe(before)
    await s.sql('db2', (c) => c.execute('SET GLOBAL read_only = 1'))

    // A switch that fails before the promotion is rolled back: db1 takes writes and replicates from db2 again.
    await s.sql('db1', async (c) => {
      await c.execute('CREATE TABLE mhatest.held (id INT PRIMARY KEY, v INT)')
      await c.execute('INSERT INTO mhatest.held VALUES (1, 1)')
    })
    await waitFor('db2 to have the held row', 10_000, async () => Number((await s.sql('db2', (c) => c.queryOne('SELECT COUNT(*) AS n FROM mhatest.held')).catch(() => undefined))?.n) === 1)
    setConfig(s, original, 'failover:\n  wait_timeout: 2\n')
    const failing = await plan(s, ['--switchover', '--to', 'db2'])
    expect(failing.code, failing.out).toBe(2)
    // A transaction on db2 holds the row, so db2 cannot apply db1's next update before the promotion.
    const holder = await s.sql('db2', async (c) => {
      await c.execute('BEGIN')
      await c.execute('SELECT * FROM mhatest.held WHERE id = 1 FOR UPDATE')
      await s.sql('db1', (d) => d.execute('UPDATE mhatest.held SET v = 2 WHERE id = 1'))
      const r = await runMha(['apply', failing.file, '--config', s.configFile, '--json'])
      await c.execute('ROLLBACK')
      return r
    })
    const rolledBack = JSON.parse(holder.stdout) as ApplyReport
    expect([holder.code, rolledBack.status]).toEqual([1, 'failed'])
    expect(rolledBack.message).toContain('rolled back (unblock_writes:db1')
    await waitFor('the pair to replicate both ways again', 20_000, async () => (await shape(s)).join() === 'db1 rw <- db2 Yes Yes,db2 ro <- db1 Yes Yes')
    setConfig(s, original, '')
    await writeAndSeeEverywhere(s, 'db1', all)

    // Switch to the standby: db1 stops replicating from db2 under its block, then follows it (still a pair).
    const there = await plan(s, ['--switchover', '--to', 'db2'])
    expect(there.code, there.out).toBe(2)
    expect(there.plan!.steps.find((x) => x.type === 'block_writes')!.params).toEqual({stopReplication: true})
    await applyPlan(s, there.file)
    expect(await shape(s)).toEqual(['db1 ro <- db2 Yes Yes', 'db2 rw <- none'])
    await writeAndSeeEverywhere(s, 'db2', all)

    // And back: db2 replicates from nobody now, but a two-server cluster is a pair: db2 follows db1.
    const back = await plan(s, ['--switchover', '--to', 'db1'])
    expect(back.code, back.out).toBe(2)
    await applyPlan(s, back.file)
    expect(await shape(s)).toEqual(['db1 rw <- none', 'db2 ro <- db1 Yes Yes'])
    await writeAndSeeEverywhere(s, 'db1', all)

    // skip_reset_slave (MHA 0.56+): the new master keeps its settings to replicate from the old one, stopped.
    setConfig(s, original, 'failover:\n  skip_reset_slave: true\n')
    const kept = await plan(s, ['--switchover', '--to', 'db2'])
    expect(kept.plan!.steps.find((x) => x.type === 'detach_replication')!.params).toEqual({resetSlaveAll: false})
    await applyPlan(s, kept.file)
    expect(await shape(s)).toEqual(['db1 ro <- db2 Yes Yes', 'db2 rw <- db1 No No'])
    await writeAndSeeEverywhere(s, 'db2', all)
    setConfig(s, original, '')

    // The read_only standby (db1) stops: db2 is writable and stays the master; no failover; check says why.
    await kill(s, 'db1')
    const standbyDown = await plan(s)
    expect([standbyDown.code, standbyDown.plan?.kind], standbyDown.out).toEqual([0, 'noop'])
    expect(standbyDown.plan!.decision.notes[0]).toBe(
      'db1, the standby master that db2 replicates from, does not answer: db2 is writable and stays the master, so nothing is failed over; start db1 again (it resumes replicating from db2) or rebuild it',
    )
    expect((await check(s)).report.findings.find((f) => f.code === 'standby_down')?.message).toBe(standbyDown.plan!.decision.notes[0])
    await startHost(s.state, 'db1')
    // Its my.cnf says read-only=0 (it was the sandbox's master): read_only again, as its role is now.
    await s.sql('db1', (c) => c.execute('SET GLOBAL read_only = 1'))
    await waitFor('db1 to replicate from db2 again', 20_000, async () => (await shape(s))[0] === 'db1 ro <- db2 Yes Yes')
    await writeAndSeeEverywhere(s, 'db2', all)

    // The active master (db2) dies: the standby is promoted; the plan says the dead one must be rejoined.
    await kill(s, 'db2')
    await waitFor('db1 to lose db2', 20_000, async () => !(await shape(s))[0]!.includes('Yes Yes'))
    const failover = await plan(s)
    expect([failover.code, failover.plan?.kind, failover.plan?.decision.newMaster], failover.out).toEqual([2, 'failover', 'db1'])
    expect(failover.plan!.decision.notes).toContain(
      'db2 is not brought back by this plan and db1 is left without a standby: once db2 is up again, rejoin it as a replica of db1 ("mha plan --rejoin db2") or rebuild it, so that the pair is a pair again',
    )
    await applyPlan(s, failover.file)
    expect((await shape(s))[0]).toBe('db1 rw <- none')
    await writeAndSeeEverywhere(s, 'db1', ['db1'])
  })
})

describe('a two-server master-master pair by GTID', () => {
  it('switches both ways and stays a pair, every row on both', async () => {
    const s = await startSandbox('itmm2g', 5, {replicas: 1, gtid: true})
    sandboxes.push(s)
    const all = ['db1', 'db2']
    await s.sql('db1', (c) => c.execute('CREATE TABLE mhatest.t (id INT PRIMARY KEY)'))
    row = 0
    await writeAndSeeEverywhere(s, 'db1', all)
    await replicateFrom(s, 'db1', 'db2', true)
    await waitFor('db1 to replicate from db2', 10_000, async () => (await shape(s))[0] === 'db1 rw <- db2 Yes Yes')
    for (const [to, from] of [
      ['db2', 'db1'],
      ['db1', 'db2'],
    ] as const) {
      const switched = await plan(s, ['--switchover', '--to', to])
      expect([switched.code, switched.plan?.decision.replicationMode], switched.out).toEqual([2, 'gtid'])
      await applyPlan(s, switched.file)
      expect((await shape(s)).sort()).toEqual([`${from} ro <- ${to} Yes Yes`, `${to} rw <- none`].sort())
      await writeAndSeeEverywhere(s, to, all)
    }
  })
})

describe('a master-master pair with replicas, then replicas of replicas (MHA t_mm_subm_dead, t_online_mm, t_mm_3tier, t_online_3tier, t_4tier)', () => {
  it('switches a 2+N pair both ways, refuses two writers, keeps the master when the standby dies, promotes the standby when the active dies; refuses 3 tiers without multi_tier_slave and keeps them with it; fails over 4 tiers', async () => {
    const s = await startSandbox('itmm4', 15, {replicas: 3})
    sandboxes.push(s)
    const original = readFileSync(s.configFile, 'utf8')
    const all = ['db1', 'db2', 'db3', 'db4']
    await s.sql('db1', (c) => c.execute('CREATE TABLE mhatest.t (id INT PRIMARY KEY)'))
    row = 0
    await writeAndSeeEverywhere(s, 'db1', all)

    // 2+N: db1 active, db2 its read_only standby, db3 and db4 replicas of db1.
    await replicateFrom(s, 'db1', 'db2')
    await waitFor('db1 to replicate from db2', 10_000, async () => (await shape(s))[0] === 'db1 rw <- db2 Yes Yes')
    expect((await check(s)).report).toMatchObject({verdict: 'ok', master: 'db1'})
    const there = await plan(s, ['--switchover', '--to', 'db2'])
    expect(there.code, there.out).toBe(2)
    await applyPlan(s, there.file)
    expect(await shape(s)).toEqual(['db1 ro <- db2 Yes Yes', 'db2 rw <- none', 'db3 ro <- db2 Yes Yes', 'db4 ro <- db2 Yes Yes'])
    await writeAndSeeEverywhere(s, 'db2', all)
    const back = await plan(s, ['--switchover', '--to', 'db1'])
    expect(back.code, back.out).toBe(2)
    await applyPlan(s, back.file)
    expect(await shape(s)).toEqual(['db1 rw <- none', 'db2 ro <- db1 Yes Yes', 'db3 ro <- db1 Yes Yes', 'db4 ro <- db1 Yes Yes'])
    await writeAndSeeEverywhere(s, 'db1', all)

    // A pair again. Both writable: refused, nothing changed.
    await replicateFrom(s, 'db1', 'db2')
    await waitFor('db1 to replicate from db2', 10_000, async () => (await shape(s))[0] === 'db1 rw <- db2 Yes Yes')
    await s.sql('db2', (c) => c.execute('SET GLOBAL read_only = 0'))
    const writers = await serverStates(s)
    const twoWriters = await plan(s, ['--switchover', '--to', 'db3'])
    expect([twoWriters.code, twoWriters.out]).toEqual([1, expect.stringContaining('switchover refused: db1 (writable) and db2 (writable) both have replicas') as unknown])
    expect((await plan(s)).out).toContain('no failover is planned: db1 (writable) and db2 (writable) both have replicas')
    expect((await check(s)).code).toBe(2)
    expect(await serverStates(s)).toBe(writers)
    await s.sql('db2', (c) => c.execute('SET GLOBAL read_only = 1'))

    // The standby stops: MHA's rule sees two masters (db1 writable, db2 dead); only db1 replicated from db2, so db1
    // stays the master and nothing is failed over. db2 comes back and both directions resume.
    await kill(s, 'db2')
    const standbyDown = await plan(s)
    expect([standbyDown.code, standbyDown.plan?.kind, standbyDown.plan?.decision.notes[0]], standbyDown.out).toEqual([
      0,
      'noop',
      'db2, the standby master that db1 replicates from, does not answer: db1 is writable and stays the master, so nothing is failed over; start db2 again (it resumes replicating from db1) or rebuild it',
    ])
    await startHost(s.state, 'db2')
    await waitFor('the pair to replicate both ways again', 20_000, async () => (await shape(s)).slice(0, 2).join() === 'db1 rw <- db2 Yes Yes,db2 ro <- db1 Yes Yes')
    await writeAndSeeEverywhere(s, 'db1', all)

    // The active master dies: the standby is promoted, the replicas follow it; db1 comes back as its standby.
    await kill(s, 'db1')
    await waitFor('the replicas to lose db1', 20_000, async () => (await shape(s)).slice(1).every((x) => !x.includes('Yes Yes')))
    const promote = await plan(s)
    expect([promote.code, promote.plan?.decision.deadMaster, promote.plan?.decision.newMaster], promote.out).toEqual([2, 'db1', 'db2'])
    await applyPlan(s, promote.file)
    expect((await shape(s)).slice(1)).toEqual(['db2 rw <- none', 'db3 ro <- db2 Yes Yes', 'db4 ro <- db2 Yes Yes'])
    await writeAndSeeEverywhere(s, 'db2', ['db2', 'db3', 'db4'])
    await startHost(s.state, 'db1')
    // Its my.cnf says read-only=0; as the pair's standby it is read_only, and it resumes replicating from db2.
    await s.sql('db1', (c) => c.execute('SET GLOBAL read_only = 1'))
    await waitFor('db1 to replicate from db2', 20_000, async () => (await shape(s))[0] === 'db1 ro <- db2 Yes Yes')
    await writeAndSeeEverywhere(s, 'db2', all)
    const home = await plan(s, ['--switchover', '--to', 'db1'])
    expect(home.code, home.out).toBe(2)
    await applyPlan(s, home.file)
    expect(await shape(s)).toEqual(['db1 rw <- none', 'db2 ro <- db1 Yes Yes', 'db3 ro <- db1 Yes Yes', 'db4 ro <- db1 Yes Yes'])
    await writeAndSeeEverywhere(s, 'db1', all)

    // 3 tiers: db4 under db3. Without multi_tier_slave a switchover is refused before any change, check says why.
    await replicateFrom(s, 'db4', 'db3')
    await waitFor('db4 to replicate from db3', 10_000, async () => (await shape(s))[3] === 'db4 ro <- db3 Yes Yes')
    await writeAndSeeEverywhere(s, 'db1', all)
    const before = await serverStates(s)
    const refused = await plan(s, ['--switchover', '--to', 'db2'])
    expect(refused.code).toBe(1)
    expect(refused.out).toContain('switchover refused: db4 replicates from db3, not from the master db1 (a multi-tier topology); set failover.multi_tier_slave: true in')
    const strict = await check(s)
    expect(strict.code).toBe(2)
    expect(strict.report.findings.find((f) => f.code === 'wrong_source')?.severity).toBe('error')
    expect(await serverStates(s)).toBe(before)

    // With it: a switchover to the intermediate master keeps tier 3 under it, and names it in the plan.
    setConfig(s, original, 'failover:\n  multi_tier_slave: true\n')
    const lenient = await check(s)
    expect([lenient.code, lenient.report.findings.find((f) => f.code === 'lower_tier')?.message]).toEqual([
      0,
      'db4 (tier 3) replicates from db3, not from db1: with multi_tier_slave it stays under db3, which replicates from db1, and is neither stopped nor re-pointed',
    ])
    const toMiddle = await plan(s, ['--switchover', '--to', 'db3'])
    expect(toMiddle.code, toMiddle.out).toBe(2)
    expect(toMiddle.plan!.decision.notes).toContain(lenient.report.findings.find((f) => f.code === 'lower_tier')!.message)
    await applyPlan(s, toMiddle.file)
    expect(await shape(s)).toEqual(['db1 ro <- db3 Yes Yes', 'db2 ro <- db3 Yes Yes', 'db3 rw <- none', 'db4 ro <- db3 Yes Yes'])
    await writeAndSeeEverywhere(s, 'db3', all)
    const homeAgain = await plan(s, ['--switchover', '--to', 'db1'])
    await applyPlan(s, homeAgain.file)
    await writeAndSeeEverywhere(s, 'db1', all)
    // db4 was a replica of the master db3, so it follows db1 now; put it under db2 and db2 under... db1 -> db2 -> db3 -> db4.
    await replicateFrom(s, 'db3', 'db2')
    await replicateFrom(s, 'db4', 'db3')
    await waitFor('4 tiers', 10_000, async () => (await shape(s)).join() === ['db1 rw <- none', 'db2 ro <- db1 Yes Yes', 'db3 ro <- db2 Yes Yes', 'db4 ro <- db3 Yes Yes'].join())
    await writeAndSeeEverywhere(s, 'db1', all)

    // 4 tiers, the master dies: refused without multi_tier_slave; with it, db2 is promoted and db3, db4 stay below.
    await kill(s, 'db1')
    await waitFor('db2 to lose db1', 20_000, async () => !(await shape(s))[1]!.includes('Yes Yes'))
    setConfig(s, original, '')
    const refusedFailover = await plan(s)
    expect(refusedFailover.code).toBe(1)
    expect(refusedFailover.out).toContain('failover refused: db3 replicates from db2, not from the master db1; db4 replicates from db3, not from the master db1 (a multi-tier topology)')
    setConfig(s, original, 'failover:\n  multi_tier_slave: true\n')
    const failover = await plan(s)
    expect([failover.code, failover.plan?.decision.newMaster], failover.out).toEqual([2, 'db2'])
    expect(failover.plan!.decision.notes).toEqual(
      expect.arrayContaining([
        'db3 (tier 3) replicates from db2, not from db1: with multi_tier_slave it stays under db2, which becomes the master, and is neither stopped nor re-pointed',
        'db4 (tier 4) replicates from db3, not from db1: with multi_tier_slave it stays under db3, which this plan leaves as it is, and is neither stopped nor re-pointed',
      ]),
    )
    await applyPlan(s, failover.file)
    expect(await shape(s)).toEqual(['db1 down', 'db2 rw <- none', 'db3 ro <- db2 Yes Yes', 'db4 ro <- db3 Yes Yes'])
    await writeAndSeeEverywhere(s, 'db2', ['db2', 'db3', 'db4'])

    // The intermediate master db3 dies (MHA t_4tier_subm_dead): db2 is alive and writable, so nothing is failed over.
    await kill(s, 'db3')
    await waitFor('db4 to lose db3', 20_000, async () => !(await shape(s))[3]!.includes('Yes Yes'))
    const orphan = await plan(s)
    expect([orphan.code, orphan.out]).toEqual([1, expect.stringContaining('no failover is planned: db2 is writable and replicates from nobody, while db4 replicates from db3, which is down') as unknown])
    expect((await shape(s))[1]).toBe('db2 rw <- none')
  })
})
