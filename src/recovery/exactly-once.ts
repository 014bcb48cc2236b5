import {open} from 'node:fs/promises'
import {EventType} from '../binlog/constants.js'
import {parseMariadbGtid, type FormatDescription} from '../binlog/events.js'
import {TransactionBoundaries} from '../binlog/tail.js'
import {parseMariadbGtidPos} from '../gtid/mariadb.js'
import {parseMysqlGtidSet, type MysqlGtidSet} from '../gtid/mysql.js'
import {withoutStartupMark} from './concat.js'
import {localRangeSource, scanRange} from './range-source.js'
import {appendFileFrom, writeSynthetic} from './synthetic-writer.js'

/** The GTID a transaction carries in the stream: MariaDB domain-server-seq, or MySQL uuid:gno. */
export type StreamGtid = {flavor: 'mariadb'; domain: number; serverId: number; seq: bigint} | {flavor: 'mysql'; uuid: string; gno: bigint}

/** One whole transaction of a synthetic binlog: its bytes are [start, end). */
export interface StreamTransaction {
  start: number
  end: number
  gtid: StreamGtid | null
}

export interface StreamLayout {
  transactions: StreamTransaction[]
  /** Offsets and bytes of every FORMAT_DESCRIPTION_EVENT, in order: a cut needs the one in force. */
  formats: Array<{offset: number; bytes: Buffer}>
  /** Bytes after the last whole transaction (an unfinished one: the master died before sending the rest). */
  unfinishedFrom: number | null
}

function formatGtid(gtid: StreamGtid): string {
  return gtid.flavor === 'mariadb' ? `${gtid.domain}-${gtid.serverId}-${gtid.seq}` : `${gtid.uuid}:${gtid.gno}`
}

export {formatGtid as formatStreamGtid}

/** MySQL GTID_LOG_EVENT body: commit flag (1), source uuid (16), gno (8). */
function parseMysqlGtid(data: Buffer): StreamGtid {
  const at = 19 + 1
  const hex = data.toString('hex', at, at + 16)
  const uuid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
  return {flavor: 'mysql', uuid, gno: data.readBigInt64LE(at + 16)}
}

/** Every whole transaction of a synthetic binlog, in order, with the GTID it was written with. */
export async function streamLayout(file: string): Promise<StreamLayout> {
  const boundaries = new TransactionBoundaries()
  const transactions: StreamTransaction[] = []
  const formats: StreamLayout['formats'] = []
  let format: FormatDescription | null = null
  const pending: {open: {start: number; gtid: StreamGtid | null} | null} = {open: null}
  await scanRange(localRangeSource(file), 0, (event, offset) => {
    if (event.format) {
      format = event.format
      formats.push({offset, bytes: Buffer.from(event.data!)})
    }
    const before = boundaries.lastBoundary
    if (event.type === EventType.MARIADB_GTID) pending.open = {start: offset, gtid: {flavor: 'mariadb', ...gtidParts(event.data!, event.serverId)}}
    else if (event.type === EventType.GTID) pending.open = {start: offset, gtid: parseMysqlGtid(event.data!)}
    else if (event.type === EventType.ANONYMOUS_GTID) pending.open = {start: offset, gtid: null}
    // Without a GTID event (old servers) a transaction opens with its BEGIN or is one statement.
    else if (pending.open === null && (event.type === EventType.QUERY || event.type === EventType.MARIADB_QUERY_COMPRESSED)) pending.open = {start: offset, gtid: null}
    boundaries.observe(event, format)
    if (boundaries.lastBoundary === before) return
    if (pending.open) transactions.push({start: pending.open.start, end: boundaries.lastBoundary, gtid: pending.open.gtid})
    pending.open = null
  })
  return {transactions, formats, unfinishedFrom: pending.open?.start ?? null}
}

function gtidParts(data: Buffer, serverId: number): {domain: number; serverId: number; seq: bigint} {
  const parsed = parseMariadbGtid(data, 0, serverId)
  return {domain: parsed.domainId, serverId, seq: parsed.sequence}
}

/**
 * What a target has committed, as far as it can tell: a function that says whether a stream GTID is
 * there, or null when the target keeps no record of what a client session applied.
 */
export type ExecutedTest = ((gtid: StreamGtid) => boolean) | null

/**
 * MariaDB records a session's transactions, with the GTIDs mysqlbinlog sets, in gtid_binlog_state, one
 * last seq per (domain, server_id); only with log_bin on. gtid_slave_pos holds what its SQL thread executed,
 * per domain (seq numbers grow within a domain: replication itself relies on that).
 */
export function mariadbExecuted(state: {logBin: boolean; binlogState: string; slavePos: string}): ExecutedTest {
  if (!state.logBin) return null
  const byServer = new Map(parseMariadbGtidPos(state.binlogState).map((g) => [`${g.domain}-${g.serverId}`, g.seq]))
  const byDomain = new Map(parseMariadbGtidPos(state.slavePos).map((g) => [g.domain, g.seq]))
  return (gtid) => {
    if (gtid.flavor !== 'mariadb') return false
    const own = byServer.get(`${gtid.domain}-${gtid.serverId}`)
    const replicated = byDomain.get(gtid.domain)
    return (own !== undefined && own >= gtid.seq) || (replicated !== undefined && replicated >= gtid.seq)
  }
}

/** MySQL with gtid_mode ON records every GTID it committed in gtid_executed. */
export function mysqlExecuted(state: {gtidMode: string; executed: string}): ExecutedTest {
  if (!/^ON/i.test(state.gtidMode)) return null
  const set: MysqlGtidSet = parseMysqlGtidSet(state.executed)
  return (gtid) => {
    if (gtid.flavor !== 'mysql') return false
    const source = set.find((s) => s.uuid === gtid.uuid.toLowerCase() && s.tag === '')
    return source?.intervals.some((i) => i.start <= gtid.gno && gtid.gno <= i.end) ?? false
  }
}

export interface AppliedPrefix {
  /** Whole transactions of the stream the target has committed already: the first `count`. */
  count: number
  /** Whether that count is known; false when the target or the stream carries no GTIDs. */
  known: boolean
}

/**
 * A stream is applied in order by one client session, so what a target committed of it is a prefix: the
 * transactions up to the last one the target has. Counting to the last (not the first missing) one keeps
 * a stream whose first transactions were already there for another reason from being applied twice.
 */
export function appliedPrefix(layout: StreamLayout, executed: ExecutedTest): AppliedPrefix {
  if (layout.transactions.length === 0) return {count: 0, known: true}
  if (!executed || layout.transactions.some((t) => t.gtid === null)) return {count: 0, known: false}
  let count = 0
  layout.transactions.forEach((t, i) => {
    if (executed(t.gtid!)) count = i + 1
  })
  return {count, known: true}
}

/**
 * The stream from its `skip`-th transaction on, as a synthetic binlog of its own: magic, the
 * FORMAT_DESCRIPTION_EVENT in force there (without its startup mark), then the remaining bytes.
 */
export async function writeStreamFrom(source: string, layout: StreamLayout, skip: number, target: string): Promise<{bytes: number}> {
  const from = layout.transactions[skip]?.start ?? layout.unfinishedFrom ?? layout.transactions.at(-1)?.end
  if (from === undefined) throw new Error(`${source}: nothing to apply after ${skip} transactions`)
  const format = [...layout.formats].reverse().find((f) => f.offset < from)
  if (!format) throw new Error(`${source}: no FORMAT_DESCRIPTION_EVENT before offset ${from}`)
  return await writeSynthetic(target, async (writer) => {
    writer.append(withoutStartupMark(format.bytes))
    const handle = await open(source, 'r')
    try {
      await appendFileFrom(writer, handle, from)
    } finally {
      await handle.close()
    }
    return {}
  })
}
