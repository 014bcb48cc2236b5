import {createReadStream, statSync} from 'node:fs'
import {basename} from 'node:path'
import {BINLOG_MAGIC, EventType, HEADER_LENGTH, MAGIC_LENGTH} from '../binlog/constants.js'
import {BinlogChecksumError, BinlogError, BinlogScanner, type FileSummary, type ScannedEvent} from '../binlog/scanner.js'
import {DEFAULT_CHUNK_SIZE, type BinlogBytes} from '../binlog/source.js'
import {shellQuote, SshError, type SshSession} from '../remote/ssh.js'

/** A binlog or relay log file that can be read from any byte offset to its end (so a tail costs only the tail). */
export interface RangeSource {
  /** The file's name as the server knows it, e.g. "mysql-bin.000012". */
  name: string
  /** Bytes [offset, EOF). Fails if the file is shorter than offset. */
  openAt(offset: number): BinlogBytes | Promise<BinlogBytes>
}

/** A file on a remote host: `cat`, or `tail -c +N` (which seeks) for a range. */
export function remoteRangeSource(session: SshSession, path: string): RangeSource {
  const quoted = shellQuote(path)
  return {
    name: basename(path),
    openAt: (offset) =>
      session.readStream(
        offset === 0
          ? `cat -- ${quoted}`
          : // tail prints nothing for an offset past the end: refuse that instead of saving an empty range.
            `s=$(stat -L -c %s -- ${quoted}) || exit 2; if [ "$s" -lt ${offset} ]; then echo "${path} is $s bytes, shorter than offset ${offset}" >&2; exit 3; fi; exec tail -c +${offset + 1} -- ${quoted}`,
        undefined,
        undefined,
        // A copy that lost bytes on the way must fail, even where what arrived parses as whole events.
        {counted: true},
      ),
  }
}

export function localRangeSource(path: string, options: {name?: string; chunkSize?: number} = {}): RangeSource {
  return {
    name: options.name ?? basename(path),
    openAt: (offset) => {
      const size = statSync(path).size
      if (size < offset) throw new BinlogError(basename(path), offset, `the file is ${size} bytes, shorter than offset ${offset}`)
      return createReadStream(path, {start: offset, highWaterMark: options.chunkSize ?? DEFAULT_CHUNK_SIZE})
    },
  }
}

export function bufferRangeSource(name: string, bytes: Uint8Array): RangeSource {
  return {
    name,
    openAt: (offset) => {
      if (bytes.length < offset) throw new BinlogError(name, offset, `the file is ${bytes.length} bytes, shorter than offset ${offset}`)
      return bytes.subarray(offset)
    },
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** Every event type: the assemblers copy event bytes, so the scanner must hand them all over. */
export const ALL_EVENT_TYPES: readonly number[] = Array.from({length: 256}, (_, i) => i)

export interface RangeScanOptions {
  verifyChecksums?: boolean
  /** Called between chunks, e.g. to flush output: the scan waits for it (backpressure). */
  afterChunk?: () => Promise<void> | void
}

/** Where a ranged scan ended, in the file's own offsets. */
export interface RangeScanSummary {
  file: string
  /** End of the last complete event. */
  lastEventEnd: number
  /** A partial final event (a crash mid-write): where it starts and how many of its bytes exist. */
  torn: {offset: number; bytesPresent: number} | null
  /** Up to one event header's worth of bytes found at `start`: lets a caller check that start is an event boundary even when the event there is torn. */
  headerAtStart: Buffer
}

/**
 * Scans `source` from `start` (an event boundary) to its end, calling back with each event and its real
 * offset in the file. When `start` is past the header, the file's leading FORMAT_DESCRIPTION events (the
 * writer's, and in a relay log the master's) are read first from the head, delivered too (their offsets are
 * below `start`), and fed to the scanner so that it knows the checksum setting of what follows.
 */
export async function scanRange(
  source: RangeSource,
  start: number,
  onEvent: (event: ScannedEvent, offset: number) => void,
  options: RangeScanOptions = {},
): Promise<RangeScanSummary> {
  const verifyChecksums = options.verifyChecksums ?? true
  let primed: Array<{offset: number; bytes: Buffer}> = []
  let feedFrom = 0
  if (start > MAGIC_LENGTH) {
    primed = await readLeadingFormats(source, start, verifyChecksums)
    const headerEnd = primed.length > 0 ? primed.at(-1)!.offset + primed.at(-1)!.bytes.length : MAGIC_LENGTH
    // Right after the header: one plain read from the top costs no more than a second channel.
    feedFrom = start === headerEnd ? 0 : start
  }
  if (feedFrom === 0) primed = []

  let primedCount = 0
  let primedEnd = MAGIC_LENGTH
  const realOffset = (scannerOffset: number): number => (feedFrom === 0 ? scannerOffset : scannerOffset - primedEnd + feedFrom)
  const scanner = new BinlogScanner(
    (event) => {
      if (primedCount < primed.length) {
        onEvent(event, primed[primedCount]!.offset)
        primedCount++
        return
      }
      onEvent(event, realOffset(event.offset))
    },
    {verifyChecksums, bodies: ALL_EVENT_TYPES},
  )
  scanner.startFile(source.name)
  if (feedFrom > 0) {
    scanner.push(BINLOG_MAGIC)
    for (const format of primed) {
      scanner.push(format.bytes)
      primedEnd += format.bytes.length
    }
  }
  const headerAtStart = Buffer.alloc(HEADER_LENGTH)
  let headerFill = 0
  let position = feedFrom
  const push = (chunk: Buffer): void => {
    if (headerFill < HEADER_LENGTH && position + chunk.length > start) {
      const from = Math.max(0, start + headerFill - position)
      headerFill += chunk.copy(headerAtStart, headerFill, from, Math.min(chunk.length, from + HEADER_LENGTH - headerFill))
    }
    position += chunk.length
    scanner.push(chunk)
  }
  const bytes = await source.openAt(feedFrom)
  if (bytes instanceof Uint8Array) {
    push(asBuffer(bytes))
  } else {
    for await (const chunk of bytes as AsyncIterable<Uint8Array | string>) {
      if (typeof chunk === 'string') throw new Error(`${source.name}: the stream has an encoding set; binlogs need raw bytes`)
      push(asBuffer(chunk))
      if (options.afterChunk) await options.afterChunk()
    }
  }
  const summary: FileSummary = scanner.endFile()
  return {
    file: source.name,
    lastEventEnd: realOffset(summary.lastEventEnd),
    torn: summary.torn ? {offset: realOffset(summary.torn.offset), bytesPresent: summary.torn.bytesPresent} : null,
    headerAtStart: headerAtStart.subarray(0, headerFill),
  }
}

/** The FORMAT_DESCRIPTION events before the first data event, read from the head of the file (then the read stops). */
async function readLeadingFormats(source: RangeSource, start: number, verifyChecksums: boolean): Promise<Array<{offset: number; bytes: Buffer}>> {
  const formats: Array<{offset: number; bytes: Buffer}> = []
  let straddles: ScannedEvent | null = null
  const scanner: BinlogScanner = new BinlogScanner(
    (event) => {
      const end = event.offset + event.size
      if (event.offset < start && end > start) {
        straddles = {...event}
        scanner.stop()
        return
      }
      if (end > start || !isHeaderEvent(event.type)) {
        scanner.stop()
        return
      }
      if (event.format) formats.push({offset: event.offset, bytes: Buffer.from(event.data!)})
    },
    {verifyChecksums},
  )
  scanner.startFile(source.name)
  const bytes = await source.openAt(0)
  if (bytes instanceof Uint8Array) {
    scanner.push(asBuffer(bytes))
  } else {
    // Leaving the loop early destroys the stream, which closes a remote `cat`.
    for await (const chunk of bytes as AsyncIterable<Uint8Array | string>) {
      if (typeof chunk === 'string') throw new Error(`${source.name}: the stream has an encoding set; binlogs need raw bytes`)
      scanner.push(asBuffer(chunk))
      if (scanner.stopped) break
    }
  }
  const split = straddles as ScannedEvent | null
  if (split) throw new BinlogError(source.name, start, `offset ${start} is inside an event (${split.offset} to ${split.offset + split.size}), not at an event boundary`)
  if (formats.length === 0) throw new BinlogError(source.name, MAGIC_LENGTH, 'no FORMAT_DESCRIPTION_EVENT at the head of the file')
  return formats
}

const HEADER_EVENT_TYPES = new Set<number>([
  EventType.FORMAT_DESCRIPTION,
  EventType.ROTATE,
  EventType.PREVIOUS_GTIDS,
  EventType.MARIADB_GTID_LIST,
  EventType.MARIADB_BINLOG_CHECKPOINT,
])

/** Events that open a binlog or relay log file, before its first transaction. */
function isHeaderEvent(type: number): boolean {
  return HEADER_EVENT_TYPES.has(type)
}

/**
 * A copy read over SSH again when it arrives damaged: an event fails its CRC32 check, or fewer bytes arrive than
 * the host sent (readStream's count). Seen in rejoin-partial under load: a relay log that scans clean on its host
 * arrived with 1 MiB missing after its first 4 MiB. The checks keep a bad copy from being applied; reading it again
 * keeps it from stopping a failover. A file whose bytes are really bad fails every read, and the last error is thrown.
 */
export async function readAgainOnBadCopy<T>(read: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read()
    } catch (error) {
      const damaged = error instanceof BinlogChecksumError || (error instanceof SshError && error.kind === 'transfer')
      if (!damaged || attempt >= attempts) throw error
    }
  }
}
