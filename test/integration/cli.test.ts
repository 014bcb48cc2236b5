import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {commands} from '../../commands/index.js'
import {validator} from '../../src/schema/validator.js'
import {root, runMha, type RunResult} from './harness.js'

// The CLI's conventions, as a user meets them: no sandbox. Cluster files point at closed ports on 127.0.0.191
// and 127.0.0.192 (this file's addresses), so whatever tries to connect is refused at once.
const work = mkdtempSync(join(tmpdir(), 'mha-it-cli-'))
const golden = join(root, 'test/golden')

function clusterFile(dir: string, name: string, octet: number): string {
  mkdirSync(dir, {recursive: true})
  const file = join(dir, `${name}.yaml`)
  writeFileSync(
    file,
    [
      `name: ${name}`,
      'user: mha',
      'password: {env: MHA_CLI_TEST_PASSWORD}',
      'repl_user: repl',
      'repl_password: {env: MHA_CLI_TEST_PASSWORD}',
      'monitor: {connect_timeout: 1}',
      'servers:',
      `  - {name: db1, hostname: 127.0.0.${octet}, port: 1, ssh_port: 1}`,
      `  - {name: db2, hostname: 127.0.0.${octet}, port: 2, ssh_port: 1}`,
      '',
    ].join('\n'),
  )
  return file
}

const env = {MHA_CLI_TEST_PASSWORD: 'not-a-real-password'}
const configDir = join(work, 'clusters')
const one = clusterFile(configDir, 'cli1', 191)
clusterFile(configDir, 'cli2', 192)

function expectUsageError(result: RunResult, pattern: RegExp): void {
  expect(result.code, result.stderr).toBe(64)
  expect(result.stdout).toBe('')
  const lines = result.stderr.trim().split('\n')
  expect(lines.at(-1)).toMatch(pattern)
  expect(lines.filter((l) => l.startsWith('mha: ')).length).toBe(1)
}

function expectErrorDocument(result: RunResult, code: number, kind: string): {message: string} {
  expect(result.code, result.stderr).toBe(code)
  const doc = JSON.parse(result.stdout) as {error: {code: number; kind: string; message: string}}
  expect(validator('error.schema.json')(doc)).toBe(true)
  expect(doc.error.code).toBe(code)
  expect(doc.error.kind).toBe(kind)
  return doc.error
}

describe('exit codes and usage errors', () => {
  it('an unknown flag, a bad value, a missing argument and conflicting flags exit 64 with one line', async () => {
    expectUsageError(await runMha(['plan', '--bogus']), /^mha: Nonexistent flag: --bogus \(see: mha plan --help\)$/)
    expectUsageError(await runMha(['sandbox', 'up', '--replicas', 'many']), /^mha: --replicas: Expected an integer but received: many/)
    expectUsageError(await runMha(['apply']), /^mha: Missing 1 required arg: file/)
    expectUsageError(await runMha(['plan', '--config', one, '--cluster', 'cli2']), /cannot also be provided when using --cluster/)
    expectUsageError(await runMha(['check']), /^mha: name a cluster with --cluster NAME or a file with --config FILE$/)
  })

  it('mha plan --to without --switchover is refused, not ignored', async () => {
    expectUsageError(await runMha(['plan', '--config', one, '--to', 'db2'], env), /--to: --switchover/)
    const snapshot = ['--config', join(golden, 'mariadb-healthy/cluster.yaml'), '--from-snapshot', join(golden, 'mariadb-healthy/snapshot.json')]
    expectUsageError(await runMha(['plan', ...snapshot, '--switchover', '--force-dead', 'because'], env), /--force-dead/)
    expectUsageError(await runMha(['plan', ...snapshot, '--rejoin', 'db1', '--rebuild', 'db2'], env), /cannot also be provided/)
  })

  it('flags a command does not honour are refused', async () => {
    expectUsageError(await runMha(['sandbox', 'status', '--config', one]), /Nonexistent flag: --config/)
    expectUsageError(await runMha(['sandbox', 'down', '--config-dir', configDir]), /Nonexistent flag: --config-dir/)
    expectUsageError(await runMha(['config', 'import-mha', join(root, 'test/fixtures/mha-cnf/app1.cnf'), '--cluster', 'x']), /Nonexistent flag: --cluster/)
    expectUsageError(await runMha(['watch', '--config', one, '--only', 'cli2']), /cannot also be provided when using --only/)
  })

  it('an unknown command exits 64 at once without a TTY, naming the nearest command', async () => {
    // Without a TTY nothing may wait for an answer: a prompt would hang here until the test's timeout.
    const typo = await runMha(['aply', 'plans/x.json'])
    expect(typo.code).toBe(64)
    expect(typo.stderr).toMatch(/^mha: aply is not a mha command; did you mean "mha apply"\?/m)
    expect((await runMha(['sandbox', 'stat'])).stderr).toMatch(/did you mean "mha sandbox status"/)
  })

  it('every command shows the exit-code table in its --help, and the root help shows all of it', async () => {
    for (const id of Object.keys(commands)) {
      const help = await runMha([...id.split(':'), '--help'])
      expect(help.code).toBe(0)
      const table = help.stdout.slice(help.stdout.indexOf('EXIT CODES'))
      expect(table, id).toMatch(/^EXIT CODES\n {2}0 .*\n(.*\n)* {2}64 +usage error/)
    }
    const rootHelp = await runMha(['--help'])
    for (const code of [0, 1, 2, 10, 64]) expect(rootHelp.stdout).toMatch(new RegExp(`^ {2}${code} +\\S`, 'm'))
    expect((await runMha(['plan', '--help'])).stdout).toMatch(/^ {2}2 +the plan has changes/m)
    expect((await runMha(['apply', '--help'])).stdout).toMatch(/^ {2}10 +the new master takes writes/m)
  })
})

describe('--json errors', () => {
  it('a usage error is a JSON document on stdout with the same exit code', async () => {
    const error = expectErrorDocument(await runMha(['plan', '--bogus', '--json']), 64, 'usage')
    expect(error.message).toMatch(/--bogus/)
    expectErrorDocument(await runMha(['aply', '--json']), 64, 'usage')
  })

  it('a bad cluster file and a bad plan file are errors of their kind, exit 1', async () => {
    const config = expectErrorDocument(await runMha(['check', '--config', one, '--json']), 1, 'config')
    expect(config.message).toMatch(/MHA_CLI_TEST_PASSWORD/)
    const notJson = join(work, 'not-a-plan.json')
    writeFileSync(notJson, 'nope')
    expectErrorDocument(await runMha(['apply', notJson, '--json']), 1, 'plan')
  })
})

describe('noop plans', () => {
  const healthy = ['plan', '--config', join(golden, 'mariadb-healthy/cluster.yaml'), '--from-snapshot', join(golden, 'mariadb-healthy/snapshot.json')]
  const files = (dir: string) => (existsSync(dir) ? readdirSync(dir, {recursive: true}).map(String) : [])

  it('are printed, not archived, unless asked', async () => {
    const plansDir = join(work, 'noop-plans')
    for (let i = 0; i < 3; i++) {
      const result = await runMha([...healthy, '--plans-dir', plansDir])
      expect(result.code).toBe(0)
      expect(result.stdout).toMatch(/No changes for cluster app1/)
      expect(result.stdout).toMatch(/not archived/)
    }
    expect(files(plansDir)).toEqual([])
    const archived = await runMha([...healthy, '--plans-dir', plansDir, '--archive-noop'])
    expect(archived.code).toBe(0)
    expect(files(join(plansDir, 'app1'))).toEqual([expect.stringMatching(/^\d{8}T\d{6}Z-noop\.json$/)])
    const explicit = join(work, 'explicit-noop.json')
    expect((await runMha([...healthy, '--plans-dir', plansDir, '-o', explicit])).code).toBe(0)
    expect((JSON.parse(readFileSync(explicit, 'utf8')) as {kind: string}).kind).toBe('noop')
  })

  it('-o - writes the plan JSON to stdout and the summary to stderr, and no file named "-"', async () => {
    // A file left by an older build would hide the fault: only this run may be judged.
    rmSync(join(root, '-'), {force: true})
    const result = await runMha([...healthy, '-o', '-', '--plans-dir', join(work, 'stdout-plans')])
    expect(result.code).toBe(0)
    expect((JSON.parse(result.stdout) as {kind: string}).kind).toBe('noop')
    expect(result.stderr).toMatch(/No changes for cluster app1/)
    expect(existsSync(join(root, '-'))).toBe(false)
    const failover = await runMha(['plan', '--config', join(golden, 'mariadb-file-lagging/cluster.yaml'), '--from-snapshot', join(golden, 'mariadb-file-lagging/snapshot.json'), '-o', '-'])
    expect(failover.code).toBe(2)
    expect((JSON.parse(failover.stdout) as {kind: string}).kind).toBe('failover')
    expect(failover.stderr).toMatch(/Digest: [0-9a-f]{64}/)
  })
})

describe('commands act on the cluster their flags name', () => {
  it('ack --config FILE acknowledges that cluster (its secrets not needed), --json per schema', async () => {
    const plansDir = join(work, 'ack-plans')
    mkdirSync(join(plansDir, 'cli1'), {recursive: true})
    const lastFailover = {at: '2026-11-30T10:00:00.000Z', plan: 'plans/cli1/x-failover.json', report: 'plans/cli1/x-failover.report.json', status: 'applied', deadMaster: 'db1', newMaster: 'db2'}
    writeFileSync(join(plansDir, 'cli1/watch-state.json'), JSON.stringify({lastFailover, acknowledged: false}))
    const result = await runMha(['ack', '--config', one, '--plans-dir', plansDir, '--json'])
    expect(result.code, result.stderr).toBe(0)
    const doc = JSON.parse(result.stdout) as unknown
    expect(validator('ack.schema.json')(doc)).toBe(true)
    expect(doc).toEqual({cluster: 'cli1', lastFailover, acknowledged: true, alreadyAcknowledged: false})
    expect((JSON.parse(readFileSync(join(plansDir, 'cli1/watch-state.json'), 'utf8')) as {acknowledged: boolean}).acknowledged).toBe(true)
    expect((JSON.parse((await runMha(['ack', '--cluster', 'cli1', '--plans-dir', plansDir, '--json'])).stdout) as {alreadyAcknowledged: boolean}).alreadyAcknowledged).toBe(true)
    expectErrorDocument(await runMha(['ack', '--cluster', 'cli2', '--plans-dir', plansDir, '--json']), 1, 'runtime')
  })

  it('status --config FILE shows that cluster only', async () => {
    const all = await runMha(['status', '--config-dir', configDir, '--plans-dir', join(work, 'status-plans'), '--json'], env)
    expect((JSON.parse(all.stdout) as {cluster: string}[]).map((r) => r.cluster)).toEqual(['cli1', 'cli2'])
    const result = await runMha(['status', '--config', one, '--plans-dir', join(work, 'status-plans'), '--json'], env)
    expect(result.code, result.stderr).toBe(0)
    expect((JSON.parse(result.stdout) as {cluster: string}[]).map((r) => r.cluster)).toEqual(['cli1'])
  })

  it('watch --config FILE watches that one file', async () => {
    const result = await runMha(['watch', '--config', one, '--plans-dir', join(work, 'watch-plans'), '--log-format', 'json'], env)
    expect(result.code).toBe(1)
    const lines = result.stdout.trim().split('\n').map((l) => JSON.parse(l) as {event: string; message: string})
    expect(lines.find((l) => l.event === 'watch')?.message).toBe('watching cli1')
    expect(lines.find((l) => l.event === 'error')?.message).toMatch(/^no cluster can be monitored: cli1: /)
  })

  it('config import-mha --json describes what it wrote, per schema', async () => {
    const output = join(work, 'imported/app1.yaml')
    const result = await runMha(['config', 'import-mha', join(root, 'test/fixtures/mha-cnf/app1.cnf'), '-o', output, '--json'])
    expect(result.code, result.stderr).toBe(0)
    const doc = JSON.parse(result.stdout) as {file: string; secretFiles: string[]; notCarried: unknown[]}
    expect(validator('import-mha.schema.json')(doc)).toBe(true)
    expect(doc.file).toBe(output)
    expect(doc.secretFiles.length).toBeGreaterThan(0)
    for (const f of doc.secretFiles) expect(existsSync(f)).toBe(true)
    expect(result.stdout).not.toContain('yunwei123')
  })
})

describe('shell completion', () => {
  it('mha autocomplete script bash gives bash a function that completes commands and flags', async () => {
    const dirs = {XDG_CACHE_HOME: join(work, 'cache'), XDG_DATA_HOME: join(work, 'data')}
    const setup = await runMha(['autocomplete', 'bash'], dirs)
    expect(setup.code, setup.stderr).toBe(0)
    const script = await runMha(['autocomplete', 'script', 'bash'], dirs)
    expect(script.code, script.stderr).toBe(0)
    const complete = (words: string[]) =>
      execFileSync('bash', ['-c', `${script.stdout}\nCOMP_WORDS=(${words.join(' ')}); COMP_CWORD=${words.length - 1}; _mha_autocomplete; echo "\${COMPREPLY[@]}"`], {encoding: 'utf8'}).trim()
    expect(complete(['mha', 'ap'])).toBe('apply')
    expect(complete(['mha', 'sandbox', 'st']).split(' ').sort()).toEqual(['start-host', 'status'])
    expect(complete(['mha', 'plan', '--sw'])).toBe('--switchover')
  })
})
