import {spawn} from 'node:child_process'
import {mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import type {ApplyReport} from '../../src/apply/events.js'
import {WriteLoad} from '../../src/sandbox/load.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {sandboxAddHost, secretsOf} from '../../src/sandbox/sandbox.js'
import {root, runMha, startSandbox, type TestSandbox} from './harness.js'

// Octet 181 only: 127.0.0.181-184 (the fourth host is added by the test).
let sandbox: TestSandbox | undefined
afterEach(async () => {
  await sandbox?.down()
  sandbox = undefined
})

const hosts = (s: TestSandbox) => s.state.hosts.map((h) => h.name)
const status = (s: TestSandbox, host: string) => s.sql(host, (c) => c.queryOne('SHOW SLAVE STATUS'))

/** `mha apply` without a TTY, each stdout line with the moment it arrived: what a person watching the terminal sees, when. */
function applyWatchingLines(file: string, configFile: string, target: string, env: NodeJS.ProcessEnv): Promise<{code: number | null; lines: {text: string; at: number}[]; exitedAt: number; stderr: string}> {
  const child = spawn(process.execPath, [join(root, 'bin/run.js'), 'apply', file, '--config', configFile, '--target', target], {cwd: root, env: {...process.env, NODE_ENV: 'production', ...env}})
  const lines: {text: string; at: number}[] = []
  let buffer = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString()
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      lines.push({text: buffer.slice(0, i), at: performance.now()})
      buffer = buffer.slice(i + 1)
    }
  })
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  return new Promise((resolve) => child.on('close', (code) => resolve({code, lines, exitedAt: performance.now(), stderr})))
}

/** Applied with line output (progress shown while the copy runs), or with --json (the report's notes). */
async function rebuildUnderLoad(s: TestSandbox, plansDir: string, output: 'lines' | 'json'): Promise<void> {
  await WriteLoad.prepare(s.state, 'db1')
  const load = new WriteLoad(s.state)
  load.start()
  await new Promise((r) => setTimeout(r, 1500))
  const db4 = await sandboxAddHost(s.state)
  expect([db4.name, db4.ip]).toEqual(['db4', '127.0.0.184'])
  const file = join(plansDir, s.state.cluster, 'rebuild-db4.json')
  const plan = await runMha(['plan', '--config', s.configFile, '--rebuild', 'db4', '-o', file])
  expect(plan.code, plan.stderr + plan.stdout).toBe(2)
  expect(plan.stdout).toMatch(/rebuild db4 from a copy of db2, then replicate from db1/)
  expect(plan.stdout).toContain(`then: mha apply ${file} --expect-digest `)
  expect(plan.stdout).toMatch(/ --target db4\n/)
  const text = readFileSync(file, 'utf8')
  for (const secret of Object.values(secretsOf(s.state.dir))) expect(text).not.toContain(secret.reveal())
  if (output === 'json') {
    const applied = await runMha(['apply', file, '--config', s.configFile, '--target', 'db4', '--json'])
    const report = JSON.parse(applied.stdout) as ApplyReport
    expect(report.status, report.message + applied.stderr).toBe('applied')
    expect(applied.code).toBe(0)
    expect(report.notes.join('\n')).toMatch(/copy_backup:db4: [\d.]+ MiB copied from db2 to db4/)
    for (const secret of Object.values(secretsOf(s.state.dir))) expect(applied.stdout + applied.stderr).not.toContain(secret.reveal())
  } else {
    // Progress every 100 ms: the sandbox's copy takes a second or two, not the 10 s of the default interval.
    const applied = await applyWatchingLines(file, s.configFile, 'db4', {MHA_PROGRESS_INTERVAL_MS: '100'})
    const all = applied.lines.map((l) => l.text).join('\n')
    expect(applied.code, all + applied.stderr).toBe(0)
    expect(all).toMatch(/ applied: rebuild applied/)
    for (const secret of Object.values(secretsOf(s.state.dir))) expect(all + applied.stderr).not.toContain(secret.reveal())
    const done = applied.lines.find((l) => /^\S+ done +copy_backup:db4 /.test(l.text))
    expect(done, all).toBeDefined()
    const soFar = applied.lines.filter((l) => /^\S+ \.\.\. +copy_backup:db4 \(\d+\.\d\d s\): [\d.]+ MiB copied from db2 to db4 so far \(\d+ s\)$/.test(l.text))
    expect(soFar.length, all).toBeGreaterThan(0)
    // Shown while the copy runs: each arrived before the step ended, well before the apply did.
    for (const line of soFar) expect(line.at, line.text).toBeLessThan(done!.at)
    expect(applied.exitedAt - soFar[0]!.at).toBeGreaterThan(100)
    expect(all).toMatch(/\.\.\. +copy_backup:db4 .*: [\d.]+ MiB copied from db2 to db4 in \d+ s; preparing the copy/)
  }
  await new Promise((r) => setTimeout(r, 1500))
  await load.stop()
  expect(load.acked.length).toBeGreaterThan(20)

  const replica = (await status(s, 'db4'))!
  expect([replica.Master_Host, replica.Slave_IO_Running, replica.Slave_SQL_Running]).toEqual(['127.0.0.181', 'Yes', 'Yes'])
  // Every acknowledged write, and the same table everywhere: rows written during the copy came through replication.
  const last = Math.max(...load.acked)
  await waitFor('db4 to have the last acknowledged write', 30_000, async () => Number((await s.sql('db4', (c) => c.queryOne(`SELECT COUNT(*) AS n FROM mhatest.acked WHERE id = ${last}`)))!.n) === 1)
  await waitFor('every server to have every row', 30_000, async () => {
    const counts = await Promise.all(hosts(s).map((h) => s.sql(h, async (c) => Number((await c.queryOne('SELECT COUNT(*) AS n FROM mhatest.acked'))!.n))))
    return counts.every((n) => n === counts[0])
  })
  const ids = new Set(await s.sql('db4', async (c) => (await c.query('SELECT id FROM mhatest.acked')).map((r) => Number(r.id))))
  expect(load.acked.filter((id) => !ids.has(id))).toEqual([])
  for (const table of ['acked', 'acked_log']) {
    const sums = await Promise.all(hosts(s).map((h) => s.sql(h, async (c) => String((await c.queryOne(`CHECKSUM TABLE mhatest.${table}`))!.Checksum))))
    expect(new Set(sums).size, `CHECKSUM TABLE ${table}: ${sums.join(', ')}`).toBe(1)
  }
  // The copy's data went where the cluster file says, and the staging folder is gone.
  expect(readFileSync(join(db4.datadir, 'xtrabackup_checkpoints'), 'utf8')).toMatch(/backup_type = log-applied/)
  const check = await runMha(['check', '--config', s.configFile, '--plans-dir', plansDir])
  expect(check.code, check.stdout + check.stderr).toBe(0)
  expect(check.stdout).toMatch(/db4 +127\.0\.0\.184:3306 +replica +from 127\.0\.0\.181:3306 io=running sql=running/)
  // A second apply does nothing.
  const again = await runMha(['apply', file, '--config', s.configFile, '--target', 'db4', '--json'])
  expect((JSON.parse(again.stdout) as ApplyReport).status).toBe('already_applied')
}

describe('rebuild and remove on a real sandbox (octet 181)', () => {
  it('file/position: rebuilds an empty fourth host under write load, then removes db3 and refuses to remove the master', async () => {
    sandbox = await startSandbox('itrebuild', 181)
    const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-rebuild-'))
    await rebuildUnderLoad(sandbox, plansDir, 'lines')

    // The master is refused: exit 1, one line, nothing written, nothing changed.
    const refused = await runMha(['plan', '--config', sandbox.configFile, '--remove', 'db1', '-o', join(plansDir, 'itrebuild', 'remove-db1.json')])
    expect(refused.code).toBe(1)
    expect(refused.stderr.trim().split('\n')).toHaveLength(1)
    expect(refused.stderr).toMatch(/db1 is the master and cannot be removed/)
    expect(await status(sandbox, 'db1')).toBeUndefined()
    // db4 was rebuilt from a copy of db2: the order does not matter; db3 goes.
    const file = join(plansDir, 'itrebuild', 'remove-db3.json')
    const plan = await runMha(['plan', '--config', sandbox.configFile, '--remove', 'db3', '-o', file])
    expect(plan.code, plan.stderr).toBe(2)
    expect(plan.stdout).toMatch(/delete db3's block .* from servers in/)
    const applied = await runMha(['apply', file, '--config', sandbox.configFile, '--target', 'db3'])
    expect(applied.code, applied.stdout + applied.stderr).toBe(0)
    expect(await status(sandbox, 'db3')).toBeUndefined()
    const state = JSON.parse(readFileSync(join(plansDir, 'itrebuild', 'watch-state.json'), 'utf8')) as {outOfService: {server: string; reason: string}[]}
    expect(state.outOfService.map((o) => o.server)).toEqual(['db3'])
    const check = await runMha(['check', '--config', sandbox.configFile, '--plans-dir', plansDir])
    expect(check.code, check.stdout + check.stderr).toBe(0)
    expect(check.stdout).toMatch(/db3 is out of service since .*mha plan --remove db3/)
    for (const host of ['db2', 'db4']) expect((await status(sandbox, host))!.Slave_SQL_Running).toBe('Yes')
  }, 240_000)

  it('GTID: rebuilds an empty fourth host under write load from gtid_slave_pos', async () => {
    sandbox = await startSandbox('itrebuildg', 181, {gtid: true})
    await rebuildUnderLoad(sandbox, mkdtempSync(join(tmpdir(), 'mha-it-rebuild-')), 'json')
    const replica = (await status(sandbox, 'db4'))!
    expect(replica.Using_Gtid).toBe('Slave_Pos')
  }, 240_000)
})
