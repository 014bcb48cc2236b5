import {execFileSync, spawnSync} from 'node:child_process'
import {appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parse, stringify} from 'yaml'
import type {CheckReport} from '../../src/analysis/check.js'
import {findProgram, isOurProcess, portOpen, startDetached, stopOurProcess, waitFor} from '../../src/sandbox/processes.js'
import {runMha, startSandbox, type TestSandbox} from './harness.js'

// Octets 201..209 belong to this file: the sandbox takes .201 (db1) and .202 (db2); the extra sshds below take .203 and up.
let sandbox: TestSandbox
let work: string
const started: {pid: number; marker: string}[] = []

const keygen = (...args: string[]) => execFileSync('ssh-keygen', ['-q', ...args], {stdio: 'pipe'})
const publicKey = (file: string) => readFileSync(`${file}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ')

interface ExtraSshd {
  ip: string
  port: number
  /** Host key files by type: the private key; `${file}.pub` is its public half. */
  keys: Record<'rsa' | 'ed25519', string>
}

/** A real sshd on ip:port with an RSA and an ed25519 host key (and a host certificate if given), accepting the sandbox's client key. */
async function startExtraSshd(ip: string, port = 22, certificate?: (edKey: string) => string): Promise<ExtraSshd> {
  const dir = join(work, `sshd-${ip}-${port}`)
  mkdirSync(dir)
  const keys = {rsa: join(dir, 'host_rsa_key'), ed25519: join(dir, 'host_ed25519_key')}
  keygen('-t', 'rsa', '-b', '2048', '-N', '', '-f', keys.rsa)
  keygen('-t', 'ed25519', '-N', '', '-f', keys.ed25519)
  const config = join(dir, 'sshd_config')
  writeFileSync(
    config,
    [
      `ListenAddress ${ip}:${port}`,
      `HostKey ${keys.rsa}`,
      `HostKey ${keys.ed25519}`,
      ...(certificate ? [`HostCertificate ${certificate(keys.ed25519)}`] : []),
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(sandbox.state.dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      '',
    ].join('\n'),
  )
  const pid = startDetached(findProgram('sshd')!, ['-D', '-e', '-f', config], join(dir, 'sshd.log'))
  started.push({pid, marker: config})
  await waitFor(`sshd on ${ip}:${port}`, 20_000, async () => {
    if (!isOurProcess(pid, config)) throw new Error(`sshd on ${ip}:${port} exited; see ${join(dir, 'sshd.log')}`)
    return await portOpen(ip, port)
  })
  return {ip, port, keys}
}

let fileCount = 0
function writeFileIn(text: string): string {
  const file = join(work, `file-${++fileCount}`)
  writeFileSync(file, text)
  return file
}

/**
 * `mha check --json` (the built CLI) on the sandbox cluster after `change` edited its YAML; db1's SSH goes where
 * the test points it. No agent from the environment running the tests, unless the test gives one.
 */
async function check(change: (doc: {ssh: Record<string, unknown>; servers: Record<string, unknown>[]}) => void, env: NodeJS.ProcessEnv = {}) {
  const doc = parse(readFileSync(sandbox.configFile, 'utf8')) as {ssh: Record<string, unknown>; servers: Record<string, unknown>[]}
  change(doc)
  const file = writeFileIn(stringify(doc))
  const result = await runMha(['check', '--config', file, '--json'], {SSH_AUTH_SOCK: '', ...env})
  if (result.code === 1) return {code: 1, ssh: {} as Record<string, string>, message: (name: string) => `${name}: ${result.stderr}`, stderr: result.stderr, stdout: result.stdout}
  const report = JSON.parse(result.stdout) as CheckReport
  const ssh = Object.fromEntries(report.servers.map((s) => [s.name, s.ssh]))
  const message = (name: string) => report.findings.find((f) => f.code === 'ssh_failed' && f.server === name)?.message ?? ''
  return {code: result.code, ssh, message, stderr: result.stderr, stdout: result.stdout}
}

/**
 * db1's SSH goes to the given sshd, every host checked against one known_hosts file: `knownHosts` (the lines the
 * test is about) after the sandbox's own line for db2; returns that file.
 */
function db1Via(sshd: ExtraSshd, knownHosts: string, hashed = false) {
  const file = writeFileIn(readFileSync(join(sandbox.state.dir, 'known_hosts'), 'utf8').split('\n').filter((l) => l.startsWith('127.0.0.202 ')).join('\n') + '\n' + knownHosts)
  if (hashed) execFileSync('ssh-keygen', ['-H', '-f', file], {stdio: 'pipe'})
  const change = (doc: {ssh: Record<string, unknown>; servers: Record<string, unknown>[]}) => {
    doc.ssh.known_hosts_file = file
    doc.servers[0]!.ssh_host = sshd.ip
    if (sshd.port !== 22) doc.servers[0]!.ssh_port = sshd.port
  }
  return {file, change}
}

describe('SSH as operators have it, on real sshd', () => {
  let twoKeys: ExtraSshd
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'mha-it-ssh-'))
    sandbox = await startSandbox('itssh', 201, {replicas: 1})
    twoKeys = await startExtraSshd('127.0.0.203')
  }, 180_000)
  afterAll(async () => {
    for (const {pid, marker} of started) await stopOurProcess(pid, marker)
    await sandbox?.down()
    // Keys, a passphrase file and known_hosts files: nothing is left behind.
    if (work) rmSync(work, {recursive: true, force: true})
  })

  it('connects when known_hosts holds only the RSA key of a host that also offers ed25519, as OpenSSH does', async () => {
    const r = await check(db1Via(twoKeys, `127.0.0.203 ${publicKey(twoKeys.keys.rsa)}\n`).change)
    expect(r.message('db1')).toBe('')
    expect(r.ssh).toEqual({db1: 'ok', db2: 'ok'})
    expect(r.code).toBe(0)
  })

  it('refuses a truly wrong RSA key with one line naming the host and the known_hosts file', async () => {
    const other = join(work, 'other_rsa')
    keygen('-t', 'rsa', '-b', '2048', '-N', '', '-f', other)
    const {file: knownHosts, change} = db1Via(twoKeys, `127.0.0.203 ${publicKey(other)}\n`)
    const r = await check(change)
    expect(r.ssh.db1).toBe('failed')
    expect(r.message('db1')).toBe(
      `db1 (root@127.0.0.203:22): host key (ssh-rsa) of 127.0.0.203 does not match ${knownHosts}, which holds ssh-rsa for it; if the host was rebuilt, replace its entry after checking the new key`,
    )
    expect(r.code).toBe(2)
  })

  it('names a missing known_hosts file as missing, not as "host not in it"', async () => {
    const missing = join(work, 'no-such-known_hosts')
    const r = await check((doc) => {
      doc.ssh.known_hosts_file = missing
    })
    expect(r.message('db1')).toBe(
      `db1 (root@127.0.0.201:22): known_hosts file ${missing} does not exist: create it with ssh-keyscan HOST >> ${missing} (and check the keys it printed) or set ssh.known_hosts_file`,
    )
  })

  it('reads known_hosts hashed by the real ssh-keygen -H, for port 22 and [host]:port', async () => {
    const onOtherPort = await startExtraSshd('127.0.0.204', 2222)
    const {file: hashed, change} = db1Via(twoKeys, `127.0.0.203 ${publicKey(twoKeys.keys.ed25519)}\n[127.0.0.204]:2222 ${publicKey(onOtherPort.keys.rsa)}\n`, true)
    const text = readFileSync(hashed, 'utf8')
    expect(text).not.toContain('127.0.0.')
    expect(text.match(/^\|1\|/gm)).toHaveLength(3)
    expect((await check(change)).ssh).toEqual({db1: 'ok', db2: 'ok'})
    expect((await check(db1Via(onOtherPort, '', false).change)).ssh.db1).toBe('failed')
    // The same file given through MHA's ssh_options, the port too.
    const viaOptions = await check((doc) => {
      doc.servers[0]!.ssh_host = onOtherPort.ip
      doc.servers[0]!.ssh_options = `-p 2222 -o UserKnownHostsFile=${hashed} -o StrictHostKeyChecking=yes -o ConnectTimeout=4`
    })
    expect(viaOptions.ssh).toEqual({db1: 'ok', db2: 'ok'})
  })

  it('matches wildcard patterns and honours negation', async () => {
    const key = publicKey(twoKeys.keys.rsa)
    expect((await check(db1Via(twoKeys, `127.0.0.20? ${key}\n`).change)).ssh.db1).toBe('ok')
    const {file: negated, change} = db1Via(twoKeys, `127.0.0.*,!127.0.0.203 ${key}\n`)
    expect((await check(change)).message('db1')).toBe(
      `db1 (root@127.0.0.203:22): host 127.0.0.203 is not in ${negated}; add its key (ssh-keyscan) after checking it`,
    )
  })

  it('refuses a key marked @revoked, even when another line trusts it', async () => {
    const key = publicKey(twoKeys.keys.ed25519)
    const {file: knownHosts, change} = db1Via(twoKeys, `127.0.0.203 ${key}\n@revoked * ${key}\n`)
    const r = await check(change)
    expect(r.message('db1')).toBe(`db1 (root@127.0.0.203:22): host key (ssh-ed25519) of 127.0.0.203 is marked @revoked in ${knownHosts}; refusing to connect`)
  })

  it('says plainly that host certificates cannot be negotiated, where OpenSSH trusts the @cert-authority', async () => {
    const ca = join(work, 'host_ca')
    keygen('-t', 'ed25519', '-N', '', '-f', ca)
    const withCert = await startExtraSshd('127.0.0.205', 22, (edKey) => {
      keygen('-s', ca, '-I', 'db1-host', '-h', '-n', '127.0.0.205', `${edKey}.pub`)
      return `${edKey}-cert.pub`
    })
    const {file: knownHosts, change} = db1Via(withCert, `@cert-authority 127.0.0.* ${publicKey(ca)}\n`)
    // The setup is sound: the OpenSSH client accepts the host by its certificate.
    const openssh = spawnSync('ssh', ['-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${knownHosts}`, '-i', join(sandbox.state.dir, 'id_ed25519'), 'root@127.0.0.205', 'true'], {
      encoding: 'utf8',
      timeout: 20_000,
    })
    expect(openssh.status, openssh.stderr).toBe(0)
    const r = await check(change)
    expect(r.ssh.db1).toBe('failed')
    expect(r.message('db1')).toBe(
      `db1 (root@127.0.0.205:22): ${knownHosts} trusts only a @cert-authority for 127.0.0.205, and mha's SSH client (ssh2) cannot negotiate host certificates; add the host's own key (ssh-keyscan) to ${knownHosts} after checking it`,
    )
  })

  it('authenticates through a real ssh-agent holding a key no config file names', async () => {
    const socket = join(work, 'agent.sock')
    const pid = startDetached(findProgram('ssh-agent')!, ['-D', '-a', socket], join(work, 'agent.log'))
    started.push({pid, marker: socket})
    await waitFor('ssh-agent socket', 10_000, () => spawnSync('ssh-add', ['-l'], {env: {...process.env, SSH_AUTH_SOCK: socket}}).status === 1)
    execFileSync('ssh-add', [join(sandbox.state.dir, 'id_ed25519')], {env: {...process.env, SSH_AUTH_SOCK: socket}, stdio: 'pipe'})
    // An empty home: no ~/.ssh/id_* to fall back on, so only the agent can authenticate.
    const home = mkdtempSync(join(work, 'home-'))
    const noKeyFile = (doc: {ssh: Record<string, unknown>}) => {
      delete doc.ssh.private_key_file
    }
    const viaAgent = await check(noKeyFile, {HOME: home, SSH_AUTH_SOCK: socket})
    expect(viaAgent.ssh).toEqual({db1: 'ok', db2: 'ok'})
    const configured = await check((doc) => {
      noKeyFile(doc)
      doc.ssh.agent = socket
    }, {HOME: home})
    expect(configured.ssh).toEqual({db1: 'ok', db2: 'ok'})
    const without = await check(noKeyFile, {HOME: home})
    expect(without.message('db1')).toBe(`db1 (root@127.0.0.201:22): cannot read SSH key ${join(home, '.ssh', 'id_ed25519')}; set ssh.private_key_file in the cluster file`)
  })

  it('opens a passphrase-protected key with the passphrase from the environment or a file, and never shows it', async () => {
    const passphrase = 'correct horse battery staple'
    const key = join(work, 'id_protected')
    keygen('-t', 'ed25519', '-N', passphrase, '-C', 'protected', '-f', key)
    appendFileSync(join(sandbox.state.dir, 'authorized_keys'), readFileSync(`${key}.pub`))
    const passFile = writeFileIn(`${passphrase}\n`)
    const useKey = (secret?: Record<string, string>) => (doc: {ssh: Record<string, unknown>}) => {
      doc.ssh.private_key_file = key
      if (secret) doc.ssh.private_key_passphrase = secret
    }
    expect((await check(useKey({env: 'MHA_KEY_PASS'}), {MHA_KEY_PASS: passphrase})).ssh).toEqual({db1: 'ok', db2: 'ok'})
    expect((await check(useKey({file: passFile}))).ssh).toEqual({db1: 'ok', db2: 'ok'})
    const wrong = await check(useKey({env: 'MHA_KEY_PASS'}), {MHA_KEY_PASS: 'not it'})
    expect(wrong.message('db1')).toBe(`db1 (root@127.0.0.201:22): SSH key ${key} does not open with the passphrase from $MHA_KEY_PASS; fix ssh.private_key_passphrase`)
    const missing = await check(useKey())
    expect(missing.message('db2')).toBe(`db2 (root@127.0.0.202:22): SSH key ${key} is encrypted; set ssh.private_key_passphrase ({env: NAME} or {file: PATH}) in the cluster file`)
    for (const r of [wrong, missing]) expect(r.stdout + r.stderr).not.toContain(passphrase)
  })

  it('refuses StrictHostKeyChecking=no in ssh_options with one line naming the server and the option', async () => {
    const r = await check((doc) => {
      doc.servers[1]!.ssh_options = '-o ConnectTimeout=3 -o StrictHostKeyChecking=no'
    })
    expect(r.code).toBe(1)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/servers\[1\]\.ssh_options: server db2: "-o StrictHostKeyChecking=no" would let mha talk to a host whose key it has not verified/)
  })
})
