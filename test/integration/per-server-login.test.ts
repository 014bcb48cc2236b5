import {chmodSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {withConnection, type Endpoint} from '../../src/inspect/mysql.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {adminEndpoint, hostNamed} from '../../src/sandbox/sandbox.js'
import {Secret} from '../../src/util/secret.js'
import {leaveNothing, runMha, startSandbox, type TestSandbox} from './harness.js'

// MHA reads user and password per [serverN]: here server2's admin account is its own (the cluster's does not
// exist there), as an operator's app1.cnf may have it. mha imports that and logs in to each server with its own.
const ownPassword = 'own-pw-of-server2'
let sandbox: TestSandbox
let work: string
let yaml: string
let hookLog: string

/** How the test itself reaches a server: server2 only through its own account. */
const endpoint = (name: string): Endpoint =>
  name === 'db2' ? {...adminEndpoint(sandbox.state, hostNamed(sandbox.state, name)), user: 'admin2', password: new Secret(ownPassword, 'test')} : adminEndpoint(sandbox.state, hostNamed(sandbox.state, name))
const sql = <T>(name: string, query: string) => withConnection(endpoint(name), 5000, (c) => c.query(query)) as Promise<T>

beforeAll(async () => {
  sandbox = await startSandbox('itlogin', 137)
  work = mkdtempSync(join(tmpdir(), 'mha-it-login-'))
  // Only on db2 (not replicated): the cluster's account becomes admin2 with a password of its own.
  await sandbox.sql('db2', async (c) => {
    await c.execute('SET SESSION sql_log_bin = 0')
    await c.execute("RENAME USER 'mha'@'%' TO 'admin2'@'%'")
    await c.execute(`SET PASSWORD FOR 'admin2'@'%' = PASSWORD('${ownPassword}')`)
  })
  await sandbox.sql('db1', async (c) => {
    await c.execute('CREATE DATABASE IF NOT EXISTS logintest')
    await c.execute('CREATE TABLE IF NOT EXISTS logintest.t (id INT PRIMARY KEY)')
    await c.execute('INSERT INTO logintest.t VALUES (1), (2), (3)')
  })
  const {state} = sandbox
  const read = (name: string) => readFileSync(join(state.dir, 'secrets', name), 'utf8').trim()
  hookLog = join(work, 'hook.log')
  const hook = join(work, 'master_ip_failover')
  writeFileSync(hook, `#!/bin/sh\nprintf '%s\\n' "$@" "env=$MHA_NEW_MASTER_PASSWORD" >> ${hookLog}\nexit 0\n`)
  chmodSync(hook, 0o700)
  const cnf = [
    '[server default]',
    'user=mha',
    `password=${read('mha.password')}`,
    'repl_user=repl',
    `repl_password=${read('repl.password')}`,
    'ssh_user=root',
    `ssh_options=-i ${join(state.dir, 'id_ed25519')} -o UserKnownHostsFile=${join(state.dir, 'known_hosts')} -o ConnectTimeout=3`,
    'use_gtid_auto_pos=0',
    `master_ip_failover_script=${hook}`,
    ...state.hosts.flatMap((h) => [
      `[server${h.index}]`,
      `hostname=${h.ip}`,
      `master_binlog_dir=${h.datadir}`,
      `remote_workdir=${join(h.dir, 'work')}`,
      ...(h.name === 'db2' ? ['candidate_master=1', 'user=admin2', `password=${ownPassword}`] : []),
    ]),
  ]
  writeFileSync(join(work, 'app1.cnf'), cnf.join('\n') + '\n')
  yaml = join(work, 'itlogin.yaml')
})

afterAll(async () => {
  await leaveNothing(undefined, sandbox, [work])
})

describe("a server whose admin account is its own (MHA's per-server user/password)", () => {
  it('is imported with its own user and a secret file of its own, and mha check logs in to every server', async () => {
    const imported = await runMha(['config', 'import-mha', join(work, 'app1.cnf'), '--name', 'itlogin', '-o', yaml])
    expect(imported.code, imported.stderr).toBe(0)
    expect(imported.stdout).toMatch(/every parameter was carried over/)
    const text = readFileSync(yaml, 'utf8')
    expect(text, text).toMatch(/name: server2\n(\s+\S.*\n)*?\s+user: admin2\n\s+password: \{ file: itlogin\.secrets\/password\.server2 \}/)
    expect(text).not.toContain(ownPassword)
    expect(readFileSync(join(work, 'itlogin.secrets', 'password.server2'), 'utf8')).toBe(`${ownPassword}\n`)

    const check = await runMha(['check', '--config', yaml])
    expect(check.code, check.stdout + check.stderr).toBe(0)
    expect(check.stdout).toMatch(/verdict: OK/)
  })

  it('with a wrong password of its own, one line names the server and the field, and never the password', async () => {
    const wrong = join(work, 'wrong.yaml')
    writeFileSync(join(work, 'wrong-password'), 'not-the-password\n')
    writeFileSync(wrong, readFileSync(yaml, 'utf8').replace('itlogin.secrets/password.server2', 'wrong-password'))
    const check = await runMha(['check', '--config', wrong])
    expect(check.code, check.stdout + check.stderr).not.toBe(0)
    const lines = (check.stdout + check.stderr).split('\n').filter((l) => l.includes('access denied'))
    expect(lines.length).toBeGreaterThan(0)
    for (const line of lines) expect(line).toMatch(/server2 \(127\.0\.0\.138:3306\): access denied for user admin2; check servers\[1\]\.user and servers\[1\]\.password in .*wrong\.yaml/)
    expect(check.stdout + check.stderr).not.toContain('not-the-password')
  })

  it('a failover promotes it through its own login and re-points the others; the hook gets its user and password', async () => {
    process.kill(sandbox.state.hosts[0]!.mariadbdPid!, 'SIGKILL')
    await waitFor('the replicas to lose db1', 20_000, async () => {
      const rows = await Promise.all(['db2', 'db3'].map((h) => sql<Record<string, unknown>[]>(h, 'SHOW SLAVE STATUS')))
      return rows.every((r) => r[0]!.Slave_IO_Running !== 'Yes')
    })
    const plansDir = join(work, 'plans')
    const file = join(work, 'failover.json')
    const plan = await runMha(['plan', '--config', yaml, '--plans-dir', plansDir, '-o', file])
    expect(plan.code, plan.stdout + plan.stderr).toBe(2)
    expect(readFileSync(file, 'utf8')).not.toContain(ownPassword)
    expect(JSON.parse(readFileSync(file, 'utf8')).decision.newMaster).toBe('server2')
    const apply = await runMha(['apply', file, '--config', yaml])
    expect(apply.code, apply.stdout + apply.stderr).toBe(0)
    expect(apply.stdout + apply.stderr).not.toContain(ownPassword)

    const [master] = await sql<{ro: number}[]>('db2', 'SELECT @@global.read_only+0 AS ro')
    expect(Number(master!.ro)).toBe(0)
    await withConnection(endpoint('db2'), 5000, (c) => c.execute('INSERT INTO logintest.t VALUES (4)'))
    await waitFor('db3 to get the new row from server2', 20_000, async () => Number((await sql<{n: number}[]>('db3', 'SELECT COUNT(*) AS n FROM logintest.t'))[0]!.n) === 4)
    const [status] = await sql<Record<string, unknown>[]>('db3', 'SHOW SLAVE STATUS')
    expect([status!.Master_Host, status!.Slave_IO_Running, status!.Slave_SQL_Running]).toEqual(['127.0.0.138', 'Yes', 'Yes'])
    // MHA's --new_master_user and the new master's own password (in the environment; not on the command line without pass_passwords).
    const log = readFileSync(hookLog, 'utf8')
    expect(log).toMatch(/--command=start\n(.*\n)*?--new_master_user=admin2\n(.*\n)*?env=own-pw-of-server2/)
  })

  it('a switchover away from it blocks its writes and re-points it through its own login', async () => {
    // server1, the dead master, is taken out of the file as an operator does before a switchover.
    const without = join(work, 'itlogin-without-server1.yaml')
    writeFileSync(without, readFileSync(yaml, 'utf8').replace(/ {2}- name: server1\n( {4}.*\n)*/, ''))
    const switched = await runMha(['switchover', '--config', without, '--to', 'server3', '--auto-approve'])
    expect(switched.code, switched.stdout + switched.stderr).toBe(0)
    expect(switched.stdout + switched.stderr).not.toContain(ownPassword)
    const [status] = await sql<Record<string, unknown>[]>('db2', 'SHOW SLAVE STATUS')
    expect([status!.Master_Host, status!.Slave_IO_Running, status!.Slave_SQL_Running]).toEqual(['127.0.0.139', 'Yes', 'Yes'])
    expect(Number((await sql<{ro: number}[]>('db2', 'SELECT @@global.read_only+0 AS ro'))[0]!.ro)).toBe(1)
  })
})
