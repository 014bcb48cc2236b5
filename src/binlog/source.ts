import {createReadStream} from 'node:fs'
import {basename} from 'node:path'
import type {Readable} from 'node:stream'
import {BinlogScanner, type FileSummary, type ScannedEvent, type ScanOptions} from './scanner.js'

/** Bytes of one binlog file: in memory, or streamed (a Node Readable, e.g. `cat` over SSH). */
export type BinlogBytes = Uint8Array | Readable | AsyncIterable<Uint8Array>

/** A named binlog/relay log file, opened only when (and each time) it is read. */
export interface BinlogSource {
  /** The file's name as the server knows it, e.g. "relay-bin.000012". */
  name: string
  open(): BinlogBytes | Promise<BinlogBytes>
}

/** Large reads: per-chunk overhead is what bounds the scan rate on small events. */
export const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024

export function fileSource(path: string, options: {name?: string; chunkSize?: number} = {}): BinlogSource {
  const highWaterMark = options.chunkSize ?? DEFAULT_CHUNK_SIZE
  return {name: options.name ?? basename(path), open: () => createReadStream(path, {highWaterMark})}
}

export function bufferSource(name: string, bytes: Uint8Array): BinlogSource {
  return {name, open: () => bytes}
}

/** A stream that can be read once: probing it and scanning it again is not possible. */
export function streamSource(name: string, stream: Readable | AsyncIterable<Uint8Array>): BinlogSource {
  let opened = false
  return {
    name,
    open: () => {
      if (opened) throw new Error(`${name}: this stream source was already read`)
      opened = true
      return stream
    },
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

export type ScanCallback = (event: ScannedEvent, scanner: BinlogScanner) => void

export interface ScanResult {
  /** Summaries of the files read to their end, in order. */
  files: FileSummary[]
  /** The callback called scanner.stop(); the file it was reading has no summary. */
  stopped: boolean
}

/** Feeds one source to a scanner; false if the scanner asked to stop before the end. */
export async function feedSource(scanner: BinlogScanner, source: BinlogSource): Promise<boolean> {
  scanner.startFile(source.name)
  const bytes = await source.open()
  if (bytes instanceof Uint8Array) {
    scanner.push(asBuffer(bytes))
    return !scanner.stopped
  }
  for await (const chunk of bytes as AsyncIterable<Uint8Array | string>) {
    if (typeof chunk === 'string') throw new Error(`${source.name}: the stream has an encoding set; binlogs need raw bytes`)
    scanner.push(asBuffer(chunk))
    if (scanner.stopped) return false
  }
  return true
}

function isSourceList(sources: BinlogSource | readonly BinlogSource[]): sources is readonly BinlogSource[] {
  return Array.isArray(sources)
}

/** Reads the sources in order through one scanner (so a relay log's upstream checksum setting carries over). */
export async function scanBinlog(sources: BinlogSource | readonly BinlogSource[], onEvent: ScanCallback, options: ScanOptions = {}): Promise<ScanResult> {
  const list = isSourceList(sources) ? sources : [sources]
  const scanner: BinlogScanner = new BinlogScanner((event) => onEvent(event, scanner), options)
  const files: FileSummary[] = []
  for (const source of list) {
    if (!(await feedSource(scanner, source))) return {files, stopped: true}
    files.push(scanner.endFile())
  }
  return {files, stopped: false}
}

/** A copy of a scanned event that outlives the scan. */
export interface BinlogEventRecord
  extends Pick<ScannedEvent, 'file' | 'offset' | 'timestamp' | 'type' | 'serverId' | 'size' | 'logPos' | 'flags' | 'checksummed' | 'upstream'> {
  nextFile?: string
  nextPosition?: number
  serverVersion?: string
  checksumAlg?: number
}

/** Every event as a plain record: for small files, tools and tests (a scan with a callback allocates nothing per event). */
export async function readBinlogEvents(
  sources: BinlogSource | readonly BinlogSource[],
  options: ScanOptions = {},
): Promise<{events: BinlogEventRecord[]; files: FileSummary[]}> {
  const events: BinlogEventRecord[] = []
  const {files} = await scanBinlog(
    sources,
    (e) => {
      const record: BinlogEventRecord = {
        file: e.file,
        offset: e.offset,
        timestamp: e.timestamp,
        type: e.type,
        serverId: e.serverId,
        size: e.size,
        logPos: e.logPos,
        flags: e.flags,
        checksummed: e.checksummed,
        upstream: e.upstream,
      }
      if (e.rotate) {
        record.nextFile = e.rotate.nextFile
        record.nextPosition = e.rotate.position
      }
      if (e.format) {
        record.serverVersion = e.format.serverVersion
        record.checksumAlg = e.format.checksumAlg
      }
      events.push(record)
    },
    options,
  )
  return {events, files}
}
