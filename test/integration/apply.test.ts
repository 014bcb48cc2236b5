import {spawn} from 'node:child_process'
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import type {ApplyReport} from '../../src/apply/events.js'
import type {Plan} from '../../src/plan/types.js'
import {readPlan} from '../../src/plan/plan-file.js'
import {validator} from '../../src/schema/validator.js'
import {expectConsistent, killMasterAndWait, root, runMha, startSandbox, survivors, type TestSandbox} from './harness.js'
import {WriteLoad} from '../../src/sandbox/load.js'

let sandbox: TestSandbox | undefined
const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-apply-'))

afterEach(async () => {
  await sandbox?.down()
  sandbox = undefined
})

async function planFailover(s: TestSandbox, name: string): Promise<string> {
  const file = join(plansDir, `${name}.json`)
  const result = await runMha(['plan', '--config', s.configFile, '-o', file])
  expect(result.code, result.stderr + result.stdout).toBe(2)
  return file
}

async function apply(s: TestSandbox, file: string): Promise<{code: number; report: ApplyReport; stderr: string}> {
  const result = await runMha(['apply', file, '--config', s.configFile, '--json'])
  const report = JSON.parse(result.stdout) as ApplyReport
  const validate = validator('apply-report.schema.json')
  expect(validate(report), JSON.stringify(validate.errors)).toBe(true)
  expectTimings(JSON.parse(readFileSync(file, 'utf8')) as Plan, report)
  return {code: result.code, report, stderr: result.stderr}
}

/**
 * The report times what this run checked or ran, and only that; and a step began only after every step it
 * depends on had ended in this run (or had been done in an earlier one).
 */
function expectTimings(plan: Plan, report: ApplyReport): void {
  const byId = new Map(report.steps.map((s) => [s.id, s]))
  for (const step of report.steps) {
    const ran = ['applied', 'failed'].includes(step.status) || (step.status === 'skipped' && !String(step.reason).startsWith('done in an earlier run'))
    expect([step.id, step.startMs !== null, step.durationMs !== null]).toEqual([step.id, ran, ran])
    if (!ran) continue
    expect(step.durationMs!).toBeGreaterThanOrEqual(0)
    for (const dep of plan.steps.find((p) => p.id === step.id)!.after) {
      const before = byId.get(dep)!
      if (before.startMs !== null) expect(step.startMs!, `${step.id} began before ${dep} ended`).toBeGreaterThanOrEqual(before.startMs + before.durationMs!)
    }
  }
}

async function gtidPositions(s: TestSandbox): Promise<string[]> {
  return await Promise.all(survivors(s).map((h) => s.sql(h, async (c) => String((await c.queryOne('SELECT @@gtid_binlog_pos AS p'))!.p))))
}

describe('mha apply on real sandboxes', () => {
  it('fails over under write load without losing an acknowledged write, calls the MHA hooks, and a second apply does nothing', async () => {
    sandbox = await startSandbox('itapply1', 61)
    // MHA-style hook scripts that record how they were called; the shutdown hook answers 10 (killed over SSH, proceed).
    const hookDir = mkdtempSync(join(tmpdir(), 'mha-hooks-'))
    const hookLog = join(hookDir, 'calls.log')
    for (const [name, code] of [['shutdown', 10], ['vip', 0], ['report', 0]] as const) {
      writeFileSync(join(hookDir, name), `#!/bin/sh\necho "${name} $*" >> ${hookLog}\nexit ${code}\n`, {mode: 0o755})
    }
    writeFileSync(sandbox.configFile, readFileSync(sandbox.configFile, 'utf8') + `hooks:\n  shutdown: ${hookDir}/shutdown\n  master_ip_failover: ${hookDir}/vip\n  report: ${hookDir}/report\n`)
    await WriteLoad.prepare(sandbox.state, 'db1')
    const load = new WriteLoad(sandbox.state)
    load.start()
    await new Promise((r) => setTimeout(r, 1500))
    await killMasterAndWait(sandbox)
    const file = await planFailover(sandbox, 'crash')
    const first = await apply(sandbox, file)
    expect(first.report.status, first.report.message).toBe('applied')
    expect(first.code).toBe(0)
    // As MHA's report: where db2 took over, and how db1 follows it once repaired (password masked).
    const db2At = first.report.steps.find((s) => s.id === 'detach_replication:db2')!.outputs.binlog as {file: string; pos: number}
    expect(first.report.newMaster).toMatchObject({server: 'db2', binlog: db2At, oldMaster: 'db1'})
    expect(first.report.newMaster!.repointOldMaster).toBe(
      `CHANGE MASTER TO MASTER_HOST = '127.0.0.62', MASTER_PORT = 3306, MASTER_USER = 'repl', MASTER_PASSWORD = '********', MASTER_USE_GTID = no, MASTER_LOG_FILE = '${db2At.file}', MASTER_LOG_POS = ${db2At.pos}`,
    )
    await new Promise((r) => setTimeout(r, 1000))
    await load.stop()
    expect(load.acked.length).toBeGreaterThan(20)
    await expectConsistent(sandbox, 'db2', load.acked)
    const calls = readFileSync(hookLog, 'utf8').trim().split('\n')
    expect(calls).toEqual([
      'vip --command=stopssh --ssh_user=root --orig_master_host=127.0.0.61 --orig_master_ip=127.0.0.61 --orig_master_port=3306',
      'shutdown --command=stopssh --ssh_user=root --host=127.0.0.61 --ip=127.0.0.61 --port=3306',
      'vip --command=start --ssh_user=root --orig_master_host=127.0.0.61 --orig_master_ip=127.0.0.61 --orig_master_port=3306 --new_master_host=127.0.0.62 --new_master_ip=127.0.0.62 --new_master_port=3306 --new_master_user=mha',
      `report --orig_master_host=127.0.0.61 --new_master_host=127.0.0.62 --new_slave_hosts=127.0.0.63 --conf=${sandbox.configFile} --subject=mha failover of itapply1 --body=db1 is dead; promote db2 (a candidate_master that has the newest data); re-point db3`,
    ])

    const before = await gtidPositions(sandbox)
    const second = await apply(sandbox, file)
    expect(second.code).toBe(0)
    expect(second.report.status).toBe('already_applied')
    expect(second.report.steps.every((s) => s.status === 'skipped')).toBe(true)
    expect(await gtidPositions(sandbox)).toEqual(before)
  })

  it('applies the relay-log diff to a lagging replica (file/position)', async () => {
    sandbox = await startSandbox('itapply2', 61)
    await WriteLoad.prepare(sandbox.state, 'db1')
    await sandbox.sql('db1', (c) => c.execute('CREATE TABLE mhatest.big (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(2000))'))
    const load = new WriteLoad(sandbox.state)
    load.start()
    await sandbox.sql('db3', (c) => c.execute('STOP SLAVE IO_THREAD'))
    await sandbox.sql('db1', async (c) => {
      for (let i = 0; i < 10; i++) await c.execute("INSERT INTO mhatest.big (v) SELECT REPEAT('x', 2000) FROM mhatest.seq_1_to_1000")
    })
    await sandbox.sql('db3', (c) => c.execute('START SLAVE IO_THREAD'))
    await killMasterAndWait(sandbox)
    const file = await planFailover(sandbox, 'lagging')
    const plan = readPlan(file)
    expect(plan.steps.find((s) => s.id === 'save_relay_diff:db3')?.params).toMatchObject({target: 'db3', diff: {source: 'db2'}})
    const result = await apply(sandbox, file)
    expect(result.report.status, result.report.message).toBe('applied')
    await load.stop()
    await expectConsistent(sandbox, 'db2', load.acked)
    const big = await Promise.all(survivors(sandbox).map((h) => sandbox!.sql(h, async (c) => String((await c.queryOne('CHECKSUM TABLE mhatest.big'))!.Checksum))))
    expect(new Set(big).size).toBe(1)
  })

  it("saves the dead master's binlog tail over SSH and applies it (file/position)", async () => {
    sandbox = await startSandbox('itapply6', 61)
    await WriteLoad.prepare(sandbox.state, 'db1')
    const load = new WriteLoad(sandbox.state)
    load.start()
    await new Promise((r) => setTimeout(r, 1000))
    // Both replicas stop receiving: what the client is told after this is only in db1's binlog.
    for (const host of survivors(sandbox)) await sandbox.sql(host, (c) => c.execute('STOP SLAVE IO_THREAD'))
    const ackedBefore = load.acked.length
    await new Promise((r) => setTimeout(r, 700))
    await killMasterAndWait(sandbox)
    expect(load.acked.length).toBeGreaterThan(ackedBefore)
    const file = await planFailover(sandbox, 'tail')
    expect(readPlan(file).steps.map((s) => s.id)).toContain('save_master_binlog:db1')
    const result = await apply(sandbox, file)
    expect(result.report.status, result.report.message).toBe('applied')
    await load.stop()
    await expectConsistent(sandbox, 'db2', load.acked)
  })

  it('fails over in MariaDB GTID mode with a binlog tail, and resumes after apply is killed mid-way', async () => {
    sandbox = await startSandbox('itapply3', 61, {gtid: true})
    await WriteLoad.prepare(sandbox.state, 'db1')
    const load = new WriteLoad(sandbox.state)
    load.start()
    await new Promise((r) => setTimeout(r, 1000))
    for (const host of survivors(sandbox)) await sandbox.sql(host, (c) => c.execute('STOP SLAVE IO_THREAD'))
    await new Promise((r) => setTimeout(r, 500))
    await killMasterAndWait(sandbox)
    const file = await planFailover(sandbox, 'gtid')
    expect(readPlan(file).decision.replicationMode).toBe('gtid')
    expect(readPlan(file).steps.map((s) => s.id)).toContain('save_master_binlog:db1')

    // Kill apply right after the promotion, before the re-pointing is known to be done.
    const child = spawn(process.execPath, [join(root, 'bin/run.js'), 'apply', file, '--config', sandbox.configFile], {cwd: root, env: {...process.env, NODE_ENV: 'production'}})
    let out = ''
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString()
        if (/done {2}detach_replication:db2/.test(out) && child.exitCode === null) child.kill('SIGKILL')
      })
      child.on('close', () => resolve())
    })
    expect(out).toMatch(/done {2}detach_replication:db2/)
    expect(out).not.toMatch(/applied: failover applied/)

    const resumed = await apply(sandbox, file)
    expect(resumed.report.status, resumed.report.message).toBe('applied')
    await new Promise((r) => setTimeout(r, 1000))
    await load.stop()
    await expectConsistent(sandbox, 'db2', load.acked)
  })

  it('refuses a stale plan and changes nothing', async () => {
    sandbox = await startSandbox('itapply4', 61)
    await killMasterAndWait(sandbox)
    const file = await planFailover(sandbox, 'stale')
    // The topology changes after planning: db3 now replicates from db2.
    const db2 = sandbox.state.hosts[1]!
    const replPassword = readFileSync(join(sandbox.state.dir, 'secrets', 'repl.password'), 'utf8').trim()
    await sandbox.sql('db3', async (c) => {
      await c.execute('STOP SLAVE')
      await c.execute(`CHANGE MASTER TO MASTER_HOST='${db2.ip}', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='${replPassword}', MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=4`)
    })
    const before = await gtidPositions(sandbox)
    const result = await apply(sandbox, file)
    expect(result.code).toBe(1)
    expect(result.report.status).toBe('refused')
    expect(result.report.message).toMatch(/^the plan is stale: db3 source: now db2; the plan assumed db1/)
    expect(result.stderr).toMatch(/mha plan --cluster itapply4/)
    expect(await gtidPositions(sandbox)).toEqual(before)
    expect((await sandbox.sql('db2', (c) => c.queryOne('SELECT @@global.read_only+0 AS ro')))!.ro).toBe(1)
  })

  it('gives a one-line error and changes nothing on bad input', async () => {
    sandbox = await startSandbox('itapply5', 61)
    await killMasterAndWait(sandbox)
    const file = await planFailover(sandbox, 'bad-input')
    const before = await gtidPositions(sandbox)
    const dir = mkdtempSync(join(tmpdir(), 'mha-bad-plan-'))
    const write = (name: string, text: string) => {
      writeFileSync(join(dir, name), text)
      return join(dir, name)
    }
    const plan = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown> & {steps: {params: Record<string, unknown>}[]}
    const cases: [string[], RegExp][] = [
      [['apply', write('broken.json', '{"format": 1,')], /broken\.json: not JSON/],
      [['apply', write('invalid.json', JSON.stringify({...plan, steps: [{...plan.steps[0], type: 'drop_database'}]}))], /invalid\.json: not a valid mha plan: steps\[0\]/],
      [['apply', write('unknown.json', JSON.stringify({...plan, cluster: 'nosuchcluster', header: {...(plan.header as object), configFile: '/nonexistent.yaml'}})), '--config-dir', dir], /the plan is for cluster nosuchcluster, but .*nosuchcluster\.yaml does not exist/],
    ]
    const wrongPassword = readFileSync(sandbox.configFile, 'utf8').replace(/password:\n\s+file: .*mha\.password/, 'password: Wr0ngPassw0rd')
    cases.push([['apply', file, '--config', write('wrong.yaml', wrongPassword)], /access denied for user mha/])
    // mha's own route to db2 goes nowhere (its ip), the hostname replicas use is unchanged.
    const unreachable = readFileSync(sandbox.configFile, 'utf8').replace('hostname: 127.0.0.62', 'hostname: 127.0.0.62\n    ip: 127.0.0.254')
    cases.push([['apply', file, '--config', write('unreachable.yaml', unreachable)], /plan is stale: db2 sql: now unreachable/])
    for (const [args, expected] of cases) {
      const result = await runMha(args)
      expect(result.code, args.join(' ')).toBe(1)
      expect(result.stderr.trim().split('\n')[0]).toMatch(expected)
      expect(result.stdout + result.stderr).not.toContain('Wr0ngPassw0rd')
    }
    expect(await gtidPositions(sandbox)).toEqual(before)
  })
})
