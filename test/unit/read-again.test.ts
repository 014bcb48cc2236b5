import {describe, expect, it} from 'vitest'
import {BinlogChecksumError, BinlogError} from '../../src/binlog/scanner.js'
import {readAgainOnChecksumError} from '../../src/recovery/range-source.js'

describe('readAgainOnChecksumError', () => {
  const bad = () => new BinlogChecksumError('relay-bin.000002', 4190808, 23, 0x78787878, 0x7b907cc8)

  it('reads a copy again when an event fails its CRC32 check, and returns the first good read', async () => {
    let reads = 0
    const result = await readAgainOnChecksumError(() => (++reads < 3 ? Promise.reject(bad()) : Promise.resolve('copied')))
    expect([result, reads]).toEqual(['copied', 3])
  })

  it('throws the checksum error when every read fails it, and any other error at once', async () => {
    let reads = 0
    await expect(readAgainOnChecksumError(() => (reads++, Promise.reject(bad())))).rejects.toThrow(/CRC32 mismatch in event type 23/)
    expect(reads).toBe(3)
    reads = 0
    await expect(readAgainOnChecksumError(() => (reads++, Promise.reject(new BinlogError('f', 4, 'torn header'))))).rejects.toThrow(/torn header/)
    expect(reads).toBe(1)
  })
})
