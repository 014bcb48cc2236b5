export interface MariadbGtid {
  domain: number
  serverId: number
  seq: bigint
}

/** A position as MariaDB prints it ("0-1-100,1-2-50") or already parsed. */
export type MariadbPosition = string | readonly MariadbGtid[]

export type MariadbComparison = 'equal' | 'ahead' | 'behind' | 'diverged'

/** The transactions seq fromSeq+1 … toSeq of one domain. */
export interface MariadbMissingRange {
  domain: number
  fromSeq: bigint
  toSeq: bigint
}

export interface NamedMariadbPosition {
  name: string
  pos: MariadbPosition
}

export type MostAdvancedMariadb =
  /** Every name here holds all the others' transactions; they are equal to one another. */
  | {kind: 'found'; names: string[]}
  /** No position holds all the others; frontier: the names no other position is ahead of. */
  | {kind: 'diverged'; frontier: string[]}

const UINT32_MAX = 2 ** 32 - 1
const UINT64_MAX = 2n ** 64n - 1n
const gtidPattern = /^(\d+)-(\d+)-(\d+)$/

/** Keeps every domain-server pair: gtid_binlog_pos lists one GTID per server_id that wrote in a domain. */
export function parseMariadbGtidPos(text: string): MariadbGtid[] {
  const trimmed = text.trim()
  if (trimmed === '') return []
  const seen = new Set<string>()
  return trimmed.split(',').map((part) => {
    const item = part.trim()
    const bad = (why: string) =>
      new Error(`invalid MariaDB GTID position ${JSON.stringify(text)}: ${JSON.stringify(item)} ${why}`)
    const m = gtidPattern.exec(item)
    if (!m) throw bad('is not domain-server-seq')
    const domain = Number(m[1])
    const serverId = Number(m[2])
    const seq = BigInt(m[3]!)
    if (domain > UINT32_MAX) throw bad('has a domain id above 4294967295')
    if (serverId > UINT32_MAX) throw bad('has a server id above 4294967295')
    if (seq > UINT64_MAX) throw bad('has a sequence number above 2^64-1')
    const key = `${domain}-${serverId}`
    if (seen.has(key)) throw bad(`repeats domain ${domain} server ${serverId}`)
    seen.add(key)
    return {domain, serverId, seq}
  })
}

function gtidsOf(pos: MariadbPosition): readonly MariadbGtid[] {
  return typeof pos === 'string' ? parseMariadbGtidPos(pos) : pos
}

function byDomainThenServer(a: MariadbGtid, b: MariadbGtid): number {
  return a.domain - b.domain || a.serverId - b.serverId
}

export function formatMariadbGtid(gtid: MariadbGtid): string {
  return `${gtid.domain}-${gtid.serverId}-${gtid.seq}`
}

/** Canonical order: by domain, then server id. */
export function formatMariadbGtidPos(pos: readonly MariadbGtid[]): string {
  return [...pos].sort(byDomainThenServer).map(formatMariadbGtid).join(',')
}

/** The GTID with the highest seq of each domain, in domain order; on a tie the first listed wins. */
export function mariadbMaxPerDomain(pos: MariadbPosition): Map<number, MariadbGtid> {
  const max = new Map<number, MariadbGtid>()
  for (const gtid of gtidsOf(pos)) {
    const current = max.get(gtid.domain)
    if (!current || gtid.seq > current.seq) max.set(gtid.domain, gtid)
  }
  return new Map([...max].sort(([a], [b]) => a - b))
}

/** Per domain by highest seq; a domain only one side has puts that side ahead in it. */
export function compareMariadbPositions(a: MariadbPosition, b: MariadbPosition): MariadbComparison {
  const maxA = mariadbMaxPerDomain(a)
  const maxB = mariadbMaxPerDomain(b)
  let ahead = false
  let behind = false
  for (const domain of new Set([...maxA.keys(), ...maxB.keys()])) {
    const x = maxA.get(domain)
    const y = maxB.get(domain)
    if (!y || (x && x.seq > y.seq)) ahead = true
    else if (!x || x.seq < y.seq) behind = true
    else if (x.serverId !== y.serverId) {
      // One seq written by two servers: each side holds a transaction the other lacks.
      ahead = true
      behind = true
    }
  }
  if (ahead && behind) return 'diverged'
  if (ahead) return 'ahead'
  return behind ? 'behind' : 'equal'
}

/** What b holds that a lacks, per domain, judged by seq alone (same-seq conflicts show as 'diverged' in compareMariadbPositions). */
export function mariadbMissing(a: MariadbPosition, b: MariadbPosition): MariadbMissingRange[] {
  const maxA = mariadbMaxPerDomain(a)
  const missing: MariadbMissingRange[] = []
  for (const [domain, tip] of mariadbMaxPerDomain(b)) {
    const fromSeq = maxA.get(domain)?.seq ?? 0n
    if (tip.seq > fromSeq) missing.push({domain, fromSeq, toSeq: tip.seq})
  }
  return missing
}

export function mostAdvancedMariadb(positions: readonly NamedMariadbPosition[]): MostAdvancedMariadb {
  if (positions.length === 0) throw new Error('no GTID positions to choose the most advanced from')
  const parsed = positions.map(({name, pos}) => ({name, pos: gtidsOf(pos)}))
  const relation = (i: number, j: number) => compareMariadbPositions(parsed[i]!.pos, parsed[j]!.pos)
  const others = (i: number) => parsed.map((_, j) => j).filter((j) => j !== i)
  const holdsAll = (i: number) =>
    others(i).every((j) => {
      const r = relation(i, j)
      return r === 'equal' || r === 'ahead'
    })
  const names = parsed.filter((_, i) => holdsAll(i)).map(({name}) => name)
  if (names.length > 0) return {kind: 'found', names}
  const frontier = parsed.filter((_, i) => others(i).every((j) => relation(j, i) !== 'ahead')).map(({name}) => name)
  return {kind: 'diverged', frontier}
}

export interface MariadbErrantOptions {
  /**
   * The replica's position is its gtid_binlog_state (the last GTID of every domain-server pair in its binlog),
   * and so are the others' where known. A GTID d-s-n is then accounted for only by another position holding
   * server s in domain d at seq n or more: a higher seq of another server no longer excuses it, so a local write
   * followed by replicated transactions (invisible in gtid_binlog_pos) is found.
   */
  byServer?: boolean
  /**
   * server_id of the master the replicas share: with byServer, its GTIDs are never errant, even those only
   * this replica received. Unknown: a GTID of the server whose GTID is last in that domain elsewhere is accepted.
   */
  masterServerId?: number | null
}

/**
 * GTIDs of `replica` that no other position accounts for. Rule: a replica GTID d-s-n is errant when, for every
 * other position (other replicas, the master's last known one), the latest GTID in domain d is missing, or has a
 * seq <= n and comes from a server other than s. A matching server lets the most advanced replica run ahead on
 * the master's own stream; only the latest GTID counts, so an old entry of server s in someone's gtid_binlog_pos
 * does not excuse a new local write by s. Errant GTIDs hidden below the others' seq cannot be seen in positions:
 * give gtid_binlog_state with `byServer` to see them.
 */
export function mariadbErrant(replica: MariadbPosition, others: readonly MariadbPosition[], options: MariadbErrantOptions = {}): MariadbGtid[] {
  if (others.length === 0) throw new Error('errant GTID detection needs at least one other position')
  const otherMaxima = others.map((pos) => mariadbMaxPerDomain(pos))
  const accountedByPosition = (gtid: MariadbGtid) =>
    otherMaxima.some((maxima) => {
      const tip = maxima.get(gtid.domain)
      return tip !== undefined && (tip.seq > gtid.seq || tip.serverId === gtid.serverId)
    })
  const otherEntries = others.map((pos) => gtidsOf(pos))
  const master = options.masterServerId ?? null
  const accountedByServer = (gtid: MariadbGtid) =>
    gtid.serverId === master ||
    otherEntries.some((entries) => entries.some((o) => o.domain === gtid.domain && o.serverId === gtid.serverId && o.seq >= gtid.seq)) ||
    (master === null && otherMaxima.some((maxima) => maxima.get(gtid.domain)?.serverId === gtid.serverId))
  const accounted = options.byServer ? accountedByServer : accountedByPosition
  return [...gtidsOf(replica)].sort(byDomainThenServer).filter((gtid) => !accounted(gtid))
}
