import {createHmac} from 'node:crypto'
import {readFileSync} from 'node:fs'

/** known_hosts entries as the OpenSSH client writes them, plain or hashed (|1|salt|hash). */
export interface KnownHostEntry {
  patterns: string[]
  hashed: {salt: Buffer; hash: Buffer} | undefined
  keyType: string
  keyBase64: string
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = []
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith('@')) continue
    const [hosts, keyType, keyBase64] = line.split(/\s+/)
    if (!hosts || !keyType || !keyBase64) continue
    if (hosts.startsWith('|1|')) {
      const [, , salt, hash] = hosts.split('|')
      entries.push({patterns: [], hashed: {salt: Buffer.from(salt ?? '', 'base64'), hash: Buffer.from(hash ?? '', 'base64')}, keyType, keyBase64})
    } else {
      entries.push({patterns: hosts.split(','), hashed: undefined, keyType, keyBase64})
    }
  }
  return entries
}

/** The name OpenSSH looks up: "host" on port 22, "[host]:port" otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`
}

function matches(entry: KnownHostEntry, name: string): boolean {
  if (entry.hashed) {
    const digest = createHmac('sha1', entry.hashed.salt).update(name).digest()
    return digest.equals(entry.hashed.hash)
  }
  return entry.patterns.includes(name)
}

export type HostKeyVerdict = 'match' | 'mismatch' | 'unknown'

export function verifyHostKey(entries: KnownHostEntry[], host: string, port: number, key: Buffer): HostKeyVerdict {
  const name = knownHostsName(host, port)
  const mine = entries.filter((e) => matches(e, name))
  if (mine.length === 0) return 'unknown'
  const offered = key.toString('base64')
  return mine.some((e) => e.keyBase64 === offered) ? 'match' : 'mismatch'
}

export function readKnownHosts(file: string): KnownHostEntry[] {
  try {
    return parseKnownHosts(readFileSync(file, 'utf8'))
  } catch {
    return []
  }
}
