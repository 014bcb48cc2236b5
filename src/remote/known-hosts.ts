import {createHmac} from 'node:crypto'
import {readFileSync} from 'node:fs'

/**
 * One known_hosts line as OpenSSH reads it: plain patterns (comma list, `!` negation, `*`/`?` wildcards,
 * `[host]:port`) or one hashed name (`|1|salt|hash`, from `ssh-keygen -H`), with an optional marker.
 */
export interface KnownHostEntry {
  marker: 'cert-authority' | 'revoked' | undefined
  patterns: string[]
  hashed: {salt: Buffer; hash: Buffer} | undefined
  keyType: string
  keyBase64: string
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = []
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const fields = line.split(/\s+/)
    let marker: KnownHostEntry['marker']
    if (fields[0]?.startsWith('@')) {
      const name = fields.shift()
      // OpenSSH skips lines with a marker it does not know; so does mha.
      if (name !== '@cert-authority' && name !== '@revoked') continue
      marker = name === '@revoked' ? 'revoked' : 'cert-authority'
    }
    const [hosts, keyType, keyBase64] = fields
    if (!hosts || !keyType || !keyBase64) continue
    if (hosts.startsWith('|1|')) {
      const [, , salt, hash] = hosts.split('|')
      entries.push({marker, patterns: [], hashed: {salt: Buffer.from(salt ?? '', 'base64'), hash: Buffer.from(hash ?? '', 'base64')}, keyType, keyBase64})
    } else {
      entries.push({marker, patterns: hosts.split(','), hashed: undefined, keyType, keyBase64})
    }
  }
  return entries
}

/** The name OpenSSH looks up: "host" on port 22, "[host]:port" otherwise; host names are case-insensitive. */
export function knownHostsName(host: string, port: number): string {
  const lower = host.toLowerCase()
  return port === 22 ? lower : `[${lower}]:${port}`
}

/** OpenSSH's match_pattern: `*` any run of characters, `?` one character, nothing else special. */
export function wildcardMatch(pattern: string, name: string): boolean {
  const regex = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')
  return new RegExp(`^${regex}$`, 's').test(name)
}

/** OpenSSH's match_hostname: a matching negated pattern wins over every positive one. */
export function patternListMatches(patterns: string[], name: string): boolean {
  let positive = false
  for (const raw of patterns) {
    const negated = raw.startsWith('!')
    const pattern = (negated ? raw.slice(1) : raw).toLowerCase()
    if (!wildcardMatch(pattern, name)) continue
    if (negated) return false
    positive = true
  }
  return positive
}

function matches(entry: KnownHostEntry, name: string): boolean {
  if (entry.hashed) return createHmac('sha1', entry.hashed.salt).update(name).digest().equals(entry.hashed.hash)
  return patternListMatches(entry.patterns, name)
}

/** The entries that apply to this host, in file order. */
export function entriesFor(entries: KnownHostEntry[], host: string, port: number): KnownHostEntry[] {
  const name = knownHostsName(host, port)
  return entries.filter((e) => matches(e, name))
}

/** ssh2's host key algorithms for each known_hosts key type (RSA keys sign with SHA-2 first, as OpenSSH does). */
const ALGORITHMS_OF_KEY_TYPE: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
  'ssh-dss': ['ssh-dss'],
}
/** Every host key algorithm ssh2 can verify (it has no certificate algorithms). */
export const SUPPORTED_HOST_KEY_ALGORITHMS = Object.values(ALGORITHMS_OF_KEY_TYPE).flat()
/** ssh2's own default order, for the algorithms after the preferred ones. */
const DEFAULT_ORDER = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']

/**
 * The host key algorithms to offer, as OpenSSH orders them: the types known_hosts holds for this host
 * first, so a host with several keys presents the one we can check; then the rest. Undefined: nothing known.
 */
export function preferredHostKeyAlgorithms(mine: KnownHostEntry[]): string[] | undefined {
  const known = [...new Set(mine.filter((e) => e.marker === undefined).flatMap((e) => ALGORITHMS_OF_KEY_TYPE[e.keyType] ?? []))]
  if (known.length === 0) return undefined
  return [...known, ...DEFAULT_ORDER.filter((a) => !known.includes(a))]
}

export type HostKeyVerdict =
  | {kind: 'match'}
  | {kind: 'unknown'}
  /** The host presented a key of another type or another key: `known` are the types known_hosts holds. */
  | {kind: 'mismatch'; offeredType: string; known: string[]}
  | {kind: 'revoked'; offeredType: string}
  /** Only @cert-authority lines name this host: it must present a certificate, which ssh2 cannot negotiate. */
  | {kind: 'ca_only'}

/** The key type inside an SSH wire-format public key blob (string type, then the key data). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown'
  const length = blob.readUInt32BE(0)
  return blob.subarray(4, 4 + length).toString('latin1')
}

export function verifyHostKey(mine: KnownHostEntry[], key: Buffer): HostKeyVerdict {
  const offered = key.toString('base64')
  const offeredType = keyTypeOf(key)
  if (mine.some((e) => e.marker === 'revoked' && e.keyBase64 === offered)) return {kind: 'revoked', offeredType}
  const plain = mine.filter((e) => e.marker === undefined)
  if (plain.some((e) => e.keyBase64 === offered)) return {kind: 'match'}
  if (plain.length > 0) return {kind: 'mismatch', offeredType, known: [...new Set(plain.map((e) => e.keyType))]}
  if (mine.some((e) => e.marker === 'cert-authority')) return {kind: 'ca_only'}
  return {kind: 'unknown'}
}

/** The file cannot be used at all: missing or unreadable, said as such rather than as "host not in it". */
export class KnownHostsFileError extends Error {}

export function readKnownHosts(file: string): KnownHostEntry[] {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT')
      throw new KnownHostsFileError(`known_hosts file ${file} does not exist: create it with ssh-keyscan HOST >> ${file} (and check the keys it printed) or set ssh.known_hosts_file`)
    throw new KnownHostsFileError(`known_hosts file ${file} cannot be read (${code ?? (error as Error).message}): let the user running mha read it or set ssh.known_hosts_file`)
  }
  return parseKnownHosts(text)
}
