import {Readable} from 'node:stream'
import {describe, expect, it} from 'vitest'
import {bufferSource, EventType, findBinlogTail, readBinlogEvents, streamSource, transactionStartAt, type BinlogEventRecord} from '../../src/binlog/index.js'
import {fixtureBytes, fixtureNames} from '../fixtures/binlog/fixtures.js'

async function eventsOf(name: string): Promise<BinlogEventRecord[]> {
  return (await readBinlogEvents(bufferSource(name, fixtureBytes('master', name)))).events
}

const end = (e: BinlogEventRecord): number => e.offset + e.size

describe('findBinlogTail (trimming a dead master binlog)', () => {
  it('sees whole files: closed ones end in a Rotate, the active one is still flagged in use', async () => {
    const names = fixtureNames('master')
    for (const name of names) {
      const bytes = fixtureBytes('master', name)
      const tail = await findBinlogTail(bufferSource(name, bytes))
      const active = name === names.at(-1)
      expect(tail, name).toMatchObject({
        file: name,
        size: bytes.length,
        lastEventEnd: bytes.length,
        lastTransactionEnd: bytes.length,
        torn: null,
        inUse: active,
        finished: !active,
      })
    }
  })

  it('cuts a torn final event and the unfinished transaction it belonged to', async () => {
    const name = fixtureNames('master').at(-1)!
    const bytes = fixtureBytes('master', name)
    const events = await eventsOf(name)
    const lastXid = events.at(-1)!
    expect(lastXid.type).toBe(EventType.XID)
    const previousXid = events.filter((e) => e.type === EventType.XID).at(-2)!
    const cut = bytes.subarray(0, lastXid.offset + 7)
    const chunks: Buffer[] = []
    for (let i = 0; i < cut.length; i += 1000) chunks.push(cut.subarray(i, i + 1000))
    for (const source of [bufferSource(name, cut), streamSource(name, Readable.from(chunks))]) {
      const tail = await findBinlogTail(source)
      expect(tail).toMatchObject({
        size: cut.length,
        lastEventEnd: lastXid.offset,
        lastTransactionEnd: end(previousXid),
        torn: {offset: lastXid.offset, bytesPresent: 7},
        inUse: true,
        finished: false,
      })
    }
  })

  it('knows where row, DDL and non-transactional statement groups end', async () => {
    const name = 'mysql-bin.000001'
    const bytes = fixtureBytes('master', name)
    const events = await eventsOf(name)
    const tailAt = async (cut: number): Promise<number> => (await findBinlogTail(bufferSource(name, bytes.subarray(0, cut)))).lastTransactionEnd

    // A row transaction: GTID, Annotate_rows, Table_map, Write_rows, Xid.
    const xid = events.find((e) => e.type === EventType.XID)!
    const rowsGroup = events.slice(events.indexOf(xid) - 4, events.indexOf(xid) + 1)
    expect(rowsGroup.map((e) => e.type)).toEqual([
      EventType.MARIADB_GTID,
      EventType.MARIADB_ANNOTATE_ROWS,
      EventType.TABLE_MAP,
      EventType.WRITE_ROWS_V1,
      EventType.XID,
    ])
    for (const e of rowsGroup.slice(0, -1)) expect(await tailAt(end(e))).toBe(rowsGroup[0]!.offset)
    expect(await tailAt(end(xid))).toBe(end(xid))

    // DDL: a standalone GTID and one Query.
    const ddl = events.filter((e) => e.type === EventType.QUERY)[2]!
    expect(events[events.indexOf(ddl) - 1]!.type).toBe(EventType.MARIADB_GTID)
    expect(await tailAt(end(ddl))).toBe(end(ddl))
    expect(await tailAt(ddl.offset)).toBe(ddl.offset - events[events.indexOf(ddl) - 1]!.size)

    // MyISAM, statement format: GTID, Intvar, Query (INSERT), Query (COMMIT).
    const intvar = events.find((e) => e.type === EventType.INTVAR)!
    const group = events.slice(events.indexOf(intvar) - 1, events.indexOf(intvar) + 3)
    expect(group.map((e) => e.type)).toEqual([EventType.MARIADB_GTID, EventType.INTVAR, EventType.QUERY, EventType.QUERY])
    expect(await tailAt(end(group[2]!))).toBe(group[0]!.offset)
    expect(await tailAt(end(group[3]!))).toBe(end(group[3]!))
  })

  it('handles a statement-format InnoDB insert in a binlog without checksums', async () => {
    const name = 'mysql-bin.000003'
    const bytes = fixtureBytes('master', name)
    const events = await eventsOf(name)
    const intvar = events.find((e) => e.type === EventType.INTVAR)!
    const group = events.slice(events.indexOf(intvar) - 1, events.indexOf(intvar) + 3)
    expect(group.map((e) => e.type)).toEqual([EventType.MARIADB_GTID, EventType.INTVAR, EventType.QUERY, EventType.XID])
    const at = async (cut: number): Promise<number> => (await findBinlogTail(bufferSource(name, bytes.subarray(0, cut)))).lastTransactionEnd
    expect(await at(end(group[2]!))).toBe(group[0]!.offset)
    expect(await at(end(group[3]!))).toBe(end(group[3]!))
  })
})

describe('transactionStartAt (where the transaction a replica read into starts)', () => {
  // Every MariaDB transaction opens with a GTID event; its group runs to the next GTID or file-level event.
  const FILE_LEVEL = new Set<number>([EventType.FORMAT_DESCRIPTION, EventType.ROTATE, EventType.STOP, EventType.MARIADB_GTID_LIST, EventType.MARIADB_BINLOG_CHECKPOINT])

  it('at every event end of the MariaDB fixtures: the open group\'s GTID event, or the position itself between groups', async () => {
    for (const name of fixtureNames('master')) {
      const bytes = fixtureBytes('master', name)
      const events = await eventsOf(name)
      const groups: {start: number; end: number}[] = []
      for (const [i, e] of events.entries()) {
        if (e.type !== EventType.MARIADB_GTID) continue
        const next = events.slice(i + 1).findIndex((n) => n.type === EventType.MARIADB_GTID || FILE_LEVEL.has(n.type))
        groups.push({start: e.offset, end: end(events[next === -1 ? events.length - 1 : i + next]!)})
      }
      expect(groups.length, name).toBeGreaterThan(2)
      let inside = 0
      for (const e of events) {
        const at = end(e)
        const open = groups.find((g) => g.start < at && at < g.end)
        if (open) inside++
        expect(transactionStartAt(await findBinlogTail(bufferSource(name, bytes.subarray(0, at))), at), `${name} at ${at}`).toBe(open ? open.start : at)
      }
      expect(inside, name).toBeGreaterThan(0)
    }
  })

  it('refuses a position that is not an event boundary, or past the bytes read', async () => {
    const name = 'mysql-bin.000001'
    const bytes = fixtureBytes('master', name)
    const xid = (await eventsOf(name)).find((e) => e.type === EventType.XID)!
    const torn = await findBinlogTail(bufferSource(name, bytes.subarray(0, xid.offset + 3)))
    expect(() => transactionStartAt(torn, xid.offset + 3)).toThrow(/not an event boundary/)
    const short = await findBinlogTail(bufferSource(name, bytes.subarray(0, end(xid))))
    expect(() => transactionStartAt(short, end(xid) + 10)).toThrow(/shorter than/)
  })
})
