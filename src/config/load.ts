import {existsSync, readFileSync} from 'node:fs'
import {homedir, userInfo} from 'node:os'
import {dirname, isAbsolute, join, resolve} from 'node:path'
import {LineCounter, parseDocument, isMap, isNode, isScalar, type Document} from 'yaml'
import {ConfigError, UsageError} from '../util/errors.js'
import {Secret} from '../util/secret.js'
import {resolveHookCommand} from '../hooks/command.js'
import {formatPath, problemsOf, validator} from '../schema/validator.js'
import {parseSshOptions, SshOptionError, type SshOptionSettings} from './ssh-options.js'
import type {BinlogServerConfig, ClusterConfig, GtidUse, PingType, ProxyConfig, ServerConfig, SshSettings} from './types.js'

export const defaultConfigDir = 'clusters'

/** clusters/<name>.yaml unless a file is given. */
export function clusterFile(opts: {cluster?: string | undefined; config?: string | undefined; configDir?: string | undefined}): string {
  if (opts.config) return resolve(opts.config)
  if (!opts.cluster) throw new UsageError('name a cluster with --cluster NAME or a file with --config FILE')
  return resolve(opts.configDir ?? defaultConfigDir, `${opts.cluster}.yaml`)
}

export function loadClusterFile(file: string, env: NodeJS.ProcessEnv = process.env): ClusterConfig {
  if (!existsSync(file)) throw new ConfigError(`${file}: no such cluster file; create it (see schemas/cluster.schema.json) or run "mha sandbox up"`)
  return parseClusterConfig(readFileSync(file, 'utf8'), file, env)
}

/**
 * The cluster's name alone, for commands that touch only mha's own state (ack): its secrets are not
 * resolved, so they need not be at hand.
 */
export function clusterNameOf(file: string): string {
  if (!existsSync(file)) throw new ConfigError(`${file}: no such cluster file`)
  const doc = parseDocument(readFileSync(file, 'utf8'))
  const name: unknown = doc.errors.length > 0 ? undefined : doc.get('name')
  if (typeof name !== 'string' || name === '') throw new ConfigError(`${file}: no cluster name (a "name:" field) in this file; fix it or give --cluster NAME`)
  return name
}

/** Problems as "file:line:col path: message", all at once, one per line. */
export function parseClusterConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): ClusterConfig {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, {lineCounter, prettyErrors: false, uniqueKeys: true})
  if (doc.errors.length > 0) {
    const lines = doc.errors.map((e) => {
      const pos = lineCounter.linePos(e.pos[0])
      return `${file}:${pos.line}:${pos.col} YAML syntax error: ${e.message.split('\n')[0] ?? e.code}`
    })
    throw new ConfigError(lines.join('\n'))
  }
  const raw: unknown = doc.toJS()
  const data: unknown = structuredClone(raw)
  const validate = validator('cluster.schema.json')
  if (!validate(data)) {
    const lines = problemsOf(validate.errors).map((p) => `${file}:${where(doc, lineCounter, p.path)} ${formatPath(p.path)}: ${p.message}`)
    throw new ConfigError(lines.join('\n'))
  }
  const at = (path: (string | number)[], message: string) => new ConfigError(`${file}:${where(doc, lineCounter, path)} ${formatPath(path)}: ${message}`)
  return resolveConfig(data as RawCluster, file, env, at)
}

function where(doc: Document, lines: LineCounter, path: (string | number)[]): string {
  // A field's position is its key, where the reader looks for it.
  const parent = path.length > 0 ? doc.getIn(path.slice(0, -1), true) : undefined
  if (isMap(parent)) {
    const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === path[path.length - 1])
    if (pair && isNode(pair.key) && pair.key.range) {
      const pos = lines.linePos(pair.key.range[0])
      return `${pos.line}:${pos.col}`
    }
  }
  // Missing fields have no node: point at the closest existing parent.
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true)
    if (isNode(node) && node.range) {
      const pos = lines.linePos(node.range[0])
      return `${pos.line}:${pos.col}`
    }
  }
  return '1:1'
}

type RawSecret = string | {env: string} | {file: string}
interface RawServer {
  name: string
  hostname: string
  ip?: string
  port?: number
  user?: string
  password?: RawSecret
  ssh_host?: string
  ssh_port?: number
  ssh_user?: string
  candidate_master: boolean
  no_master: boolean
  ignore_fail: boolean
  master_binlog_dir?: string | string[]
  remote_workdir?: string
  client_bindir?: string
  ssh_options?: string
  rebuild?: {datadir?: string; stop_command?: string; start_command?: string}
}
interface RawBinlogServer {
  name: string
  hostname: string
  ssh_host?: string
  ssh_port?: number
  ssh_user?: string
  ssh_options?: string
  master_binlog_dir?: string | string[]
  remote_workdir?: string
  client_bindir?: string
}
/** The document after schema validation with defaults filled in. */
interface RawCluster {
  name: string
  user: string
  password: RawSecret
  repl_user: string
  repl_password?: RawSecret
  replication: {gtid: GtidUse}
  source_address?: string
  ssh: {
    user?: string
    port: number
    private_key_file?: string
    private_key_passphrase?: RawSecret
    known_hosts_file: string
    connect_timeout: number
    agent?: boolean | string
    ssh_options?: string
  }
  server_defaults: {port: number; master_binlog_dir: string | string[]; remote_workdir: string; client_bindir?: string}
  monitor: {ping_interval: number; ping_type: PingType; connect_timeout: number; failures_before_dead: number; last_failover_minute: number; keep_ssh_open: boolean}
  failover: {
    check_repl_delay: boolean
    max_lag_bytes: number
    latest_priority: boolean
    check_repl_filter: boolean
    multi_tier_slave: boolean
    skip_reset_slave: boolean
    max_seconds_behind_master: number
    wait_timeout: number
  }
  switchover: {max_lag_seconds: number; running_updates_limit: number; running_seconds_limit: number; orig_master_is_new_slave: boolean}
  hooks: {shutdown?: string; master_ip_failover?: string; master_ip_online_change?: string; report?: string; secondary_check?: string; pass_passwords: boolean}
  routing?: {haproxy: RawHaproxy[]}
  servers: RawServer[]
  binlog_servers?: RawBinlogServer[]
}
interface RawHaproxy {
  name: string
  runtime_api?: string
  runtime_socket?: {path: string; ssh_host: string; ssh_port?: number; ssh_user?: string}
  writer_backend: string
  frontend: string
  servers?: Record<string, string>
  verify_user?: string
  verify_password?: RawSecret
  timeout: number
}

type At = (path: (string | number)[], message: string) => ConfigError

function resolveConfig(raw: RawCluster, file: string, env: NodeJS.ProcessEnv, at: At): ClusterConfig {
  const base = dirname(file)
  const expand = (p: string) => (p.startsWith('~/') ? join(homedir(), p.slice(2)) : isAbsolute(p) ? p : resolve(base, p))
  const secret = (value: RawSecret, path: (string | number)[]): Secret => {
    if (typeof value === 'string') return new Secret(value, `${file} ${path.join('.')}`)
    if ('env' in value) {
      const text = env[value.env]
      if (text === undefined) throw at(path, `environment variable ${value.env} is not set; export it or use {file: PATH}`)
      return new Secret(text, `$${value.env}`)
    }
    const secretFile = expand(value.file)
    let text: string
    try {
      text = readFileSync(secretFile, 'utf8')
    } catch {
      throw at(path, `cannot read secret file ${secretFile}; create it (mode 0600) or use {env: NAME}`)
    }
    return new Secret(text.split(/\r?\n/)[0] ?? '', secretFile)
  }
  const hook = (line: string) => resolveHookCommand(line, base)
  const dirs = (value: string | string[]) => (Array.isArray(value) ? value : value.split(',').map((d) => d.trim()).filter(Boolean))

  const sshOptions = (text: string | undefined, path: (string | number)[], who: string): SshOptionSettings => {
    try {
      return text === undefined ? {} : parseSshOptions(text)
    } catch (error) {
      if (error instanceof SshOptionError) throw at(path, `${who}: ${error.message}`)
      throw error
    }
  }
  const clusterOptions = sshOptions(raw.ssh.ssh_options, ['ssh', 'ssh_options'], 'every server')
  const clusterSsh = sshSettings(raw.ssh, clusterOptions, {expand, secret, env, at})
  const password = secret(raw.password, ['password'])
  const servers: ServerConfig[] = raw.servers.map((s, i) => {
    // A server's ssh_options replace the cluster's, as a [serverN] value replaced [server default] in MHA.
    const options = s.ssh_options === undefined ? clusterOptions : sshOptions(s.ssh_options, ['servers', i, 'ssh_options'], `server ${s.name}`)
    const own = s.ssh_options === undefined ? {} : options
    return {
      name: s.name,
      hostname: s.hostname,
      ip: s.ip ?? s.hostname,
      port: s.port ?? raw.server_defaults.port,
      user: s.user ?? raw.user,
      password: s.password === undefined ? password : secret(s.password, ['servers', i, 'password']),
      loginFields: `${[s.user === undefined ? 'user' : `servers[${i}].user`, s.password === undefined ? 'password' : `servers[${i}].password`].join(' and ')} in ${file}`,
      sshHost: s.ssh_host ?? s.ip ?? s.hostname,
      // The server's ssh_options beat its own fields, which beat the cluster's ssh_options, which beat the ssh section.
      sshPort: own.port ?? s.ssh_port ?? options.port ?? raw.ssh.port,
      sshUser: own.user ?? s.ssh_user ?? options.user ?? raw.ssh.user ?? userInfo().username,
      ssh: s.ssh_options === undefined ? clusterSsh : sshSettings(raw.ssh, options, {expand, secret, env, at}),
      candidateMaster: s.candidate_master,
      noMaster: s.no_master,
      ignoreFail: s.ignore_fail,
      masterBinlogDirs: dirs(s.master_binlog_dir ?? raw.server_defaults.master_binlog_dir),
      remoteWorkdir: s.remote_workdir ?? raw.server_defaults.remote_workdir,
      clientBindir: s.client_bindir ?? raw.server_defaults.client_bindir,
      ...(s.rebuild
        ? {rebuild: {...(s.rebuild.datadir ? {datadir: s.rebuild.datadir} : {}), ...(s.rebuild.stop_command ? {stopCommand: s.rebuild.stop_command} : {}), ...(s.rebuild.start_command ? {startCommand: s.rebuild.start_command} : {})}}
        : {}),
    }
  })
  checkUnique(servers, (s) => s.name, ['name'], at)
  checkUnique(servers, (s) => `${s.ip}:${s.port}`, [], at, (key) => `${key} is used by two servers`)
  const binlogServers: BinlogServerConfig[] = (raw.binlog_servers ?? []).map((b, i) => {
    const options = b.ssh_options === undefined ? clusterOptions : sshOptions(b.ssh_options, ['binlog_servers', i, 'ssh_options'], `binlog server ${b.name}`)
    const own = b.ssh_options === undefined ? {} : options
    return {
      name: b.name,
      hostname: b.hostname,
      sshHost: b.ssh_host ?? b.hostname,
      // The same precedence as a server's.
      sshPort: own.port ?? b.ssh_port ?? options.port ?? raw.ssh.port,
      sshUser: own.user ?? b.ssh_user ?? options.user ?? raw.ssh.user ?? userInfo().username,
      ssh: b.ssh_options === undefined ? clusterSsh : sshSettings(raw.ssh, options, {expand, secret, env, at}),
      // As MHA's [binlogN] inherit [server default].
      masterBinlogDirs: dirs(b.master_binlog_dir ?? raw.server_defaults.master_binlog_dir),
      remoteWorkdir: b.remote_workdir ?? raw.server_defaults.remote_workdir,
      clientBindir: b.client_bindir ?? raw.server_defaults.client_bindir,
    }
  })
  // Plans name a binlog server the way they name servers: one name, one host.
  const serverNames = new Set(servers.map((s) => s.name))
  binlogServers.forEach((b, i) => {
    if (serverNames.has(b.name)) throw at(['binlog_servers', i, 'name'], `"${b.name}" is also a server's name; give the binlog server a name of its own`)
    if (binlogServers.findIndex((o) => o.name === b.name) !== i) throw at(['binlog_servers', i, 'name'], `"${b.name}" is used by two binlog servers; each needs its own`)
  })
  const proxies = (raw.routing?.haproxy ?? []).map((p, i) => proxyConfig(p, i, {servers, password, user: raw.user, clusterSsh, sshPort: raw.ssh.port, sshUser: raw.ssh.user, secret, at}))
  proxies.forEach((p, i) => {
    if (proxies.findIndex((q) => q.name === p.name) !== i) throw at(['routing', 'haproxy', i, 'name'], `"${p.name}" is used by two proxies; each proxy needs its own name`)
  })

  return {
    name: raw.name,
    file,
    user: raw.user,
    password,
    replUser: raw.repl_user,
    replPassword: raw.repl_password === undefined ? undefined : secret(raw.repl_password, ['repl_password']),
    gtid: raw.replication.gtid,
    sourceAddress: raw.source_address,
    ssh: clusterSsh,
    monitor: {
      pingIntervalMs: raw.monitor.ping_interval * 1000,
      pingType: raw.monitor.ping_type,
      connectTimeoutMs: raw.monitor.connect_timeout * 1000,
      failuresBeforeDead: raw.monitor.failures_before_dead,
      lastFailoverMinute: raw.monitor.last_failover_minute,
      keepSshOpen: raw.monitor.keep_ssh_open,
    },
    failover: {
      checkReplDelay: raw.failover.check_repl_delay,
      maxLagBytes: raw.failover.max_lag_bytes,
      latestPriority: raw.failover.latest_priority,
      checkReplFilter: raw.failover.check_repl_filter,
      multiTierSlave: raw.failover.multi_tier_slave,
      skipResetSlave: raw.failover.skip_reset_slave,
      maxSecondsBehindMaster: raw.failover.max_seconds_behind_master,
      waitTimeoutMs: raw.failover.wait_timeout * 1000,
    },
    switchover: {
      maxLagSeconds: raw.switchover.max_lag_seconds,
      runningUpdatesLimit: raw.switchover.running_updates_limit,
      runningSecondsLimit: raw.switchover.running_seconds_limit,
      origMasterIsNewSlave: raw.switchover.orig_master_is_new_slave,
    },
    hooks: {
      ...(raw.hooks.shutdown ? {shutdown: hook(raw.hooks.shutdown)} : {}),
      ...(raw.hooks.master_ip_failover ? {masterIpFailover: hook(raw.hooks.master_ip_failover)} : {}),
      ...(raw.hooks.master_ip_online_change ? {masterIpOnlineChange: hook(raw.hooks.master_ip_online_change)} : {}),
      ...(raw.hooks.report ? {report: hook(raw.hooks.report)} : {}),
      ...(raw.hooks.secondary_check ? {secondaryCheck: hook(raw.hooks.secondary_check)} : {}),
      passPasswords: raw.hooks.pass_passwords,
    },
    proxies,
    servers,
    binlogServers,
  }
}

/** "host:port" or "[v6]:port" as host and port; the schema checked the shape. */
export function parseAddress(text: string): {host: string; port: number} | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(text)
  const port = Number(m?.[3])
  if (!m || !(port >= 1 && port <= 65535)) return undefined
  return {host: (m[1] ?? m[2])!, port}
}

interface ProxyContext {
  servers: ServerConfig[]
  password: Secret
  user: string
  clusterSsh: SshSettings
  sshPort: number
  sshUser: string | undefined
  secret: (value: RawSecret, path: (string | number)[]) => Secret
  at: At
}

/** routing.haproxy[i], with one line naming the field for what the schema cannot say. */
function proxyConfig(p: RawHaproxy, i: number, c: ProxyContext): ProxyConfig {
  const path = ['routing', 'haproxy', i]
  const address = (text: string, field: string) => {
    const parsed = parseAddress(text)
    if (!parsed) throw c.at([...path, field], `"${text}" is not HOST:PORT with a port from 1 to 65535`)
    return parsed
  }
  if ((p.runtime_api === undefined) === (p.runtime_socket === undefined))
    throw c.at(path, `proxy ${p.name}: give exactly one of runtime_api (HOST:PORT over TCP) and runtime_socket ({path, ssh_host}: a unix socket over SSH)`)
  const runtimeApi: ProxyConfig['runtimeApi'] =
    p.runtime_api !== undefined
      ? {kind: 'tcp', ...address(p.runtime_api, 'runtime_api')}
      : {
          kind: 'socket',
          path: p.runtime_socket!.path,
          sshHost: p.runtime_socket!.ssh_host,
          sshPort: p.runtime_socket!.ssh_port ?? c.sshPort,
          sshUser: p.runtime_socket!.ssh_user ?? c.sshUser ?? userInfo().username,
          ssh: c.clusterSsh,
        }
  const names = new Set(c.servers.map((s) => s.name))
  for (const name of Object.keys(p.servers ?? {}))
    if (!names.has(name)) throw c.at([...path, 'servers', name], `proxy ${p.name}: "${name}" is not a server of this cluster (servers are ${[...names].join(', ')})`)
  const servers = Object.fromEntries(c.servers.map((s) => [s.name, p.servers?.[s.name] ?? s.name]))
  const seen = new Map<string, string>()
  for (const [mha, own] of Object.entries(servers)) {
    const other = seen.get(own)
    if (other !== undefined) throw c.at([...path, 'servers'], `proxy ${p.name}: servers ${other} and ${mha} are both "${own}" in backend ${p.writer_backend}; each needs its own`)
    seen.set(own, mha)
  }
  return {
    name: p.name,
    runtimeApi,
    writerBackend: p.writer_backend,
    frontend: address(p.frontend, 'frontend'),
    servers,
    verifyUser: p.verify_user ?? c.user,
    verifyPassword: p.verify_password === undefined ? c.password : c.secret(p.verify_password, [...path, 'verify_password']),
    timeoutMs: p.timeout * 1000,
  }
}

interface Resolvers {
  expand: (path: string) => string
  secret: (value: RawSecret, path: (string | number)[]) => Secret
  env: NodeJS.ProcessEnv
  at: At
}

/** The ssh section with ssh_options (already merged: server over cluster) applied on top. */
function sshSettings(ssh: RawCluster['ssh'], options: SshOptionSettings, {expand, secret, env, at}: Resolvers): SshSettings {
  const agent = agentSocket(ssh.agent, options.identityAgent, env, at)
  const configuredKey = options.identityFile ?? ssh.private_key_file
  const defaultKey = ['id_ed25519', 'id_rsa'].map((k) => join(homedir(), '.ssh', k)).find((k) => existsSync(k))
  return {
    // With an agent and no key file anywhere, the agent alone authenticates; without one the missing default is reported at connect.
    privateKeyFile: configuredKey ? expand(configuredKey) : (defaultKey ?? (agent ? undefined : join(homedir(), '.ssh', 'id_ed25519'))),
    privateKeyPassphrase: ssh.private_key_passphrase === undefined ? undefined : secret(ssh.private_key_passphrase, ['ssh', 'private_key_passphrase']),
    knownHostsFile: expand(options.knownHostsFile ?? ssh.known_hosts_file),
    connectTimeoutMs: (options.connectTimeoutSeconds ?? ssh.connect_timeout) * 1000,
    hostKeyAlgorithms: options.hostKeyAlgorithms,
    agent: agent === undefined ? undefined : expand(agent),
  }
}

/** As OpenSSH: the agent of SSH_AUTH_SOCK when there is one, unless switched off; IdentityAgent overrides. */
function agentSocket(setting: boolean | string | undefined, identityAgent: string | undefined, env: NodeJS.ProcessEnv, at: At): string | undefined {
  const fromEnv = env.SSH_AUTH_SOCK || undefined
  if (identityAgent !== undefined) return identityAgent === 'none' ? undefined : identityAgent === 'SSH_AUTH_SOCK' ? fromEnv : identityAgent
  if (setting === false) return undefined
  if (setting === true && fromEnv === undefined) throw at(['ssh', 'agent'], 'is true but SSH_AUTH_SOCK is not set; start ssh-agent (eval $(ssh-agent)) or give the socket path')
  return typeof setting === 'string' ? setting : fromEnv
}

function checkUnique<T>(items: T[], key: (item: T) => string, field: string[], at: At, message = (k: string) => `"${k}" is used by two servers`): void {
  const seen = new Set<string>()
  items.forEach((item, index) => {
    const k = key(item)
    if (seen.has(k)) throw at(['servers', index, ...field], `${message(k)}; each server needs its own`)
    seen.add(k)
  })
}
