import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir, userInfo} from 'node:os'
import {join} from 'node:path'
import {inspect} from 'node:util'
import {describe, expect, it} from 'vitest'
import {parseClusterConfig} from '../../src/config/load.js'
import {UserError} from '../../src/util/errors.js'

const good = `name: app1
user: mha
password: {env: MHA_PW}
repl_user: repl
repl_password: s3cret-repl
server_defaults:
  master_binlog_dir: /data/mysql
servers:
  - name: db1
    hostname: db1.example
    ip: 10.0.0.1
  - name: db2
    hostname: db2.example
    port: 3307
    candidate_master: true
    master_binlog_dir: [/a, /b]
`

function problems(text: string, env: NodeJS.ProcessEnv = {MHA_PW: 'pw'}): string[] {
  try {
    parseClusterConfig(text, 'clusters/app1.yaml', env)
  } catch (error) {
    expect(error).toBeInstanceOf(UserError)
    return (error as Error).message.split('\n')
  }
  throw new Error('expected the config to be refused')
}

describe('cluster config', () => {
  it('fills defaults from the schema and per-server inheritance', () => {
    const c = parseClusterConfig(good, 'clusters/app1.yaml', {MHA_PW: 'pw'})
    expect(c.servers.map((s) => [s.name, s.ip, s.port, s.sshHost, s.masterBinlogDirs])).toEqual([
      ['db1', '10.0.0.1', 3306, '10.0.0.1', ['/data/mysql']],
      ['db2', 'db2.example', 3307, 'db2.example', ['/a', '/b']],
    ])
    expect(c.servers[1]!.candidateMaster).toBe(true)
    expect(c.servers[0]!.candidateMaster).toBe(false)
    expect(c.gtid).toBe('auto')
    expect(c.monitor.pingType).toBe('select')
    expect(c.monitor.lastFailoverMinute).toBe(480)
    expect(c.failover.maxLagBytes).toBe(100_000_000)
    expect(c.servers[0]!.remoteWorkdir).toBe('/var/tmp')
  })

  it('reads secrets from env and file and never shows them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mha-cfg-'))
    writeFileSync(join(dir, 'repl.pw'), 'from-file\n')
    const c = parseClusterConfig(good.replace('s3cret-repl', '{file: repl.pw}'), join(dir, 'app1.yaml'), {MHA_PW: 'from-env'})
    expect(c.password.reveal()).toBe('from-env')
    expect(c.replPassword!.reveal()).toBe('from-file')
    const shown = JSON.stringify(c) + String(c.password) + inspect(c, {depth: 5}) + `${c.replPassword!.toString()}`
    expect(shown).not.toContain('from-env')
    expect(shown).not.toContain('from-file')
  })

  it('names the unset environment variable', () => {
    expect(problems(good, {})).toEqual(['clusters/app1.yaml:3:1 password: environment variable MHA_PW is not set; export it or use {file: PATH}'])
  })

  it('gives one line with file:line:col for malformed YAML', () => {
    const lines = problems('name: app1\nservers:\n  - name: db1\n   hostname: x\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^clusters\/app1\.yaml:4:\d+ YAML syntax error: /)
  })

  it('gives one line per schema problem with its position', () => {
    const text = good.replace('port: 3307', 'port: "abc"').replace('repl_user: repl\n', 'repl_user: repl\nping_intervall: 3\n')
    expect(problems(text)).toEqual([
      'clusters/app1.yaml:5:1 ping_intervall: is not a known field; check its spelling',
      'clusters/app1.yaml:15:5 servers[1].port: must be integer',
    ])
  })

  it('points a missing field at its parent', () => {
    expect(problems(good.replace('    hostname: db1.example\n', ''))).toEqual(['clusters/app1.yaml:9:5 servers[0]: missing required field "hostname"'])
  })

  it('refuses an enum value and lists the allowed ones', () => {
    expect(problems(good + 'monitor: {ping_type: PING}\n')).toEqual(['clusters/app1.yaml:17:11 monitor.ping_type: must be one of "connect", "select", "insert"'])
  })

  it('refuses two servers at one address', () => {
    const text = good.replace('hostname: db2.example\n    port: 3307', 'hostname: db2.example\n    ip: 10.0.0.1')
    expect(problems(text)).toEqual(['clusters/app1.yaml:12:5 servers[1]: 10.0.0.1:3306 is used by two servers; each server needs its own'])
  })

  it('refuses two servers with one name, in one line naming the file, the place and the name', () => {
    const text = good.replace('  - name: db2\n', '  - name: db1\n')
    expect(problems(text)).toEqual(['clusters/app1.yaml:12:5 servers[1].name: "db1" is used by two servers; each server needs its own'])
  })

  it('takes a server\'s own ssh_user over the cluster\'s ssh.user, and the user running mha when neither is set', () => {
    const text = good.replace('    port: 3307\n', '    port: 3307\n    ssh_user: dbadmin\n')
    const withGlobal = parseClusterConfig(text + 'ssh: {user: root}\n', 'clusters/app1.yaml', {MHA_PW: 'pw'})
    expect(withGlobal.servers.map((s) => [s.name, s.sshUser])).toEqual([
      ['db1', 'root'],
      ['db2', 'dbadmin'],
    ])
    const withoutGlobal = parseClusterConfig(text, 'clusters/app1.yaml', {MHA_PW: 'pw'})
    expect(withoutGlobal.servers.map((s) => s.sshUser)).toEqual([userInfo().username, 'dbadmin'])
  })

  // Every duration of the cluster file: its YAML path, a value unlike its default, and where the code reads it.
  const durations: {path: string; yaml: string; read: (c: ReturnType<typeof parseClusterConfig>) => number; expected: number}[] = [
    {path: 'ssh.connect_timeout', yaml: 'ssh: {connect_timeout: 7}', read: (c) => c.ssh.connectTimeoutMs, expected: 7000},
    {path: 'monitor.ping_interval', yaml: 'monitor: {ping_interval: 0.25}', read: (c) => c.monitor.pingIntervalMs, expected: 250},
    {path: 'monitor.connect_timeout', yaml: 'monitor: {connect_timeout: 3}', read: (c) => c.monitor.connectTimeoutMs, expected: 3000},
    {path: 'monitor.last_failover_minute', yaml: 'monitor: {last_failover_minute: 15}', read: (c) => c.monitor.lastFailoverMinute, expected: 15},
    {path: 'failover.wait_timeout', yaml: 'failover: {wait_timeout: 90}', read: (c) => c.failover.waitTimeoutMs, expected: 90_000},
    {path: 'failover.max_seconds_behind_master', yaml: 'failover: {max_seconds_behind_master: 45}', read: (c) => c.failover.maxSecondsBehindMaster, expected: 45},
    {path: 'switchover.max_lag_seconds', yaml: 'switchover: {max_lag_seconds: 4}', read: (c) => c.switchover.maxLagSeconds, expected: 4},
    {path: 'switchover.running_updates_limit', yaml: 'switchover: {running_updates_limit: 3}', read: (c) => c.switchover.runningUpdatesLimit, expected: 3},
    {path: 'switchover.running_seconds_limit', yaml: 'switchover: {running_seconds_limit: 4}', read: (c) => c.switchover.runningSecondsLimit, expected: 4},
  ]

  it.each(durations)('reads $path in its unit: seconds become ms where the code counts ms; minutes and compared seconds stay', ({yaml, read, expected}) => {
    expect(read(parseClusterConfig(`${good}${yaml}\n`, 'clusters/app1.yaml', {MHA_PW: 'pw'}))).toBe(expected)
  })

  it("takes a server's own user and password (MHA's [serverN] user/password) over the cluster's, and names where they are set", () => {
    const text = good.replace('    port: 3307\n', '    port: 3307\n    user: admin2\n    password: {env: DB2_PW}\n')
    const c = parseClusterConfig(text, 'clusters/app1.yaml', {MHA_PW: 'pw', DB2_PW: 'pw2'})
    expect(c.servers.map((s) => [s.name, s.user, s.password.reveal(), s.loginFields])).toEqual([
      ['db1', 'mha', 'pw', 'user and password in clusters/app1.yaml'],
      ['db2', 'admin2', 'pw2', 'servers[1].user and servers[1].password in clusters/app1.yaml'],
    ])
    expect(inspect(c)).not.toContain('pw2')
    expect(problems(text)).toEqual(['clusters/app1.yaml:16:5 servers[1].password: environment variable DB2_PW is not set; export it or use {file: PATH}'])
  })

  it('lists every duration of the schema above', () => {
    // A new field in seconds or minutes must join the table, so that its unit is checked too.
    const schema = JSON.parse(readFileSync(new URL('../../schemas/cluster.schema.json', import.meta.url), 'utf8')) as {properties: Record<string, {properties?: Record<string, {description?: string; type?: string}>}>}
    const timed = Object.entries(schema.properties).flatMap(([section, def]) =>
      Object.entries(def.properties ?? {})
        .filter(([name, field]) => field.type !== 'boolean' && /seconds|minute|timeout|interval/i.test(`${name} ${field.description ?? ''}`))
        .map(([name]) => `${section}.${name}`),
    )
    expect(timed.sort()).toEqual(durations.map((d) => d.path).sort())
  })
})

describe('cluster config: ssh', () => {
  const withSsh = (ssh: string, db2 = '') => good.replace('server_defaults:', `ssh:\n${ssh}\nserver_defaults:`).replace('    candidate_master: true\n', `    candidate_master: true\n${db2}`)

  it('applies ssh_options: the cluster-wide string, then a server string that replaces it; a server field beats only the cluster string', () => {
    const c = parseClusterConfig(
      withSsh(
        '  port: 2200\n  private_key_file: /keys/a\n  ssh_options: "-p 2222 -l ops -o ConnectTimeout=7 -o UserKnownHostsFile=/etc/mha/kh"',
        '    ssh_port: 2300\n    ssh_options: -i /keys/db2 -o HostKeyAlgorithms=rsa-sha2-512\n',
      ),
      '/etc/mha/app1.yaml',
      {MHA_PW: 'pw'},
    )
    const [db1, db2] = c.servers
    expect([db1!.sshPort, db1!.sshUser, db1!.ssh.privateKeyFile, db1!.ssh.connectTimeoutMs, db1!.ssh.knownHostsFile, db1!.ssh.hostKeyAlgorithms]).toEqual([2222, 'ops', '/keys/a', 7000, '/etc/mha/kh', undefined])
    // db2's own ssh_options replace the cluster's entirely (as in MHA); its ssh_port beats the ssh section.
    expect([db2!.sshPort, db2!.ssh.privateKeyFile, db2!.ssh.connectTimeoutMs, db2!.ssh.knownHostsFile, db2!.ssh.hostKeyAlgorithms]).toEqual([2300, '/keys/db2', 5000, expect.stringMatching(/\/\.ssh\/known_hosts$/), ['rsa-sha2-512']])
    expect(db2!.sshUser).not.toBe('ops')
    // A server's own ssh_options beat its fields.
    const own = parseClusterConfig(withSsh('  port: 2200', '    ssh_port: 2300\n    ssh_options: -p 2400\n'), '/etc/mha/app1.yaml', {MHA_PW: 'pw'})
    expect(own.servers.map((s) => s.sshPort)).toEqual([2200, 2400])
    // A server's own field beats the cluster's ssh_options.
    const field = parseClusterConfig(withSsh('  ssh_options: -p 2222', '    ssh_port: 2300\n'), '/etc/mha/app1.yaml', {MHA_PW: 'pw'})
    expect(field.servers.map((s) => s.sshPort)).toEqual([2222, 2300])
  })

  it('refuses an option it cannot honour in one line naming the place, the server and the option', () => {
    expect(problems(withSsh('  port: 22', '    ssh_options: -o StrictHostKeyChecking=no -p 22\n'))).toEqual([
      expect.stringMatching(/^clusters\/app1\.yaml:18:5 servers\[1\]\.ssh_options: server db2: "-o StrictHostKeyChecking=no" would let mha talk to a host whose key it has not verified/),
    ])
    expect(problems(withSsh('  ssh_options: -o ForwardAgent=yes'))).toEqual([
      expect.stringMatching(/^clusters\/app1\.yaml:7:3 ssh\.ssh_options: every server: "-o ForwardAgent=yes" is not an ssh option mha can honour/),
    ])
  })

  it('uses the agent of SSH_AUTH_SOCK unless told otherwise, as OpenSSH does', () => {
    const agentOf = (ssh: string, env: NodeJS.ProcessEnv, db2 = '') => parseClusterConfig(withSsh(ssh, db2), '/etc/mha/app1.yaml', {MHA_PW: 'pw', ...env}).servers.map((s) => s.ssh.agent)
    expect(agentOf('  port: 22', {SSH_AUTH_SOCK: '/tmp/a.sock'})).toEqual(['/tmp/a.sock', '/tmp/a.sock'])
    expect(agentOf('  port: 22', {})).toEqual([undefined, undefined])
    expect(agentOf('  agent: false', {SSH_AUTH_SOCK: '/tmp/a.sock'})).toEqual([undefined, undefined])
    expect(agentOf('  agent: agent.sock', {}, '    ssh_options: -o IdentityAgent=none\n')).toEqual(['/etc/mha/agent.sock', undefined])
    expect(agentOf('  agent: false', {SSH_AUTH_SOCK: '/tmp/a.sock'}, '    ssh_options: -o IdentityAgent=$SSH_AUTH_SOCK\n')).toEqual([undefined, '/tmp/a.sock'])
    expect(problems(withSsh('  agent: true'))).toEqual(['clusters/app1.yaml:7:3 ssh.agent: is true but SSH_AUTH_SOCK is not set; start ssh-agent (eval $(ssh-agent)) or give the socket path'])
  })

  it('with an agent and no key file configured or found, the agent alone authenticates', () => {
    const home = process.env.HOME
    process.env.HOME = mkdtempSync(join(tmpdir(), 'mha-home-'))
    try {
      const keyOf = (env: NodeJS.ProcessEnv) => parseClusterConfig(withSsh('  port: 22'), '/etc/mha/app1.yaml', {MHA_PW: 'pw', ...env}).ssh.privateKeyFile
      expect(keyOf({SSH_AUTH_SOCK: '/tmp/a.sock'})).toBeUndefined()
      expect(keyOf({})).toBe(join(process.env.HOME, '.ssh', 'id_ed25519'))
    } finally {
      process.env.HOME = home
    }
  })

  it('reads the key passphrase like any secret and never shows it', () => {
    const c = parseClusterConfig(withSsh('  private_key_passphrase: {env: KEY_PASS}'), '/etc/mha/app1.yaml', {MHA_PW: 'pw', KEY_PASS: 'horse battery'})
    expect(c.servers[0]!.ssh.privateKeyPassphrase!.reveal()).toBe('horse battery')
    expect(JSON.stringify(c) + inspect(c, {depth: 8})).not.toContain('horse battery')
    expect(problems(withSsh('  private_key_passphrase: {env: KEY_PASS}'))).toEqual([
      'clusters/app1.yaml:7:3 ssh.private_key_passphrase: environment variable KEY_PASS is not set; export it or use {file: PATH}',
    ])
  })
})
