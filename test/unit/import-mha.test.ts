import {mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {parse} from 'yaml'
import {importMhaConfig, type MhaImport} from '../../src/config/import-mha.js'
import {parseClusterConfig} from '../../src/config/load.js'
import {UserError} from '../../src/util/errors.js'

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/mha-cnf', name), 'utf8')
const app1 = fixture('app1.cnf')
const globalCnf = fixture('masterha_default.cnf')

const withGlobal = () =>
  importMhaConfig({
    appText: app1,
    appFile: '/etc/masterha/app1.cnf',
    globalText: globalCnf,
    globalFile: '/etc/masterha/masterha_default.cnf',
    clusterName: 'app1',
  })
const fromText = (appText: string, globalText?: string): MhaImport =>
  importMhaConfig({appText, appFile: 'app.cnf', clusterName: 'app', ...(globalText === undefined ? {} : {globalText, globalFile: 'global.cnf'})})
const data = (r: MhaImport) => parse(r.yaml) as Record<string, unknown>

function failure(appText: string): string {
  try {
    fromText(appText)
  } catch (error) {
    expect(error).toBeInstanceOf(UserError)
    return (error as Error).message
  }
  throw new Error('expected the import to fail')
}

/** Writes the YAML and its secret files the way the command will, then loads them. */
function load(r: MhaImport, name: string) {
  const dir = mkdtempSync(join(tmpdir(), 'mha-import-'))
  mkdirSync(join(dir, `${name}.secrets`))
  for (const s of r.secrets) writeFileSync(join(dir, `${name}.secrets`, s.field), `${s.value}\n`, {mode: 0o600})
  writeFileSync(join(dir, `${name}.yaml`), r.yaml)
  return parseClusterConfig(r.yaml, join(dir, `${name}.yaml`), {})
}

describe('importMhaConfig', () => {
  it('converts the walkthrough app1.cnf', () => {
    const r = importMhaConfig({appText: app1, appFile: '/etc/masterha/app1.cnf', clusterName: 'app1'})
    expect(r.yaml.split('\n')[0]).toBe('# Imported from MHA 0.58 configuration /etc/masterha/app1.cnf')
    expect(data(r)).toEqual({
      name: 'app1',
      user: 'mha_mon',
      password: {file: 'app1.secrets/password'},
      repl_user: 'slave',
      repl_password: {file: 'app1.secrets/repl_password'},
      ssh: {user: 'root'},
      server_defaults: {master_binlog_dir: '/data/mysql/data'},
      monitor: {ping_interval: 1},
      // shutdown_script="" and the other empty hooks mean "unset".
      servers: [
        {name: 'server1', hostname: '192.168.186.141', candidate_master: true},
        {name: 'server2', hostname: '192.168.186.142', candidate_master: true},
        {name: 'server3', hostname: '192.168.186.146', no_master: true},
      ],
    })
    expect(r.secrets).toEqual([
      {field: 'password', value: '123'},
      {field: 'repl_password', value: 'yunwei123'},
    ])
    expect(r.notCarried).toEqual([
      {param: 'manager_workdir', where: '/etc/masterha/app1.cnf:2', reason: expect.any(String)},
      {param: 'manager_log', where: '/etc/masterha/app1.cnf:3', reason: expect.any(String)},
    ])
  })

  it('never writes a secret into the YAML or the notes', () => {
    const r = withGlobal()
    const shown = r.yaml + JSON.stringify(r.notCarried)
    expect(shown).not.toContain('yunwei123')
    expect(shown).not.toMatch(/password: "?123/)
  })

  it('takes [serverN] over app [server default] over global [server default]', () => {
    const r = withGlobal()
    expect(r.yaml.split('\n')[0]).toBe('# Imported from MHA 0.58 configuration /etc/masterha/app1.cnf and /etc/masterha/masterha_default.cnf')
    const d = data(r)
    expect(d.user).toBe('mha_mon') // app over global root
    expect(d.ssh).toEqual({user: 'root', port: 2222}) // user from app, port from global
    expect(d.monitor).toEqual({ping_interval: 1, ping_type: 'connect'}) // app 1 over global 3; CONNECT lower-cased
    expect(d.server_defaults).toEqual({master_binlog_dir: '/data/mysql/data', remote_workdir: '/var/tmp/mha'}) // servers over global
    // The app's shutdown_script="" and report_script="" switch off the global ones.
    expect(d.hooks).toEqual({master_ip_failover: '/usr/local/bin/master_ip_failover'})
    expect(r.notCarried.map((n) => [n.param, n.where])).toEqual([
      ['candidate_master', '/etc/masterha/masterha_default.cnf:14'],
      ['log_level', '/etc/masterha/masterha_default.cnf:15'],
      ['manager_workdir', '/etc/masterha/app1.cnf:2'],
      ['manager_log', '/etc/masterha/app1.cnf:3'],
    ])
    expect(r.notCarried[0]!.reason).toBe('per-server only: MHA ignores it in [server default]')
  })

  it('resolves one parameter set at all three levels, per server', () => {
    const d = data(
      fromText(
        '[server default]\nport=3307\ncandidate_master=1\n[server1]\nhostname=a\n[server2]\nhostname=b\nport=3308\n[server3]\nhostname=c\n',
        '[server default]\nport=3310\nignore_fail=1\n',
      ),
    )
    expect(d.server_defaults).toEqual({port: 3307})
    // candidate_master and ignore_fail are never inherited from a default block.
    expect(d.servers).toEqual([
      {name: 'server1', hostname: 'a'},
      {name: 'server2', hostname: 'b', port: 3308},
      {name: 'server3', hostname: 'c'},
    ])
  })

  it('orders servers by number when every name has one, else by name', () => {
    const names = (text: string) => (data(fromText(text)).servers as {name: string}[]).map((s) => s.name)
    expect(names('[server10]\nhostname=j\n[server2]\nhostname=b\n[server1]\nhostname=a\n')).toEqual(['server1', 'server2', 'server10'])
    expect(names('[serverB]\nhostname=j\n[server10]\nhostname=b\n[server2]\nhostname=a\n')).toEqual(['server10', 'server2', 'serverB'])
  })

  it('reads values like Config::Tiny: "#" stays, quotes and " ; " comments go', () => {
    const r = fromText(
      [
        '# comment',
        '; comment too',
        '[server default]',
        'master_ip_failover_script = /usr/local/bin/mip # moves the VIP',
        'report_script="/usr/local/bin/report"',
        "user='admin' ; the old account",
        "password='p#ss word'",
        'master_binlog_dir = /data/a, /data/b',
        '',
        '[server1]',
        'hostname=a',
      ].join('\r\n'),
    )
    const d = data(r)
    expect(d.hooks).toEqual({master_ip_failover: '/usr/local/bin/mip # moves the VIP', report: '/usr/local/bin/report'})
    expect(d.user).toBe('admin')
    expect(d.server_defaults).toEqual({master_binlog_dir: ['/data/a', '/data/b']})
    expect(r.secrets).toEqual([{field: 'password', value: 'p#ss word'}])
    // MHA would use the replicas' Master_User; we need a name, and say so.
    expect(d.repl_user).toBe('repl')
    expect(r.notCarried).toEqual([{param: 'repl_user', where: 'app.cnf', reason: expect.stringContaining('check it')}])
  })

  it('imports [binlogN] blocks as binlog_servers, inheriting [server default] as MHA does and writing only what differs', () => {
    const r = fromText(
      '[server default]\npassword=s3cret\nrepl_user=repl\nssh_user=mha\nmaster_binlog_dir=/var/lib/mysql\n[server1]\nhostname=a\n[server2]\nhostname=b\n[binlog2]\nhostname=c2\n[binlog1]\nhostname=c1\nssh_port=2222\nmaster_binlog_dir=/srv/binlogs, /srv/old\nssh_host=c1-admin\n',
    )
    expect(r.notCarried).toEqual([])
    expect(data(r).binlog_servers).toEqual([
      {name: 'binlog1', hostname: 'c1', ssh_host: 'c1-admin', ssh_port: 2222, master_binlog_dir: ['/srv/binlogs', '/srv/old']},
      {name: 'binlog2', hostname: 'c2'},
    ])
    const cluster = load(r, 'app')
    expect(cluster.binlogServers.map((b) => [b.name, b.sshHost, b.sshPort, b.sshUser, b.masterBinlogDirs])).toEqual([
      ['binlog1', 'c1-admin', 2222, 'mha', ['/srv/binlogs', '/srv/old']],
      ['binlog2', 'c2', 22, 'mha', ['/var/lib/mysql']],
    ])
    expect(failure('[server1]\nhostname=a\n[binlog1]\nmaster_binlog_dir=/x\n')).toBe('app.cnf:3: [binlog1] has no hostname; add hostname=HOST')
  })

  it('lists unknown parameters and values the schema keeps cluster-wide', () => {
    const r = fromText(
      '[server default]\npassword=s3cret\nping_intervall=2\n[server1]\nhostname=a\nping_type=insert\n[server2]\nhostname=b\nmanager_log=/var/log/mha.log\n',
    )
    expect(r.notCarried.map((n) => [n.param, n.where])).toEqual([
      ['ping_intervall', 'app.cnf:3'],
      ['manager_log', 'app.cnf:9'],
      ['ping_type', 'app.cnf:7'],
      ['repl_user', 'app.cnf'],
    ])
    expect(r.notCarried[0]!.reason).toBe('unknown to MHA 0.58')
    expect(r.notCarried[2]!.reason).toBe("[server2] differs from [server1]; mha has one value per cluster and keeps [server1]'s")
    expect(JSON.stringify(r.notCarried)).not.toContain('s3cret')
    expect(data(r).user).toBe('root')
    expect(r.secrets).toEqual([{field: 'password', value: 's3cret'}])
  })

  it("keeps a server's own user and password (MHA reads them per [serverN]); its password goes to a secret file of its own", () => {
    const r = fromText(
      '[server default]\nuser=mha\npassword=s3cret\nrepl_user=repl\n[server1]\nhostname=a\n[server2]\nhostname=b\nuser=other\npassword=other-s3cret\n[server3]\nhostname=c\npassword=third\n',
    )
    expect(r.notCarried).toEqual([])
    const d = data(r)
    expect([d.user, d.password]).toEqual(['mha', {file: 'app.secrets/password'}])
    expect(d.servers).toEqual([
      {name: 'server1', hostname: 'a'},
      {name: 'server2', hostname: 'b', user: 'other', password: {file: 'app.secrets/password.server2'}},
      {name: 'server3', hostname: 'c', password: {file: 'app.secrets/password.server3'}},
    ])
    expect(r.secrets).toEqual([
      {field: 'password', value: 's3cret'},
      {field: 'password.server2', value: 'other-s3cret'},
      {field: 'password.server3', value: 'third'},
    ])
    expect(r.yaml).not.toContain('s3cret')
    expect(r.yaml).not.toContain('third')
    // Without [server default], what the servers share is the cluster's; MHA's defaults are root and no password.
    const bare = fromText('[server1]\nhostname=a\nrepl_user=r\n[server2]\nhostname=b\nuser=admin\npassword=x\nrepl_user=r\n')
    expect([data(bare).user, data(bare).servers]).toEqual(['root', [{name: 'server1', hostname: 'a'}, {name: 'server2', hostname: 'b', user: 'admin', password: {file: 'app.secrets/password.server2'}}]])
    expect(bare.secrets).toEqual([{field: 'password', value: ''}, {field: 'password.server2', value: 'x'}])
  })

  it('produces YAML that loads and validates, in the same server order', () => {
    const c = load(withGlobal(), 'app1')
    expect(c.servers.map((s) => [s.name, s.ip, s.port, s.sshUser, s.sshPort, s.candidateMaster, s.noMaster, s.masterBinlogDirs])).toEqual([
      ['server1', '192.168.186.141', 3306, 'root', 2222, true, false, ['/data/mysql/data']],
      ['server2', '192.168.186.142', 3306, 'root', 2222, true, false, ['/data/mysql/data']],
      ['server3', '192.168.186.146', 3306, 'root', 2222, false, true, ['/data/mysql/data']],
    ])
    expect(c.password.reveal()).toBe('123')
    expect(c.replPassword?.reveal()).toBe('yunwei123')
    expect([c.user, c.replUser, c.monitor.pingIntervalMs, c.monitor.pingType, c.gtid]).toEqual(['mha_mon', 'slave', 1000, 'connect', 'auto'])
    const other = load(fromText('[server default]\nuse_gtid_auto_pos=0\nping_type=insert\n[server1]\nhostname=a\nip=10.0.0.1\nssh_host=m1\n[server2]\nhostname=b\nport=3307\n'), 'app')
    expect([other.gtid, other.monitor.pingType, other.password.reveal(), other.replPassword]).toEqual(['off', 'insert', '', undefined])
    expect(other.servers.map((s) => [s.ip, s.port, s.sshHost])).toEqual([
      ['10.0.0.1', 3306, 'm1'],
      ['b', 3307, 'b'],
    ])
  })

  it('refuses what MHA refuses with one line naming file:line', () => {
    const errors = [
      failure('[server default]\npassword=s3cret\npassword s3cret\n[server1]\nhostname=a\n'),
      failure('[server default]\nuser=a\n[mysql1]\n[server1]\nhostname=a\n'),
      failure('[manager]\nhostname=a\n'),
      failure('user=a\n[server1]\nhostname=a\n'),
      failure('[server1]\nhostname=a\n[server2]\nport=3307\n'),
      failure('[server1]\nhostname=a\n[server2]\nhostname=b\nip=a\n'),
      failure('[server default]\nping_type=ICMP\n[server1]\nhostname=a\n'),
      failure('[server default]\nssh_connection_timeout=0.5\n[server1]\nhostname=a\n'),
      failure('[server default]\nuser=a\n'),
    ]
    expect(errors).toEqual([
      'app.cnf:3: not a [block] header, key=value or comment line; fix or comment it out',
      'app.cnf:3: block [mysql1] is neither [server default], [server...] nor [binlog...]; rename or remove it',
      'app.cnf:1: block [manager] is neither [server default], [server...] nor [binlog...]; rename or remove it',
      'app.cnf:1: key=value before the first block; move it into [server default] or a [serverN] block',
      'app.cnf:3: [server2] has no hostname; add hostname=HOST',
      'app.cnf:3: [server2] has the same ip:port a:3306 as [server1]; each server needs its own',
      'app.cnf:2: ping_type "ICMP" must be CONNECT, SELECT or INSERT; fix it',
      'app.cnf:2: ssh_connection_timeout "0.5" must be a positive whole number of seconds; fix it',
      'app.cnf: no [server...] block; add one per MySQL server',
    ])
    for (const e of errors) expect(e).not.toMatch(/\n|s3cret/)
  })
  it('carries ssh_options into the cluster file where mha honours them, and they load into SSH settings', () => {
    const r = fromText(
      '[server default]\npassword=x\nrepl_user=repl\nssh_options=-o ConnectTimeout=3 -i /etc/mha/id_rsa\n[server1]\nhostname=10.0.0.1\n[server2]\nhostname=10.0.0.2\nssh_options="-p 2222 -o UserKnownHostsFile=/etc/mha/kh2"\n',
    )
    expect(data(r).ssh).toEqual({ssh_options: '-o ConnectTimeout=3 -i /etc/mha/id_rsa'})
    expect((data(r).servers as Record<string, unknown>[]).map((s) => s.ssh_options)).toEqual([undefined, '-p 2222 -o UserKnownHostsFile=/etc/mha/kh2'])
    expect(r.notCarried.map((n) => n.param)).not.toContain('ssh_options')
    const c = load(r, 'app')
    expect(c.servers.map((s) => [s.sshPort, s.ssh.privateKeyFile, s.ssh.connectTimeoutMs, s.ssh.knownHostsFile])).toEqual([
      [22, '/etc/mha/id_rsa', 3000, expect.stringMatching(/\/\.ssh\/known_hosts$/)],
      [2222, expect.not.stringMatching(/^\/etc\/mha\/id_rsa$/), 5000, '/etc/mha/kh2'],
    ])
  })

  it('stops at an ssh_options option mha cannot honour, naming file:line, the block and the option', () => {
    expect(failure('[server1]\nhostname=a\n[server2]\nhostname=b\nssh_options=-o StrictHostKeyChecking=no -o ForwardX11=no\n')).toMatch(
      /^app\.cnf:5: \[server2\] ssh_options: "-o StrictHostKeyChecking=no" would let mha talk to a host whose key it has not verified; .*ssh-keyscan/,
    )
    expect(failure('[server default]\nssh_options=-o ForwardX11=no\n[server1]\nhostname=a\n')).toMatch(/^app\.cnf:2: \[server default\] ssh_options: "-o ForwardX11=no" is not an ssh option mha can honour/)
  })
})
