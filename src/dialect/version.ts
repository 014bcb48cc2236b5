import type {ServerVersion} from './types.js'

/** MariaDB prefixes its version with "5.5.5-" in the protocol handshake so that old MySQL clients accept it. */
const HANDSHAKE_PREFIX = /^5\.5\.5-(?=\d+\.\d+\.\d+)/

export function parseServerVersion(version: string, versionComment = ''): ServerVersion {
  const text = version.trim()
  const flavor = /mariadb/i.test(`${text} ${versionComment}`) ? 'mariadb' : 'mysql'
  const numbers = flavor === 'mariadb' ? text.replace(HANDSHAKE_PREFIX, '') : text
  const match = /^(\d+)\.(\d+)\.(\d+)/.exec(numbers)
  if (!match) throw new Error(`cannot parse server version ${JSON.stringify(version)}`)
  return {flavor, major: Number(match[1]), minor: Number(match[2]), patch: Number(match[3]), text}
}

/** Orders two versions of the same flavor; MariaDB and MySQL version numbers say nothing about each other. */
export function compareVersions(a: ServerVersion, b: ServerVersion): number {
  if (a.flavor !== b.flavor) throw new Error(`cannot compare ${a.flavor} ${a.text} with ${b.flavor} ${b.text}`)
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch
}

export function atLeast(version: ServerVersion, major: number, minor: number, patch = 0): boolean {
  return (version.major - major || version.minor - minor || version.patch - patch) >= 0
}
