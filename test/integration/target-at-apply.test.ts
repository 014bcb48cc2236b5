import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {journalFileOf} from '../../src/apply/executor.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {runMha, serverStates, startSandbox, type TestSandbox} from './harness.js'

// A rebuild replaces a server's datadir and a removal takes it out of service: `mha apply` runs either only on
// the server the operator names again with --target, never on one the plan file alone names. Octet 116 only
// (127.0.0.116-118).

let sandbox: TestSandbox
const dir = mkdtempSync(join(tmpdir(), 'mha-it-target-'))
const rows = 'SELECT COUNT(*) AS n FROM target.t'

beforeAll(async () => {
  sandbox = await startSandbox('ittarget', 116)
  mkdirSync(join(dir, 'ittarget'), {recursive: true})
  await sandbox.sql('db1', async (c) => {
    await c.execute('CREATE DATABASE target')
    await c.execute('CREATE TABLE target.t (id INT PRIMARY KEY)')
    await c.execute('INSERT INTO target.t VALUES (1), (2), (3)')
  })
  await everywhere(3)
})
afterAll(async () => {
  await sandbox.down()
  rmSync(dir, {recursive: true, force: true})
})

/** Every server has `n` rows. */
async function everywhere(n: number): Promise<void> {
  await waitFor(`every server to have ${n} rows`, 30_000, async () => {
    const counts = await Promise.all(sandbox.state.hosts.map((h) => sandbox.sql(h.name, async (c) => Number((await c.queryOne(rows))!.n))))
    return counts.every((count) => count === n)
  })
}

async function plan(name: string, args: string[]): Promise<string> {
  const file = join(dir, 'ittarget', `${name}.json`)
  const made = await runMha(['plan', '--config', sandbox.configFile, '--plans-dir', dir, '-o', file, ...args])
  expect(made.code, made.stdout + made.stderr).toBe(2)
  return file
}

/** Applied with `target` (or none): refused in one line matching `reason`, exit 1, no server changed, no journal begun. */
async function expectRefused(file: string, target: string | undefined, reason: RegExp): Promise<void> {
  const before = await serverStates(sandbox, rows)
  const applied = await runMha(['apply', file, '--config', sandbox.configFile, ...(target === undefined ? [] : ['--target', target])])
  const output = applied.stdout + applied.stderr
  expect(applied.code, output).toBe(1)
  const lines = applied.stderr.split('\n').filter((l) => l.startsWith('mha: ') && !l.startsWith('mha: next:'))
  expect(lines, output).toHaveLength(1)
  expect(lines[0]).toMatch(reason)
  expect(await serverStates(sandbox, rows), `${file} with --target ${target ?? '(none)'} changed a server:\n${output}`).toBe(before)
  expect(existsSync(journalFileOf(file)), 'a refused plan leaves no journal').toBe(false)
}

describe('rebuild and remove act only on the server named with --target (octet 116)', () => {
  it('a rebuild plan for db3 is refused without --target or with db2, its datadir untouched; with --target db3 it is rebuilt', async () => {
    const datadir = sandbox.state.hosts[2]!.datadir
    // A broken replica: its replication stopped.
    await sandbox.sql('db3', (c) => c.execute('STOP SLAVE'))
    const file = await plan('rebuild-db3', ['--rebuild', 'db3'])
    const shown = await runMha(['show', file, '--config', sandbox.configFile])
    expect(shown.stdout).toMatch(new RegExp(`Approve exactly this plan with: mha apply \\S+ --expect-digest [0-9a-f]{64} --target db3\\n`))
    const missing = new RegExp(`^mha: ${file.replaceAll('.', '\\.')} rebuilds db3 \\(its datadir is replaced\\): name it with --target db3 to confirm; nothing was changed$`)
    await expectRefused(file, undefined, missing)
    await expectRefused(file, 'db2', /^mha: \S+ rebuilds db3 \(its datadir is replaced\), not db2 as --target says; nothing was changed$/)
    expect(existsSync(`${datadir}.before-rebuild`)).toBe(false)
    // Written while db3 was refused: it comes to db3 through replication after its rebuild.
    await sandbox.sql('db1', (c) => c.execute('INSERT INTO target.t VALUES (4)'))
    const applied = await runMha(['apply', file, '--config', sandbox.configFile, '--target', 'db3'])
    expect(applied.code, applied.stdout + applied.stderr).toBe(0)
    expect(existsSync(`${datadir}.before-rebuild`)).toBe(true)
    const status = (await sandbox.sql('db3', (c) => c.queryOne('SHOW SLAVE STATUS')))!
    expect([status.Master_Host, status.Slave_IO_Running, status.Slave_SQL_Running]).toEqual([sandbox.state.hosts[0]!.ip, 'Yes', 'Yes'])
    await everywhere(4)
  }, 240_000)

  it('a remove plan for db3 is refused without --target or with db2; with --target db3 it is removed; --target with a switchover plan is refused', async () => {
    const file = await plan('remove-db3', ['--remove', 'db3'])
    await expectRefused(file, undefined, /^mha: \S+ removes db3 \(its replication is reset and it is listed out of service\): name it with --target db3 to confirm; nothing was changed$/)
    await expectRefused(file, 'db2', /^mha: \S+ removes db3 \(its replication is reset and it is listed out of service\), not db2 as --target says; nothing was changed$/)
    expect(existsSync(join(dir, 'ittarget', 'watch-state.json'))).toBe(false)
    const applied = await runMha(['apply', file, '--config', sandbox.configFile, '--target', 'db3'])
    expect(applied.code, applied.stdout + applied.stderr).toBe(0)
    expect(await sandbox.sql('db3', (c) => c.queryOne('SHOW SLAVE STATUS'))).toBeUndefined()
    const state = JSON.parse(readFileSync(join(dir, 'ittarget', 'watch-state.json'), 'utf8')) as {outOfService: {server: string}[]}
    expect(state.outOfService.map((o) => o.server)).toEqual(['db3'])
    // Not silently ignored on a plan that takes no --target.
    const switchover = await plan('switchover', ['--switchover', '--to', 'db2'])
    await expectRefused(switchover, 'db2', /^mha: --target db2: \S+ is a switchover plan; --target confirms the server of a rebuild or remove plan only; nothing was changed$/)
  }, 120_000)
})
