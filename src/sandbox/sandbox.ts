import {randomBytes} from 'node:crypto'
import {chmodSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {dirname, join, resolve} from 'node:path'
import {stringify} from 'yaml'
import {withConnection, type Endpoint} from '../inspect/mysql.js'
import {UserError} from '../util/errors.js'
import {Secret} from '../util/secret.js'
import {addToLocalHaproxy, haproxyProgram, localHaproxyRunning, startLocalHaproxy, stopLocalHaproxy, type LocalHaproxy} from './haproxy.js'
import {findProgram, isOurProcess, portOpen, run, signalOurProcess, startDetached, stopOurProcess, stopOurProcessAndChildren, waitFor} from './processes.js'

/** Everything `sandbox up` started, so that `down` stops exactly that and nothing else. */
export interface SandboxHost {
  index: number
  name: string
  ip: string
  dir: string
  datadir: string
  mariadbdPid: number | undefined
  sshdPid: number | undefined
}

export interface SandboxState {
  cluster: string
  dir: string
  configFile: string
  gtid: boolean
  semisync: boolean
  hosts: SandboxHost[]
  /** The writer proxy in front of the hosts (--haproxy), started after replication. */
  haproxy?: LocalHaproxy | undefined
  /** Binlog servers beside the hosts (sandboxAddBinlogServer): each an sshd and a mariadb-binlog copying the master's binlogs. */
  binlogServers?: SandboxBinlogServer[]
}

/** A host that holds a copy of the master's binlogs, as a binlog server does: mariadb-binlog --raw --stop-never into binlogDir. */
export interface SandboxBinlogServer {
  name: string
  ip: string
  dir: string
  binlogDir: string
  sshdPid: number | undefined
  streamPid: number | undefined
}

export interface SandboxOptions {
  cluster: string
  replicas: number
  gtid: boolean
  semisync: boolean
  /** Where the data directories live. */
  dir: string
  /** Where the cluster YAML is written. */
  configDir: string
  /** Last octet of host 1's address; host i gets 127.0.0.(firstOctet + i - 1). */
  firstOctet: number
  /** Start haproxy on this address in front of the hosts: frontend on 3306, runtime API on 9999 and a unix socket. */
  haproxyAddress?: string | undefined
}

const stateFileName = 'sandbox.json'
const required = [
  ['mariadbd', 'mariadb-server'],
  ['mariadb-install-db', 'mariadb-server'],
  ['mariadb-binlog', 'mariadb-server'],
  ['mariadb', 'mariadb-client'],
  ['sshd', 'openssh-server'],
  ['ssh-keygen', 'openssh-client'],
] as const

export function sandboxDir(root: string, cluster: string): string {
  return resolve(root, cluster)
}

export function readState(dir: string): SandboxState | undefined {
  const file = join(dir, stateFileName)
  if (!existsSync(file)) return undefined
  return JSON.parse(readFileSync(file, 'utf8')) as SandboxState
}

/** The state of a running sandbox, or a one-line error saying how to start one. */
export function requireState(root: string, cluster: string): SandboxState {
  const state = readState(sandboxDir(root, cluster))
  if (!state) throw new UserError(`no sandbox ${cluster} in ${root}; run "mha sandbox up --cluster ${cluster}"`)
  return state
}

function writeState(state: SandboxState): void {
  writeFileSync(join(state.dir, stateFileName), JSON.stringify(state, null, 2) + '\n')
}

const mariadbdMarker = (host: SandboxHost) => join(host.dir, 'my.cnf')
const sshdMarker = (host: SandboxHost) => join(host.dir, 'sshd_config')

export function checkPrerequisites(): Record<string, string> {
  const found: Record<string, string> = {}
  const missing: string[] = []
  const packages = new Set<string>()
  for (const [program, pkg] of required) {
    const path = findProgram(program)
    if (path) found[program] = path
    else {
      missing.push(program)
      packages.add(pkg)
    }
  }
  if (missing.length > 0)
    throw new UserError(`sandbox needs ${missing.join(', ')}, which is not installed: run "apt-get install -y ${[...packages].join(' ')}" as root`)
  return found
}

export function secretsOf(dir: string): {admin: Secret; repl: Secret; app: Secret} {
  const read = (name: string) => new Secret(readFileSync(join(dir, 'secrets', name), 'utf8').trim(), name)
  return {admin: read('mha.password'), repl: read('repl.password'), app: read('app.password')}
}

export function adminEndpoint(state: SandboxState, host: SandboxHost): Endpoint {
  return {name: host.name, host: host.ip, port: 3306, user: 'mha', password: secretsOf(state.dir).admin}
}

export async function sandboxUp(options: SandboxOptions, log: (line: string) => void = () => undefined): Promise<SandboxState> {
  const programs = checkPrerequisites()
  if (options.haproxyAddress !== undefined) haproxyProgram()
  if (options.replicas < 1 || options.replicas > 8) throw new UserError('--replicas must be between 1 and 8')
  const dir = sandboxDir(options.dir, options.cluster)
  const existing = readState(dir)
  if (existing && existing.hosts.some((h) => isOurProcess(h.mariadbdPid, mariadbdMarker(h)) || isOurProcess(h.sshdPid, sshdMarker(h))))
    throw new UserError(`sandbox ${options.cluster} is already running in ${dir}; run "mha sandbox down --cluster ${options.cluster}" first`)
  try {
    return await startHosts(options, programs, dir, log)
  } catch (error) {
    // Whatever started before the failure (an sshd, a mariadbd) is stopped: nothing is left holding the addresses.
    await sandboxDown(dir).catch(() => undefined)
    throw error
  }
}

async function startHosts(options: SandboxOptions, programs: ReturnType<typeof checkPrerequisites>, dir: string, log: (line: string) => void): Promise<SandboxState> {
  const hosts: SandboxHost[] = Array.from({length: options.replicas + 1}, (_, i) => {
    const index = i + 1
    const hostDir = join(dir, `host${index}`)
    return {index, name: `db${index}`, ip: `127.0.0.${options.firstOctet + i}`, dir: hostDir, datadir: join(hostDir, 'data'), mariadbdPid: undefined, sshdPid: undefined}
  })
  for (const host of hosts) {
    if (await portOpen(host.ip, 3306, 200)) throw new UserError(`${host.ip}:3306 is already in use; stop what listens there or choose --first-address`)
    if (await portOpen(host.ip, 22, 200)) throw new UserError(`${host.ip}:22 is already in use (a system sshd on 0.0.0.0?); stop it or choose --first-address`)
  }

  rmSync(dir, {recursive: true, force: true})
  mkdirSync(join(dir, 'secrets'), {recursive: true, mode: 0o700})
  const configFile = resolve(options.configDir, `${options.cluster}.yaml`)
  const state: SandboxState = {cluster: options.cluster, dir, configFile, gtid: options.gtid, semisync: options.semisync, hosts}
  writeState(state)

  const passwords = {admin: newPassword(), repl: newPassword(), app: newPassword()}
  writeSecret(join(dir, 'secrets', 'mha.password'), passwords.admin)
  writeSecret(join(dir, 'secrets', 'repl.password'), passwords.repl)
  writeSecret(join(dir, 'secrets', 'app.password'), passwords.app)

  log('creating the SSH client key and the template data directory')
  const clientKey = join(dir, 'id_ed25519')
  run(programs['ssh-keygen']!, ['-q', '-t', 'ed25519', '-N', '', '-C', `mha-sandbox-${options.cluster}`, '-f', clientKey], 'ssh-keygen')
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${clientKey}.pub`))
  const template = join(dir, 'template')
  const bootstrap = join(dir, 'bootstrap.sql')
  // CREATE USER during bootstrap needs the grant tables loaded first.
  writeFileSync(
    bootstrap,
    [
      'FLUSH PRIVILEGES;',
      `CREATE USER 'mha'@'%' IDENTIFIED BY '${passwords.admin}';`,
      `GRANT ALL PRIVILEGES ON *.* TO 'mha'@'%' WITH GRANT OPTION;`,
      `CREATE USER 'repl'@'%' IDENTIFIED BY '${passwords.repl}';`,
      `GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'repl'@'%';`,
      'CREATE DATABASE mhatest;',
      `CREATE USER 'app'@'%' IDENTIFIED BY '${passwords.app}';`,
      `GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER ON mhatest.* TO 'app'@'%';`,
      '',
    ].join('\n'),
    {mode: 0o600},
  )
  run(
    programs['mariadb-install-db']!,
    ['--no-defaults', `--datadir=${template}`, '--user=root', '--auth-root-authentication-method=socket', '--skip-test-db', `--extra-file=${bootstrap}`],
    'mariadb-install-db',
  )
  rmSync(bootstrap)

  mkdirSync('/run/sshd', {recursive: true, mode: 0o755})
  const knownHosts: string[] = []
  for (const host of hosts) {
    mkdirSync(host.dir, {recursive: true})
    cpSync(template, host.datadir, {recursive: true})
    writeFileSync(mariadbdMarker(host), myCnf(host, options, host.index === 1))
    host.mariadbdPid = startDetached(programs.mariadbd!, [`--defaults-file=${mariadbdMarker(host)}`, '--user=root'], join(host.dir, 'mariadbd.log'))
    const hostKey = join(host.dir, 'ssh_host_ed25519_key')
    run(programs['ssh-keygen']!, ['-q', '-t', 'ed25519', '-N', '', '-C', host.name, '-f', hostKey], 'ssh-keygen')
    writeFileSync(sshdMarker(host), sshdConfig(host, dir))
    host.sshdPid = startDetached(programs.sshd!, ['-D', '-e', '-f', sshdMarker(host)], join(host.dir, 'sshd.log'))
    const [type, key] = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/)
    knownHosts.push(`${host.ip} ${type} ${key}`)
    writeState(state)
  }
  writeFileSync(join(dir, 'known_hosts'), knownHosts.join('\n') + '\n')
  rmSync(template, {recursive: true, force: true})

  log(`starting ${hosts.length} mariadbd and sshd on ${hosts.map((h) => h.ip).join(', ')}`)
  for (const host of hosts) {
    await waitFor(`mariadbd on ${host.ip}:3306 (see ${join(host.dir, 'mariadbd.log')})`, 60_000, async () => {
      if (!isOurProcess(host.mariadbdPid, mariadbdMarker(host))) throw new UserError(`mariadbd on ${host.ip} exited at start; see ${join(host.dir, 'mariadbd.log')}`)
      return await portOpen(host.ip, 3306)
    })
    await waitFor(`sshd on ${host.ip}:22 (see ${join(host.dir, 'sshd.log')})`, 20_000, async () => {
      if (!isOurProcess(host.sshdPid, sshdMarker(host))) throw new UserError(`sshd on ${host.ip} exited at start; see ${join(host.dir, 'sshd.log')}`)
      return await portOpen(host.ip, 22)
    })
  }

  log('starting replication from db1')
  const master = hosts[0]!
  for (const replica of hosts.slice(1)) {
    await withConnection(adminEndpoint(state, replica), 5000, async (conn) => {
      const position = options.gtid ? 'MASTER_USE_GTID=slave_pos' : `MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=4, MASTER_USE_GTID=no`
      await conn.execute(
        `CHANGE MASTER TO MASTER_HOST='${master.ip}', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='${passwords.repl}', MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1, ${position}`,
      )
      await conn.execute('START SLAVE')
      await waitFor(`replication on ${replica.name}`, 20_000, async () => {
        const row = await conn.queryOne('SHOW SLAVE STATUS')
        return row?.Slave_IO_Running === 'Yes' && row.Slave_SQL_Running === 'Yes'
      })
    })
  }

  if (options.haproxyAddress !== undefined) {
    log(`starting haproxy on ${options.haproxyAddress}: clients on 3306, runtime API on 9999, writes to db1`)
    state.haproxy = await startLocalHaproxy({
      dir: join(dir, 'haproxy'),
      address: options.haproxyAddress,
      servers: hosts.map((h) => ({name: h.name, host: h.ip, port: 3306, enabled: h.index === 1})),
    })
    writeState(state)
  }

  mkdirSync(dirname(configFile), {recursive: true})
  writeFileSync(configFile, clusterYaml(state))
  writeState(state)
  return state
}

export async function sandboxDown(dir: string): Promise<SandboxState | undefined> {
  const state = readState(dir)
  if (!state) return undefined
  await Promise.all(
    state.hosts.flatMap((host) => [
      stopOurProcess(host.mariadbdPid, mariadbdMarker(host), 30_000),
      // A mariadbd started over SSH (rebuild.start_command) is known by its pid-file; it is ours if its command line names this host's my.cnf.
      stopOurProcess(pidFromFile(host), mariadbdMarker(host), 30_000),
      stopOurProcessAndChildren(host.sshdPid, sshdMarker(host)),
    ]),
  )
  await Promise.all(
    (state.binlogServers ?? []).flatMap((b) => [stopOurProcess(b.streamPid, streamMarker(b)), stopOurProcessAndChildren(b.sshdPid, join(b.dir, 'sshd_config'))]),
  )
  if (state.haproxy) await stopLocalHaproxy(state.haproxy)
  if (existsSync(state.configFile) && readFileSync(state.configFile, 'utf8').includes(`# written by mha sandbox up`)) rmSync(state.configFile)
  rmSync(state.dir, {recursive: true, force: true})
  return state
}

export interface HostStatus {
  host: SandboxHost
  mariadbd: boolean
  sshd: boolean
  role: 'master' | 'replica' | 'down' | 'unknown'
  source: string | undefined
}

/** The sandbox's haproxy, if it has one: whether its recorded pid still runs it. */
export function haproxyStatus(state: SandboxState): {proxy: LocalHaproxy; running: boolean} | undefined {
  return state.haproxy ? {proxy: state.haproxy, running: localHaproxyRunning(state.haproxy)} : undefined
}

export async function sandboxStatus(state: SandboxState): Promise<HostStatus[]> {
  return await Promise.all(
    state.hosts.map(async (host) => {
      const mariadbd = isOurProcess(host.mariadbdPid, mariadbdMarker(host))
      const sshd = isOurProcess(host.sshdPid, sshdMarker(host))
      let role: HostStatus['role'] = mariadbd ? 'unknown' : 'down'
      let source: string | undefined
      if (mariadbd) {
        try {
          await withConnection(adminEndpoint(state, host), 2000, async (conn) => {
            const replica = await conn.queryOne('SHOW SLAVE STATUS')
            role = replica ? 'replica' : 'master'
            if (replica) source = `${String(replica.Master_Host)}:${String(replica.Master_Port)}`
          })
        } catch {
          role = 'unknown'
        }
      }
      return {host, mariadbd, sshd, role, source}
    }),
  )
}

/** SIGKILL the mariadbd of the current master (the writable server that replicates from nobody). */
export async function killMaster(state: SandboxState): Promise<SandboxHost> {
  const statuses = await sandboxStatus(state)
  const master = statuses.find((s) => s.role === 'master')
  if (!master) throw new UserError(`sandbox ${state.cluster} has no running master to kill`)
  signalOurProcess(master.host.mariadbdPid, mariadbdMarker(master.host), 'SIGKILL')
  await waitFor(`mariadbd of ${master.host.name} to die`, 10_000, () => !isOurProcess(master.host.mariadbdPid, mariadbdMarker(master.host)))
  return master.host
}

/**
 * Start host `name`'s mariadbd again from its own my.cnf and data directory, as someone restarting a
 * crashed server would; returns once it answers SQL. Host 1's my.cnf says read-only=0, so an old master
 * comes back writable, replicating from nobody, as a real one does.
 */
export async function startHost(state: SandboxState, name: string): Promise<SandboxHost> {
  const host = hostNamed(state, name)
  if (isOurProcess(host.mariadbdPid, mariadbdMarker(host))) throw new UserError(`mariadbd of ${host.name} is already running (pid ${host.mariadbdPid})`)
  host.mariadbdPid = startDetached(findProgram('mariadbd')!, [`--defaults-file=${mariadbdMarker(host)}`, '--user=root'], join(host.dir, 'mariadbd.log'))
  writeState(state)
  // After a SIGKILL, InnoDB recovers first; the port opens only when the server takes connections.
  await waitFor(`mariadbd on ${host.ip}:3306 (see ${join(host.dir, 'mariadbd.err')})`, 60_000, async () => {
    if (!isOurProcess(host.mariadbdPid, mariadbdMarker(host))) throw new UserError(`mariadbd on ${host.ip} exited at start; see ${join(host.dir, 'mariadbd.err')}`)
    if (!(await portOpen(host.ip, 3306))) return false
    return await withConnection(adminEndpoint(state, host), 2000, async (conn) => (await conn.queryOne('SELECT 1 AS one')) !== undefined).catch(() => false)
  })
  return host
}

export async function stopSshd(state: SandboxState, name: string): Promise<void> {
  const host = hostNamed(state, name)
  await stopOurProcess(host.sshdPid, sshdMarker(host))
}

export async function startSshd(state: SandboxState, name: string): Promise<void> {
  const host = hostNamed(state, name)
  if (isOurProcess(host.sshdPid, sshdMarker(host))) return
  host.sshdPid = startDetached(findProgram('sshd')!, ['-D', '-e', '-f', sshdMarker(host)], join(host.dir, 'sshd.log'))
  writeState(state)
  await waitFor(`sshd on ${host.ip}:22`, 10_000, () => portOpen(host.ip, 22))
}

export function hostNamed(state: SandboxState, name: string): SandboxHost {
  const host = state.hosts.find((h) => h.name === name || h.ip === name || String(h.index) === name)
  if (!host) throw new UserError(`sandbox ${state.cluster} has no host "${name}"; hosts are ${state.hosts.map((h) => h.name).join(', ')}`)
  return host
}

function pidFromFile(host: SandboxHost): number | undefined {
  const file = join(host.dir, 'mariadbd.pid')
  if (!existsSync(file)) return undefined
  const pid = Number(readFileSync(file, 'utf8').trim())
  return Number.isInteger(pid) && pid > 0 && pid !== host.mariadbdPid ? pid : undefined
}

/**
 * A new, empty host beside a running sandbox (what a fresh machine for a rebuild looks like): its own sshd on
 * the next address, an empty data directory and its my.cnf (a unique server-id), no mariadbd running; the
 * cluster file gets its entry, with rebuild.datadir and the start/stop commands that mha runs over SSH.
 */
export async function sandboxAddHost(state: SandboxState): Promise<SandboxHost> {
  const programs = checkPrerequisites()
  const last = state.hosts.at(-1)!
  const index = last.index + 1
  const octets = last.ip.split('.')
  const after = (n: number) => [...octets.slice(0, 3), String(Number(octets[3]) + n)].join('.')
  // The proxy's default address is the one after the last host: the new host goes past it.
  const ip = after(1) === state.haproxy?.address ? after(2) : after(1)
  const hostDir = join(state.dir, `host${index}`)
  const host: SandboxHost = {index, name: `db${index}`, ip, dir: hostDir, datadir: join(hostDir, 'data'), mariadbdPid: undefined, sshdPid: undefined}
  if (await portOpen(ip, 22, 200)) throw new UserError(`${ip}:22 is already in use; stop what listens there first`)
  if (await portOpen(ip, 3306, 200)) throw new UserError(`${ip}:3306 is already in use; stop what listens there first`)
  mkdirSync(host.datadir, {recursive: true})
  writeFileSync(mariadbdMarker(host), myCnf(host, {semisync: state.semisync}, false))
  const hostKey = join(host.dir, 'ssh_host_ed25519_key')
  run(programs['ssh-keygen']!, ['-q', '-t', 'ed25519', '-N', '', '-C', host.name, '-f', hostKey], 'ssh-keygen')
  writeFileSync(sshdMarker(host), sshdConfig(host, state.dir))
  state.hosts.push(host)
  host.sshdPid = startDetached(programs.sshd!, ['-D', '-e', '-f', sshdMarker(host)], join(host.dir, 'sshd.log'))
  writeState(state)
  const [type, key] = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/)
  writeFileSync(join(state.dir, 'known_hosts'), readFileSync(join(state.dir, 'known_hosts'), 'utf8') + `${ip} ${type} ${key}\n`)
  await waitFor(`sshd on ${ip}:22 (see ${join(host.dir, 'sshd.log')})`, 20_000, async () => {
    if (!isOurProcess(host.sshdPid, sshdMarker(host))) throw new UserError(`sshd on ${ip} exited at start; see ${join(host.dir, 'sshd.log')}`)
    return await portOpen(ip, 22)
  })
  if (state.haproxy) await addToLocalHaproxy(state.haproxy, {name: host.name, host: host.ip, port: 3306, enabled: false})
  writeFileSync(state.configFile, clusterYaml(state))
  return host
}

const streamMarker = (b: SandboxBinlogServer) => join(b.dir, 'client.cnf')

/**
 * A binlog server beside a running sandbox, on its own address: an sshd (its key in the sandbox's known_hosts)
 * and `mariadb-binlog --read-from-remote-server --raw --stop-never` copying `master`'s binlogs from the first
 * one on into its binlog directory. The cluster file gets a binlog_servers entry.
 */
export async function sandboxAddBinlogServer(state: SandboxState, name: string, ip: string, master: string): Promise<SandboxBinlogServer> {
  const programs = checkPrerequisites()
  if (await portOpen(ip, 22, 200)) throw new UserError(`${ip}:22 is already in use; stop what listens there first`)
  const dir = join(state.dir, name)
  const server: SandboxBinlogServer = {name, ip, dir, binlogDir: join(dir, 'binlogs'), sshdPid: undefined, streamPid: undefined}
  mkdirSync(server.binlogDir, {recursive: true})
  // The sshd of a host of its own: sshdConfig needs only its address, folder and name.
  const asHost: SandboxHost = {index: 0, name, ip, dir, datadir: server.binlogDir, mariadbdPid: undefined, sshdPid: undefined}
  const hostKey = join(dir, 'ssh_host_ed25519_key')
  run(programs['ssh-keygen']!, ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', hostKey], 'ssh-keygen')
  writeFileSync(sshdMarker(asHost), sshdConfig(asHost, state.dir))
  state.binlogServers = [...(state.binlogServers ?? []), server]
  server.sshdPid = startDetached(programs.sshd!, ['-D', '-e', '-f', sshdMarker(asHost)], join(dir, 'sshd.log'))
  writeState(state)
  const [type, key] = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/)
  writeFileSync(join(state.dir, 'known_hosts'), readFileSync(join(state.dir, 'known_hosts'), 'utf8') + `${ip} ${type} ${key}\n`)
  await waitFor(`sshd on ${ip}:22 (see ${join(dir, 'sshd.log')})`, 20_000, async () => {
    if (!isOurProcess(server.sshdPid, sshdMarker(asHost))) throw new UserError(`sshd on ${ip} exited at start; see ${join(dir, 'sshd.log')}`)
    return await portOpen(ip, 22)
  })
  await startBinlogStream(state, name, master)
  writeFileSync(state.configFile, clusterYaml(state))
  return server
}

/** Starts the binlog server's mariadb-binlog copying `master`'s binlogs (the password in a 0600 file, not on its command line). */
export async function startBinlogStream(state: SandboxState, name: string, master: string): Promise<void> {
  const server = binlogServerNamed(state, name)
  const source = hostNamed(state, master)
  writeSecret(streamMarker(server), ['[client]', `host=${source.ip}`, 'port=3306', 'user=repl', `password=${secretsOf(state.dir).repl.reveal()}`].join('\n'))
  const first = 'mysql-bin.000001'
  server.streamPid = startDetached(
    findProgram('mariadb-binlog')!,
    [`--defaults-file=${streamMarker(server)}`, '--read-from-remote-server', '--raw', '--stop-never', `--stop-never-slave-server-id=${1000 + state.binlogServers!.indexOf(server)}`, `--result-file=${server.binlogDir}/`, first],
    join(server.dir, 'mariadb-binlog.log'),
  )
  writeState(state)
  await waitFor(`mariadb-binlog on ${name} to copy ${first}`, 20_000, () => {
    if (!isOurProcess(server.streamPid, streamMarker(server))) throw new UserError(`mariadb-binlog on ${name} exited at start; see ${join(server.dir, 'mariadb-binlog.log')}`)
    return existsSync(join(server.binlogDir, first))
  })
}

/** Stops the binlog server's copying (its sshd stays). */
export async function stopBinlogStream(state: SandboxState, name: string): Promise<void> {
  const server = binlogServerNamed(state, name)
  await stopOurProcess(server.streamPid, streamMarker(server))
}

/** The binlog server's host gone or back, as far as SSH goes. */
export async function setBinlogServerSshd(state: SandboxState, name: string, running: boolean): Promise<void> {
  const server = binlogServerNamed(state, name)
  const marker = join(server.dir, 'sshd_config')
  if (!running) return await stopOurProcessAndChildren(server.sshdPid, marker)
  if (isOurProcess(server.sshdPid, marker)) return
  server.sshdPid = startDetached(findProgram('sshd')!, ['-D', '-e', '-f', marker], join(server.dir, 'sshd.log'))
  writeState(state)
  await waitFor(`sshd on ${server.ip}:22`, 10_000, () => portOpen(server.ip, 22))
}

function binlogServerNamed(state: SandboxState, name: string): SandboxBinlogServer {
  const server = state.binlogServers?.find((b) => b.name === name)
  if (!server) throw new UserError(`sandbox ${state.cluster} has no binlog server "${name}"`)
  return server
}

function newPassword(): string {
  return randomBytes(18).toString('base64url')
}

function writeSecret(file: string, value: string): void {
  writeFileSync(file, value + '\n', {mode: 0o600})
  chmodSync(file, 0o600)
}

function myCnf(host: SandboxHost, options: Pick<SandboxOptions, 'semisync'>, isMaster: boolean): string {
  const lines = [
    '[mariadbd]',
    `datadir=${host.datadir}`,
    `socket=${join(host.dir, 'mysqld.sock')}`,
    `pid-file=${join(host.dir, 'mariadbd.pid')}`,
    `log-error=${join(host.dir, 'mariadbd.err')}`,
    `bind-address=${host.ip}`,
    'port=3306',
    `server-id=${host.index}`,
    `report-host=${host.ip}`,
    'log-bin=mysql-bin',
    'relay-log=relay-bin',
    'log-slave-updates=1',
    'relay-log-purge=0',
    'binlog-format=ROW',
    'sync-binlog=1',
    'innodb-flush-log-at-trx-commit=1',
    'gtid-strict-mode=1',
    'skip-name-resolve=1',
    'innodb-buffer-pool-size=32M',
    'innodb-log-file-size=16M',
    'performance-schema=0',
    'max-connections=2000',
    // What mha check recommends: a replica notices a silent master within 10 s by itself (with heartbeats every 1 s, set at CHANGE MASTER).
    'slave-net-timeout=10',
    `read-only=${isMaster ? 0 : 1}`,
    'skip-slave-start=0',
  ]
  if (options.semisync) lines.push('rpl-semi-sync-master-enabled=1', 'rpl-semi-sync-slave-enabled=1', 'rpl-semi-sync-master-timeout=1000')
  return lines.join('\n') + '\n'
}

function sshdConfig(host: SandboxHost, dir: string): string {
  // Each simulated host has a home of its own: a session's shell then reads that home's (absent) .bashrc, not the
  // manager's, whose start-up (version managers and the like) would cost every SSH command here 100 ms or more.
  const home = join(host.dir, 'home')
  mkdirSync(home, {recursive: true})
  return [
    `SetEnv HOME=${home}`,
    `ListenAddress ${host.ip}:22`,
    `HostKey ${join(host.dir, 'ssh_host_ed25519_key')}`,
    `PidFile ${join(host.dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'StrictModes no',
    'PrintMotd no',
    'MaxStartups 100:30:200',
    // A connection that arrives as the sandbox goes down does not keep its handler for the default two minutes.
    'LoginGraceTime 15',
    '',
  ].join('\n')
}

function clusterYaml(state: SandboxState): string {
  const doc = {
    name: state.cluster,
    user: 'mha',
    password: {file: join(state.dir, 'secrets', 'mha.password')},
    repl_user: 'repl',
    repl_password: {file: join(state.dir, 'secrets', 'repl.password')},
    replication: {gtid: state.gtid ? 'on' : 'off'},
    ssh: {user: 'root', private_key_file: join(state.dir, 'id_ed25519'), known_hosts_file: join(state.dir, 'known_hosts'), connect_timeout: 3},
    server_defaults: {remote_workdir: join(state.dir, 'work')},
    monitor: {ping_interval: 1},
    servers: state.hosts.map((h) => ({
      name: h.name,
      hostname: h.ip,
      master_binlog_dir: h.datadir,
      remote_workdir: join(h.dir, 'work'),
      ...(h.index === 2 ? {candidate_master: true} : {}),
      rebuild: {datadir: h.datadir, stop_command: stopCommand(h), start_command: startCommand(h)},
    })),
    ...(state.binlogServers?.length
      ? {binlog_servers: state.binlogServers.map((b) => ({name: b.name, hostname: b.ip, master_binlog_dir: b.binlogDir, remote_workdir: join(b.dir, 'work')}))}
      : {}),
    ...(state.haproxy
      ? {
          routing: {
            haproxy: [
              {
                name: 'haproxy1',
                runtime_api: `${state.haproxy.address}:${state.haproxy.apiPort}`,
                writer_backend: state.haproxy.backend,
                frontend: `${state.haproxy.address}:${state.haproxy.frontendPort}`,
              },
            ],
          },
        }
      : {}),
  }
  return `# written by mha sandbox up: the local cluster in ${state.dir}\n` + stringify(doc)
}

/** What rebuild.start_command runs over SSH on a sandbox host: mariadbd in the background, known by its pid-file. */
function startCommand(h: SandboxHost): string {
  return `setsid ${findProgram('mariadbd') ?? '/usr/sbin/mariadbd'} --defaults-file=${mariadbdMarker(h)} --user=root >>${join(h.dir, 'mariadbd.log')} 2>&1 </dev/null &`
}

/** rebuild.stop_command: SIGTERM to the pid in the pid-file, then wait until it is gone (at most 60 s). */
function stopCommand(h: SandboxHost): string {
  const pidFile = join(h.dir, 'mariadbd.pid')
  return `if [ -f ${pidFile} ]; then p=$(cat ${pidFile}); if grep -q ${mariadbdMarker(h)} /proc/$p/cmdline 2>/dev/null; then kill $p; i=0; while [ -e /proc/$p ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; fi; fi; true`
}
