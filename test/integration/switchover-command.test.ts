import {existsSync, mkdtempSync, readdirSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import type {ApplyReport} from '../../src/apply/events.js'
import {WriteLoad} from '../../src/sandbox/load.js'
import {expectRoles, runMha, startSandbox, type TestSandbox} from './harness.js'

let sandbox: TestSandbox | undefined

afterEach(async () => {
  await sandbox?.down()
  sandbox = undefined
})

describe('mha switchover: plan, show and apply in one process', () => {
  it('without a terminal and without --auto-approve it changes nothing and says how; with it, switches under write load with nothing lost', async () => {
    sandbox = await startSandbox('itswitchcmd', 251)
    const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-switchcmd-'))
    await WriteLoad.prepare(sandbox.state, 'db1')
    const load = new WriteLoad(sandbox.state)
    load.start()
    await new Promise((r) => setTimeout(r, 1000))

    const asked = await runMha(['switchover', '--config', sandbox.configFile, '--plans-dir', plansDir, '--to', 'db2'])
    expect(asked.code).toBe(64)
    expect(asked.stderr).toMatch(/add --auto-approve/)
    expect(existsSync(join(plansDir, 'itswitchcmd'))).toBe(false)
    expect(Number((await sandbox.sql('db1', (c) => c.queryOne('SELECT @@global.read_only+0 AS ro')))!.ro)).toBe(0)

    const switched = await runMha(['switchover', '--config', sandbox.configFile, '--plans-dir', plansDir, '--to', 'db2', '--auto-approve', '--json'])
    expect(switched.code, switched.stderr).toBe(0)
    const report = JSON.parse(switched.stdout) as ApplyReport
    expect(report.status, report.message).toBe('applied')
    // The plan was shown (on stderr with --json) and archived before anything changed, its report beside it.
    expect(switched.stderr).toMatch(/Digest: [0-9a-f]{64}/)
    const archived = readdirSync(join(plansDir, 'itswitchcmd'))
    expect(archived.filter((f) => /-switchover\.json$/.test(f))).toHaveLength(1)
    expect(archived.some((f) => f.endsWith('.report.json'))).toBe(true)
    // The writer goes on, on the new master.
    const ackedAtSwitch = load.acked.length
    await new Promise((r) => setTimeout(r, 1000))
    await load.stop()
    expect(load.acked.length).toBeGreaterThan(ackedAtSwitch)
    await expectRoles(sandbox, 'db2', load.acked)
  })
})
