import {EventType} from './constants.js'
import {parseMariadbGtid, queryKind, type FormatDescription, type QueryKind} from './events.js'
import {BinlogError, type ScannedEvent, type TornEvent} from './scanner.js'
import {scanBinlog, type BinlogSource} from './source.js'

/** Event types whose bodies TransactionBoundaries reads. */
export const TRANSACTION_BODY_TYPES: readonly number[] = [EventType.QUERY, EventType.MARIADB_GTID]

/** Events that stand alone between transactions. */
const FILE_LEVEL = new Set<number>([
  EventType.FORMAT_DESCRIPTION,
  EventType.ROTATE,
  EventType.STOP,
  EventType.INCIDENT,
  EventType.PREVIOUS_GTIDS,
  EventType.MARIADB_GTID_LIST,
  EventType.MARIADB_BINLOG_CHECKPOINT,
  EventType.MARIADB_START_ENCRYPTION,
])

/**
 * Follows transaction groups through a binlog: a MariaDB GTID (not standalone) or a BEGIN (or MySQL XA START) query opens one,
 * XID / COMMIT / ROLLBACK / XA_PREPARE closes it; a standalone MariaDB GTID or a MySQL GTID is followed by
 * either BEGIN or a single statement (DDL).
 */
export class TransactionBoundaries {
  /** End offset of the last event that completed a transaction or stood alone. */
  lastBoundary = 0
  private state: 'idle' | 'gtid' | 'transaction' = 'idle'

  /** `event.data` must be present for TRANSACTION_BODY_TYPES. */
  observe(event: ScannedEvent, format: FormatDescription | null): void {
    const type = event.type
    const standalone = type === EventType.MARIADB_GTID && parseMariadbGtid(event.data!, 0, event.serverId).standalone
    const kind = type === EventType.QUERY ? queryKind(event.data!, 0, event.size, event.checksummed, format) : null
    this.observeClassified(type, kind, event.offset + event.size, standalone)
  }

  /**
   * The same rules for an event already classified by the caller (a row of SHOW BINLOG EVENTS): its type code,
   * the kind of a QUERY event (null for others), where it ends, and for a MariaDB GTID whether it is standalone.
   * True when the event completed a transaction or stood alone.
   */
  observeClassified(type: number, kind: QueryKind | null, end: number, standaloneGtid = false): boolean {
    if (type === EventType.MARIADB_GTID) {
      this.state = standaloneGtid ? 'gtid' : 'transaction'
      return false
    }
    if (type === EventType.GTID || type === EventType.ANONYMOUS_GTID || type === EventType.GTID_TAGGED) {
      this.state = 'gtid'
      return false
    }
    switch (this.state) {
      case 'idle':
        if (kind === 'begin') this.state = 'transaction'
        else if (kind !== null || type === EventType.MARIADB_QUERY_COMPRESSED || type === EventType.XID || FILE_LEVEL.has(type)) return this.#boundary(end)
        return false
      case 'gtid':
        if (kind === 'begin') {
          this.state = 'transaction'
        } else if (
          kind !== null ||
          type === EventType.MARIADB_QUERY_COMPRESSED ||
          type === EventType.TRANSACTION_PAYLOAD ||
          type === EventType.XID ||
          type === EventType.XA_PREPARE
        ) {
          this.state = 'idle'
          return this.#boundary(end)
        }
        return false
      case 'transaction':
        if (kind === 'commit' || kind === 'rollback' || type === EventType.XID || type === EventType.XA_PREPARE) {
          this.state = 'idle'
          return this.#boundary(end)
        }
        return false
    }
  }

  #boundary(end: number): true {
    this.lastBoundary = end
    return true
  }
}

export interface BinlogTail {
  file: string
  size: number
  events: number
  /** Cut here to drop a torn final event. */
  lastEventEnd: number
  /** Cut here to keep only whole transactions (a dead master's unfinished transaction never committed). */
  lastTransactionEnd: number
  torn: TornEvent | null
  /** The server never closed the file (LOG_EVENT_BINLOG_IN_USE_F): it crashed, or is still writing. */
  inUse: boolean
  /** The file ends with a Rotate or Stop event. */
  finished: boolean
  format: FormatDescription | null
}

/** For trimming a dead master's binlog: where its last complete event and last complete transaction end. */
export async function findBinlogTail(source: BinlogSource, options: {verifyChecksums?: boolean} = {}): Promise<BinlogTail> {
  const boundaries = new TransactionBoundaries()
  let format: FormatDescription | null = null
  let lastType = -1
  const {files} = await scanBinlog(
    source,
    (event) => {
      if (event.format && format === null) format = event.format
      boundaries.observe(event, format)
      lastType = event.type
    },
    {verifyChecksums: options.verifyChecksums ?? true, bodies: TRANSACTION_BODY_TYPES},
  )
  const summary = files[0]!
  return {
    file: summary.file,
    size: summary.size,
    events: summary.events,
    lastEventEnd: summary.lastEventEnd,
    lastTransactionEnd: Math.max(boundaries.lastBoundary, Math.min(summary.lastEventEnd, 4)),
    torn: summary.torn,
    inUse: summary.format?.inUse ?? false,
    finished: lastType === EventType.ROTATE || lastType === EventType.STOP,
    format: summary.format,
  }
}

/**
 * Where the transaction that binlog offset `at` lies in starts. `prefix` is findBinlogTail of the file's first `at`
 * bytes; `at` is a position a replica read up to (an event's end), which may fall inside a transaction when the
 * replica received only part of it. `at` itself when no transaction is open there; else the end of the last whole
 * transaction (or file-level event) before it, where the open one begins.
 */
export function transactionStartAt(prefix: BinlogTail, at: number): number {
  if (prefix.size !== at) throw new BinlogError(prefix.file, at, `the file is ${prefix.size} bytes, shorter than ${at}`)
  if (prefix.torn || prefix.lastEventEnd !== at) throw new BinlogError(prefix.file, at, `${at} is not an event boundary (the last event read before it ends at ${prefix.lastEventEnd})`)
  return prefix.lastTransactionEnd
}
