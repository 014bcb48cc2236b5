import {open} from 'node:fs/promises'
import {BINLOG_MAGIC, ChecksumAlg, CHECKSUM_LENGTH, EventFlag, EventType, HEADER_LENGTH, MAGIC_LENGTH} from '../binlog/constants.js'
import {crc32} from '../binlog/crc32.js'
import {parseFormatDescription} from '../binlog/events.js'
import {BinlogError} from '../binlog/scanner.js'
import {UserError} from '../util/errors.js'
import {appendFileFrom, writeSynthetic} from './synthetic-writer.js'

// FDE body: binlog_version 2, server_version 50, then the 4-byte create timestamp.
const FDE_CREATED_AT = HEADER_LENGTH + 2 + 50
const FLAGS_AT = 17

/**
 * A copy of a FORMAT_DESCRIPTION_EVENT that no longer says "the server started here": created = 0 and
 * not in use, checksum recomputed. mysqlbinlog prints ROLLBACK before an FDE with a create time (and the
 * server rolls back on it), which would cut a transaction that runs from one piece into the next.
 */
export function withoutStartupMark(event: Uint8Array): Buffer {
  const copy = Buffer.from(event)
  if (copy[4] !== EventType.FORMAT_DESCRIPTION) throw new Error('not a FORMAT_DESCRIPTION_EVENT')
  const format = parseFormatDescription(copy, 0, copy.length)
  copy.writeUInt32LE(0, FDE_CREATED_AT)
  copy.writeUInt16LE(copy.readUInt16LE(FLAGS_AT) & ~EventFlag.BINLOG_IN_USE, FLAGS_AT)
  // Checksum-aware servers checksum their FDE whatever binlog_checksum says.
  if (format.checksumAlg !== ChecksumAlg.UNDEFINED) {
    copy.writeUInt32LE(crc32(copy, 0, copy.length - CHECKSUM_LENGTH), copy.length - CHECKSUM_LENGTH)
  }
  return copy
}

/**
 * Joins synthetic binlogs (a relay diff, then the dead master's tail) into one, as MHA's apply does, so that
 * ONE mysqlbinlog run applies a transaction that starts in one piece and ends in the next. The first piece is
 * copied whole; each later one without its magic number, its leading FDE kept (binlog_checksum may differ)
 * but stripped of its startup mark.
 */
export async function concatSyntheticBinlogs(pieces: readonly string[], localFile: string): Promise<{bytes: number}> {
  if (pieces.length === 0) throw new UserError('nothing to concatenate')
  return await writeSynthetic(localFile, async (writer) => {
    for (const [index, piece] of pieces.entries()) {
      const handle = await open(piece, 'r')
      try {
        const head = Buffer.alloc(MAGIC_LENGTH + HEADER_LENGTH)
        const {bytesRead} = await handle.read(head, 0, head.length, 0)
        if (bytesRead < MAGIC_LENGTH || !head.subarray(0, MAGIC_LENGTH).equals(BINLOG_MAGIC)) throw new BinlogError(piece, 0, 'not a binlog file (bad magic number)')
        // The writer has written the magic number already.
        let position = MAGIC_LENGTH
        if (index > 0) {
          if (bytesRead < head.length || head[MAGIC_LENGTH + 4] !== EventType.FORMAT_DESCRIPTION) {
            throw new BinlogError(piece, MAGIC_LENGTH, 'the piece does not begin with a FORMAT_DESCRIPTION_EVENT')
          }
          const size = head.readUInt32LE(MAGIC_LENGTH + 9)
          const format = Buffer.alloc(size)
          if ((await handle.read(format, 0, size, MAGIC_LENGTH)).bytesRead !== size) throw new BinlogError(piece, MAGIC_LENGTH, 'truncated FORMAT_DESCRIPTION_EVENT')
          writer.append(withoutStartupMark(format))
          position += size
        }
        await appendFileFrom(writer, handle, position)
      } finally {
        await handle.close()
      }
    }
    return {}
  })
}
