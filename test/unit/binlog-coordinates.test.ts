import * as zlib from 'node:zlib'
import {describe, expect, it} from 'vitest'
import {binlogBaseName, binlogSequence, compareBinlogNames, compareCoordinates, siblingBinlogName} from '../../src/binlog/coordinates.js'
import {crc32, crc32Table} from '../../src/binlog/crc32.js'

describe('binlog coordinates', () => {
  it('reads the numeric suffix whatever its width', () => {
    expect(binlogSequence('mysql-bin.000123')).toBe(123)
    expect(binlogSequence('mysql-bin.1000000')).toBe(1000000)
    expect(binlogSequence('relay.7')).toBe(7)
    expect(binlogSequence('/var/lib/mysql/host-bin.000010')).toBe(10)
    expect(binlogBaseName('mysql-bin.000123')).toBe('mysql-bin')
    expect(() => binlogSequence('mysql-bin')).toThrow(/not a binlog or relay log file name/)
  })

  it('compares numerically, never as strings', () => {
    expect(compareBinlogNames('mysql-bin.999999', 'mysql-bin.1000000')).toBe(-1)
    expect('mysql-bin.999999' > 'mysql-bin.1000000').toBe(true)
    expect(compareBinlogNames('mysql-bin.9', 'mysql-bin.000009')).toBe(0)
    expect(compareCoordinates({file: 'mysql-bin.000002', pos: 4}, {file: 'mysql-bin.000001', pos: 99999})).toBe(1)
    expect(compareCoordinates({file: 'mysql-bin.000002', pos: 120}, {file: 'mysql-bin.000002', pos: 1000})).toBe(-1)
    expect(compareCoordinates({file: 'mysql-bin.000002', pos: 120}, {file: 'mysql-bin.2', pos: 120})).toBe(0)
    const sorted = [
      {file: 'b.1000000', pos: 4},
      {file: 'b.999999', pos: 500},
      {file: 'b.999999', pos: 40},
    ].sort(compareCoordinates)
    expect(sorted.map((c) => `${c.file}:${c.pos}`)).toEqual(['b.999999:40', 'b.999999:500', 'b.1000000:4'])
  })

  it('names neighbouring files keeping the padding', () => {
    expect(siblingBinlogName('mysql-bin.000123', 1)).toBe('mysql-bin.000124')
    expect(siblingBinlogName('mysql-bin.000100', -1)).toBe('mysql-bin.000099')
    expect(siblingBinlogName('mysql-bin.999999', 1)).toBe('mysql-bin.1000000')
  })
})

describe('crc32', () => {
  it('is the zlib CRC-32', () => {
    expect(crc32Table(Buffer.from('123456789'))).toBe(0xcbf43926)
    const bytes = Buffer.alloc(100_003)
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24
    for (const [start, stop] of [
      [0, 0],
      [0, 1],
      [3, 11],
      [5, 300],
      [7, 5000],
      [0, bytes.length],
    ] as const) {
      const expected = zlib.crc32(bytes.subarray(start, stop))
      expect(crc32Table(bytes, start, stop)).toBe(expected)
      expect(crc32(bytes, start, stop)).toBe(expected)
    }
  })

  it('continues across pieces', () => {
    const bytes = Buffer.from('the binlog event, split across two network reads')
    const whole = crc32Table(bytes)
    expect(crc32Table(bytes, 17, bytes.length, crc32Table(bytes, 0, 17))).toBe(whole)
    expect(crc32(bytes, 17, bytes.length, crc32(bytes, 0, 17))).toBe(whole)
  })
})
