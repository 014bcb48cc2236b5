import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import type {CheckReport} from '../../src/analysis/check.js'
import {startSshd, stopSshd} from '../../src/sandbox/sandbox.js'
import {validator} from '../../src/schema/validator.js'
import {killMasterAndWait, runMha, startSandbox, type TestSandbox} from './harness.js'

let sandbox: TestSandbox

async function check(configFile = sandbox.configFile): Promise<{code: number; report: CheckReport}> {
  const result = await runMha(['check', '--config', configFile, '--json'])
  const report = JSON.parse(result.stdout) as CheckReport
  const validate = validator('check-report.schema.json')
  expect(validate(report), JSON.stringify(validate.errors)).toBe(true)
  return {code: result.code, report}
}

const errorsOf = (report: CheckReport) => report.findings.filter((f) => f.severity === 'error').map((f) => [f.code, f.server])

describe('mha check on a real sandbox', () => {
  beforeAll(async () => {
    sandbox = await startSandbox('itcheck', 21)
  })
  afterAll(async () => {
    await sandbox?.down()
  })

  it('passes on a healthy cluster and prints a readable verdict', async () => {
    const {code, report} = await check()
    expect(code).toBe(0)
    expect(report.failoverPossible).toBe(true)
    expect(report.master).toBe('db1')
    expect(report.servers.map((s) => [s.name, s.role, s.ioThread, s.sqlThread, s.ssh])).toEqual([
      ['db1', 'master', null, null, 'ok'],
      ['db2', 'replica', 'running', 'running', 'ok'],
      ['db3', 'replica', 'running', 'running', 'ok'],
    ])
    const human = await runMha(['check', '--config', sandbox.configFile])
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(/verdict: OK/)
  })

  it("names a replica whose SQL thread is stopped", async () => {
    await sandbox.sql('db3', (c) => c.execute('STOP SLAVE SQL_THREAD'))
    try {
      const {code, report} = await check()
      expect(code).toBe(2)
      expect(errorsOf(report)).toEqual([['sql_thread_not_running', 'db3']])
    } finally {
      await sandbox.sql('db3', (c) => c.execute('START SLAVE SQL_THREAD'))
    }
  })

  it('warns of a replica made writable, which does not stop a failover', async () => {
    await sandbox.sql('db2', (c) => c.execute('SET GLOBAL read_only=0'))
    try {
      const {code, report} = await check()
      expect(code).toBe(0)
      expect(errorsOf(report)).toEqual([])
      expect(report.findings.filter((f) => f.code === 'replica_writable').map((f) => [f.severity, f.server])).toEqual([['warning', 'db2']])
      const human = await runMha(['check', '--config', sandbox.configFile])
      expect(human.stdout).toMatch(/WARNING\s+db2 is a replica but read_only=0/)
      expect(human.stdout).toMatch(/verdict: OK, a failover is possible now \(\d+ warnings? above\)/)
    } finally {
      await sandbox.sql('db2', (c) => c.execute('SET GLOBAL read_only=1'))
    }
  })

  it("names a host whose sshd is stopped", async () => {
    await stopSshd(sandbox.state, 'db3')
    try {
      const {code, report} = await check()
      expect(code).toBe(2)
      expect(errorsOf(report)).toEqual([['ssh_failed', 'db3']])
      expect(report.servers.find((s) => s.name === 'db3')?.ssh).toBe('failed')
    } finally {
      await startSshd(sandbox.state, 'db3')
    }
  })

  it('names every server refusing a wrong password, without printing it', async () => {
    const wrong = sandbox.configFile.replace(/\.yaml$/, '-wrong.yaml')
    const text = readFileSync(sandbox.configFile, 'utf8').replace(/password:\n\s+file: .*mha\.password/, 'password: Wr0ngPassw0rd')
    writeFileSync(wrong, text)
    const result = await runMha(['check', '--config', wrong])
    expect(result.code).toBe(2)
    for (const name of ['db1', 'db2', 'db3']) expect(result.stdout).toMatch(new RegExp(`ERROR\\s+${name} \\(127\\.0\\.0\\.\\d+:3306\\): access denied for user mha`))
    expect(result.stdout + result.stderr).not.toContain('Wr0ngPassw0rd')
    const {report} = await check(wrong)
    expect(errorsOf(report).filter(([code]) => code === 'sql_access_denied').map(([, server]) => server)).toEqual(['db1', 'db2', 'db3'])
  })

  it('is healthy again after every repair', async () => {
    const {code, report} = await check()
    expect(code).toBe(0)
    expect(report.verdict).toBe('ok')
  })

  it("names, from each host's SSH probe, a remote_workdir that cannot be made and a client_bindir without mysqlbinlog", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mha-check-probe-'))
    const file = join(dir, 'probe.yaml')
    const text = readFileSync(sandbox.configFile, 'utf8')
      .replace(/(- name: db2\n(?: {4}.*\n)*? {4}remote_workdir: ).*/, '$1/proc/1/mha-work')
      .replace(/(- name: db3\n)/, '$1    client_bindir: /usr/lib/mha-no-such-bindir\n')
    writeFileSync(file, text)
    const {code, report} = await check(file)
    expect(code).toBe(2)
    expect(errorsOf(report).sort()).toEqual([
      ['mysqlbinlog_missing', 'db3'],
      ['workdir_not_writable', 'db2'],
    ])
  })

  it('names a wrong replication password, which would break the re-pointing after a failover', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mha-check-repl-'))
    writeFileSync(join(dir, 'repl'), 'NotTheReplPassword\n', {mode: 0o600})
    const wrong = join(dir, 'wrong-repl.yaml')
    writeFileSync(wrong, readFileSync(sandbox.configFile, 'utf8').replace(/repl_password:\n\s+file: .*repl\.password/, `repl_password:\n  file: ${join(dir, 'repl')}`))
    const {code, report} = await check(wrong)
    expect(code).toBe(2)
    expect(errorsOf(report).filter(([c]) => c === 'repl_password_wrong').map(([, server]) => server)).toEqual(['db2', 'db3', 'db1'])
    expect(JSON.stringify(report)).not.toContain('NotTheReplPassword')
  })

  it('right after the master died: "master dead, a failover is possible now", exit 0, no advice to restart IO threads', async () => {
    await killMasterAndWait(sandbox)
    const {code, report} = await check()
    expect(code).toBe(0)
    expect(report.verdict).toBe('master_dead')
    expect(report.findings.map((f) => f.message).join('\n')).not.toMatch(/START SLAVE IO_THREAD/)
    const human = await runMha(['check', '--config', sandbox.configFile])
    expect(human.stdout).toMatch(/verdict: MASTER DEAD, a failover is possible now: mha plan --cluster itcheck/)
  })
})

describe('mha check on bad input', () => {
  it('gives one line with file:line for malformed YAML and a schema violation, exit 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mha-bad-'))
    writeFileSync(join(dir, 'broken.yaml'), 'name: app1\nservers:\n  - name: db1\n   hostname: x\n')
    writeFileSync(join(dir, 'invalid.yaml'), 'name: app1\nuser: mha\npassword: x\nrepl_user: repl\nservers:\n  - name: db1\n    hostname: h\n    port: 99999\n')
    const broken = await runMha(['check', '--config', join(dir, 'broken.yaml')])
    expect(broken.code).toBe(1)
    expect(broken.stderr.trim().split('\n')).toHaveLength(1)
    expect(broken.stderr).toMatch(/broken\.yaml:4:\d+ YAML syntax error/)
    const invalid = await runMha(['check', '--config', join(dir, 'invalid.yaml')])
    expect(invalid.code).toBe(1)
    expect(invalid.stderr.trim()).toMatch(/^mha: .*invalid\.yaml:8:5 servers\[0\]\.port: must be <= 65535$/)
    const missing = await runMha(['check', '--cluster', 'nope', '--config-dir', dir])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/nope\.yaml: no such cluster file/)
  })
})
