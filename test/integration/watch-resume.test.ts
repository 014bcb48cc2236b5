import {spawn} from 'node:child_process'
import {mkdtempSync, readdirSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {basename, dirname, join} from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import type {ApplyReport} from '../../src/apply/events.js'
import {WriteLoad} from '../../src/sandbox/load.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {readFailoverRecord} from '../../src/store/files.js'
import {deadMasterWithHeldReplica, expectConsistent, holdReplica, root, runMha, spawnWatch, startSandbox, type TestSandbox, type WatchLogLine} from './harness.js'

/** One mha watch (no etcd) started after a failover was killed in the middle (its own, or mha apply's): it finishes that failover. */
let sandbox: TestSandbox | undefined
const children: ReturnType<typeof spawnWatch>['child'][] = []

afterEach(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  children.length = 0
  await sandbox?.down()
  sandbox = undefined
})

const journalLines = (plansDir: string, cluster: string) => {
  try {
    const dir = join(plansDir, cluster)
    return readdirSync(dir)
      .filter((f) => f.endsWith('.journal.ndjson'))
      .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter((l) => l.trim() !== ''))
      .map((l) => JSON.parse(l) as {step: string; event: string})
  } catch {
    return []
  }
}

describe('mha watch alone, killed in the middle of a failover', () => {
  it('finishes that failover when started again, and plans no other over it', async () => {
    sandbox = await startSandbox('itresume', 45)
    await WriteLoad.prepare(sandbox.state, 'db1')
    const load = new WriteLoad(sandbox.state)
    load.start()
    const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-resume-plans-'))
    const first = spawnWatch(['--config-dir', dirname(sandbox.configFile), '--plans-dir', plansDir, '--heartbeat', '0'])
    children.push(first.child)
    await waitFor('watch to see db1 healthy', 30_000, () => first.lines.some((l) => l.event === 'healthy'))

    // db3's SQL thread waits on a row lock, so the failover's wait for db3 cannot end before the kill.
    const holder = await holdReplica(sandbox, 'db3')
    process.kill(sandbox.state.hosts[0]!.mariadbdPid!, 'SIGKILL')
    await waitFor('the failover to begin its wait for db3', 60_000, () => journalLines(plansDir, 'itresume').some((e) => e.step === 'wait_relay_log_applied:db3' && e.event === 'begin'), 5)
    first.child.kill('SIGKILL')
    await holder.execute('ROLLBACK')
    await holder.close()
    const planned = first.lines.filter((l) => l.event === 'plan')
    expect(planned.length).toBe(1)

    const second = spawnWatch(['--config-dir', dirname(sandbox.configFile), '--plans-dir', plansDir, '--heartbeat', '0'])
    children.push(second.child)
    const said = (event: string) => second.lines.filter((l: WatchLogLine) => l.event === event)
    await waitFor(`the second watch to finish the failover (said: ${second.lines.map((l) => `${l.event}: ${l.message}`).join(' | ')})`, 90_000, () => said('failover done').length > 0)
    expect(said('resume')[0]?.message).toMatch(new RegExp(`finishing the failover mha watch pid ${first.child.pid} started at .* \\(${basename(planned[0]!.plan!)}\\) from its journal`))
    expect(said('failover')).toEqual([])
    expect(said('plan')).toEqual([])
    expect(basename(said('failover done')[0]!.plan!)).toBe(basename(planned[0]!.plan!))
    const report = JSON.parse(readFileSync(said('failover done')[0]!.report!, 'utf8')) as ApplyReport
    expect(report.status).toBe('applied')
    expect(report.newMaster, JSON.stringify(report)).not.toBeNull()
    await waitFor('the second watch to monitor the new master', 20_000, () => said('master').some((l) => l.message.startsWith(`monitoring ${report.newMaster!.server}`)))
    await load.stop()
    await expectConsistent(sandbox, report.newMaster!.server, load.acked)
  }, 240_000)

  it('finishes a failover mha apply was killed in the middle of (same plans folder), and plans no other over it', async () => {
    const {s, load, holder} = await deadMasterWithHeldReplica('itresume2', 45)
    sandbox = s
    const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-resume-plans-'))
    const plan = join(plansDir, 'itresume2', 'failover.json')
    expect((await runMha(['plan', '--config', s.configFile, '-o', plan])).code).toBe(2)
    const apply = spawn(process.execPath, [join(root, 'bin/run.js'), 'apply', plan, '--config', s.configFile], {cwd: root, env: {...process.env, NODE_ENV: 'production'}, stdio: 'ignore'})
    const exited = new Promise((resolve) => apply.on('close', resolve))
    await waitFor('the apply to begin its wait for db3', 60_000, () => journalLines(plansDir, 'itresume2').some((e) => e.step === 'wait_relay_log_applied:db3' && e.event === 'begin'), 5)
    apply.kill('SIGKILL')
    await exited
    expect(readFailoverRecord(plansDir, 'itresume2')).toMatchObject({finished: false, planName: 'failover.json', by: expect.stringMatching(new RegExp(`^mha apply \\(.* pid ${apply.pid}\\)$`)) as unknown})

    const watch = spawnWatch(['--config-dir', dirname(s.configFile), '--plans-dir', plansDir, '--heartbeat', '0'])
    children.push(watch.child)
    await holder.execute('ROLLBACK')
    await holder.close()
    const said = (event: string) => watch.lines.filter((l: WatchLogLine) => l.event === event)
    await waitFor(`watch to finish the failover (said: ${watch.lines.map((l) => `${l.event}: ${l.message}`).join(' | ')})`, 90_000, () => said('failover done').length > 0)
    expect(said('resume')[0]?.message).toMatch(/finishing the failover mha apply \(.*\) started at .* \(failover\.json\) from its journal/)
    expect(said('failover')).toEqual([])
    expect(said('plan')).toEqual([])
    expect(said('failover done')[0]!.plan).toBe(plan)
    const report = JSON.parse(readFileSync(said('failover done')[0]!.report!, 'utf8')) as ApplyReport
    expect(report.status).toBe('applied')
    expect(readFailoverRecord(plansDir, 'itresume2')).toMatchObject({finished: true, planName: 'failover.json'})
    await load.stop()
    await expectConsistent(s, report.newMaster!.server, load.acked)
  }, 240_000)
})
