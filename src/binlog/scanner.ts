import {UserError} from '../util/errors.js'
import {
  BINLOG_MAGIC,
  ChecksumAlg,
  CHECKSUM_LENGTH,
  EventFlag,
  EventType,
  HEADER_LENGTH,
  MAGIC_LENGTH,
  MAX_EVENT_SIZE,
} from './constants.js'
import {crc32, crc32Table} from './crc32.js'
import {parseFormatDescription, parseRotate, type FormatDescription, type RotateInfo} from './events.js'

/** A binlog that cannot be read as one: bad magic, impossible event size, CRC mismatch. */
export class BinlogError extends UserError {
  readonly file: string
  readonly offset: number
  constructor(file: string, offset: number, problem: string) {
    super(`${file || '(binlog)'} at offset ${offset}: ${problem}`)
    this.name = 'BinlogError'
    this.file = file
    this.offset = offset
  }
}

export class BinlogChecksumError extends BinlogError {
  readonly expected: number
  readonly actual: number
  constructor(file: string, offset: number, type: number, expected: number, actual: number) {
    const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`
    super(file, offset, `CRC32 mismatch in event type ${type}: stored ${hex(expected)}, computed ${hex(actual)}`)
    this.name = 'BinlogChecksumError'
    this.expected = expected
    this.actual = actual
  }
}

/** The file ends inside an event: `bytesPresent` of it were written, from `offset`. */
export interface TornEvent {
  offset: number
  bytesPresent: number
}

/**
 * One event as the scanner saw it. The scanner reuses this object and `data` may point into a reused buffer:
 * copy what you keep beyond the callback.
 */
export interface ScannedEvent {
  file: string
  /** Where the event starts in `file`. */
  offset: number
  timestamp: number
  type: number
  serverId: number
  size: number
  /** end_log_pos: where the event ends in the binlog it was first written to (the master's, for relayed events). */
  logPos: number
  flags: number
  /** The event ends in a CRC32 (verified when the scanner verifies). */
  checksummed: boolean
  /** In a relay log: relayed from the upstream server, not written by the replica itself. */
  upstream: boolean
  /** The whole event, for FDE, ROTATE and the types asked for in ScanOptions.bodies; else null. */
  data: Buffer | null
  /** For FORMAT_DESCRIPTION events. */
  format: FormatDescription | null
  /** For ROTATE events. */
  rotate: RotateInfo | null
}

export interface FileSummary {
  file: string
  /** Bytes fed for this file. */
  size: number
  events: number
  /** End of the last complete event (4 for a file with none, 0 without even the magic number). */
  lastEventEnd: number
  torn: TornEvent | null
  /** The file's own first FDE (in a relay log, the replica's). */
  format: FormatDescription | null
  relayLog: boolean
}

export interface ScanOptions {
  /** Verify the CRC32 of every checksummed event. Default true. */
  verifyChecksums?: boolean
  /** Event types whose bytes the callback needs in ScannedEvent.data. */
  bodies?: readonly number[]
  /** The upstream (master) checksum setting, if known, for relay logs read from a file without the master's FDE. */
  upstreamChecksum?: boolean
}

export type EventCallback = (event: ScannedEvent) => void

/** Relayed events before any upstream FDE: detected once, then kept. */
const UNKNOWN = -1
/** The replica's own events after an upstream FDE with another algorithm: MariaDB follows the master's, MySQL keeps its own. */
const EITHER = -2
const REUSABLE_ASSEMBLY_LIMIT = 16 * 1024 * 1024

/**
 * Push parser for binlog and relay log files: feed it chunks of any size with push(), file by file
 * (startFile / endFile). It calls back once per complete event, synchronously, without copying events that
 * lie inside one chunk. Events that straddle chunks are either assembled (when their bytes are needed) or
 * checksummed piece by piece.
 */
export class BinlogScanner {
  private readonly onEvent: EventCallback
  private readonly verify: boolean
  private readonly wanted = new Uint8Array(256)
  private readonly event: ScannedEvent = {
    file: '',
    offset: 0,
    timestamp: 0,
    type: 0,
    serverId: 0,
    size: 0,
    logPos: 0,
    flags: 0,
    checksummed: false,
    upstream: false,
    data: null,
    format: null,
    rotate: null,
  }

  private file = ''
  private fileOffset = 0
  private magicFill = 0
  private events = 0
  private lastEventEnd = 0
  private fileFormat: FormatDescription | null = null
  private relayLog = false
  private writerServerId = 0
  /** Checksum of events relayed from upstream: 1 on, 0 off, UNKNOWN until the upstream FDE says. */
  private upstreamChecksum: number
  private upstreamFormatInFile = false
  private stopRequested = false

  // An event split across chunks.
  private readonly header = Buffer.alloc(HEADER_LENGTH)
  private readonly trailer = Buffer.alloc(CHECKSUM_LENGTH)
  private readonly scratchByte = Buffer.alloc(1)
  private partialFill = 0
  private partialSize = 0
  private partialChecksummed = false
  private partialCrc = 0
  private assembly: Buffer | null = null
  private reusableAssembly = Buffer.alloc(0)

  constructor(onEvent: EventCallback, options: ScanOptions = {}) {
    this.onEvent = onEvent
    this.verify = options.verifyChecksums ?? true
    for (const type of options.bodies ?? []) this.wanted[type] = 1
    this.wanted[EventType.FORMAT_DESCRIPTION] = 1
    this.wanted[EventType.ROTATE] = 1
    this.upstreamChecksum = options.upstreamChecksum === undefined ? UNKNOWN : Number(options.upstreamChecksum)
  }

  /** Ask the driver to stop feeding (e.g. from the callback once the answer is known). */
  stop(): void {
    this.stopRequested = true
  }

  get stopped(): boolean {
    return this.stopRequested
  }

  /** The upstream FDE's checksum setting carries over to later relay files, which may not repeat it. */
  startFile(name: string): void {
    this.file = name
    this.event.file = name
    this.fileOffset = 0
    this.magicFill = 0
    this.events = 0
    this.lastEventEnd = 0
    this.fileFormat = null
    this.relayLog = false
    this.writerServerId = 0
    this.upstreamFormatInFile = false
    this.partialFill = 0
    this.assembly = null
  }

  /** Closes the current file; a partial event at its end is reported as torn, not thrown. */
  endFile(): FileSummary {
    let torn: TornEvent | null = null
    if (this.magicFill > 0 && this.magicFill < MAGIC_LENGTH) torn = {offset: 0, bytesPresent: this.magicFill}
    else if (this.partialFill > 0) torn = {offset: this.fileOffset - this.partialFill, bytesPresent: this.partialFill}
    const summary: FileSummary = {
      file: this.file,
      size: this.fileOffset,
      events: this.events,
      lastEventEnd: this.lastEventEnd,
      torn,
      format: this.fileFormat,
      relayLog: this.relayLog,
    }
    this.partialFill = 0
    this.assembly = null
    return summary
  }

  push(chunk: Buffer): void {
    const length = chunk.length
    let pos = 0
    if (this.magicFill < MAGIC_LENGTH) {
      pos = this.consumeMagic(chunk)
      if (this.magicFill < MAGIC_LENGTH) return
    }
    if (this.partialFill > 0) {
      pos = this.continuePartial(chunk, pos)
      if (this.partialFill > 0) return
    }
    while (pos + HEADER_LENGTH <= length && !this.stopRequested) {
      const size = chunk.readUInt32LE(pos + 9)
      if (pos + size > length) break
      this.checkSize(size, this.fileOffset)
      this.complete(chunk, pos, size, this.fileOffset)
      pos += size
      this.fileOffset += size
    }
    if (pos < length && !this.stopRequested) this.beginPartial(chunk, pos)
  }

  private consumeMagic(chunk: Buffer): number {
    const take = Math.min(MAGIC_LENGTH - this.magicFill, chunk.length)
    for (let i = 0; i < take; i++) {
      if (chunk[i] !== BINLOG_MAGIC[this.magicFill + i]) {
        throw new BinlogError(this.file, this.magicFill + i, 'not a binlog file (bad magic number; expected fe 62 69 6e)')
      }
    }
    this.magicFill += take
    this.fileOffset += take
    if (this.magicFill === MAGIC_LENGTH) this.lastEventEnd = MAGIC_LENGTH
    return take
  }

  private checkSize(size: number, offset: number): void {
    if (size < HEADER_LENGTH || size > MAX_EVENT_SIZE) {
      throw new BinlogError(this.file, offset, `impossible event size ${size}; the file is corrupt or not a v4 binlog`)
    }
  }

  /** 1 or 0 for a non-FDE event, or UNKNOWN / EITHER when only its bytes can tell. */
  private checksumOf(type: number, serverId: number, logPos: number): number {
    // A fake Rotate (log_pos 0) is re-checksummed by the replica with its own algorithm.
    if (!this.relayLog || serverId === this.writerServerId || (type === EventType.ROTATE && logPos === 0)) {
      const own = this.fileFormat?.checksumAlg === ChecksumAlg.CRC32 ? 1 : 0
      return this.upstreamFormatInFile && this.upstreamChecksum !== own ? EITHER : own
    }
    return this.upstreamChecksum
  }

  private complete(bytes: Buffer, start: number, size: number, offset: number): void {
    const e = this.event
    const type = bytes[start + 4]!
    const serverId = bytes.readUInt32LE(start + 5)
    const logPos = bytes.readUInt32LE(start + 13)
    const flags = bytes.readUInt16LE(start + 17)
    let checksummed: boolean
    e.format = null
    e.rotate = null
    if (type === EventType.FORMAT_DESCRIPTION) {
      const format = parseFormatDescription(bytes, start, size)
      checksummed = format.checksumAlg !== ChecksumAlg.UNDEFINED
      if (checksummed && this.verify) this.verifyFormatDescription(bytes, start, size, offset, flags)
      this.adoptFormat(format, serverId, flags)
      e.format = format
    } else {
      this.requireFormatFirst(type, offset)
      let checksum = this.checksumOf(type, serverId, logPos)
      if (checksum === UNKNOWN) checksum = this.upstreamChecksum = endsInCrc(bytes, start, size)
      else if (checksum === EITHER) checksum = endsInCrc(bytes, start, size)
      checksummed = checksum === 1
      if (checksummed && this.verify) {
        const stored = bytes.readUInt32LE(start + size - CHECKSUM_LENGTH)
        const computed = crc32(bytes, start, start + size - CHECKSUM_LENGTH)
        if (stored !== computed) throw new BinlogChecksumError(this.file, offset, type, stored, computed)
      }
      if (type === EventType.ROTATE) e.rotate = parseRotate(bytes, start, size, checksummed)
    }
    e.offset = offset
    e.timestamp = bytes.readUInt32LE(start)
    e.type = type
    e.serverId = serverId
    e.size = size
    e.logPos = logPos
    e.flags = flags
    e.checksummed = checksummed
    e.upstream = this.relayLog && serverId !== this.writerServerId
    e.data = this.wanted[type] ? bytes.subarray(start, start + size) : null
    this.events++
    this.lastEventEnd = offset + size
    this.onEvent(e)
  }

  private requireFormatFirst(type: number, offset: number): void {
    if (this.events === 0 && type !== EventType.FORMAT_DESCRIPTION) {
      throw new BinlogError(this.file, offset, `first event is type ${type}, not a FORMAT_DESCRIPTION_EVENT (only binlog v4 is supported)`)
    }
  }

  /** The FDE's CRC is computed as if LOG_EVENT_BINLOG_IN_USE_F were clear, so closing the file needs no rewrite. */
  private verifyFormatDescription(bytes: Buffer, start: number, size: number, offset: number, flags: number): void {
    const end = start + size - CHECKSUM_LENGTH
    let computed: number
    if (flags & EventFlag.BINLOG_IN_USE) {
      this.scratchByte[0] = bytes[start + 17]! & ~EventFlag.BINLOG_IN_USE
      computed = crc32Table(bytes, start, start + 17)
      computed = crc32Table(this.scratchByte, 0, 1, computed)
      computed = crc32(bytes, start + 18, end, computed)
    } else {
      computed = crc32(bytes, start, end)
    }
    const stored = bytes.readUInt32LE(end)
    if (stored !== computed) throw new BinlogChecksumError(this.file, offset, EventType.FORMAT_DESCRIPTION, stored, computed)
  }

  private adoptFormat(format: FormatDescription, serverId: number, flags: number): void {
    if (this.events === 0) {
      this.fileFormat = format
      this.writerServerId = serverId
      this.relayLog = (flags & EventFlag.RELAY_LOG) !== 0
    } else if (serverId !== this.writerServerId) {
      // Only a relay log holds another server's FDE, whether or not its own FDE has LOG_EVENT_RELAY_LOG_F.
      this.relayLog = true
      this.upstreamChecksum = format.checksumAlg === ChecksumAlg.CRC32 ? 1 : 0
      this.upstreamFormatInFile = true
    } else {
      this.fileFormat = format
    }
  }

  private beginPartial(chunk: Buffer, pos: number): void {
    const available = chunk.length - pos
    if (available < HEADER_LENGTH) {
      chunk.copy(this.header, 0, pos)
      this.partialFill = available
      this.partialSize = 0
      this.fileOffset += available
      return
    }
    chunk.copy(this.header, 0, pos, pos + HEADER_LENGTH)
    this.partialFill = HEADER_LENGTH
    this.fileOffset += HEADER_LENGTH
    this.headerComplete()
    this.continuePartial(chunk, pos + HEADER_LENGTH)
  }

  /** Feeds the split event from chunk[pos...]; returns where the chunk's unconsumed bytes begin. */
  private continuePartial(chunk: Buffer, pos: number): number {
    if (this.partialFill < HEADER_LENGTH) {
      const take = Math.min(HEADER_LENGTH - this.partialFill, chunk.length - pos)
      chunk.copy(this.header, this.partialFill, pos, pos + take)
      this.partialFill += take
      this.fileOffset += take
      pos += take
      if (this.partialFill < HEADER_LENGTH) return pos
      this.headerComplete()
    }
    const take = Math.min(this.partialSize - this.partialFill, chunk.length - pos)
    if (this.assembly) {
      chunk.copy(this.assembly, this.partialFill, pos, pos + take)
    } else if (this.partialChecksummed) {
      const crcEnd = this.partialSize - CHECKSUM_LENGTH
      const crcTake = Math.max(0, Math.min(take, crcEnd - this.partialFill))
      if (crcTake > 0 && this.verify) this.partialCrc = crc32(chunk, pos, pos + crcTake, this.partialCrc)
      for (let i = crcTake; i < take; i++) this.trailer[this.partialFill + i - crcEnd] = chunk[pos + i]!
    }
    this.partialFill += take
    this.fileOffset += take
    pos += take
    if (this.partialFill === this.partialSize) this.finishPartial()
    return pos
  }

  private headerComplete(): void {
    const h = this.header
    const size = h.readUInt32LE(9)
    const offset = this.fileOffset - HEADER_LENGTH
    this.checkSize(size, offset)
    this.partialSize = size
    const type = h[4]!
    this.requireFormatFirst(type, offset)
    const checksum = type === EventType.FORMAT_DESCRIPTION ? UNKNOWN : this.checksumOf(type, h.readUInt32LE(5), h.readUInt32LE(13))
    if (this.wanted[type] || checksum < 0) {
      if (size <= REUSABLE_ASSEMBLY_LIMIT) {
        if (this.reusableAssembly.length < size) this.reusableAssembly = Buffer.allocUnsafe(Math.max(size, 64 * 1024))
        this.assembly = this.reusableAssembly
      } else {
        this.assembly = Buffer.allocUnsafe(size)
      }
      h.copy(this.assembly, 0)
      return
    }
    this.assembly = null
    this.partialChecksummed = checksum === 1
    this.partialCrc = this.partialChecksummed && this.verify ? crc32Table(h, 0, Math.min(HEADER_LENGTH, size - CHECKSUM_LENGTH)) : 0
    if (this.partialChecksummed && size - CHECKSUM_LENGTH < HEADER_LENGTH) {
      h.copy(this.trailer, 0, size - CHECKSUM_LENGTH, HEADER_LENGTH)
    }
  }

  private finishPartial(): void {
    const size = this.partialSize
    const offset = this.fileOffset - size
    this.partialFill = 0
    if (this.assembly) {
      const assembled = this.assembly
      this.assembly = null
      this.complete(assembled, 0, size, offset)
      return
    }
    const h = this.header
    const e = this.event
    const type = h[4]!
    if (this.partialChecksummed && this.verify) {
      const stored = this.trailer.readUInt32LE(0)
      if (stored !== this.partialCrc) throw new BinlogChecksumError(this.file, offset, type, stored, this.partialCrc)
    }
    e.offset = offset
    e.timestamp = h.readUInt32LE(0)
    e.type = type
    e.serverId = h.readUInt32LE(5)
    e.size = size
    e.logPos = h.readUInt32LE(13)
    e.flags = h.readUInt16LE(17)
    e.checksummed = this.partialChecksummed
    e.upstream = this.relayLog && e.serverId !== this.writerServerId
    e.data = null
    e.format = null
    e.rotate = null
    this.events++
    this.lastEventEnd = offset + size
    this.onEvent(e)
  }
}

/** 1 if the event's last 4 bytes are the CRC32 of the rest (a false match is 1 in 2^32), else 0. */
function endsInCrc(bytes: Buffer, start: number, size: number): number {
  const end = start + size - CHECKSUM_LENGTH
  return size >= HEADER_LENGTH + CHECKSUM_LENGTH && bytes.readUInt32LE(end) === crc32(bytes, start, end) ? 1 : 0
}
