import {Document, isMap} from 'yaml'
import {ConfigError, UserError} from '../util/errors.js'
import {parseSshOptions, SshOptionError} from './ssh-options.js'

/** Converts an MHA 0.58 app config (plus its optional global config) into our cluster YAML. */
export interface MhaImportInput {
  appText: string
  appFile: string
  /** The --global_conf file; MHA only warns when it is missing, so it is optional here too. */
  globalText?: string
  globalFile?: string
  clusterName: string
}
export interface ImportedSecret {
  /** Also the file's name: password.SERVER is the password of a server whose own differs from the cluster's. */
  field: 'password' | 'repl_password' | `password.${string}`
  value: string
}
export interface NotCarried {
  param: string
  where: string
  reason: string
}
export interface MhaImport {
  yaml: string
  /** For the caller to write as 0600 files at <clusterName>.secrets/<field> beside the YAML. */
  secrets: ImportedSecret[]
  notCarried: NotCarried[]
}

interface Setting {
  /** The block it was read from, for messages. */
  block: string
  key: string
  value: string
  file: string
  line: number
}
interface Block {
  name: string
  file: string
  line: number
  values: Map<string, Setting>
}
type Convert<T = unknown> = (value: string, s: Setting) => T

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/
const at = (x: {file: string; line: number}) => `${x.file}:${x.line}`

/** Perl truthiness, which is how MHA reads its flags: only "" and "0" are false. */
const bool: Convert<boolean> = (v) => v !== '' && v !== '0'
const text: Convert<string | undefined> = (v) => v || undefined
const port: Convert<number | undefined> = (v, s) => {
  if (v === '') return undefined
  const n = Number(v)
  if (!/^\d+$/.test(v) || n < 1 || n > 65535) throw new ConfigError(`${at(s)}: ${s.key} "${v}" is not a port from 1 to 65535; fix it`)
  return n
}
// MHA's check_positive_int.
const seconds: Convert<number> = (v, s) => {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new ConfigError(`${at(s)}: ${s.key} "${v}" must be a positive whole number of seconds; fix it`)
  return Number(v)
}
const pingType: Convert<string> = (v, s) => {
  const type = v.toLowerCase()
  if (!['connect', 'select', 'insert'].includes(type)) throw new ConfigError(`${at(s)}: ping_type "${v}" must be CONNECT, SELECT or INSERT; fix it`)
  return type
}
// MHA strips all whitespace from master_binlog_dir; an empty value means its default.
const dirs: Convert<string | string[] | undefined> = (v) => {
  const list = v.replace(/\s/g, '').split(',').filter(Boolean)
  return list.length > 1 ? list : list[0]
}

// Carried as written once mha's own parser accepts it; what it cannot honour stops the import here, named.
const sshOptions: Convert<string | undefined> = (v, s) => {
  try {
    parseSshOptions(v)
  } catch (error) {
    if (error instanceof SshOptionError) throw new UserError(`${at(s)}: [${s.block}] ssh_options: ${error.message}`)
    throw error
  }
  return v || undefined
}

// Every parameter of MHA 0.58 (Config.pm @PARAM_ARRAY), by where it lands here.
/** Cluster-wide in our schema, per server in MHA: servers disagreeing is reported. */
const CLUSTER_WIDE: Record<string, [section: string, field: string, convert: Convert]> = {
  ssh_connection_timeout: ['ssh', 'connect_timeout', seconds],
  use_gtid_auto_pos: ['replication', 'gtid', (v, s) => (bool(v, s) ? 'auto' : 'off')],
  ping_interval: ['monitor', 'ping_interval', seconds],
  ping_type: ['monitor', 'ping_type', pingType],
  check_repl_delay: ['failover', 'check_repl_delay', bool],
  latest_priority: ['failover', 'latest_priority', bool],
  check_repl_filter: ['failover', 'check_repl_filter', bool],
  multi_tier_slave: ['failover', 'multi_tier_slave', bool],
  skip_reset_slave: ['failover', 'skip_reset_slave', bool],
  shutdown_script: ['hooks', 'shutdown', text],
  master_ip_failover_script: ['hooks', 'master_ip_failover', text],
  master_ip_online_change_script: ['hooks', 'master_ip_online_change', text],
  report_script: ['hooks', 'report', text],
  secondary_check_script: ['hooks', 'secondary_check', text],
}
/** A cluster default plus per-server overrides; the server field has the MHA name. */
const WITH_DEFAULT: Record<string, [section: string, field: string, convert: Convert]> = {
  port: ['server_defaults', 'port', port],
  ssh_user: ['ssh', 'user', text],
  ssh_port: ['ssh', 'port', port],
  master_binlog_dir: ['server_defaults', 'master_binlog_dir', dirs],
  remote_workdir: ['server_defaults', 'remote_workdir', text],
  client_bindir: ['server_defaults', 'client_bindir', text],
  ssh_options: ['ssh', 'ssh_options', sshOptions],
}
const ACCOUNTS = ['user', 'password', 'repl_user', 'repl_password']
/** MHA never inherits these from [server default]. */
const PER_SERVER = ['hostname', 'ip', 'ssh_host', 'candidate_master', 'no_master', 'ignore_fail', 'node_label', 'skip_init_ssh_check']
const NO_EQUIVALENT: Record<string, string> = {
  manager_workdir: 'mha keeps its state in plan folders, not a manager work directory',
  manager_log: 'mha writes to stdout/stderr; redirect it where you want',
  log_level: 'mha has no log level setting',
  node_label: 'cosmetic only; servers are named after their block',
  client_libdir: 'mha sets no library path for the client tools',
  handle_raw_binlog: 'mha has one way of handling binlogs, no legacy text mode',
  disable_log_bin: 'no equivalent setting',
  master_pid_file: 'no equivalent setting (MHA passed it to shutdown_script as --pid_file)',
  init_conf_load_script: 'mha runs no config loader: put what it printed (e.g. passwords) into the YAML or the secret files',
  skip_init_ssh_check: 'no equivalent setting',
  ssh_ip: 'MHA 0.58 itself ignores it (it resolves ssh_host)',
}
const KNOWN = new Set([...Object.keys(CLUSTER_WIDE), ...Object.keys(WITH_DEFAULT), ...ACCOUNTS, ...PER_SERVER, ...Object.keys(NO_EQUIVALENT)])

/**
 * Config::Tiny as MHA uses it: the last assignment of a key wins, repeated blocks merge,
 * keys before any block land in the block named "" (Config::Tiny's "_").
 */
function parseIni(source: string, file: string): Block[] {
  const blocks = new Map<string, Block>()
  const blockAt = (name: string, line: number): Block => {
    const block = blocks.get(name) ?? {name, file, line, values: new Map<string, Setting>()}
    blocks.set(name, block)
    return block
  }
  let current: Block | undefined
  source.split(/\r{1,2}\n|\r|\n/).forEach((raw, index) => {
    const line = index + 1
    if (/^\s*(?:#|;|$)/.test(raw)) return
    // Config::Tiny drops " ; comment" but not "#": `key=value # note` keeps the note (MHA issue #137).
    const content = raw.replace(/\s;\s.+$/, '')
    const header = /^\s*\[\s*(.+?)\s*\]\s*$/.exec(content)
    if (header) {
      current = blockAt(header[1] ?? '', line)
      return
    }
    const pair = /^\s*([^=]+?)\s*=\s*(.*?)\s*$/.exec(content)
    // The line itself is left out of the message: it may hold a password.
    if (!pair) throw new ConfigError(`${file}:${line}: not a [block] header, key=value or comment line; fix or comment it out`)
    current ??= blockAt('', line)
    const key = pair[1] ?? ''
    current.values.set(key, {block: current.name, key, value: unquote(pair[2] ?? ''), file, line})
  })
  return [...blocks.values()]
}

/** MHA's s/^['"]?(.*)['"]$/$1/: a trailing quote goes, with an optional leading one. */
const unquote = (v: string) => v.replace(/^['"]?(.*)['"]$/, '$1')

/** Config.pm read_config: by name, then by the first digit run when every server name has one. */
function mhaOrder(servers: Block[]): Block[] {
  const byName = [...servers].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const numbered = byName.map((block) => ({block, n: /^server\D*(\d+)/.exec(block.name)?.[1]}))
  if (numbered.some((x) => x.n === undefined)) return byName
  return numbered.sort((a, b) => Number(a.n) - Number(b.n)).map((x) => x.block)
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)

export function importMhaConfig(input: MhaImportInput): MhaImport {
  if (!NAME.test(input.clusterName)) throw new ConfigError(`cluster name "${input.clusterName}": use letters, digits, "_", "." and "-", starting with a letter or digit`)
  const notCarried: NotCarried[] = []
  const note = (param: string, where: string, reason: string) => notCarried.push({param, where, reason})
  const noteSettings = (block: Block, isDefault: boolean) => {
    for (const s of block.values.values()) {
      const why = NO_EQUIVALENT[s.key]
      if (!KNOWN.has(s.key)) note(s.key, at(s), 'unknown to MHA 0.58')
      else if (why) note(s.key, at(s), why)
      else if (isDefault && PER_SERVER.includes(s.key)) note(s.key, at(s), 'per-server only: MHA ignores it in [server default]')
    }
  }

  const globalFile = input.globalFile ?? '/etc/masterha_default.cnf'
  let globalDefault: Block | undefined
  for (const block of input.globalText === undefined ? [] : parseIni(input.globalText, globalFile)) {
    if (block.name === 'server default') {
      globalDefault = block
      noteSettings(block, true)
    } else note(block.name ? `[${block.name}]` : 'lines before the first block', at(block), 'MHA reads only [server default] from the global file')
  }
  let appDefault: Block | undefined
  const found: Block[] = []
  const binlogBlocks: Block[] = []
  for (const block of parseIni(input.appText, input.appFile)) {
    if (block.name === 'server default') appDefault = block
    else if (/^server\S+/.test(block.name)) found.push(block)
    else if (/^binlog\S+/.test(block.name)) binlogBlocks.push(block)
    else if (block.name === '') throw new ConfigError(`${at(block)}: key=value before the first block; move it into [server default] or a [serverN] block`)
    else throw new ConfigError(`${at(block)}: block [${block.name}] is neither [server default], [server...] nor [binlog...]; rename or remove it`)
    noteSettings(block, block === appDefault)
  }
  if (found.length === 0) throw new ConfigError(`${input.appFile}: no [server...] block; add one per MySQL server`)
  const servers = mhaOrder(found)

  // [serverN] value, else app [server default], else global [server default]; undefined means our default.
  const defaults = [appDefault, globalDefault].filter((b) => b !== undefined)
  const fromDefaults = (key: string) => defaults.map((b) => b.values.get(key)).find((s) => s !== undefined)
  const pick = (server: Block, key: string) => server.values.get(key) ?? (PER_SERVER.includes(key) ? undefined : fromDefaults(key))
  const read = <T>(s: Setting | undefined, convert: Convert<T>): T | undefined => (s === undefined ? undefined : convert(s.value, s))

  const first = servers[0]!
  const clusterWide = <T>(key: string, convert: Convert<T>): T | undefined => {
    const values = servers.map((server) => read(pick(server, key), convert))
    servers.forEach((server, i) => {
      // MHA reads most cluster-level settings from the first server (mha-0.58-study.md §3.1), so its value is kept.
      if (!same(values[i], values[0])) note(key, at(pick(server, key) ?? server), `[${server.name}] differs from [${first.name}]; mha has one value per cluster and keeps [${first.name}]'s`)
    })
    return values[0]
  }

  const sections: Record<string, Record<string, unknown>> = {replication: {}, ssh: {}, server_defaults: {}, monitor: {}, failover: {}, hooks: {}}
  for (const [key, [section, field, convert]] of Object.entries(CLUSTER_WIDE)) {
    const value = clusterWide(key, convert)
    if (value !== undefined) sections[section]![field] = value
  }
  const overrides: Record<string, unknown[]> = {}
  for (const [key, [section, field, convert]] of Object.entries(WITH_DEFAULT)) {
    const values = servers.map((server) => read(pick(server, key), convert))
    // When every server agrees the value belongs in the defaults; otherwise only the differing servers carry it.
    const common = values.every((v) => same(v, values[0])) ? values[0] : read(fromDefaults(key), convert)
    if (common !== undefined) sections[section]![field] = common
    overrides[key] = values.map((v) => (v === undefined || same(v, common) ? undefined : v))
  }

  const secretFile = (field: string) => ({file: `${input.clusterName}.secrets/${field}`})
  const seen = new Map<string, string>()
  const serverList = servers.map((server, i) => {
    const hostname = read(pick(server, 'hostname'), text)
    if (hostname === undefined) throw new ConfigError(`${at(server)}: [${server.name}] has no hostname; add hostname=HOST`)
    if (!NAME.test(server.name)) throw new ConfigError(`${at(server)}: [${server.name}] cannot be a server name in mha (letters, digits, "_", "." and "-"); rename the block`)
    const ip = read(pick(server, 'ip'), text)
    // MHA compares resolved addresses; without DNS the configured ones are the best we have.
    const address = `${ip ?? hostname}:${read(pick(server, 'port'), port) ?? 3306}`
    const other = seen.get(address)
    if (other) throw new ConfigError(`${at(server)}: [${server.name}] has the same ip:port ${address} as [${other}]; each server needs its own`)
    seen.set(address, server.name)
    const flag = (key: string) => read(pick(server, key), bool) || undefined
    const entry: Record<string, unknown> = {
      name: server.name,
      hostname,
      ip,
      port: overrides.port?.[i],
      ssh_host: read(pick(server, 'ssh_host'), text),
      ssh_port: overrides.ssh_port?.[i],
      ssh_user: overrides.ssh_user?.[i],
      candidate_master: flag('candidate_master'),
      no_master: flag('no_master'),
      ignore_fail: flag('ignore_fail'),
      master_binlog_dir: overrides.master_binlog_dir?.[i],
      remote_workdir: overrides.remote_workdir?.[i],
      client_bindir: overrides.client_bindir?.[i],
      ssh_options: overrides.ssh_options?.[i],
    }
    return Object.fromEntries(Object.entries(entry).filter(([, v]) => v !== undefined))
  })

  // [binlogN]: the same keys, inherited from [server default] as a server's; only what differs from the cluster's is written.
  const binlogServers = [...binlogBlocks].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((block) => {
    const hostname = read(block.values.get('hostname'), text)
    if (hostname === undefined) throw new ConfigError(`${at(block)}: [${block.name}] has no hostname; add hostname=HOST`)
    if (!NAME.test(block.name)) throw new ConfigError(`${at(block)}: [${block.name}] cannot be a binlog server name in mha (letters, digits, "_", "." and "-"); rename the block`)
    const entry: Record<string, unknown> = {name: block.name, hostname, ssh_host: read(block.values.get('ssh_host'), text)}
    for (const key of ['ssh_user', 'ssh_port', 'ssh_options', 'master_binlog_dir', 'remote_workdir', 'client_bindir']) {
      const [section, field, convert] = WITH_DEFAULT[key]!
      const value = read(pick(block, key), convert)
      if (value !== undefined && !same(value, sections[section]![field])) entry[key] = value
    }
    return Object.fromEntries(Object.entries(entry).filter(([, v]) => v !== undefined))
  })

  // MHA reads user and password per server ([serverN] over [server default], defaults root and empty): the cluster
  // keeps the value every server shares (else the default block's, else the first server's), and a server that
  // differs keeps its own, its password in a secret file of its own.
  const logins = servers.map((server) => ({user: read(pick(server, 'user'), text) ?? 'root', password: read(pick(server, 'password'), (v) => v) ?? ''}))
  const shared = <K extends 'user' | 'password'>(key: K, fallback: string): string => {
    const values = logins.map((l) => l[key])
    return values.every((v) => v === values[0]) ? values[0]! : (read(fromDefaults(key), (v) => v) ?? values[0] ?? fallback)
  }
  const user = shared('user', 'root')
  const password = shared('password', '')
  const ownSecrets: ImportedSecret[] = []
  serverList.forEach((entry, i) => {
    const login = logins[i]!
    if (login.user !== user) entry.user = login.user
    if (login.password !== password) {
      const field = `password.${servers[i]!.name}` as const
      ownSecrets.push({field, value: login.password})
      entry.password = secretFile(field)
    }
  })
  const replPassword = clusterWide('repl_password', text)
  let replUser = clusterWide('repl_user', text)
  if (replUser === undefined) {
    replUser = 'repl'
    note('repl_user', input.appFile, 'not set: MHA used each replica\'s Master_User; mha needs one, so "repl" was written: check it')
  }

  const secrets: ImportedSecret[] = [{field: 'password', value: password}, ...ownSecrets]
  if (replPassword !== undefined) secrets.push({field: 'repl_password', value: replPassword})
  const config: Record<string, unknown> = {
    name: input.clusterName,
    user,
    password: secretFile('password'),
    repl_user: replUser,
    ...(replPassword === undefined ? {} : {repl_password: secretFile('repl_password')}),
    ...Object.fromEntries(Object.entries(sections).filter(([, fields]) => Object.keys(fields).length > 0)),
    servers: serverList,
    ...(binlogServers.length > 0 ? {binlog_servers: binlogServers} : {}),
  }
  const doc = new Document(config)
  const sources = input.globalText === undefined ? input.appFile : `${input.appFile} and ${globalFile}`
  doc.commentBefore = ` Imported from MHA 0.58 configuration ${sources}`
  for (const key of ['password', 'repl_password']) {
    const node = doc.get(key, true)
    if (isMap(node)) node.flow = true
  }
  serverList.forEach((_, i) => {
    const node = doc.getIn(['servers', i, 'password'], true)
    if (isMap(node)) node.flow = true
  })
  return {yaml: doc.toString({lineWidth: 0}), secrets, notCarried}
}
