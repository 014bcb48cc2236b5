import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import type {Plan} from '../../src/plan/types.js'
import {WriteLoad} from '../../src/sandbox/load.js'
import {startHost} from '../../src/sandbox/sandbox.js'
import {killMasterAndWait, runMha, startSandbox, type TestSandbox} from './harness.js'

let sandbox: TestSandbox | undefined
afterAll(async () => {
  await sandbox?.down()
})

const checksums = async (s: TestSandbox, table: string) => Promise.all(['db1', 'db2', 'db3'].map((h) => s.sql(h, async (c) => String((await c.queryOne(`CHECKSUM TABLE mhatest.${table}`))!.Checksum))))

/** `mha plan` then `mha apply` of that plan; returns the plan file. */
async function planAndApply(s: TestSandbox, plansDir: string, kind: string, extra: string[] = []): Promise<string> {
  mkdirSync(join(plansDir, s.state.cluster), {recursive: true})
  const file = join(plansDir, s.state.cluster, `${Date.now()}-${kind}.json`)
  const plan = await runMha(['plan', '--config', s.configFile, '--plans-dir', plansDir, '-o', file, ...extra])
  expect(plan.code, plan.stderr + plan.stdout).toBe(2)
  const apply = await runMha(['apply', file, '--config', s.configFile])
  expect(apply.code, apply.stderr + apply.stdout).toBe(0)
  return file
}

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
