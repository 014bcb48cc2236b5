import {existsSync, readFileSync, statSync} from 'node:fs'
import {hostname} from 'node:os'
import {dirname, resolve} from 'node:path'
import {parseDocument} from 'yaml'
import {ConfigError, UsageError} from '../util/errors.js'
import {Secret} from '../util/secret.js'

/** How mha reaches etcd when several managers share the work: from --etcd* flags or a manager file's etcd: block. */
export interface EtcdSettings {
  endpoints: string[]
  /** Every key mha writes lives under this prefix: several mha deployments may share one etcd. */
  prefix: string
  /** Seconds a manager's lease lives without a keepalive: how soon another takes over a dead one's clusters. */
  leaseTtlSeconds: number
  tls: {caFile?: string; certFile?: string; keyFile?: string} | undefined
  auth: {user: string; password: Secret} | undefined
  /** This manager's name in etcd (leaders, journal, status). */
  id: string
}

export interface EtcdFlagValues {
  etcd?: string | undefined
  'etcd-prefix'?: string | undefined
  'etcd-lease-ttl'?: number | undefined
  'etcd-ca'?: string | undefined
  'etcd-cert'?: string | undefined
  'etcd-key'?: string | undefined
  'etcd-user'?: string | undefined
  'etcd-password-file'?: string | undefined
  'manager-config'?: string | undefined
  'watcher-id'?: string | undefined
}

/** The manager file's keys, as written in YAML (snake_case like the cluster files). */
interface RawManagerFile {
  etcd?: {
    endpoints?: unknown
    prefix?: unknown
    lease_ttl?: unknown
    ca_file?: unknown
    cert_file?: unknown
    key_file?: unknown
    user?: unknown
    password_file?: unknown
  }
  id?: unknown
}

const minimumTtl = 2

function readManagerFile(file: string): {raw: RawManagerFile; dir: string} {
  if (!existsSync(file)) throw new ConfigError(`${file}: no such manager file; create it or drop --manager-config`)
  const doc = parseDocument(readFileSync(file, 'utf8'))
  if (doc.errors.length > 0) throw new ConfigError(`${file}: not valid YAML (${doc.errors[0]!.message.split('\n')[0]})`)
  const raw = (doc.toJS() ?? {}) as RawManagerFile
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`${file}: expected a mapping with an "etcd:" block`)
  for (const key of Object.keys(raw)) if (!['etcd', 'id'].includes(key)) throw new ConfigError(`${file}: unknown key "${key}" (known: etcd, id)`)
  for (const key of Object.keys(raw.etcd ?? {}))
    if (!['endpoints', 'prefix', 'lease_ttl', 'ca_file', 'cert_file', 'key_file', 'user', 'password_file'].includes(key)) throw new ConfigError(`${file}: unknown key "etcd.${key}"`)
  return {raw, dir: dirname(resolve(file))}
}

function stringField(value: unknown, where: string): string | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string' || value === '') throw new ConfigError(`${where}: expected a non-empty string`)
  return value
}

/** A readable file that only its owner may read: a secret or key someone else can read is refused. */
function secretFile(file: string, what: string, mustBePrivate: boolean): string {
  if (!existsSync(file)) throw new ConfigError(`${what} ${file} does not exist`)
  const mode = statSync(file).mode & 0o777
  if (mustBePrivate && (mode & 0o077) !== 0) throw new ConfigError(`${what} ${file} can be read by others (mode ${mode.toString(8)}); run chmod 600 ${file}`)
  return file
}

function parseEndpoints(list: string[], where: string): string[] {
  if (list.length === 0) throw new UsageError(`${where}: no etcd endpoint given`)
  return list.map((endpoint) => {
    let url: URL
    try {
      url = new URL(endpoint)
    } catch {
      throw new UsageError(`${where}: "${endpoint}" is not a URL; give http(s)://HOST:PORT, for example http://127.0.0.1:2379`)
    }
    if (!['http:', 'https:'].includes(url.protocol) || url.port === '' || url.pathname.replace(/\/$/, '') !== '' || url.username || url.password)
      throw new UsageError(`${where}: "${endpoint}" is not an etcd endpoint; give http(s)://HOST:PORT (credentials go in --etcd-user and --etcd-password-file)`)
    return `${url.protocol}//${url.host}`
  })
}

/**
 * The etcd settings from the flags and the manager file, or undefined when neither names etcd: a single
 * manager with the local lock, as before. Flags win over the file.
 */
export function etcdSettings(flags: EtcdFlagValues, env: NodeJS.ProcessEnv = process.env): EtcdSettings | undefined {
  const file = flags['manager-config'] ? readManagerFile(flags['manager-config']) : undefined
  const fromFile = file?.raw.etcd ?? {}
  const at = (key: string) => `${flags['manager-config']}: etcd.${key}`
  const inFile = (value: unknown, key: string) => {
    const text = stringField(value, at(key))
    return text && file ? resolve(file.dir, text) : text
  }
  let endpoints: string[] | undefined
  if (flags.etcd !== undefined) endpoints = parseEndpoints(flags.etcd.split(',').map((e) => e.trim()).filter((e) => e !== ''), '--etcd')
  else if (fromFile.endpoints !== undefined) {
    const list = Array.isArray(fromFile.endpoints) ? fromFile.endpoints : typeof fromFile.endpoints === 'string' ? fromFile.endpoints.split(',') : null
    if (!list || list.some((e) => typeof e !== 'string')) throw new ConfigError(`${at('endpoints')}: expected a list of URLs`)
    endpoints = parseEndpoints((list as string[]).map((e) => e.trim()), at('endpoints'))
  } else if (env.MHA_ETCD_ENDPOINTS) endpoints = parseEndpoints(env.MHA_ETCD_ENDPOINTS.split(',').map((e) => e.trim()), 'MHA_ETCD_ENDPOINTS')
  const etcdOnly = ['etcd-prefix', 'etcd-ca', 'etcd-cert', 'etcd-key', 'etcd-user', 'etcd-password-file', 'etcd-lease-ttl', 'watcher-id'] as const
  if (!endpoints) {
    const stray = etcdOnly.find((f) => flags[f] !== undefined)
    if (stray) throw new UsageError(`--${stray} needs etcd: give --etcd URL[,URL...] (or endpoints in --manager-config)`)
    return undefined
  }
  const prefix = (flags['etcd-prefix'] ?? stringField(fromFile.prefix, at('prefix')) ?? '/mha').replace(/\/+$/, '')
  if (!prefix.startsWith('/')) throw new UsageError(`etcd prefix "${prefix}" must start with /`)
  const ttl = flags['etcd-lease-ttl'] ?? (fromFile.lease_ttl === undefined ? 5 : Number(fromFile.lease_ttl))
  if (!Number.isInteger(ttl) || ttl < minimumTtl) throw new UsageError(`etcd lease TTL ${String(ttl)} s: give a whole number of seconds, at least ${minimumTtl}`)
  const caFile = flags['etcd-ca'] ?? inFile(fromFile.ca_file, 'ca_file')
  const certFile = flags['etcd-cert'] ?? inFile(fromFile.cert_file, 'cert_file')
  const keyFile = flags['etcd-key'] ?? inFile(fromFile.key_file, 'key_file')
  if ((certFile === undefined) !== (keyFile === undefined)) throw new UsageError('a client certificate needs both --etcd-cert and --etcd-key')
  const https = endpoints.some((e) => e.startsWith('https:'))
  if ((caFile || certFile) && !https) throw new UsageError('TLS files are given but no endpoint is https://; use https:// endpoints')
  const user = flags['etcd-user'] ?? stringField(fromFile.user, at('user'))
  const passwordFile = flags['etcd-password-file'] ?? inFile(fromFile.password_file, 'password_file')
  if ((user === undefined) !== (passwordFile === undefined)) throw new UsageError('etcd authentication needs both --etcd-user and --etcd-password-file')
  const auth = user && passwordFile ? {user, password: new Secret(readFileSync(secretFile(passwordFile, 'etcd password file', true), 'utf8').replace(/\r?\n$/, ''), passwordFile)} : undefined
  const tls = https ? {...(caFile ? {caFile: secretFile(caFile, 'etcd CA file', false)} : {}), ...(certFile ? {certFile: secretFile(certFile, 'etcd certificate', false)} : {}), ...(keyFile ? {keyFile: secretFile(keyFile, 'etcd key', true)} : {})} : undefined
  const id = flags['watcher-id'] ?? stringField(file?.raw.id, `${flags['manager-config']}: id`) ?? `${hostname()}:${process.pid}`
  if (!/^[\w.:@-]{1,100}$/.test(id)) throw new UsageError(`manager id "${id}": use letters, digits and . : @ - _ only`)
  return {endpoints, prefix, leaseTtlSeconds: ttl, tls, auth, id}
}
