import {randomBytes} from 'node:crypto'
import {open, rename, unlink, type FileHandle} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'
import {BINLOG_MAGIC} from '../binlog/constants.js'

const SLAB_SIZE = 1024 * 1024
/** Events this large get their own copy instead of a slab slice. */
const OWN_COPY_SIZE = 64 * 1024

/**
 * Writes one synthetic binlog under a temporary name in the target's directory and renames it into place
 * on commit(), so a crash never leaves a half file under the final name. append() is synchronous (scanner
 * callbacks are) and copies, since scanned event bytes may live in reused buffers; flush() writes.
 * truncateTo() takes back bytes already appended (an unfinished transaction), flushed or not.
 */
export class SyntheticBinlogWriter {
  readonly path: string
  readonly tempPath: string
  readonly #handle: FileHandle
  #flushed = 0
  #pending: Buffer[] = []
  #pendingBytes = 0
  #slab = Buffer.allocUnsafe(0)
  #slabFill = 0
  #closed = false

  private constructor(path: string, tempPath: string, handle: FileHandle) {
    this.path = path
    this.tempPath = tempPath
    this.#handle = handle
  }

  /** A new file that starts with the binlog magic number. */
  static async create(path: string): Promise<SyntheticBinlogWriter> {
    const tempPath = join(dirname(path), `.${basename(path)}.partial-${process.pid}-${randomBytes(4).toString('hex')}`)
    // Binlogs hold table data: readable by the owner only.
    const handle = await open(tempPath, 'wx', 0o600)
    const writer = new SyntheticBinlogWriter(path, tempPath, handle)
    writer.append(BINLOG_MAGIC)
    return writer
  }

  /** Bytes appended so far (flushed or not). */
  get length(): number {
    return this.#flushed + this.#pendingBytes
  }

  append(bytes: Uint8Array): void {
    const size = bytes.length
    if (size === 0) return
    if (size >= OWN_COPY_SIZE) {
      this.#pending.push(Buffer.from(bytes))
    } else {
      if (this.#slab.length - this.#slabFill < size) {
        this.#slab = Buffer.allocUnsafe(SLAB_SIZE)
        this.#slabFill = 0
      }
      this.#slab.set(bytes, this.#slabFill)
      const slice = this.#slab.subarray(this.#slabFill, this.#slabFill + size)
      this.#slabFill += size
      // Adjacent slices of one slab are written as one.
      const last = this.#pending.at(-1)
      if (last && last.buffer === slice.buffer && last.byteOffset + last.length === slice.byteOffset) {
        this.#pending[this.#pending.length - 1] = this.#slab.subarray(last.byteOffset - this.#slab.byteOffset, this.#slabFill)
      } else {
        this.#pending.push(slice)
      }
    }
    this.#pendingBytes += size
  }

  /** Forget everything after `length` bytes. */
  truncateTo(length: number): void {
    if (length > this.length) throw new Error(`cannot truncate ${this.tempPath} to ${length}: only ${this.length} bytes written`)
    if (length <= this.#flushed) {
      this.#flushed = length
      this.#pending = []
      this.#pendingBytes = 0
      return
    }
    let keep = length - this.#flushed
    const kept: Buffer[] = []
    for (const piece of this.#pending) {
      if (keep === 0) break
      const part = piece.length <= keep ? piece : piece.subarray(0, keep)
      kept.push(part)
      keep -= part.length
    }
    this.#pending = kept
    this.#pendingBytes = length - this.#flushed
    // The slab's tail may now hold forgotten bytes: start a new slab rather than reuse it.
    this.#slabFill = this.#slab.length
  }

  async flush(): Promise<void> {
    const pieces = this.#pending
    this.#pending = []
    this.#pendingBytes = 0
    for (const piece of pieces) {
      let done = 0
      while (done < piece.length) {
        const {bytesWritten} = await this.#handle.write(piece, done, piece.length - done, this.#flushed)
        done += bytesWritten
        this.#flushed += bytesWritten
      }
    }
  }

  /** Flush, cut to length, fsync, and rename to the final name. Returns the file's size. */
  async commit(): Promise<number> {
    await this.flush()
    await this.#handle.truncate(this.#flushed)
    await this.#handle.sync()
    await this.#close()
    await rename(this.tempPath, this.path)
    await syncDirectory(dirname(this.path))
    return this.#flushed
  }

  /** Remove the temporary file (after a failure). Never throws. */
  async abort(): Promise<void> {
    try {
      await this.#close()
    } catch {
      // Closing a failed handle: nothing more to do.
    }
    await unlink(this.tempPath).catch(() => undefined)
  }

  async #close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#handle.close()
  }
}

/** So the rename survives a power loss; some filesystems refuse, which is fine. */
export async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
  } catch {
    // Best effort.
  }
}

/** Appends the bytes of an open file from `position` to its end, flushing chunk by chunk. */
export async function appendFileFrom(writer: SyntheticBinlogWriter, handle: FileHandle, position: number): Promise<void> {
  await appendFileRange(writer, handle, position, Infinity)
}

/** Appends the bytes [position, end) of an open file (to its end when shorter). */
export async function appendFileRange(writer: SyntheticBinlogWriter, handle: FileHandle, position: number, end: number): Promise<void> {
  const chunk = Buffer.alloc(Math.min(4 * 1024 * 1024, Math.max(1, end - position)))
  for (let at = position; at < end; ) {
    const {bytesRead} = await handle.read(chunk, 0, Math.min(chunk.length, end - at), at)
    if (bytesRead === 0) return
    writer.append(chunk.subarray(0, bytesRead))
    at += bytesRead
    await writer.flush()
  }
}

/** Runs `fill` on a new writer for `path`, committing on success and removing the partial file on failure. */
export async function writeSynthetic<T>(path: string, fill: (writer: SyntheticBinlogWriter) => Promise<T>): Promise<T & {bytes: number}> {
  const writer = await SyntheticBinlogWriter.create(path)
  try {
    const result = await fill(writer)
    const bytes = await writer.commit()
    return {...result, bytes}
  } catch (error) {
    await writer.abort()
    throw error
  }
}
