import {existsSync, mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {formatCoordinates} from '../../src/binlog/coordinates.js'
import {readPlan} from '../../src/plan/plan-file.js'
import type {Plan} from '../../src/plan/types.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {secretsOf, stopSshd} from '../../src/sandbox/sandbox.js'
import {runMha, startSandbox, type TestSandbox} from './harness.js'

let sandbox: TestSandbox
const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-plans-'))

async function plan(name: string): Promise<{code: number; stdout: string; plan: Plan; text: string}> {
  const file = join(plansDir, `${name}.json`)
  const result = await runMha(['plan', '--config', sandbox.configFile, '-o', file])
  expect(result.stderr).toBe('')
  const text = readFileSync(file, 'utf8')
  return {code: result.code, stdout: result.stdout, plan: readPlan(file), text}
}

function noSecrets(text: string): void {
  const secrets = secretsOf(sandbox.state.dir)
  for (const secret of [secrets.admin, secrets.repl, secrets.app]) expect(text).not.toContain(secret.reveal())
}

describe('mha plan on a real sandbox', () => {
  beforeAll(async () => {
    sandbox = await startSandbox('itplan', 41)
    await sandbox.sql('db1', async (c) => {
      await c.execute('CREATE TABLE mhatest.t (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(2000))')
      await c.execute("INSERT INTO mhatest.t (v) VALUES ('first')")
    })
  })
  afterAll(async () => {
    await sandbox?.down()
  })

  it('prints a noop plan for a healthy cluster without archiving it, exit 0; --archive-noop keeps it', async () => {
    const result = await runMha(['plan', '--config', sandbox.configFile, '--plans-dir', plansDir])
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/No changes for cluster itplan/)
    expect(result.stdout).toMatch(/not archived/)
    expect(existsSync(join(plansDir, 'itplan'))).toBe(false)
    const archived = await runMha(['plan', '--config', sandbox.configFile, '--plans-dir', plansDir, '--archive-noop'])
    expect(archived.code).toBe(0)
    const file = /Plan written to (\S+)/.exec(archived.stdout)![1]!
    expect(file).toMatch(new RegExp(`${plansDir}/itplan/\\d{8}T\\d{6}Z-noop\\.json$`))
    const p = readPlan(file)
    expect(p.kind).toBe('noop')
    expect(p.steps).toEqual([])
  })

  it('plans a failover with a relay-log diff for a lagging replica, exit 2', async () => {
    // db3 misses a burst of writes, then reconnects just before the master dies, so it lags.
    await sandbox.sql('db3', (c) => c.execute('STOP SLAVE IO_THREAD'))
    await sandbox.sql('db1', async (c) => {
      for (let i = 0; i < 10; i++) await c.execute("INSERT INTO mhatest.t (v) SELECT REPEAT('x', 2000) FROM mhatest.seq_1_to_1000")
    })
    // db2 has read all of db1's binlog first: this case is about the relay diff alone, with no tail to save.
    const end = (await sandbox.sql('db1', (c) => c.queryOne('SHOW MASTER STATUS')))!
    await waitFor("db2 to read db1's binlog to its end", 20_000, async () => {
      const r = (await sandbox.sql('db2', (c) => c.queryOne('SHOW SLAVE STATUS')))!
      return r.Master_Log_File === end.File && Number(r.Read_Master_Log_Pos) === Number(end.Position)
    })
    await sandbox.sql('db3', (c) => c.execute('START SLAVE IO_THREAD'))
    process.kill(sandbox.state.hosts[0]!.mariadbdPid!, 'SIGKILL')
    // Events in flight still arrive until each IO thread sees the connection drop.
    await waitFor('the IO threads to lose db1', 20_000, async () => {
      const rows = await Promise.all(['db2', 'db3'].map((h) => sandbox.sql(h, (c) => c.queryOne('SHOW SLAVE STATUS'))))
      return rows.every((r) => r!.Slave_IO_Running !== 'Yes')
    })
    const reads = await Promise.all(['db2', 'db3'].map((h) => sandbox.sql(h, (c) => c.queryOne('SHOW SLAVE STATUS'))))
    const [db2Pos, db3Pos] = reads.map((r) => Number(r!.Read_Master_Log_Pos))
    expect(db3Pos, 'db3 must lag for this test to mean anything').toBeLessThan(db2Pos!)

    const {code, stdout, plan: p, text} = await plan('lagging')
    expect(code).toBe(2)
    expect(p.kind).toBe('failover')
    expect(p.decision.deadMaster).toBe('db1')
    expect(p.decision.newMaster).toBe('db2')
    expect(p.decision.latest).toEqual(['db2'])
    expect(p.decision.candidates.find((c) => c.chosen)?.reason).toMatch(/candidate_master/)
    expect(stdout).toMatch(/New master: db2/)
    const save = p.steps.find((s) => s.id === 'save_relay_diff:db3')
    if (save?.type !== 'save_relay_diff') throw new Error('no relay diff step')
    expect(save.server).toBe('db2')
    expect(save.params.diff.source).toBe('db2')
    expect(save.params.diff.after.pos).toBe(db3Pos)
    expect(save.params.diff.until.pos).toBe(db2Pos)
    expect(save.params.diff.offset).toBeGreaterThan(4)
    expect(p.steps.find((s) => s.id === 'apply_logs:db3')?.params).toEqual({ownRelay: {fromStep: 'wait_relay_log_applied:db3', output: 'position'}, relayDiff: {fromStep: 'save_relay_diff:db3', output: 'file'}, masterTail: null})
    // The copy ends before db2's relay logs go, but a failed copy leaves only db3 out.
    expect(p.steps.find((s) => s.id === 'detach_replication:db2')?.settledAfter).toContain('save_relay_diff:db3')
    expect(p.steps.find((s) => s.id === 'save_relay_diff:db3')?.group).toBe('replica:db3')
    expect(p.steps.find((s) => s.id === 'detach_replication:db2')?.group).toBe('master')
    expect(p.decision.dataLoss.none).toBe(true)
    expect(p.steps.map((s) => s.id).indexOf('enable_writes:db2')).toBeLessThan(p.steps.map((s) => s.id).indexOf('repoint_replica:db3'))
    noSecrets(text)
  })

  it("states the exact loss when the dead master's host is unreachable too", async () => {
    await stopSshd(sandbox.state, 'db1')
    const {code, plan: p, stdout} = await plan('ssh-down')
    expect(code).toBe(2)
    const latest = p.observed.servers.find((s) => s.name === 'db2')!.read!
    expect(p.decision.dataLoss.none).toBe(false)
    expect(p.decision.dataLoss.lostAfter).toEqual(latest)
    expect(p.decision.dataLoss.statement).toBe(
      `events after ${formatCoordinates(latest)} in db1's binlog are lost: db1's host cannot be reached over SSH (db1 (root@127.0.0.41:22): cannot connect over SSH (ECONNREFUSED))`,
    )
    expect(stdout).toContain(`Data loss: events after ${formatCoordinates(latest)}`)
    expect(p.steps.some((s) => s.type === 'save_master_binlog')).toBe(false)
  })
})
