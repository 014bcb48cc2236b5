import {ChecksumAlg, CHECKSUM_LENGTH, EventType, HEADER_LENGTH, MariadbGtidFlag, ROTATE_POST_HEADER_LENGTH} from './constants.js'

/** What a FORMAT_DESCRIPTION_EVENT says about the events after it. */
export interface FormatDescription {
  binlogVersion: number
  /** e.g. "10.11.19-MariaDB-0+deb12u1-log". */
  serverVersion: string
  createTimestamp: number
  headerLength: number
  /** Post-header length of event type i + 1 at index i. */
  postHeaderLengths: Uint8Array
  /** ChecksumAlg.OFF, .CRC32, or .UNDEFINED for servers older than checksums (MySQL < 5.6.1, MariaDB < 5.3). */
  checksumAlg: number
  /** The writer still had the file open (LOG_EVENT_BINLOG_IN_USE_F): a crash leaves it set. */
  inUse: boolean
  serverId: number
}

export interface RotateInfo {
  nextFile: string
  position: number
}

// Byte offsets inside an FDE: binlog_version 2, server_version 50, create_timestamp 4, header_length 1, then post-header lengths.
const FDE_VERSION_LENGTH = 50
const FDE_TIMESTAMP_AT = HEADER_LENGTH + 2 + FDE_VERSION_LENGTH
const FDE_HEADER_LENGTH_AT = FDE_TIMESTAMP_AT + 4
const FDE_POST_HEADERS_AT = FDE_HEADER_LENGTH_AT + 1

/** Whether a server of this version ends its FDE with checksum alg + CRC (MySQL >= 5.6.1, MariaDB >= 5.3). */
export function isChecksumAware(serverVersion: string): boolean {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(serverVersion)
  if (!m) return false
  const version = Number(m[1]) * 10000 + Number(m[2]) * 100 + Number(m[3])
  return /mariadb/i.test(serverVersion) ? version >= 50300 : version >= 50601
}

export function parseFormatDescription(bytes: Buffer, start: number, size: number): FormatDescription {
  const versionBytes = bytes.subarray(start + HEADER_LENGTH + 2, start + FDE_TIMESTAMP_AT)
  const nul = versionBytes.indexOf(0)
  const serverVersion = versionBytes.toString('latin1', 0, nul === -1 ? versionBytes.length : nul)
  const aware = isChecksumAware(serverVersion)
  const end = start + size - (aware ? 1 + CHECKSUM_LENGTH : 0)
  return {
    binlogVersion: bytes.readUInt16LE(start + HEADER_LENGTH),
    serverVersion,
    createTimestamp: bytes.readUInt32LE(start + FDE_TIMESTAMP_AT),
    headerLength: bytes[start + FDE_HEADER_LENGTH_AT]!,
    postHeaderLengths: Uint8Array.from(bytes.subarray(start + FDE_POST_HEADERS_AT, end)),
    checksumAlg: aware ? bytes[end]! : ChecksumAlg.UNDEFINED,
    inUse: (bytes.readUInt16LE(start + 17) & 0x1) !== 0,
    serverId: bytes.readUInt32LE(start + 5),
  }
}

export function parseRotate(bytes: Buffer, start: number, size: number, checksummed: boolean): RotateInfo {
  const at = start + HEADER_LENGTH
  const position = bytes.readUInt32LE(at) + bytes.readUInt32LE(at + 4) * 0x1_0000_0000
  const nameEnd = start + size - (checksummed ? CHECKSUM_LENGTH : 0)
  return {nextFile: bytes.toString('latin1', at + ROTATE_POST_HEADER_LENGTH, nameEnd), position}
}

// thread_id 4, exec_time 4, db_len 1, error_code 2, status_vars_len 2
const QUERY_DEFAULT_POST_HEADER = 13

/** Where the SQL text of a QUERY event lies: [start, end). */
export function queryTextRange(
  bytes: Buffer,
  start: number,
  size: number,
  checksummed: boolean,
  format: FormatDescription | null,
): [number, number] {
  const postHeader = format?.postHeaderLengths[EventType.QUERY - 1] ?? QUERY_DEFAULT_POST_HEADER
  const at = start + HEADER_LENGTH
  const dbLength = bytes[at + 8]!
  const statusLength = bytes.readUInt16LE(at + 11)
  const textStart = at + postHeader + statusLength + dbLength + 1
  return [textStart, start + size - (checksummed ? CHECKSUM_LENGTH : 0)]
}

/** 'begin' also stands for the other statements that open a multi-event transaction (see queryKind). */
export type QueryKind = 'begin' | 'commit' | 'rollback' | 'other'

const BEGIN = Buffer.from('BEGIN')
const XA_START = Buffer.from('XA START ')
const COMMIT = Buffer.from('COMMIT')
const ROLLBACK = Buffer.from('ROLLBACK')

/** `word` is upper case; only its letters match either case. */
function equalsIgnoreCase(bytes: Buffer, start: number, end: number, word: Buffer): boolean {
  if (end - start !== word.length) return false
  for (let i = 0; i < word.length; i++) {
    const c = bytes[start + i]!
    const w = word[i]!
    if (c !== w && !(w >= 0x41 && w <= 0x5a && (c & 0xdf) === w)) return false
  }
  return true
}

/**
 * BEGIN / COMMIT / ROLLBACK exactly (as the server logs them), anything else is "other". Also 'begin': MySQL's
 * `XA START X'..',X'..',n`, which opens its XA transactions (GTID, XA START, ..., XA END, XA_PREPARE) where
 * BEGIN would; MariaDB's XA transactions are already opened by their GTID event.
 */
export function queryKind(bytes: Buffer, start: number, size: number, checksummed: boolean, format: FormatDescription | null): QueryKind {
  const [from, to] = queryTextRange(bytes, start, size, checksummed, format)
  if (equalsIgnoreCase(bytes, from, to, BEGIN)) return 'begin'
  if (to - from > XA_START.length && equalsIgnoreCase(bytes, from, from + XA_START.length, XA_START)) return 'begin'
  if (equalsIgnoreCase(bytes, from, to, COMMIT)) return 'commit'
  if (equalsIgnoreCase(bytes, from, to, ROLLBACK)) return 'rollback'
  return 'other'
}

export function queryText(bytes: Buffer, start: number, size: number, checksummed: boolean, format: FormatDescription | null): string {
  const [from, to] = queryTextRange(bytes, start, size, checksummed, format)
  return bytes.toString('utf8', from, to)
}

/** MariaDB GTID_EVENT: seq_no 8, domain_id 4, flags2 1. */
export interface MariadbGtid {
  domainId: number
  sequence: bigint
  flags: number
  standalone: boolean
}

export function parseMariadbGtid(bytes: Buffer, start: number, serverId: number): MariadbGtid & {text: string} {
  const at = start + HEADER_LENGTH
  const sequence = bytes.readBigUInt64LE(at)
  const domainId = bytes.readUInt32LE(at + 8)
  const flags = bytes[at + 12]!
  return {domainId, sequence, flags, standalone: (flags & MariadbGtidFlag.STANDALONE) !== 0, text: `${domainId}-${serverId}-${sequence}`}
}
