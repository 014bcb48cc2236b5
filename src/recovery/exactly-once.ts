import {open} from 'node:fs/promises'
import {Transform, type TransformCallback} from 'node:stream'
import {EventType} from '../binlog/constants.js'
import {parseMariadbGtid, type FormatDescription} from '../binlog/events.js'
import {TransactionBoundaries} from '../binlog/tail.js'
import {parseMariadbGtidPos} from '../gtid/mariadb.js'
import {parseMysqlGtidSet, type MysqlGtidSet} from '../gtid/mysql.js'
import {withoutStartupMark} from './concat.js'
import {localRangeSource, scanRange} from './range-source.js'
import {appendFileFrom, appendFileRange, writeSynthetic} from './synthetic-writer.js'

/** The GTID a transaction carries in the stream: MariaDB domain-server-seq, or MySQL uuid:gno. */
export type StreamGtid = {flavor: 'mariadb'; domain: number; serverId: number; seq: bigint} | {flavor: 'mysql'; uuid: string; gno: bigint}

/** One whole transaction of a synthetic binlog: its bytes are [start, end). */
export interface StreamTransaction {
  start: number
  end: number
  gtid: StreamGtid | null
  /**
   * Ends with an XID event: an InnoDB-style transaction that mysqlbinlog closes with `COMMIT/*!*\/;`, where a
   * progress marker can join it and commit with it. DDL, non-transactional and XA transactions end otherwise.
   */
  xid: boolean
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
    if (pending.open) transactions.push({start: pending.open.start, end: boundaries.lastBoundary, gtid: pending.open.gtid, xid: event.type === EventType.XID})
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
  return recordedPerServer(state.binlogState, state.slavePos)
}

/**
 * A MariaDB target with log_bin off records nothing of a client session's transactions; mha then records them
 * itself: each XID transaction of the stream also writes its GTID to PROGRESS_TABLE (one last seq per domain
 * and server, as gtid_binlog_state keeps them), committed with it. `marks` is that table's content in the same
 * text form (domain-server-seq, comma-separated); gtid_slave_pos counts as for mariadbExecuted.
 */
export function markedExecuted(state: {marks: string; slavePos: string}): ExecutedTest {
  return recordedPerServer(state.marks, state.slavePos)
}

function recordedPerServer(perServer: string, slavePos: string): NonNullable<ExecutedTest> {
  const byServer = new Map(parseMariadbGtidPos(perServer).map((g) => [`${g.domain}-${g.serverId}`, g.seq]))
  const byDomain = new Map(parseMariadbGtidPos(slavePos).map((g) => [g.domain, g.seq]))
  return (gtid) => {
    if (gtid.flavor !== 'mariadb') return false
    const own = byServer.get(`${gtid.domain}-${gtid.serverId}`)
    const replicated = byDomain.get(gtid.domain)
    return (own !== undefined && own >= gtid.seq) || (replicated !== undefined && replicated >= gtid.seq)
  }
}

/** Where a MariaDB target without a binlog keeps, per domain and server, the last GTID mha applied to it. */
export const PROGRESS_TABLE = 'mysql.mha_applied_gtid'
export const PROGRESS_TABLE_DDL = `CREATE TABLE IF NOT EXISTS ${PROGRESS_TABLE} (domain_id INT UNSIGNED NOT NULL, server_id INT UNSIGNED NOT NULL, seq_no BIGINT UNSIGNED NOT NULL, PRIMARY KEY (domain_id, server_id)) ENGINE=InnoDB`

const GTID_PART = /^\/\*M?!\d+ SET @@session\.(gtid_domain_id|server_id|gtid_seq_no)=(\d+)\*\/\/\*!\*\/;$/
const XID_COMMIT = 'COMMIT/*!*/;'

/**
 * Rewrites mysqlbinlog's output on its way to the client: before each `COMMIT/*!*\/;` (the commit of an XID
 * transaction) it adds the statement that records the transaction's GTID in PROGRESS_TABLE, so the mark commits
 * with the transaction or not at all. The GTID is the one mysqlbinlog set for the session (it prints the domain
 * and server only when they change, the seq for every transaction). A commit with no GTID set since the last
 * one fails the stream: a transaction must never commit unmarked.
 */
export class ProgressMarker extends Transform {
  /** Marks written so far. */
  marks = 0
  #carry = ''
  #domain: string | null = null
  #server: string | null = null
  #seq: string | null = null

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    // latin1 keeps every byte as it is (binary-mode statements may hold any byte).
    const text = this.#carry + chunk.toString('latin1')
    const last = text.lastIndexOf('\n')
    this.#carry = text.slice(last + 1)
    if (last < 0) return done()
    try {
      done(null, Buffer.from(this.#rewrite(text.slice(0, last + 1)), 'latin1'))
    } catch (error) {
      done(error as Error)
    }
  }

  override _flush(done: TransformCallback): void {
    done(null, this.#carry === '' ? null : Buffer.from(this.#carry, 'latin1'))
  }

  #rewrite(lines: string): string {
    // Most chunks hold neither a GTID nor a commit: pass them on untouched.
    if (!lines.includes('@@session.') && !lines.includes(XID_COMMIT)) return lines
    const out: string[] = []
    for (const line of lines.split('\n')) {
      if (line === XID_COMMIT) {
        if (this.#domain === null || this.#server === null || this.#seq === null) throw new Error(`a commit with no GTID set before it (after ${this.marks} marked transactions)`)
        out.push(`INSERT INTO ${PROGRESS_TABLE} (domain_id, server_id, seq_no) VALUES (${this.#domain}, ${this.#server}, ${this.#seq}) ON DUPLICATE KEY UPDATE seq_no = GREATEST(seq_no, VALUES(seq_no))`, '/*!*/;')
        this.#seq = null
        this.marks++
      } else {
        const part = GTID_PART.exec(line)
        if (part?.[1] === 'gtid_domain_id') this.#domain = part[2]!
        else if (part?.[1] === 'server_id') this.#server = part[2]!
        else if (part?.[1] === 'gtid_seq_no') this.#seq = part[2]!
      }
      out.push(line)
    }
    return out.join('\n')
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
  /** Whole transactions of the stream the target has committed already: the ones in `applied`. */
  count: number
  /** Whether that count is known; false when the target or the stream carries no GTIDs. */
  known: boolean
  /** Indexes (ascending) of the transactions the target has; the first `count` when they lead the stream. */
  applied: number[]
}

/** Where a transaction's GTID is in order with others: its MariaDB domain, or its MySQL source uuid. */
function orderKey(gtid: StreamGtid): string {
  return gtid.flavor === 'mariadb' ? `d${gtid.domain}` : `u${gtid.uuid.toLowerCase()}`
}

/**
 * What a target committed of a stream, per replication domain (MariaDB gtid_domain_id; MySQL: per source uuid).
 * Within one domain transactions commit in order (a client session applies the stream in order, the SQL thread
 * commits a domain in order), so what the target has of a domain is a prefix of that domain's transactions: up
 * to the last one it has. Counting to the last (not the first missing) one keeps a stream whose first
 * transactions were already there for another reason from being applied twice. Across domains nothing is in
 * order (parallel replication commits domains independently): a transaction the target has in one domain says
 * nothing of an earlier one in another, which may be a hole that must still be applied.
 * `marksXidOnly`: the target's record holds XID transactions only (markedExecuted); a transaction it lacks is
 * then known to be missing only if it is one of those (any other may have committed unmarked): every kept
 * transaction up to the one after the last the target has must be an XID one.
 */
export function appliedPrefix(layout: StreamLayout, executed: ExecutedTest, marksXidOnly = false): AppliedPrefix {
  if (layout.transactions.length === 0) return {count: 0, known: true, applied: []}
  if (!executed || layout.transactions.some((t) => t.gtid === null)) return {count: 0, known: false, applied: []}
  const lastInDomain = new Map<string, number>()
  let last = -1
  layout.transactions.forEach((t, i) => {
    if (!executed(t.gtid!)) return
    lastInDomain.set(orderKey(t.gtid!), i)
    last = i
  })
  const applied: number[] = []
  let known = true
  layout.transactions.forEach((t, i) => {
    if (i <= (lastInDomain.get(orderKey(t.gtid!)) ?? -1)) applied.push(i)
    else if (marksXidOnly && i <= last + 1 && !t.xid) known = false
  })
  return {count: applied.length, known, applied}
}

/**
 * The stream without the transactions the target has (`applied`, ascending indexes), as a synthetic binlog of its
 * own: magic, the FORMAT_DESCRIPTION_EVENT in force at the first byte kept (without its startup mark), then every
 * byte from there on except those of the applied transactions after it. What lies between transactions (a later
 * format description, rotations) stays; a stream that the target has in order is one cut.
 */
export async function writeStreamWithout(source: string, layout: StreamLayout, applied: readonly number[], target: string): Promise<{bytes: number}> {
  const skipped = new Set(applied)
  const firstKept = layout.transactions.findIndex((_, i) => !skipped.has(i))
  const from = firstKept >= 0 ? layout.transactions[firstKept]!.start : (layout.unfinishedFrom ?? layout.transactions.at(-1)?.end)
  if (from === undefined) throw new Error(`${source}: nothing to apply without ${applied.length} transactions`)
  const format = [...layout.formats].reverse().find((f) => f.offset < from)
  if (!format) throw new Error(`${source}: no FORMAT_DESCRIPTION_EVENT before offset ${from}`)
  const holes = layout.transactions.filter((t, i) => skipped.has(i) && t.start >= from)
  return await writeSynthetic(target, async (writer) => {
    writer.append(withoutStartupMark(format.bytes))
    const handle = await open(source, 'r')
    try {
      let at = from
      for (const hole of holes) {
        await appendFileRange(writer, handle, at, hole.start)
        at = hole.end
      }
      await appendFileFrom(writer, handle, at)
    } finally {
      await handle.close()
    }
    return {}
  })
}
