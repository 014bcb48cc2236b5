import {spawn} from 'node:child_process'
import {existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import type {ApplyReport} from '../../src/apply/events.js'
import {journalFileOf} from '../../src/apply/executor.js'
import {readPlan} from '../../src/plan/plan-file.js'
import {WriteLoad} from '../../src/sandbox/load.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {secretsOf, stopSshd} from '../../src/sandbox/sandbox.js'
import {readFailoverRecord} from '../../src/store/files.js'
import {expectConsistent, killMasterAndWait, root, runMha, startSandbox, survivors, type TestSandbox} from './harness.js'

// A failover always ends with a writable master: apply killed at any moment and run again, a replica's
// recovery failing, the dead master's host gone before its binlog is saved, a plan resumed on a changed cluster.

let sandbox: TestSandbox | undefined
const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-finish-'))
const OCTET = 101

afterEach(async () => {
  await sandbox?.down()
  sandbox = undefined
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function apply(s: TestSandbox, file: string): Promise<{code: number; report: ApplyReport; stderr: string}> {
  const result = await runMha(['apply', file, '--config', s.configFile, '--json'])
  return {code: result.code, report: JSON.parse(result.stdout) as ApplyReport, stderr: result.stderr}
}

async function planFailover(s: TestSandbox, name: string): Promise<string> {
  const file = join(plansDir, `${name}.json`)
  const result = await runMha(['plan', '--config', s.configFile, '-o', file])
  expect(result.code, result.stderr + result.stdout).toBe(2)
  return file
}

const readOnly = async (s: TestSandbox, host: string) => Number((await s.sql(host, (c) => c.queryOne('SELECT @@global.read_only+0 AS ro')))!.ro)

/** Under load, db3 stops receiving (a relay-log diff), then db2 too (the dead master's binlog tail), then db1 dies. */
/**
 * `quietMaster`: the load stops before db2 stops receiving, so db2's relay log ends on a transaction boundary
 * and the new master's own recovery needs nothing of its host (the test is about another replica's trouble).
 */
async function laggingCluster(name: string, gtid: boolean, quietMaster = false): Promise<{s: TestSandbox; load: WriteLoad}> {
  sandbox = await startSandbox(name, OCTET, {gtid})
  const s = sandbox
  await WriteLoad.prepare(s.state, 'db1')
  await s.sql('db1', (c) => c.execute('CREATE TABLE mhatest.filler (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(200))'))
  const load = new WriteLoad(s.state)
  load.start()
  await sleep(600)
  await s.sql('db3', (c) => c.execute('STOP SLAVE IO_THREAD'))
  await s.sql('db1', async (c) => {
    for (let i = 0; i < 300; i++) await c.execute("INSERT INTO mhatest.filler (v) VALUES (REPEAT('f', 200))")
  })
  if (quietMaster) {
    await load.stop()
    await sleep(300)
  }
  await s.sql('db2', (c) => c.execute('STOP SLAVE IO_THREAD'))
  await sleep(400)
  await killMasterAndWait(s)
  return {s, load}
}

/** Files under the temp folder and the plan's folder that hold one of the sandbox's passwords. */
function credentialFiles(s: TestSandbox): string[] {
  const secrets = Object.values(secretsOf(s.state.dir)).map((v) => v.reveal())
  const found: string[] = []
  const walk = (dir: string, depth: number): void => {
    let names: string[]
    try {
      names = readdirSync(dir)
    } catch {
      return
    }
    for (const name of names) {
      const path = join(dir, name)
      // The sandbox keeps its own secrets folder; that is where they belong.
      if (path.startsWith(s.state.dir)) continue
      let stat
      try {
        stat = statSync(path)
      } catch {
        continue
      }
      if (stat.isDirectory()) {
        if (depth > 0) walk(path, depth - 1)
      } else if (stat.isFile() && stat.size < 1_000_000) {
        const text = readFileSync(path, 'latin1')
        if (secrets.some((secret) => text.includes(secret))) found.push(path)
      }
    }
  }
  walk(tmpdir(), 3)
  return found
}

/** Kills each scenario must reach (4 scenarios: 24, the 20 and more); a round whose failover ends sooner is followed by another. */
const killsPerScenario = 6
/** Fresh lagging clusters a scenario may use to reach its quota. */
const roundsPerScenario = 3

/**
 * One round on a fresh lagging cluster: apply SIGKILLed at random moments until `quota` kills (fewer when a run
 * finishes before its moment comes), then a run let to finish, then the convergence checks. Returns the kill moments.
 */
async function killRound(name: string, gtid: boolean, quota: number): Promise<string[]> {
  const {s, load} = await laggingCluster(name, gtid)
  const file = await planFailover(s, name)
  const plan = readPlan(file)
  // db1's host answers SSH: its binlog tail is saved, nothing is to be lost.
  expect(plan.decision.dataLoss.none, plan.decision.dataLoss.statement).toBe(true)
  expect(plan.decision.dataLoss.statement).toMatch(/^none: /)
  const journal = journalFileOf(file)
  const journalLines = () => (existsSync(journal) ? readFileSync(journal, 'utf8') : '').split('\n').filter((l) => l.trim() !== '')
  // Counted, not parsed, while apply writes: the last line may be half written.
  const lines = () => journalLines().length
  const records = () => journalLines().map((l) => JSON.parse(l) as {step: string; event: string})
  const steps = plan.steps.length
  // Steps the journal has ended or skipped: what is left for the next run.
  const settled = () => new Set(records().filter((r) => r.event === 'end' || r.event === 'skip').map((r) => r.step)).size
  const moments: string[] = []
  let finished = false
  let startUpDrawn = false
  for (let attempt = 0; attempt < quota + 12 && !finished; attempt++) {
    const runStarted = Date.now()
    const child = spawn(process.execPath, [join(root, 'bin/run.js'), 'apply', file, '--config', s.configFile], {cwd: root, env: {...process.env, NODE_ENV: 'production'}, stdio: 'ignore'})
    let exit: number | null | undefined
    const exited = new Promise<void>((resolve) => child.on('close', (code) => ((exit = code), resolve())))
    // A random moment of the run, chosen by its progress rather than by the clock (however fast apply gets): after
    // k more journal records, k drawn towards the near end and within the first half of what is left (a skipped
    // step writes one record, not two), so that each run gets a little further; k = 0 is a moment of start-up or
    // the staleness check, drawn once a round at most (drawn towards the near end, k = 0 would otherwise take many
    // of the kills), so that the others fall among the steps. After `quota` kills the next run is left to finish.
    const start = lines()
    const left = steps - settled()
    const k = Math.max(startUpDrawn && left > 0 ? 1 : 0, Math.floor(Math.random() ** 2 * left))
    if (k === 0) startUpDrawn = true
    const killing = moments.length < quota
    if (!killing) await exited
    else if (k === 0) await waitFor('the moment to kill', 60_000, () => exit !== undefined || Date.now() - runStarted >= 50 + Math.random() * 650, 2)
    else await waitFor('the moment to kill', 60_000, () => exit !== undefined || lines() - start >= k, 2)
    if (killing) await sleep(Math.floor(Math.random() * 15))
    if (exit === undefined) {
      child.kill('SIGKILL')
      await exited
      const written = records()
      // What this run had begun and not ended when it died.
      const last = new Map(written.slice(start).map((r) => [r.step, r.event]))
      const open = [...last].filter(([, event]) => event === 'begin').map(([step]) => step)
      moments.push(`kill ${moments.length + 1}: ${Date.now() - runStarted} ms into run ${attempt + 1}, during ${open.join(', ') || (written.length === start ? 'the staleness check' : 'the checks between steps')}`)
      // Nothing with a password is left behind, not even by a killed apply.
      expect(credentialFiles(s)).toEqual([])
    } else {
      await exited
      finished = exit === 0
      expect(exit, 'an unkilled run finishes the failover').toBe(0)
    }
  }
  console.log(`${name}: ${moments.length} kills\n  ${moments.join('\n  ')}`)
  // Whatever the kills did, the failover converges: a writable master, every write once, survivors equal, replicating.
  const last = await apply(s, file)
  expect(['applied', 'already_applied'], last.report.message).toContain(last.report.status)
  expect(last.report.dataLoss).toBe(plan.decision.dataLoss.statement)
  expect(await readOnly(s, 'db2')).toBe(0)
  await sleep(500)
  await load.stop()
  await expectConsistent(s, 'db2', load.acked)
  const filler = await Promise.all(survivors(s).map((h) => s.sql(h, async (c) => String((await c.queryOne('CHECKSUM TABLE mhatest.filler'))!.Checksum))))
  expect(filler[0]).toBe(filler[1])
  return moments
}

describe('a failover always ends with a writable master', () => {
  let totalKills = 0

  it.each([
    ['file/position', false, 'itfinish1'],
    ['GTID', true, 'itfinish2'],
    ['file/position, again', false, 'itfinish3'],
    ['GTID, again', true, 'itfinish4'],
  ])(
    'apply SIGKILLed at random moments (%s), then run to the end: converges with every write once',
    async (_label, gtid, name) => {
      // A run that finishes before its moment comes ends the round short of its quota: the scenario then goes on
      // with a fresh lagging cluster (each round checked for convergence) until its kills reach the quota.
      let kills = 0
      for (let round = 1; round <= roundsPerScenario && kills < killsPerScenario; round++) {
        if (sandbox) {
          await sandbox.down()
          sandbox = undefined
        }
        kills += (await killRound(round === 1 ? name : `${name}r${round}`, gtid, killsPerScenario - kills)).length
      }
      totalKills += kills
      expect(kills, 'kills in this scenario').toBeGreaterThanOrEqual(killsPerScenario)
    },
    600_000,
  )

  it('killed apply 20 times or more in all', () => {
    // killsPerScenario in each of the four scenarios, each of which goes on until it has them.
    console.log(`kills in all: ${totalKills}`)
    expect(totalKills).toBeGreaterThanOrEqual(20)
  })

  it("a replica's relay-diff copy fails (its source's SSH stops): the master is promoted, the replica is left out and named, exit 10", async () => {
    const {s, load} = await laggingCluster('itfinish5', false, true)
    const file = await planFailover(s, 'diff-fails')
    expect(readPlan(file).steps.find((x) => x.id === 'save_relay_diff:db3')?.server).toBe('db2')
    await stopSshd(s.state, 'db2')
    const result = await apply(s, file)
    expect(result.code).toBe(10)
    expect(result.report.status).toBe('partial')
    expect(result.report.leftOut.map((l) => l.server)).toEqual(['db3'])
    expect(result.report.leftOut[0]!.reason).toMatch(/db2/)
    expect(result.report.leftOut[0]!.retry).toContain(`mha apply ${file}`)
    expect(result.report.steps.find((x) => x.id === 'enable_writes:db2')?.status).toBe('applied')
    expect(result.report.steps.find((x) => x.id === 'repoint_replica:db3')?.status).toBe('blocked')
    expect(await readOnly(s, 'db2')).toBe(0)
    await sleep(500)
    await load.stop()
    // Every acknowledged write is on the new master; db3, left out, replicates from nobody that lives.
    expect(await load.missingOn('db2')).toEqual([])
    const db3 = (await s.sql('db3', (c) => c.queryOne('SHOW SLAVE STATUS')))!
    expect([db3.Master_Host, db3.Slave_IO_Running]).toEqual([s.state.hosts[0]!.ip, 'No'])
  })

  it("the shutdown hook powers the dead master's host off before its binlog is saved: the failover completes and states the loss", async () => {
    const {s, load} = await laggingCluster('itfinish6', false)
    const ackedAtKill = [...load.acked]
    // "Power off": db1's sshd and every session it serves go, as the hook returns.
    const hook = join(plansDir, 'power-off')
    writeFileSync(hook, `#!/bin/sh\npkill -9 -P ${s.state.hosts[0]!.sshdPid} ; kill -9 ${s.state.hosts[0]!.sshdPid}\nexit 0\n`, {mode: 0o755})
    writeFileSync(s.configFile, readFileSync(s.configFile, 'utf8') + `hooks:\n  shutdown: ${hook}\n`)
    const file = await planFailover(s, 'powered-off')
    const plan = readPlan(file)
    expect(plan.decision.dataLoss.none).toBe(true)
    expect(plan.steps.map((x) => x.id)).toContain('save_master_binlog:db1')
    const result = await apply(s, file)
    expect(result.code, result.stderr).toBe(0)
    expect(result.report.status).toBe('applied')
    expect(result.report.steps.find((x) => x.id === 'save_master_binlog:db1')?.status).toBe('failed')
    const from = plan.steps.find((x) => x.type === 'save_master_binlog')!
    expect(result.report.dataLoss).toMatch(/^events after mysql-bin\.\d+:\d+ in db1's binlog are lost: it could not be saved/)
    expect(result.report.dataLoss).toContain(`${(from.params as {from: {file: string; pos: number}}).from.file}:${(from.params as {from: {file: string; pos: number}}).from.pos}`)
    expect(await readOnly(s, 'db2')).toBe(0)
    await sleep(500)
    await load.stop()
    // Lost: only writes acknowledged before the kill that no replica had received; the survivors agree.
    const present = new Set((await s.sql('db2', (c) => c.query('SELECT id FROM mhatest.acked'))).map((r) => Number(r.id)))
    const missing = load.acked.filter((id) => !present.has(id))
    expect(missing.length).toBeGreaterThan(0)
    expect(missing.every((id) => ackedAtKill.includes(id))).toBe(true)
    await expectConsistent(s, 'db2', load.acked.filter((id) => present.has(id)))
  })

  it('a plan resumed after the cluster changed is refused, naming the change, and changes nothing', async () => {
    const {s, load} = await laggingCluster('itfinish7', false)
    await load.stop()
    const file = await planFailover(s, 'resumed-stale')
    const journal = journalFileOf(file)
    const child = spawn(process.execPath, [join(root, 'bin/run.js'), 'apply', file, '--config', s.configFile], {cwd: root, env: {...process.env, NODE_ENV: 'production'}, stdio: 'ignore'})
    const exited = new Promise((resolve) => child.on('close', resolve))
    // The plan record comes first; a resume needs a step begun.
    await waitFor('the first step', 30_000, () => existsSync(journal) && /"event": ?"(begin|end|skip)"/.test(readFileSync(journal, 'utf8')))
    child.kill('SIGKILL')
    await exited
    expect(readFileSync(journal, 'utf8')).not.toContain('enable_writes')
    // Someone re-points db3 by hand meanwhile.
    const db2 = s.state.hosts[1]!
    const replPassword = secretsOf(s.state.dir).repl.reveal()
    await s.sql('db3', async (c) => {
      await c.execute('STOP SLAVE')
      await c.execute(`CHANGE MASTER TO MASTER_HOST='${db2.ip}', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='${replPassword}', MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=4`)
    })
    const before = await Promise.all(survivors(s).map((h) => s.sql(h, async (c) => JSON.stringify([await c.queryOne('SELECT @@global.read_only+0 AS ro, @@global.gtid_binlog_state AS g'), (await c.queryOne('SHOW SLAVE STATUS'))?.Master_Host]))))
    const result = await apply(s, file)
    expect(result.code).toBe(1)
    expect(result.report.status).toBe('refused')
    expect(result.report.message).toMatch(/^the plan is stale for the steps left to run: db3 source: now db2; the plan assumed db1/)
    // Refused, the failover is over: its record (written by the killed apply) no longer keeps a new plan out.
    expect(readFailoverRecord(join(root, 'plans'), 'itfinish7')).toMatchObject({finished: true, status: 'refused', planName: 'resumed-stale.json'})
    const after = await Promise.all(survivors(s).map((h) => s.sql(h, async (c) => JSON.stringify([await c.queryOne('SELECT @@global.read_only+0 AS ro, @@global.gtid_binlog_state AS g'), (await c.queryOne('SHOW SLAVE STATUS'))?.Master_Host]))))
    expect(after).toEqual(before)
  })
})
