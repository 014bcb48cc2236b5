import {createHash} from 'node:crypto'
import {existsSync, readFileSync, statSync} from 'node:fs'
import {open, rename} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'
import {EventType, TransactionBoundaries, type QueryKind} from '../binlog/index.js'
import {sqlString} from '../dialect/index.js'
import {syncDirectory} from './synthetic-writer.js'

/**
 * Exactly once on a MySQL target that records no GTIDs (gtid_mode OFF) but writes a binlog: where its binlog
 * ended right before a stream began is recorded in a file beside the work files, and a retry counts the whole
 * transactions the target's binlog holds after that position. The stream is applied in order by one client
 * session into a read-only server nobody else writes to, so that count is the part of the stream it committed.
 */

/** Where the target's binlog ended before the stream's first byte, and for which stream. */
export interface PositionRecord {
  server: string
  /** @@server_uuid then: a server rebuilt since has another. */
  serverUuid: string
  file: string
  pos: number
  stream: Array<{name: string; bytes: number}>
  at: string
}

/**
 * The record's place: one per target and per stream. `streamId` names the stream across attempts (a plan's step:
 * a retry may add a piece that could not be had before); without it, the input files' names and sizes do.
 */
export function positionRecordPath(dir: string, server: string, files: readonly string[], streamId?: string): string {
  const hash = createHash('sha256')
  if (streamId !== undefined) hash.update(streamId)
  else for (const f of streamFiles(files)) hash.update(`\0${f.name}\0${f.bytes}`)
  return join(dir, `apply-position-${server.replace(/[^A-Za-z0-9._-]/g, '_')}-${hash.digest('hex').slice(0, 16)}.json`)
}

export function streamFiles(files: readonly string[]): PositionRecord['stream'] {
  return files.map((f) => ({name: basename(f), bytes: statSync(f).size}))
}

export function readPositionRecord(path: string): PositionRecord | null {
  if (!existsSync(path)) return null
  return JSON.parse(readFileSync(path, 'utf8')) as PositionRecord
}

/** Written whole or not at all (a .partial renamed into place), and synced before the stream may start. */
export async function writePositionRecord(path: string, record: PositionRecord): Promise<void> {
  const partial = `${path}.partial`
  const handle = await open(partial, 'w', 0o600)
  try {
    await handle.writeFile(JSON.stringify(record) + '\n')
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(partial, path)
  await syncDirectory(dirname(path))
}

/** A row of SHOW BINLOG EVENTS: Log_name, Pos, Event_type, Server_id, End_log_pos, Info. */
export type BinlogEventRow = Record<string, unknown>

/** MySQL's Event_type names of the events that bound transactions; every other event lies inside one. */
const ROW_TYPES: Readonly<Record<string, number>> = {
  Query: EventType.QUERY,
  Xid: EventType.XID,
  Gtid: EventType.GTID,
  Anonymous_Gtid: EventType.ANONYMOUS_GTID,
  Gtid_tagged: EventType.GTID_TAGGED,
  XA_prepare: EventType.XA_PREPARE,
  Transaction_payload: EventType.TRANSACTION_PAYLOAD,
  Format_desc: EventType.FORMAT_DESCRIPTION,
  Rotate: EventType.ROTATE,
  Stop: EventType.STOP,
  Incident: EventType.INCIDENT,
  Previous_gtids: EventType.PREVIOUS_GTIDS,
}

/** Events that never lie inside a compressed payload: the first of them ends the payload's listed inner events. */
const OUTSIDE_PAYLOAD = new Set<number>([
  EventType.GTID,
  EventType.ANONYMOUS_GTID,
  EventType.GTID_TAGGED,
  EventType.FORMAT_DESCRIPTION,
  EventType.ROTATE,
  EventType.STOP,
  EventType.INCIDENT,
  EventType.PREVIOUS_GTIDS,
])

/** A Query row's Info is its statement, after `use \`db\`; ` when the event names a database. */
export function rowQueryKind(info: string): QueryKind {
  const statement = info.replace(/^use `(?:[^`]|``)*`; /, '')
  if (/^BEGIN$/i.test(statement) || /^XA START /i.test(statement)) return 'begin'
  if (/^COMMIT$/i.test(statement)) return 'commit'
  if (/^ROLLBACK$/i.test(statement)) return 'rollback'
  return 'other'
}

/**
 * Counts whole transactions in SHOW BINLOG EVENTS rows, fed in order (across pages and files), by the rules
 * the stream layout uses (TransactionBoundaries): XID or Query COMMIT closes one, a statement after a GTID
 * event (DDL) is one, a Transaction_payload (a compressed transaction) is one; the inner events MySQL lists
 * after a payload are not counted again.
 */
export class BinlogRowCounter {
  transactions = 0
  readonly #boundaries = new TransactionBoundaries()
  #open = false
  #inPayload = false

  feed(row: BinlogEventRow): void {
    const type = ROW_TYPES[String(row.Event_type)] ?? -1
    if (this.#inPayload) {
      if (!OUTSIDE_PAYLOAD.has(type)) return
      this.#inPayload = false
    }
    if (type === EventType.GTID || type === EventType.ANONYMOUS_GTID || type === EventType.GTID_TAGGED) this.#open = true
    else if (!this.#open && type === EventType.QUERY) this.#open = true
    const kind = type === EventType.QUERY ? rowQueryKind(typeof row.Info === 'string' ? row.Info : '') : null
    const closed = this.#boundaries.observeClassified(type, kind, Number(row.End_log_pos))
    if (type === EventType.TRANSACTION_PAYLOAD) this.#inPayload = true
    if (!closed) return
    if (this.#open) this.transactions++
    this.#open = false
  }

  /** Events after the last whole transaction. */
  get unfinished(): boolean {
    return this.#open
  }
}

export interface BinaryLogFile {
  name: string
  size: number
}

/** SHOW BINARY LOGS: Log_name, File_size (and Encrypted on 8.0), oldest first. */
export function parseBinaryLogs(rows: readonly Record<string, unknown>[]): BinaryLogFile[] {
  return rows.map((r) => ({name: String(r.Log_name), size: Number(r.File_size)}))
}

export type RowQuery = (sql: string) => Promise<Record<string, unknown>[]>

const PAGE = 1000

/** The target's binlog from `from` to its end, fed to a counter page by page (SQL only: no SSH). */
export async function countTransactionsSince(query: RowQuery, from: {file: string; pos: number}, logs: readonly BinaryLogFile[], page = PAGE): Promise<BinlogRowCounter> {
  const counter = new BinlogRowCounter()
  const first = logs.findIndex((l) => l.name === from.file)
  if (first < 0) throw new Error(`binlog ${from.file} is not among the server's binlogs`)
  for (const log of logs.slice(first)) {
    let pos = log.name === from.file ? from.pos : 4
    while (pos < log.size) {
      const rows = await query(`SHOW BINLOG EVENTS IN ${sqlString(log.name)} FROM ${pos} LIMIT ${page}`)
      let next = pos
      for (const row of rows) {
        counter.feed(row)
        // The inner events of a payload repeat its position: reading on from the last event's end skips none.
        next = Math.max(next, Number(row.End_log_pos))
      }
      if (rows.length < page || next <= pos) break
      pos = next
    }
  }
  return counter
}

/** The stream's committed prefix, or why it cannot be known. */
export type PositionPrefix = {count: number; known: true} | {problem: string}

/**
 * What earlier attempts committed of a stream (its files and whole transactions), from the record written
 * before the first of them streamed. No record: killed before it could stream, nothing was applied. Otherwise
 * the earlier stream must begin this one (the same files first), and the target's binlog after the recorded
 * position must still be there (same server, not purged, not reset) and hold no more whole transactions than
 * the stream, and no unfinished one.
 */
export async function positionPrefix(
  record: PositionRecord | null,
  target: {serverUuid: string; query: RowQuery},
  stream: {files: PositionRecord['stream']; transactions: number},
): Promise<PositionPrefix> {
  if (record === null) return {count: 0, known: true}
  const transactions = stream.transactions
  const at = `${record.file}:${record.pos}`
  const piece = (f: {name: string; bytes: number}): string => `${f.name} (${f.bytes} bytes)`
  // The earlier stream's transactions come first in this one only if its files do.
  if (record.stream.length > stream.files.length || record.stream.some((f, i) => piece(f) !== piece(stream.files[i]!)))
    return {problem: `the earlier attempt streamed ${record.stream.map(piece).join(' + ')}, which does not begin this stream (${stream.files.map(piece).join(' + ')})`}
  if (record.serverUuid !== target.serverUuid) return {problem: `its server_uuid is ${target.serverUuid}, not ${record.serverUuid} as when the position ${at} was recorded (the server was replaced)`}
  const logs = parseBinaryLogs(await target.query('SHOW BINARY LOGS'))
  const log = logs.find((l) => l.name === record.file)
  if (!log) return {problem: `its binlog ${record.file} (recorded position ${at}) is gone (purged or reset)`}
  if (log.size < record.pos) return {problem: `its binlog ${record.file} is ${log.size} bytes, shorter than the recorded position ${at} (reset)`}
  const counted = await countTransactionsSince(target.query, record, logs)
  if (counted.transactions > transactions)
    return {problem: `its binlog after ${at} holds ${counted.transactions} transactions, more than the ${transactions} of the stream (something else wrote to it)`}
  if (counted.unfinished) return {problem: `its binlog after ${at} ends inside a transaction (after ${counted.transactions} whole ones)`}
  return {count: counted.transactions, known: true}
}

/** One line: which server, what cannot be matched, what to do. */
export function positionRefusal(server: string, problem: string): string {
  return (
    `an earlier attempt streamed into ${server} and what it committed cannot be told from ${server}'s binlog: ${problem}; ` +
    `nothing is applied twice: compare ${server} with the saved binlogs and apply the missing part by hand, or restore ${server} from a backup (a replica: rebuild it from the new master)`
  )
}

export interface PositionedStream {
  prefix: PositionPrefix
  /** Records where the target's binlog ends, before the stream's first byte; kept as it is where a retry found one. */
  recordBeforeStream: () => Promise<void>
}

/**
 * The prefix of a stream an earlier attempt committed on a MySQL target with log_bin on and no GTIDs, and how
 * this attempt records its start. `statusQuery`: SHOW MASTER STATUS or SHOW BINARY LOG STATUS (the dialect's);
 * `persist`: copies the work files where another manager resuming the failover finds them (etcd).
 */
export async function appliedByPosition(
  query: RowQuery,
  options: {dir: string; server: string; serverUuid: string; files: readonly string[]; streamId?: string | undefined; retry: boolean; transactions: number; statusQuery: string; persist?: (() => Promise<void>) | undefined},
): Promise<PositionedStream> {
  const path = positionRecordPath(options.dir, options.server, options.files, options.streamId)
  const files = streamFiles(options.files)
  const found = options.retry ? readPositionRecord(path) : null
  const prefix = await positionPrefix(found, {serverUuid: options.serverUuid, query}, {files, transactions: options.transactions})
  const recordBeforeStream = async (): Promise<void> => {
    if (found) return
    const status = (await query(options.statusQuery))[0]
    if (!status || typeof status.File !== 'string' || status.File === '') throw new Error(`${options.statusQuery} returned no binlog file (log_bin off?)`)
    const at = {file: status.File, pos: Number(status.Position)}
    await writePositionRecord(path, {server: options.server, serverUuid: options.serverUuid, ...at, stream: files, at: new Date().toISOString()})
    await options.persist?.()
  }
  return {prefix, recordBeforeStream}
}
