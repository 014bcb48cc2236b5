/** Inclusive on both ends, as MySQL prints "1-5". */
export interface MysqlGtidInterval {
  start: bigint
  end: bigint
}

/** The GTIDs of one transaction source: a server uuid and, since MySQL 8.3, an optional tag ('' = untagged). */
export interface MysqlGtidSource {
  uuid: string
  tag: string
  intervals: MysqlGtidInterval[]
}

/** Canonical when it comes from this module: sorted by uuid then tag, intervals sorted and merged, no empty sources. */
export type MysqlGtidSet = MysqlGtidSource[]

/** A set as MySQL prints it or already parsed. */
export type MysqlGtidSetInput = string | readonly MysqlGtidSource[]

const GNO_MAX = 2n ** 63n - 1n
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const tagPattern = /^[a-z_][a-z0-9_]{0,31}$/i
const intervalPattern = /^(\d+)(?:\s*-\s*(\d+))?$/

/** Accepts MySQL's output as is: any case, whitespace or newlines around separators, "uuid:tag:1-5" and "uuid:1-5:tag:7". */
export function parseMysqlGtidSet(text: string): MysqlGtidSet {
  const trimmed = text.trim()
  if (trimmed === '') return []
  const sources: MysqlGtidSource[] = []
  for (const element of trimmed.split(',')) {
    const item = element.trim()
    const bad = (why: string) =>
      new Error(`invalid MySQL GTID set ${JSON.stringify(text)}: ${JSON.stringify(item)} ${why}`)
    const [uuid = '', ...parts] = item.split(':').map((part) => part.trim())
    if (!uuidPattern.test(uuid)) throw bad(`does not start with a server uuid`)
    let current: MysqlGtidSource | undefined
    for (const part of parts) {
      const interval = intervalPattern.exec(part)
      if (interval) {
        const start = BigInt(interval[1]!)
        const end = interval[2] === undefined ? start : BigInt(interval[2])
        if (start < 1n) throw bad('has transaction number 0')
        if (end < start) throw bad(`has the descending interval ${part}`)
        if (end > GNO_MAX) throw bad('has a transaction number above 2^63-1')
        current ??= {uuid: uuid.toLowerCase(), tag: '', intervals: []}
        current.intervals.push({start, end})
      } else if (tagPattern.test(part)) {
        if (current?.intervals.length === 0) throw bad(`has no interval for tag ${current.tag}`)
        if (current) sources.push(current)
        current = {uuid: uuid.toLowerCase(), tag: part.toLowerCase(), intervals: []}
      } else {
        throw bad(`has ${JSON.stringify(part)}, neither an interval nor a tag`)
      }
    }
    if (!current || current.intervals.length === 0) throw bad('has no interval')
    sources.push(current)
  }
  return canonical(sources)
}

function formatInterval({start, end}: MysqlGtidInterval): string {
  return start === end ? `${start}` : `${start}-${end}`
}

/** MySQL's canonical text; MySQL itself separates uuids with ",\n", pass that as separator to match byte for byte. */
export function formatMysqlGtidSet(set: MysqlGtidSetInput, separator = ','): string {
  const groups = new Map<string, string[]>()
  for (const {uuid, tag, intervals} of setOf(set)) {
    const parts = groups.get(uuid) ?? []
    if (tag !== '') parts.push(tag)
    parts.push(...intervals.map(formatInterval))
    groups.set(uuid, parts)
  }
  return [...groups].map(([uuid, parts]) => [uuid, ...parts].join(':')).join(separator)
}

function compareBigints(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function mergeIntervals(intervals: readonly MysqlGtidInterval[]): MysqlGtidInterval[] {
  const merged: MysqlGtidInterval[] = []
  for (const {start, end} of [...intervals].sort((a, b) => compareBigints(a.start, b.start))) {
    const last = merged.at(-1)
    if (last && start <= last.end + 1n) {
      if (end > last.end) last.end = end
    } else {
      merged.push({start, end})
    }
  }
  return merged
}

function subtractIntervals(from: readonly MysqlGtidInterval[], holes: readonly MysqlGtidInterval[]): MysqlGtidInterval[] {
  const rest: MysqlGtidInterval[] = []
  for (const range of from) {
    let start = range.start
    for (const hole of holes) {
      if (hole.end < start) continue
      if (hole.start > range.end) break
      if (hole.start > start) rest.push({start, end: hole.start - 1n})
      start = hole.end + 1n
      if (start > range.end) break
    }
    if (start <= range.end) rest.push({start, end: range.end})
  }
  return rest
}

const sourceKey = ({uuid, tag}: MysqlGtidSource) => `${uuid}:${tag}`

function canonical(sources: readonly MysqlGtidSource[]): MysqlGtidSet {
  const byKey = new Map<string, MysqlGtidSource>()
  for (const {uuid, tag, intervals} of sources) {
    const source = {uuid: uuid.toLowerCase(), tag: tag.toLowerCase(), intervals}
    const existing = byKey.get(sourceKey(source))
    byKey.set(sourceKey(source), {...source, intervals: [...(existing?.intervals ?? []), ...intervals]})
  }
  return [...byKey.values()]
    .map((source) => ({...source, intervals: mergeIntervals(source.intervals)}))
    .filter((source) => source.intervals.length > 0)
    .sort((a, b) => (a.uuid < b.uuid ? -1 : a.uuid > b.uuid ? 1 : a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0))
}

function setOf(set: MysqlGtidSetInput): MysqlGtidSet {
  return typeof set === 'string' ? parseMysqlGtidSet(set) : canonical(set)
}

export function mysqlGtidUnion(...sets: MysqlGtidSetInput[]): MysqlGtidSet {
  return canonical(sets.flatMap(setOf))
}

/** a − b, as GTID_SUBTRACT(a, b). */
export function mysqlGtidSubtract(a: MysqlGtidSetInput, b: MysqlGtidSetInput): MysqlGtidSet {
  const holes = new Map(setOf(b).map((source) => [sourceKey(source), source.intervals]))
  return setOf(a)
    .map((source) => ({...source, intervals: subtractIntervals(source.intervals, holes.get(sourceKey(source)) ?? [])}))
    .filter((source) => source.intervals.length > 0)
}

/** Whether every GTID of a is in b, as GTID_SUBSET(a, b). */
export function mysqlGtidIsSubset(a: MysqlGtidSetInput, b: MysqlGtidSetInput): boolean {
  return mysqlGtidSubtract(a, b).length === 0
}

export function mysqlGtidCount(set: MysqlGtidSetInput): bigint {
  let count = 0n
  for (const {intervals} of setOf(set)) for (const {start, end} of intervals) count += end - start + 1n
  return count
}

/** Transactions the replica executed that neither the master's last known gtid_executed nor any other replica has. */
export function mysqlErrant(replica: MysqlGtidSetInput, others: readonly MysqlGtidSetInput[]): MysqlGtidSet {
  if (others.length === 0) throw new Error('errant GTID detection needs at least one other GTID set')
  return mysqlGtidSubtract(replica, mysqlGtidUnion(...others))
}
