import {describe, expect, it} from 'vitest'
import {BinlogChecksumError, BinlogError} from '../../src/binlog/scanner.js'
import {readAgainOnBadCopy} from '../../src/recovery/range-source.js'
import {SshError} from '../../src/remote/ssh.js'

describe('readAgainOnBadCopy', () => {
  const bad = () => new BinlogChecksumError('relay-bin.000002', 4190808, 23, 0x78787878, 0x7b907cc8)

  it('reads a copy again when an event fails its CRC32 check, and returns the first good read', async () => {
    let reads = 0
    const result = await readAgainOnBadCopy(() => (++reads < 3 ? Promise.reject(bad()) : Promise.resolve('copied')))
    expect([result, reads]).toEqual(['copied', 3])
  })

  it('throws the checksum error when every read fails it, and any other error at once', async () => {
    let reads = 0
    await expect(readAgainOnBadCopy(() => (reads++, Promise.reject(bad())))).rejects.toThrow(/CRC32 mismatch in event type 23/)
    expect(reads).toBe(3)
    reads = 0
    await expect(readAgainOnBadCopy(() => (reads++, Promise.reject(new BinlogError('f', 4, 'torn header'))))).rejects.toThrow(/torn header/)
    expect(reads).toBe(1)
  })

  it('reads again when fewer bytes arrived than the host sent, not when the host is unreachable', async () => {
    let reads = 0
    const short = () => new SshError('transfer', 'db2: "tail -c +1216 -- relay-bin.000002": the host sent 10080307 bytes, 9031731 arrived; read it again')
    expect(await readAgainOnBadCopy(() => (++reads < 2 ? Promise.reject(short()) : Promise.resolve('copied')))).toBe('copied')
    expect(reads).toBe(2)
    reads = 0
    await expect(readAgainOnBadCopy(() => (reads++, Promise.reject(new SshError('unreachable', 'db2: gone'))))).rejects.toThrow(/gone/)
    expect(reads).toBe(1)
  })
})
