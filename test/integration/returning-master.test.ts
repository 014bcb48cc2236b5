import type {ChildProcess} from 'node:child_process'
import {mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import type {ApplyReport} from '../../src/apply/events.js'
import {WriteLoad} from '../../src/sandbox/load.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {expectConsistent, killMasterAndWait, leaveNothing, restartAndTimeFence, runMha, spawnWatch, startSandbox, type TestSandbox, type WatchLogLine} from './harness.js'


let sandbox: TestSandbox | undefined
let watch: ChildProcess | undefined
let lines: WatchLogLine[] = []
const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-returning-plans-'))

afterAll(() => leaveNothing(watch, sandbox, [plansDir]))

const waitForEvent = (event: string, timeoutMs = 30_000) =>
  waitFor(`watch to log "${event}" (got: ${lines.map((l) => l.event).join(', ')})`, timeoutMs, () => lines.some((l) => l.event === event)).then(() => lines.find((l) => l.event === event)!)

const readOnlyOf = async (s: TestSandbox, host: string) => Number((await s.sql(host, (c) => c.queryOne('SELECT @@global.read_only+0 AS ro')))!.ro)

describe('an old master restarted after a failover', () => {
  it('is set read only by watch once it answers, and check, plan and status name it', async () => {
    sandbox = await startSandbox('itreturn', 111)
    const s = sandbox
    await WriteLoad.prepare(s.state, 'db1')
    const load = new WriteLoad(s.state)
    load.start()

    const running = spawnWatch(['--config-dir', dirname(s.configFile), '--plans-dir', plansDir])
    watch = running.child
    lines = running.lines
    await waitForEvent('healthy')
    await new Promise((r) => setTimeout(r, 1000))
    // A healthy cluster: nothing is fenced.
    expect(lines.filter((l) => l.event.includes('fence'))).toEqual([])

    await killMasterAndWait(s)
    const done = await waitForEvent('failover done', 60_000)
    expect((JSON.parse(readFileSync(done.report!, 'utf8')) as ApplyReport).status).toBe('applied')
    await waitFor('watch to monitor db2', 10_000, () => lines.some((l) => l.event === 'master' && l.message.startsWith('monitoring db2')))
    await new Promise((r) => setTimeout(r, 500))
    // The load stops before db1 returns: it looks for a writable server in host order and would pick db1.
    await load.stop()

    // Someone starts db1 again from its my.cnf: writable, replicating from nobody.
    const seconds = await restartAndTimeFence(s, 'db1', 60_000)
    console.log(`returning master: db1 answered SQL, read_only=ON by watch ${seconds.toFixed(2)} s later`)

    const fenced = await waitForEvent('fenced returning master', 5000)
    expect(fenced.server).toBe('db1')
    expect(fenced.message).toMatch(/^db1 replicates from nobody and was writable \(read_only=0\) while db2 is the master \(db3 replicates from it\): set it read only; rejoin it as a replica of db2 or rebuild it$/)
    expect(lines.filter((l) => l.event === 'fenced returning master')).toHaveLength(1)
    // The master is never touched, and the replica still follows it.
    expect(await readOnlyOf(s, 'db2')).toBe(0)
    const db3 = (await s.sql('db3', (c) => c.queryOne('SHOW SLAVE STATUS')))!
    expect([db3.Master_Host, db3.Slave_IO_Running, db3.Slave_SQL_Running]).toEqual([s.state.hosts[1]!.ip, 'Yes', 'Yes'])

    const status = await runMha(['status', '--config-dir', dirname(s.configFile), '--plans-dir', plansDir])
    expect(status.stdout).toMatch(/^itreturn: db1: returned writable while db2 is the master, set read_only by watch at \d{4}-\d\d-\d\dT[\d:.]+Z$/m)

    const exited = new Promise<number | null>((resolve) => watch!.on('exit', (code) => resolve(code)))
    watch.kill('SIGTERM')
    expect(await exited).toBe(0)

    // Without watch, the old master comes back writable again: check, plan and status say so.
    await s.sql('db1', (c) => c.execute('SET GLOBAL read_only = OFF'))
    const returning = /db1 is writable \(read_only=0\) and replicates from nobody while db2 is the master: clients can write to both \(split brain\); run SET GLOBAL read_only=ON on db1, then rejoin it as a replica of db2 or rebuild it/
    const check = await runMha(['check', '--config', s.configFile])
    expect(check.code).toBe(2)
    expect(check.stdout).toMatch(/cluster itreturn: master db2/)
    expect(check.stdout).toMatch(new RegExp(`^ERROR\\s+${returning.source}$`, 'm'))
    const plan = await runMha(['plan', '--config', s.configFile, '--plans-dir', plansDir, '--json'])
    expect(plan.code).toBe(0)
    const noop = JSON.parse(plan.stdout) as {kind: string; steps: unknown[]; decision: {notes: string[]}}
    expect([noop.kind, noop.steps]).toEqual(['noop', []])
    expect(noop.decision.notes.some((n) => returning.test(n))).toBe(true)
    const after = await runMha(['status', '--config-dir', dirname(s.configFile), '--plans-dir', plansDir])
    expect(after.stdout).toMatch(new RegExp(`^itreturn: ${returning.source}$`, 'm'))
    await s.sql('db1', (c) => c.execute('SET GLOBAL read_only = ON'))

    await expectConsistent(s, 'db2', load.acked)
    expect(load.acked.length).toBeGreaterThan(20)
  })
})
