import {execFileSync} from 'node:child_process'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {startDetached, stopOurProcess, waitFor} from '../../src/sandbox/processes.js'
import {runMha} from './harness.js'

/**
 * etcd as it is run for real: TLS (a CA of the test's own) and user/password authentication, one member on
 * 127.0.0.90. mha reaches it with --etcd-ca, --etcd-user and --etcd-password-file; the password is in no output.
 */
const address = '127.0.0.90'
const endpoint = `https://${address}:2379`
const dir = mkdtempSync(join(tmpdir(), 'mha-it-etcd-secure-'))
const cluster = join(dirname(fileURLToPath(import.meta.url)), '../golden/mariadb-gtid-switchover/cluster.yaml')
const rootPassword = 'root-Pw-1'
const mhaPassword = 'mha-Pw-2-secret'
let pid: number | undefined

const openssl = (...args: string[]) => execFileSync('openssl', args, {cwd: dir, stdio: 'pipe'})
const etcdctl = (user: string, ...args: string[]) => execFileSync('etcdctl', ['--endpoints', endpoint, '--cacert', join(dir, 'ca.pem'), '--user', user, '--command-timeout=5s', ...args], {env: {...process.env, ETCDCTL_API: '3'}, stdio: 'pipe'}).toString()

beforeAll(async () => {
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=mha test CA')
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server-key.pem', '-out', 'server.csr', '-subj', `/CN=${address}`)
  writeFileSync(join(dir, 'san.ext'), `subjectAltName = IP:${address}\nextendedKeyUsage = serverAuth\n`)
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext')
  const data = join(dir, 'data')
  pid = startDetached(
    'etcd',
    ['--name', 'secure', `--data-dir=${data}`, '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint, '--listen-peer-urls', `http://${address}:2380`, '--initial-advertise-peer-urls', `http://${address}:2380`, '--initial-cluster', `secure=http://${address}:2380`, '--cert-file', join(dir, 'server.pem'), '--key-file', join(dir, 'server-key.pem')],
    join(dir, 'etcd.log'),
  )
  await waitFor('the TLS etcd to answer', 30_000, () => {
    try {
      execFileSync('etcdctl', ['--endpoints', endpoint, '--cacert', join(dir, 'ca.pem'), 'endpoint', 'health'], {env: {...process.env, ETCDCTL_API: '3'}, stdio: 'pipe'})
      return true
    } catch {
      return false
    }
  }, 200)
  // Authentication on, and a user for mha that may touch its own prefix only.
  const admin = (...args: string[]) => execFileSync('etcdctl', ['--endpoints', endpoint, '--cacert', join(dir, 'ca.pem'), ...args], {env: {...process.env, ETCDCTL_API: '3'}, stdio: 'pipe'})
  admin('user', 'add', 'root', '--new-user-password', rootPassword)
  admin('auth', 'enable')
  etcdctl(`root:${rootPassword}`, 'role', 'add', 'mha')
  etcdctl(`root:${rootPassword}`, 'role', 'grant-permission', 'mha', '--prefix=true', 'readwrite', '/secure/')
  etcdctl(`root:${rootPassword}`, 'user', 'add', 'mha', '--new-user-password', mhaPassword)
  etcdctl(`root:${rootPassword}`, 'user', 'grant-role', 'mha', 'mha')
  writeFileSync(join(dir, 'mha.password'), mhaPassword + '\n', {mode: 0o600})
  writeFileSync(join(dir, 'wrong.password'), 'not-the-password\n', {mode: 0o600})
}, 60_000)

afterAll(async () => {
  await stopOurProcess(pid, join(dir, 'data'))
})

const ack = (...extra: string[]) => runMha(['ack', '--config', cluster, '--plans-dir', mkdtempSync(join(tmpdir(), 'mha-it-etcd-secure-plans-')), '--etcd', endpoint, '--etcd-prefix', '/secure', ...extra])

describe('mha on an etcd with TLS and authentication', () => {
  it('reads and writes its state through TLS as its own user, and never shows the password', async () => {
    const state = {lastFailover: {at: new Date().toISOString(), plan: 'p.json', report: 'p.report.json', status: 'applied', deadMaster: 'db1', newMaster: 'db2'}, acknowledged: false}
    etcdctl(`root:${rootPassword}`, 'put', '/secure/state/app1', JSON.stringify(state))
    const done = await ack('--etcd-ca', join(dir, 'ca.pem'), '--etcd-user', 'mha', '--etcd-password-file', join(dir, 'mha.password'))
    expect(done.code, done.stderr).toBe(0)
    expect(JSON.parse(etcdctl(`root:${rootPassword}`, 'get', '--print-value-only', '/secure/state/app1'))).toMatchObject({acknowledged: true})
    expect(done.stdout + done.stderr).not.toContain(mhaPassword)
  }, 60_000)

  it('refuses in one line, changing nothing, with a wrong password, without the CA, or with a password file others can read', async () => {
    const wrong = await ack('--etcd-ca', join(dir, 'ca.pem'), '--etcd-user', 'mha', '--etcd-password-file', join(dir, 'wrong.password'))
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toMatch(/etcd \(https:\/\/127\.0\.0\.90:2379\): etcd refused the login of mha \(.*authentication failed.*\); fix the etcd user or its password file; nothing was acknowledged/)
    const untrusted = await ack('--etcd-user', 'mha', '--etcd-password-file', join(dir, 'mha.password'))
    expect(untrusted.code).toBe(1)
    expect(untrusted.stderr).toMatch(/etcd \(https:\/\/127\.0\.0\.90:2379\): etcd unreachable or without quorum .*; nothing was acknowledged/)
    writeFileSync(join(dir, 'open.password'), mhaPassword, {mode: 0o644})
    const open = await ack('--etcd-ca', join(dir, 'ca.pem'), '--etcd-user', 'mha', '--etcd-password-file', join(dir, 'open.password'))
    expect(open.code).toBe(1)
    expect(open.stderr).toMatch(/etcd password file .*open\.password can be read by others \(mode 644\); run chmod 600/)
    for (const r of [wrong, untrusted, open]) expect(r.stdout + r.stderr).not.toContain(mhaPassword)
  }, 60_000)
})
