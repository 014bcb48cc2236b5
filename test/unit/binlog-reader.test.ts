import {Readable} from 'node:stream'
import {describe, expect, it} from 'vitest'
import {
  BinlogChecksumError,
  BinlogError,
  bufferSource,
  ChecksumAlg,
  EventFlag,
  EventType,
  eventTypeName,
  fileSource,
  readBinlogEvents,
  scanBinlog,
  streamSource,
  type BinlogEventRecord,
} from '../../src/binlog/index.js'
import {
  fixtureBytes,
  fixtureNames,
  fixturePath,
  fixtureSources,
  hasMariadbBinlog,
  recorded,
  referenceEvents,
} from '../fixtures/binlog/fixtures.js'

function chunked(bytes: Buffer, size: number): Readable {
  const chunks: Buffer[] = []
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size))
  return Readable.from(chunks)
}

function typeCounts(events: BinlogEventRecord[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const e of events) counts[eventTypeName(e.type)] = (counts[eventTypeName(e.type)] ?? 0) + 1
  return counts
}

// From the committed fixtures, cross-checked against `mariadb-binlog` below.
const masterExpectations = {
  'mysql-bin.000001': {size: 8591, events: 116, checksum: ChecksumAlg.CRC32, rotatesTo: 'mysql-bin.000002', annotate: 20, xid: 18, query: 8},
  'mysql-bin.000002': {size: 1524, events: 20, checksum: ChecksumAlg.CRC32, rotatesTo: 'mysql-bin.000003', annotate: 3, xid: 3, query: 0},
  'mysql-bin.000003': {size: 8555, events: 124, checksum: ChecksumAlg.OFF, rotatesTo: 'mysql-bin.000004', annotate: 23, xid: 24, query: 1},
  'mysql-bin.000004': {size: 3478, events: 49, checksum: ChecksumAlg.OFF, rotatesTo: null, annotate: 9, xid: 9, query: 0},
} as const

describe('master binlogs made by MariaDB', () => {
  it('has the fixture files the expectations are about', () => {
    expect(fixtureNames('master')).toEqual(Object.keys(masterExpectations))
  })

  for (const [name, expected] of Object.entries(masterExpectations)) {
    it(`${name}: events, types, checksums and rotate`, async () => {
      const {events, files} = await readBinlogEvents(fileSource(fixturePath('master', name)))
      const counts = typeCounts(events)
      expect(files).toHaveLength(1)
      expect(files[0]).toMatchObject({file: name, size: expected.size, events: expected.events, lastEventEnd: expected.size, torn: null, relayLog: false})
      expect(events).toHaveLength(expected.events)
      expect(counts.MARIADB_ANNOTATE_ROWS ?? 0).toBe(expected.annotate)
      expect(counts.XID ?? 0).toBe(expected.xid)
      expect(counts.QUERY ?? 0).toBe(expected.query)
      expect(counts.MARIADB_GTID).toBeGreaterThan(0)
      expect(counts.MARIADB_GTID_LIST).toBe(1)
      expect(counts.MARIADB_BINLOG_CHECKPOINT).toBeGreaterThan(0)

      const fde = events[0]!
      expect(fde).toMatchObject({offset: 4, type: EventType.FORMAT_DESCRIPTION, serverId: recorded.masterServerId, checksumAlg: expected.checksum})
      expect(fde.serverVersion).toMatch(/^10\.11\.\d+-MariaDB/)
      // A checksum-aware FDE always carries a CRC, even when it turns checksums off for the rest.
      expect(fde.checksummed).toBe(true)
      expect(events.slice(1).every((e) => e.checksummed === (expected.checksum === ChecksumAlg.CRC32))).toBe(true)

      // Events are contiguous and log_pos (end_log_pos) is where each ends in this very file.
      let offset = 4
      for (const e of events) {
        expect(e.offset).toBe(offset)
        expect(e.logPos).toBe(e.offset + e.size)
        expect(e.upstream).toBe(false)
        offset += e.size
      }

      const last = events.at(-1)!
      if (expected.rotatesTo) {
        expect(last).toMatchObject({type: EventType.ROTATE, nextFile: expected.rotatesTo, nextPosition: 4})
        expect(fde.flags & EventFlag.BINLOG_IN_USE).toBe(0)
      } else {
        expect(last.type).toBe(EventType.XID)
        expect(fde.flags & EventFlag.BINLOG_IN_USE).toBe(EventFlag.BINLOG_IN_USE)
      }
    })
  }

  it.skipIf(!hasMariadbBinlog)('agrees with mariadb-binlog on every event of every fixture file', async () => {
    for (const kind of ['master', 'relay'] as const) {
      for (const name of fixtureNames(kind)) {
        const reference = referenceEvents(fixturePath(kind, name))
        const {events} = await readBinlogEvents(fileSource(fixturePath(kind, name)))
        const ours = events.map((e) => ({
          offset: e.offset,
          logPos: e.logPos,
          serverId: e.serverId,
          type: e.type,
          crc: e.type === EventType.FORMAT_DESCRIPTION ? e.checksumAlg === ChecksumAlg.CRC32 : e.checksummed,
        }))
        expect(ours, `${kind}/${name}`).toEqual(reference)
      }
    }
  })

  it('follows the rotate chain across files and switches checksums where binlog_checksum changed', async () => {
    const {events, files} = await readBinlogEvents(fixtureSources('master'))
    expect(files.map((f) => f.file)).toEqual(fixtureNames('master'))
    const rotates = events.filter((e) => e.type === EventType.ROTATE)
    expect(rotates.map((r) => `${r.file}->${r.nextFile}:${r.nextPosition}`)).toEqual([
      'mysql-bin.000001->mysql-bin.000002:4',
      'mysql-bin.000002->mysql-bin.000003:4',
      'mysql-bin.000003->mysql-bin.000004:4',
    ])
    const formats = events.filter((e) => e.type === EventType.FORMAT_DESCRIPTION).map((e) => e.checksumAlg)
    expect(formats).toEqual([ChecksumAlg.CRC32, ChecksumAlg.CRC32, ChecksumAlg.OFF, ChecksumAlg.OFF])
    expect(recorded.final).toEqual({file: 'mysql-bin.000004', pos: files.at(-1)!.size})
  })

  it('reads the same events from a stream cut into chunks of any size as from one buffer', async () => {
    const bytes = fixtureBytes('master', 'mysql-bin.000001')
    const whole = await readBinlogEvents(bufferSource('mysql-bin.000001', bytes))
    for (const size of [1, 3, 19, 20, 23, 64, 1000, 4096]) {
      const streamed = await readBinlogEvents(streamSource('mysql-bin.000001', chunked(bytes, size)))
      expect(streamed, `chunk size ${size}`).toEqual(whole)
    }
  })

  it('hands the bytes of requested event types to the callback', async () => {
    const bytes = fixtureBytes('master', 'mysql-bin.000001')
    const queries: string[] = []
    for (const source of [bufferSource('a', bytes), streamSource('a', chunked(bytes, 7))]) {
      queries.length = 0
      await scanBinlog(
        source,
        (e) => {
          if (e.type === EventType.QUERY) queries.push(e.data!.subarray(e.size - 4 - 6, e.size - 4).toString())
        },
        {bodies: [EventType.QUERY]},
      )
      expect(queries).toContain('COMMIT')
    }
  })
})

describe('torn and corrupt binlogs', () => {
  const bytes = fixtureBytes('master', 'mysql-bin.000001')

  it('reports a torn final event instead of throwing, for any cut inside the last event', async () => {
    const {events} = await readBinlogEvents(bufferSource('full', bytes))
    const last = events.at(-1)!
    for (const keep of [1, 5, 18, 19, 20, last.size - 4, last.size - 1]) {
      const cut = bytes.subarray(0, last.offset + keep)
      for (const source of [bufferSource('torn', cut), streamSource('torn', chunked(cut, 100))]) {
        const {events: read, files} = await readBinlogEvents(source)
        expect(read).toHaveLength(events.length - 1)
        expect(files[0]!.torn).toEqual({offset: last.offset, bytesPresent: keep})
        expect(files[0]!.lastEventEnd).toBe(last.offset)
      }
    }
  })

  it('reports a file cut inside the magic number as torn at offset 0, and an empty file as empty', async () => {
    const {files} = await readBinlogEvents([bufferSource('two', bytes.subarray(0, 2)), bufferSource('empty', Buffer.alloc(0))])
    expect(files[0]).toMatchObject({torn: {offset: 0, bytesPresent: 2}, events: 0})
    expect(files[1]).toMatchObject({torn: null, events: 0, size: 0})
  })

  it('names the file offset of an event whose CRC32 does not match', async () => {
    const {events} = await readBinlogEvents(bufferSource('x', bytes))
    const victim = events.find((e) => e.type === EventType.WRITE_ROWS_V1)!
    const corrupt = Buffer.from(bytes)
    corrupt[victim.offset + 30]! ^= 0x01
    const message = new RegExp(`^mysql-bin\\.000001 at offset ${victim.offset}: CRC32 mismatch in event type ${EventType.WRITE_ROWS_V1}`)
    await expect(readBinlogEvents(bufferSource('mysql-bin.000001', corrupt))).rejects.toThrow(BinlogChecksumError)
    await expect(readBinlogEvents(bufferSource('mysql-bin.000001', corrupt))).rejects.toThrow(message)
    // Split inside the event: checksummed piece by piece.
    await expect(readBinlogEvents(streamSource('mysql-bin.000001', chunked(corrupt, victim.offset + 25)))).rejects.toThrow(message)
    // Not verifying reads it through.
    const {events: unchecked} = await readBinlogEvents(bufferSource('x', corrupt), {verifyChecksums: false})
    expect(unchecked).toHaveLength(events.length)
  })

  it('detects a corrupt FDE, whose CRC is computed with the in-use flag clear', async () => {
    const active = fixtureBytes('master', 'mysql-bin.000004')
    await expect(readBinlogEvents(bufferSource('ok', active))).resolves.toBeDefined()
    const corrupt = Buffer.from(active)
    corrupt[180]! ^= 0x20 // inside the post-header length table
    await expect(readBinlogEvents(bufferSource('bad', corrupt))).rejects.toThrow(/^bad at offset 4: CRC32 mismatch/)
  })

  it('cannot check events of a binlog without checksums, but still rejects impossible sizes and bad magic', async () => {
    const none = fixtureBytes('master', 'mysql-bin.000003')
    const {events} = await readBinlogEvents(bufferSource('x', none))
    const flipped = Buffer.from(none)
    flipped[events[5]!.offset + 25]! ^= 0xff
    await expect(readBinlogEvents(bufferSource('x', flipped))).resolves.toBeDefined()
    const badSize = Buffer.from(none)
    badSize.writeUInt32LE(7, events[5]!.offset + 9)
    await expect(readBinlogEvents(bufferSource('x', badSize))).rejects.toThrow(/impossible event size 7/)
    const badMagic = Buffer.from(none)
    badMagic[1] = 0
    await expect(readBinlogEvents(bufferSource('x', badMagic))).rejects.toThrow(BinlogError)
  })
})

describe('relay logs made by a MariaDB replica', () => {
  it('tells the replica’s own events from the master’s, and honours each side’s checksum setting', async () => {
    const {events, files} = await readBinlogEvents(fixtureSources('relay'))
    expect(files.map((f) => f.file)).toEqual(fixtureNames('relay'))
    expect(files.every((f) => f.relayLog && f.torn === null && f.lastEventEnd === f.size)).toBe(true)
    for (const e of events) {
      expect(e.upstream).toBe(e.serverId !== recorded.replicaServerId)
      expect([recorded.replicaServerId, recorded.masterServerId]).toContain(e.serverId)
    }
    // Every relay file starts with the replica's own FDE.
    for (const f of files) {
      const first = events.find((e) => e.file === f.file)!
      expect(first).toMatchObject({offset: 4, type: EventType.FORMAT_DESCRIPTION, serverId: recorded.replicaServerId})
      expect(first.flags & EventFlag.RELAY_LOG).toBe(EventFlag.RELAY_LOG)
    }
    // The master's fake Rotate events: log_pos 0, artificial.
    const fake = events.filter((e) => e.type === EventType.ROTATE && e.upstream && e.logPos === 0)
    expect(fake.length).toBeGreaterThan(0)
    expect(fake.every((e) => (e.flags & EventFlag.ARTIFICIAL) !== 0)).toBe(true)
    expect(fake[0]).toMatchObject({nextFile: recorded.replicationStart.file, nextPosition: recorded.replicationStart.pos})
    // Master events carry CRC32 exactly until the master FDE with binlog_checksum=NONE.
    const masterFormats = events.filter((e) => e.type === EventType.FORMAT_DESCRIPTION && e.upstream)
    expect(masterFormats.map((e) => e.checksumAlg)).toContain(ChecksumAlg.OFF)
    expect(masterFormats.map((e) => e.checksumAlg)).toContain(ChecksumAlg.CRC32)
    const masterData = events.filter((e) => e.upstream && e.type !== EventType.FORMAT_DESCRIPTION && e.logPos !== 0)
    expect(masterData.some((e) => e.checksummed)).toBe(true)
    expect(masterData.some((e) => !e.checksummed)).toBe(true)
    // The replica's own Rotate after the master switched to NONE has no CRC (MariaDB follows the master's setting).
    const ownRotates = events.filter((e) => e.type === EventType.ROTATE && !e.upstream)
    expect(ownRotates.some((e) => e.checksummed)).toBe(true)
    expect(ownRotates.some((e) => !e.checksummed)).toBe(true)
  })

  it('reads a relay file that lacks the master FDE (its checksum setting comes from the event bytes)', async () => {
    for (const name of fixtureNames('relay')) {
      const alone = await readBinlogEvents(bufferSource(name, fixtureBytes('relay', name)))
      const inSequence = (await readBinlogEvents(fixtureSources('relay'))).events.filter((e) => e.file === name)
      expect(alone.events, name).toEqual(inSequence)
    }
  })

  it('detects a flipped byte in a relayed master event', async () => {
    const bytes = fixtureBytes('relay', 'relay-bin.000002')
    const {events} = await readBinlogEvents(bufferSource('relay-bin.000002', bytes))
    const victim = events.find((e) => e.upstream && e.type === EventType.XID)!
    const corrupt = Buffer.from(bytes)
    corrupt[victim.offset + 20]! ^= 0x80
    await expect(readBinlogEvents(bufferSource('relay-bin.000002', corrupt))).rejects.toThrow(
      `relay-bin.000002 at offset ${victim.offset}: CRC32 mismatch in event type ${EventType.XID}`,
    )
  })
})
