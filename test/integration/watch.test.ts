import {execFileSync, type ChildProcess} from 'node:child_process'
import {existsSync, mkdtempSync, readdirSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import type {ApplyReport} from '../../src/apply/events.js'
import {WriteLoad} from '../../src/sandbox/load.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {expectConsistent, runMha, spawnWatch, startSandbox, type TestSandbox, type WatchLogLine} from './harness.js'

let sandbox: TestSandbox | undefined
let watch: ChildProcess | undefined
let lines: WatchLogLine[] = []
const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-watch-plans-'))

afterAll(async () => {
  if (watch && watch.exitCode === null) watch.kill('SIGKILL')
  await sandbox?.down()
})

const waitForEvent = (event: string, timeoutMs = 30_000) =>
  waitFor(`watch to log "${event}" (got: ${lines.map((l) => l.event).join(', ')})`, timeoutMs, () => lines.some((l) => l.event === event)).then(() => lines.find((l) => l.event === event)!)

describe('mha watch on a real sandbox', () => {
  it('fails over on its own under write load, archives plan and report, then blocks a second failover', async () => {
    sandbox = await startSandbox('itwatch', 91)
    await WriteLoad.prepare(sandbox.state, 'db1')
    const load = new WriteLoad(sandbox.state)
    load.start()

    execFileSync('git', ['init', '-q', plansDir])
    const running = spawnWatch(['--config-dir', dirname(sandbox.configFile), '--plans-dir', plansDir, '--git'])
    watch = running.child
    lines = running.lines
    await waitForEvent('healthy')
    await new Promise((r) => setTimeout(r, 1000))

    process.kill(sandbox.state.hosts[0]!.mariadbdPid!, 'SIGKILL')
    const done = await waitForEvent('failover done')
    expect(lines.find((l) => l.event === 'dead')?.message).toMatch(/db1 .* lost it too/)
    expect(existsSync(done.plan!)).toBe(true)
    expect(done.plan).toMatch(new RegExp(`^${plansDir}/itwatch/\\d{8}T\\d{6}Z-failover\\.json$`))
    const report = JSON.parse(readFileSync(done.report!, 'utf8')) as ApplyReport
    expect(report.status).toBe('applied')
    await waitForEvent('git')
    const committed = execFileSync('git', ['-C', plansDir, 'log', '-1', '--name-only', '--format=%s']).toString()
    expect(committed).toMatch(/^mha watch: itwatch applied: db1 is dead; promote db2/)
    expect(committed).toContain('-failover.json')
    expect(committed).toContain('-failover.report.json')
    await waitFor('watch to monitor db2', 10_000, () => lines.some((l) => l.event === 'master' && l.message.startsWith('monitoring db2')))
    await new Promise((r) => setTimeout(r, 1000))
    await load.stop()
    await expectConsistent(sandbox, 'db2', load.acked)

    const status = await runMha(['status', '--config-dir', dirname(sandbox.configFile), '--plans-dir', plansDir])
    expect(status.stdout).toMatch(/itwatch\s+db2\s+db3\s+.*db1->db2 applied\s+blocked until mha ack/)

    // A second death within last_failover_minute is reported, not acted on.
    process.kill(sandbox.state.hosts[1]!.mariadbdPid!, 'SIGKILL')
    const blocked = await waitForEvent('blocked')
    expect(blocked.message).toMatch(/db2 is dead but no automatic failover: the last failover .* within last_failover_minute=480; .*mha ack --cluster itwatch/)
    await new Promise((r) => setTimeout(r, 1500))
    expect(readdirSync(join(plansDir, 'itwatch')).filter((f) => f.endsWith('-failover.json'))).toHaveLength(1)
    const db3 = (await sandbox.sql('db3', (c) => c.queryOne('SHOW SLAVE STATUS')))!
    expect(db3.Master_Host).toBe(sandbox.state.hosts[1]!.ip)

    const exited = new Promise<number | null>((resolve) => watch!.on('exit', (code) => resolve(code)))
    watch.kill('SIGTERM')
    expect(await exited).toBe(0)
    expect(lines.at(-1)?.event).toBe('stopped')

    // Offline, after watch stopped: acknowledging allows the next automatic failover.
    const ack = await runMha(['ack', '--cluster', 'itwatch', '--plans-dir', plansDir])
    expect(ack.stdout).toMatch(/acknowledged the failover of itwatch/)

    const after = await runMha(['status', '--config-dir', dirname(sandbox.configFile), '--plans-dir', plansDir])
    // Acknowledged, so nothing blocks a failover, but no watch runs any more: automatic failover is off, and status says so.
    expect(after.stdout).toMatch(/itwatch\s+.*db1->db2 applied\s+OFF: no mha watch/)
    expect(after.stdout).toContain('no mha watch is running for itwatch: automatic failover is OFF')
    const json = JSON.parse((await runMha(['status', '--config-dir', dirname(sandbox.configFile), '--plans-dir', plansDir, '--json'])).stdout) as {failoverBlocked: string | null; automaticFailover: string}[]
    expect(json[0]).toMatchObject({failoverBlocked: null, automaticFailover: 'off'})
  })
})
