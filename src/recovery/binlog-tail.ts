import {posix} from 'node:path'
import {EventType, HEADER_LENGTH, MAGIC_LENGTH} from '../binlog/constants.js'
import {binlogBaseName, binlogSequence, compareBinlogNames, formatCoordinates, type BinlogCoordinates} from '../binlog/coordinates.js'
import type {FormatDescription} from '../binlog/events.js'
import {BinlogError} from '../binlog/scanner.js'
import {TransactionBoundaries} from '../binlog/tail.js'
import {shellQuote, type SshSession} from '../remote/ssh.js'
import {UserError} from '../util/errors.js'
import {readAgainOnBadCopy, remoteRangeSource, scanRange, type RangeSource} from './range-source.js'
import {writeSynthetic} from './synthetic-writer.js'

export interface SavedBinlogTail {
  /** Master coordinates just after the last complete transaction kept: what the saved file brings a replica to. */
  end: BinlogCoordinates
  /** Size of the saved file. */
  bytes: number
  /** Bytes dropped at file ends: a torn final event and the unfinished transaction it belonged to. */
  trimmed: number
  /** Events kept after the header. */
  events: number
}

/** Per-file bookkeeping events that mean nothing outside their own file; mysqlbinlog would only print them as comments. */
export const FILE_BOOKKEEPING_TYPES: ReadonlySet<number> = new Set([
  EventType.PREVIOUS_GTIDS,
  EventType.MARIADB_GTID_LIST,
  EventType.MARIADB_BINLOG_CHECKPOINT,
])

interface KeptUpTo {
  outputLength: number
  events: number
  coordinates: BinlogCoordinates
}

/**
 * A dead master's binlogs from `from` on, as ONE synthetic binlog (MHA's save_binary_logs): magic, the
 * first file's FORMAT_DESCRIPTION_EVENT, its events from `from.pos`, then each later file's events from its
 * own FDE on (kept, unlike MHA, because binlog_checksum may differ from file to file). Bookkeeping events
 * (GTID list, checkpoint, previous GTIDs) are dropped; a later file's Rotate is kept (mysqlbinlog prints it as
 * a comment). Each file is cut after its last complete transaction: what follows never committed. Checksums
 * are verified as the files are read.
 */
export async function assembleBinlogTail(
  files: readonly RangeSource[],
  from: BinlogCoordinates,
  localFile: string,
  options: {verifyChecksums?: boolean} = {},
): Promise<SavedBinlogTail> {
  checkFileSequence(files.map((f) => f.name), from)
  return await writeSynthetic(localFile, async (writer) => {
    let kept: KeptUpTo | null = null
    let events = 0
    let trimmed = 0
    for (const [index, source] of files.entries()) {
      const start = index === 0 ? from.pos : 0
      const boundaries = new TransactionBoundaries()
      let format: FormatDescription | null = null
      const summary = await scanRange(
        source,
        start,
        (event, offset) => {
          if (event.format) format = event.format
          if (offset < start) {
            // Only the first file's own FDE is wanted from before the start.
            if (kept === null && event.format && offset === MAGIC_LENGTH) {
              writer.append(event.data!)
              kept = {outputLength: writer.length, events: 0, coordinates: {file: source.name, pos: start}}
            }
            return
          }
          if (!FILE_BOOKKEEPING_TYPES.has(event.type)) {
            writer.append(event.data!)
            if (event.type !== EventType.FORMAT_DESCRIPTION) events++
          }
          if (kept === null) {
            if (!event.format) throw new BinlogError(source.name, offset, 'the binlog does not begin with a FORMAT_DESCRIPTION_EVENT')
            kept = {outputLength: writer.length, events, coordinates: {file: source.name, pos: offset + event.size}}
            return
          }
          const before = boundaries.lastBoundary
          boundaries.observe(event, format)
          if (boundaries.lastBoundary !== before) kept = {outputLength: writer.length, events, coordinates: {file: source.name, pos: offset + event.size}}
        },
        {...options, afterChunk: () => writer.flush()},
      )
      if (start > MAGIC_LENGTH) checkEventBoundary(source.name, from, summary.headerAtStart)
      const keptNow = kept as KeptUpTo | null
      if (keptNow === null) throw new BinlogError(source.name, MAGIC_LENGTH, 'no FORMAT_DESCRIPTION_EVENT found')
      if (summary.torn) trimmed += summary.torn.bytesPresent
      // Within one file a transaction is whole or never committed: the master writes each one into one binlog.
      trimmed += writer.length - keptNow.outputLength
      writer.truncateTo(keptNow.outputLength)
      events = keptNow.events
    }
    const last = kept as KeptUpTo | null
    return {end: last!.coordinates, trimmed, events}
  })
}

/**
 * A master binlog's end_log_pos is where the event ends in that file: an event header at `from.pos` whose
 * end_log_pos is from.pos + its size proves from.pos is an event boundary, even if the event is torn (which
 * the scanner would otherwise report as a torn tail, silently dropping the rest of the file).
 */
function checkEventBoundary(file: string, from: BinlogCoordinates, header: Buffer): void {
  if (header.length < HEADER_LENGTH) return
  const size = header.readUInt32LE(9)
  const logPos = header.readUInt32LE(13)
  if (logPos !== (from.pos + size) % 0x1_0000_0000) {
    throw new BinlogError(file, from.pos, `${formatCoordinates(from)} is not an event boundary of the master binlog (the header read there says size ${size}, end ${logPos})`)
  }
}

function checkFileSequence(names: readonly string[], from: BinlogCoordinates): void {
  if (names[0] !== from.file) {
    throw new UserError(`the binlog list must start with ${from.file}, the file to save from (got ${names[0] ?? 'nothing'})`)
  }
  for (let i = 1; i < names.length; i++) {
    if (binlogBaseName(names[i]!) !== binlogBaseName(names[0]) || binlogSequence(names[i]!) !== binlogSequence(names[i - 1]!) + 1) {
      throw new UserError(`binlog ${names[i - 1]} is followed by ${names[i]}: a file is missing, the saved tail would have a hole`)
    }
  }
}

/**
 * Saves the dead master's binlog tail from `from` (the latest replica's Master_Log_File/Read_Master_Log_Pos)
 * into `localFile`, reading over SSH: `tail -c +N` for the first file, `cat` for later ones. `files` are
 * binlog names in `dir` (e.g. from listRemoteBinlogs); those before `from.file` are ignored.
 */
export async function saveBinlogTail(
  session: SshSession,
  dir: string,
  files: readonly string[],
  from: BinlogCoordinates,
  localFile: string,
): Promise<SavedBinlogTail> {
  const wanted = files
    .filter((name) => binlogBaseName(name) === binlogBaseName(from.file) && compareBinlogNames(name, from.file) >= 0)
    .sort(compareBinlogNames)
  if (wanted[0] !== from.file) {
    throw new UserError(`${session.target.name}: ${from.file} is not among the binlogs in ${dir}; it was purged or the directory is wrong`)
  }
  return await readAgainOnBadCopy(() =>
    assembleBinlogTail(
      wanted.map((name) => remoteRangeSource(session, posix.join(dir, name))),
      from,
      localFile,
    ),
  )
}

/** The binlog files named `baseName`.NNNNNN in `dir` on the host, oldest first. */
export async function listRemoteBinlogs(session: SshSession, dir: string, baseName: string, timeoutMs = 30_000): Promise<string[]> {
  const result = await session.exec(`cd ${shellQuote(dir)} && ls -1`, timeoutMs)
  if (result.code !== 0) throw new UserError(`${session.target.name}: cannot list ${dir}: ${result.stderr.trim() || `exit ${result.code}`}`)
  const pattern = new RegExp(`^${baseName.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.\\d+$`)
  return result.stdout
    .split('\n')
    .filter((name) => pattern.test(name))
    .sort(compareBinlogNames)
}
