/**
 * Real MySQL binlog bytes (test/fixtures/binlog/mysql, see SOURCES.md) through the binlog reader and the
 * recovery assemblers. Expectations come from the bytes themselves, read here with a few lines of code of
 * the test's own (event sizes, types, node's zlib CRC32, GTID positions), never from the code under test.
 */
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {crc32 as zlibCrc32} from 'node:zlib'
import {afterAll, describe, expect, it} from 'vitest'
import {BinlogChecksumError, bufferSource, EventType, findBinlogTail, findRelayDiffStart, readBinlogEvents} from '../../src/binlog/index.js'
import {assembleBinlogTail, assembleRelayDiff, bufferRangeSource} from '../../src/recovery/index.js'
import {fixtureDir} from '../fixtures/binlog/fixtures.js'

const work = mkdtempSync(join(tmpdir(), 'mha-binlog-mysql-'))
afterAll(() => rmSync(work, {recursive: true, force: true}))

const MAGIC = Buffer.from([0xfe, 0x62, 0x69, 0x6e])
const T = EventType

function mysqlFixture(path: string): Buffer {
  return readFileSync(join(fixtureDir, 'mysql', path))
}

/** One event as this test reads it: header fields and its bytes, nothing else. */
interface Raw {
  offset: number
  size: number
  type: number
  serverId: number
  logPos: number
  flags: number
  bytes: Buffer
}

function rawEvents(file: Buffer): Raw[] {
  expect(file.subarray(0, 4)).toEqual(MAGIC)
  const events: Raw[] = []
  for (let at = 4; at + 19 <= file.length; ) {
    const size = file.readUInt32LE(at + 9)
    if (at + size > file.length) break
    events.push({
      offset: at,
      size,
      type: file[at + 4]!,
      serverId: file.readUInt32LE(at + 5),
      logPos: file.readUInt32LE(at + 13),
      flags: file.readUInt16LE(at + 17),
      bytes: file.subarray(at, at + size),
    })
    at += size
  }
  return events
}

const end = (e: {offset: number; size: number}): number => e.offset + e.size
const storedCrc = (ev: Buffer): number => ev.readUInt32LE(ev.length - 4)
const computedCrc = (ev: Buffer): number => zlibCrc32(ev.subarray(0, ev.length - 4))

function fdeVersion(fde: Buffer): string {
  const text = fde.subarray(19 + 2, 19 + 2 + 50)
  return text.toString('latin1', 0, text.indexOf(0))
}

const GTIDS = new Set<number>([T.GTID, T.ANONYMOUS_GTID])
const FILE_LEVEL = new Set<number>([T.FORMAT_DESCRIPTION, T.PREVIOUS_GTIDS, T.ROTATE, T.STOP])

/**
 * Where whole units end, by GTID positions alone: a MySQL 5.7+/8.x server writes a GTID or anonymous GTID
 * event before every transaction, so a transaction is everything from one GTID event to the next GTID or
 * file-level event. FDE, PREVIOUS_GTIDS, ROTATE and STOP stand alone.
 */
function unitEnds(events: Raw[]): number[] {
  const ends: number[] = []
  for (const [i, e] of events.entries()) {
    const next = events[i + 1]
    if (FILE_LEVEL.has(e.type)) ends.push(end(e))
    else if (next === undefined || GTIDS.has(next.type) || FILE_LEVEL.has(next.type)) ends.push(end(e))
  }
  return ends
}

/** For a copy of the file cut at `cut` bytes: where its last whole unit ends. */
const wholeUpTo = (ends: number[], cut: number): number => Math.max(4, ...ends.filter((e) => e <= cut))

// ---- Building events in MySQL's layout (for what no real fixture holds: XA, relay logs) ----

function withCrc(headerAndBody: Buffer): Buffer {
  const out = Buffer.alloc(headerAndBody.length + 4)
  headerAndBody.copy(out)
  out.writeUInt32LE(zlibCrc32(headerAndBody), headerAndBody.length)
  return out
}

/** A copy of a checksummed event with header fields or body changed, its size and CRC32 recomputed. */
function rebuild(ev: Buffer, change: {logPos?: number; serverId?: number; flags?: number; body?: Buffer}): Buffer {
  const body = change.body ?? ev.subarray(19, ev.length - 4)
  const header = Buffer.from(ev.subarray(0, 19))
  header.writeUInt32LE(19 + body.length + 4, 9)
  if (change.serverId !== undefined) header.writeUInt32LE(change.serverId, 5)
  if (change.logPos !== undefined) header.writeUInt32LE(change.logPos, 13)
  if (change.flags !== undefined) header.writeUInt16LE(change.flags, 17)
  return withCrc(Buffer.concat([header, body]))
}

/** A QUERY event like `query` with another SQL text (post-header 13, then status vars, db, NUL, text). */
function withQueryText(query: Buffer, text: string): Buffer {
  const body = query.subarray(19, query.length - 4)
  const textAt = 13 + body.readUInt16LE(11) + body[8]! + 1
  return rebuild(query, {body: Buffer.concat([body.subarray(0, textAt), Buffer.from(text)])})
}

/** XA_PREPARE_LOG_EVENT body: one_phase 1, formatID 4, gtrid_length 4, bqual_length 4, then the xid bytes. */
function xaPrepare(like: Buffer, gtrid: string, onePhase: boolean): Buffer {
  const body = Buffer.alloc(13 + gtrid.length)
  body[0] = onePhase ? 1 : 0
  body.writeUInt32LE(1, 1)
  body.writeUInt32LE(gtrid.length, 5)
  body.writeUInt32LE(0, 9)
  body.write(gtrid, 13, 'latin1')
  const header = Buffer.from(like.subarray(0, 19))
  header[4] = T.XA_PREPARE
  header.writeUInt16LE(0, 17)
  return rebuild(Buffer.concat([header, body, Buffer.alloc(4)]), {})
}

/** A binlog file of these events, each end_log_pos set to where it ends in this file. */
function masterFile(events: Buffer[]): Buffer {
  let pos = 4
  return Buffer.concat([MAGIC, ...events.map((ev) => rebuild(ev, {logPos: (pos += ev.length)}))])
}

const xid = (gtrid: string): string => `X'${Buffer.from(gtrid).toString('hex')}',X'',1`

/**
 * gtid/binlog.000001 with an XA transaction in MySQL's layout: GTID, XA START, the real TABLE_MAP and
 * WRITE_ROWS, XA END, XA_PREPARE; a normal transaction; GTID + XA COMMIT; a one-phase XA transaction
 * (XA COMMIT ... ONE PHASE is logged as an XA_PREPARE with one_phase set); the Rotate.
 */
function xaBinlog(): Buffer {
  const e = rawEvents(mysqlFixture('gtid/binlog.000001')).map((r) => r.bytes)
  // 0 FDE, 1 PREVIOUS_GTIDS, 2 GTID, 3 CREATE TABLE, 4 GTID, 5 BEGIN, 6 TABLE_MAP, 7 WRITE_ROWS, 8 XID, 9-13 the same again, ..., 25 ROTATE
  const [fde, previous, gtid, create, gtid2, begin, tableMap, writeRows] = e as [Buffer, Buffer, Buffer, Buffer, Buffer, Buffer, Buffer, Buffer]
  return masterFile([
    fde,
    previous,
    gtid,
    create,
    gtid2,
    withQueryText(begin, `XA START ${xid('x1')}`),
    tableMap,
    writeRows,
    withQueryText(begin, `XA END ${xid('x1')}`),
    xaPrepare(writeRows, 'x1', false),
    ...e.slice(9, 14),
    gtid2,
    withQueryText(begin, `XA COMMIT ${xid('x1')}`),
    gtid2,
    withQueryText(begin, `XA START ${xid('x2')}`),
    tableMap,
    writeRows,
    withQueryText(begin, `XA END ${xid('x2')}`),
    xaPrepare(writeRows, 'x2', true),
    e.at(-1)!,
  ])
}

// ---- The fixtures ----

interface Case {
  name: string
  bytes: Buffer
  version: string
  types: number[]
}

const rowTrx = (rows: number, type: number = T.WRITE_ROWS): number[] => [T.QUERY, ...Array.from({length: rows}, () => [T.TABLE_MAP, type]).flat(), T.XID]

/** Event types as the data directory script (SOURCES.md) says they must be: CREATE TABLE, two inserts, a four-row transaction. */
const script1 = (gtid: number): number[] => [
  T.FORMAT_DESCRIPTION,
  T.PREVIOUS_GTIDS,
  gtid,
  T.QUERY,
  gtid,
  ...rowTrx(1),
  gtid,
  ...rowTrx(1),
  gtid,
  ...rowTrx(4),
  T.ROTATE,
]
const script2 = (gtid: number): number[] => [T.FORMAT_DESCRIPTION, T.PREVIOUS_GTIDS, gtid, ...rowTrx(1, T.UPDATE_ROWS), gtid, ...rowTrx(1, T.DELETE_ROWS), T.STOP]

const cases: Case[] = [
  {name: 'gtid/binlog.000001', bytes: mysqlFixture('gtid/binlog.000001'), version: '8.0.45', types: script1(T.GTID)},
  {name: 'gtid/binlog.000002', bytes: mysqlFixture('gtid/binlog.000002'), version: '8.0.45', types: script2(T.GTID)},
  {name: 'position/binlog.000001', bytes: mysqlFixture('position/binlog.000001'), version: '8.0.45', types: script1(T.ANONYMOUS_GTID)},
  {name: 'position/binlog.000002', bytes: mysqlFixture('position/binlog.000002'), version: '8.0.45', types: script2(T.ANONYMOUS_GTID)},
  {
    name: 'compressed/mysql-bin.000057',
    bytes: mysqlFixture('compressed/mysql-bin.000057'),
    version: '8.0.31',
    types: [T.FORMAT_DESCRIPTION, T.PREVIOUS_GTIDS, T.GTID, T.QUERY, T.GTID, T.TRANSACTION_PAYLOAD, T.GTID, T.TRANSACTION_PAYLOAD],
  },
]
const mysql57 = mysqlFixture('5.7/mysql-bin.000080')

describe('real MySQL binlogs through the scanner', () => {
  it('the fixtures are what SOURCES.md says (read without mha code)', () => {
    for (const c of cases) {
      const raw = rawEvents(c.bytes)
      expect(raw.map((e) => e.type), c.name).toEqual(c.types)
      expect(end(raw.at(-1)!), c.name).toBe(c.bytes.length)
      expect(fdeVersion(raw[0]!.bytes), c.name).toBe(c.version)
      for (const e of raw) {
        expect(e.logPos, `${c.name} end_log_pos at ${e.offset}`).toBe(end(e))
        expect(storedCrc(e.bytes), `${c.name} CRC at ${e.offset}`).toBe(computedCrc(e.bytes))
      }
    }
    // The upstream project's own test counts: 8 events in mysql-bin.000057, 37 in mysql-bin.000080.
    expect(rawEvents(cases[4]!.bytes)).toHaveLength(8)
    expect(rawEvents(mysql57)).toHaveLength(37)
  })

  it('reads every event, with its type, offset, end_log_pos and server id, verifying each CRC32', async () => {
    for (const c of [...cases, {name: '5.7/mysql-bin.000080', bytes: mysql57, version: '5.7.40-log', types: rawEvents(mysql57).map((e) => e.type)}]) {
      const {events, files} = await readBinlogEvents(bufferSource(c.name, c.bytes), {verifyChecksums: true})
      const raw = rawEvents(c.bytes)
      expect(
        events.map((e) => ({offset: e.offset, size: e.size, type: e.type, logPos: e.logPos, serverId: e.serverId, checksummed: e.checksummed})),
        c.name,
      ).toEqual(raw.map((e) => ({offset: e.offset, size: e.size, type: e.type, logPos: e.logPos, serverId: e.serverId, checksummed: true})))
      expect(events[0]!.serverVersion).toBe(c.version)
      expect(files[0]).toMatchObject({events: raw.length, lastEventEnd: c.bytes.length, torn: null, relayLog: false})
      expect(files[0]!.format).toMatchObject({serverVersion: c.version, checksumAlg: 1, binlogVersion: 4, headerLength: 19})
      // MySQL 8.0's FDE knows the types up to TRANSACTION_PAYLOAD (40) and gives it a 40-byte post-header.
      if (c.version.startsWith('8.0')) expect(files[0]!.format!.postHeaderLengths[T.TRANSACTION_PAYLOAD - 1]).toBe(40)
    }
  })

  it('rejects any one flipped byte of a row event, a compressed payload and the FDE', async () => {
    for (const c of [cases[0]!, cases[4]!]) {
      for (const e of rawEvents(c.bytes).filter((r) => [T.FORMAT_DESCRIPTION, T.WRITE_ROWS, T.TRANSACTION_PAYLOAD].includes(r.type as 15))) {
        const bad = Buffer.from(c.bytes)
        // In the FDE, a byte of the post-header lengths (a flipped server version would read as a pre-checksum server's FDE).
        bad[e.offset + (e.type === T.FORMAT_DESCRIPTION ? 19 + 2 + 50 + 4 + 1 + 10 : 19 + 3)]! ^= 0x10
        await expect(readBinlogEvents(bufferSource(c.name, bad)), `${c.name} at ${e.offset}`).rejects.toThrow(BinlogChecksumError)
      }
    }
  })
})

describe('transaction boundaries in MySQL binlogs (findBinlogTail)', () => {
  const xa = {name: 'xa (built)', bytes: xaBinlog()}

  it('the built XA binlog reads back as MySQL lays it out', async () => {
    const raw = rawEvents(xa.bytes)
    expect(raw.filter((e) => e.type === T.XA_PREPARE)).toHaveLength(2)
    expect(raw.every((e) => storedCrc(e.bytes) === computedCrc(e.bytes) && e.logPos === end(e))).toBe(true)
    const {events} = await readBinlogEvents(bufferSource(xa.name, xa.bytes))
    expect(events.map((e) => e.type)).toEqual(raw.map((e) => e.type))
  })

  it('keeps exactly the whole transactions of a file cut at any byte', async () => {
    for (const c of [...cases, xa, {name: '5.7', bytes: mysql57}]) {
      const ends = unitEnds(rawEvents(c.bytes))
      const raw = rawEvents(c.bytes)
      for (let cut = 4; cut <= c.bytes.length; cut++) {
        const tail = await findBinlogTail(bufferSource(c.name, c.bytes.subarray(0, cut)))
        const lastWhole = raw.filter((e) => end(e) <= cut).at(-1)
        expect({cut, lastTransactionEnd: tail.lastTransactionEnd, lastEventEnd: tail.lastEventEnd}, c.name).toEqual({
          cut,
          lastTransactionEnd: wholeUpTo(ends, cut),
          lastEventEnd: lastWhole ? end(lastWhole) : 4,
        })
      }
    }
  })

  it('treats one TRANSACTION_PAYLOAD as a whole transaction and an XA_PREPARE as the end of one', async () => {
    const compressed = cases[4]!.bytes
    const payloads = rawEvents(compressed).filter((e) => e.type === T.TRANSACTION_PAYLOAD)
    for (const p of payloads) {
      expect((await findBinlogTail(bufferSource('c', compressed.subarray(0, end(p))))).lastTransactionEnd).toBe(end(p))
      expect((await findBinlogTail(bufferSource('c', compressed.subarray(0, end(p) - 1)))).lastTransactionEnd).toBe(p.offset - 79)
    }
    const raw = rawEvents(xa.bytes)
    for (const prepare of raw.filter((e) => e.type === T.XA_PREPARE)) {
      const at = raw.indexOf(prepare)
      const gtid = raw.slice(0, at).findLast((e) => e.type === T.GTID)!
      expect((await findBinlogTail(bufferSource('xa', xa.bytes.subarray(0, end(prepare))))).lastTransactionEnd).toBe(end(prepare))
      // Cut after XA START, after the rows, after XA END: the XA transaction is dropped whole.
      for (const inside of raw.slice(raw.indexOf(gtid), at)) {
        expect((await findBinlogTail(bufferSource('xa', xa.bytes.subarray(0, end(inside))))).lastTransactionEnd).toBe(gtid.offset)
      }
    }
  })
})

describe('assembleBinlogTail on MySQL binlogs', () => {
  let n = 0
  const out = (): string => join(work, `tail-${n++}.bin`)

  /** What the saved tail must be: magic, the first file's FDE, then every event from `from` on that is whole, but PREVIOUS_GTIDS. */
  function expectedTail(files: Array<{name: string; bytes: Buffer; cut: number}>, fromPos: number): {bytes: Buffer; end: {file: string; pos: number}} {
    const parts: Buffer[] = [MAGIC]
    let last = {file: '', pos: 0}
    for (const [i, f] of files.entries()) {
      const raw = rawEvents(f.bytes)
      if (i === 0) parts.push(raw[0]!.bytes)
      const limit = i === files.length - 1 ? wholeUpTo(unitEnds(raw), f.cut) : f.bytes.length
      const start = i === 0 ? fromPos : 4
      parts.push(...raw.filter((e) => e.offset >= start && end(e) <= limit && e.type !== T.PREVIOUS_GTIDS).map((e) => e.bytes))
      last = {file: f.name, pos: limit}
    }
    return {bytes: Buffer.concat(parts), end: last}
  }

  it('cuts a single file after its last whole transaction, at every event end and inside every event', async () => {
    for (const c of [...cases, {name: 'xa.000001', bytes: xaBinlog()}]) {
      const raw = rawEvents(c.bytes)
      const from = raw.find((e) => GTIDS.has(e.type))!.offset
      const cuts = raw.filter((e) => end(e) > from).flatMap((e) => [end(e), e.offset + Math.floor(e.size / 2)])
      for (const cut of cuts) {
        const name = 'binlog.000001'
        const file = out()
        const saved = await assembleBinlogTail([bufferRangeSource(name, c.bytes.subarray(0, cut))], {file: name, pos: from}, file)
        const expected = expectedTail([{name, bytes: c.bytes, cut}], from)
        expect(readFileSync(file).equals(expected.bytes), `${c.name} cut at ${cut}`).toBe(true)
        expect(saved.end, `${c.name} cut at ${cut}`).toEqual(expected.end.pos > from ? expected.end : {file: name, pos: from})
        expect(saved.trimmed, `${c.name} cut at ${cut}`).toBe(cut - Math.max(from, expected.end.pos))
      }
    }
  })

  it('joins binlog.000001 whole to binlog.000002 cut mid-transaction', async () => {
    for (const dir of ['gtid', 'position']) {
      const first = mysqlFixture(`${dir}/binlog.000001`)
      const second = mysqlFixture(`${dir}/binlog.000002`)
      const from = rawEvents(first).filter((e) => GTIDS.has(e.type))[1]!.offset
      for (const e of rawEvents(second).slice(1)) {
        for (const cut of [end(e), end(e) - 5]) {
          const file = out()
          const saved = await assembleBinlogTail(
            [bufferRangeSource('binlog.000001', first), bufferRangeSource('binlog.000002', second.subarray(0, cut))],
            {file: 'binlog.000001', pos: from},
            file,
          )
          const expected = expectedTail(
            [
              {name: 'binlog.000001', bytes: first, cut: first.length},
              {name: 'binlog.000002', bytes: second, cut},
            ],
            from,
          )
          expect(readFileSync(file).equals(expected.bytes), `${dir} cut at ${cut}`).toBe(true)
          expect(saved.end).toEqual(expected.end)
        }
      }
    }
  })
})

// ---- Relay logs in MySQL's layout ----

const MASTER_ID = 1
const REPLICA_ID = 2
const RELAY_LOG_F = 0x40
const ARTIFICIAL_F = 0x20

interface RelayFile {
  name: string
  bytes: Buffer
  /** Where the master's fake Rotate ends, and the master position it names. */
  afterFakeRotate: number
  fakeRotatePos: number
  /** Where each relayed master event ends in this relay file, with its master coordinates. */
  copies: Array<{masterFile: string; masterEnd: number; relayEnd: number; bytes: Buffer}>
}

function rotateBody(position: number, file: string): Buffer {
  const body = Buffer.alloc(8 + file.length)
  body.writeUInt32LE(position, 0)
  body.write(file, 8, 'latin1')
  return body
}

/**
 * A MySQL replica's relay log: its own FDE (its server_id, LOG_EVENT_RELAY_LOG_F) and PREVIOUS_GTIDS, the
 * master's fake Rotate (log_pos 0) naming the master file, then the master's events unchanged (their
 * end_log_pos is in the master's file), and the replica's own Rotate to the next relay file.
 */
function relayFile(
  name: string,
  next: string | null,
  masterFde: Buffer,
  previousGtids: Buffer,
  start: {file: string; pos: number},
  relayed: Array<{masterFile: string; bytes: Buffer; artificial?: boolean}>,
): RelayFile {
  const parts: Buffer[] = [MAGIC]
  let pos = 4
  const add = (ev: Buffer): number => {
    parts.push(ev)
    return (pos += ev.length)
  }
  add(rebuild(masterFde, {serverId: REPLICA_ID, flags: RELAY_LOG_F, logPos: pos + masterFde.length}))
  add(rebuild(previousGtids, {serverId: REPLICA_ID, logPos: pos + previousGtids.length}))
  const rotateLike = Buffer.concat([masterFde.subarray(0, 19), Buffer.alloc(4)])
  rotateLike[4] = T.ROTATE
  const afterFakeRotate = add(rebuild(rotateLike, {serverId: MASTER_ID, logPos: 0, flags: ARTIFICIAL_F, body: rotateBody(start.pos, start.file)}))
  const copies: RelayFile['copies'] = []
  for (const r of relayed) {
    const ev = r.artificial ? rebuild(r.bytes, {logPos: 0}) : r.bytes
    const relayEnd = add(ev)
    if (!r.artificial) copies.push({masterFile: r.masterFile, masterEnd: ev.readUInt32LE(13), relayEnd, bytes: ev})
  }
  if (next !== null) {
    const body = rotateBody(4, next)
    add(rebuild(rotateLike, {serverId: REPLICA_ID, logPos: pos + 19 + body.length + 4, flags: 0, body}))
  }
  return {name, bytes: Buffer.concat(parts), afterFakeRotate, fakeRotatePos: start.pos, copies}
}

describe('MySQL relay logs: findRelayDiffStart and assembleRelayDiff', () => {
  const m1 = rawEvents(mysqlFixture('gtid/binlog.000001'))
  const m2 = rawEvents(mysqlFixture('gtid/binlog.000002'))
  const of = (file: string, events: Raw[]) => events.map((e) => ({masterFile: file, bytes: e.bytes}))
  // The IO thread started at binlog.000001:4; the relay log rotated in the middle of the four-row transaction.
  const split = m1.findIndex((e) => e.type === T.TABLE_MAP && e.offset > 1100)
  const relayed = [...of('binlog.000001', m1), ...of('binlog.000002', m2.slice(0, -1))]
  const relays = [
    relayFile('relay-bin.000001', 'relay-bin.000002', m1[0]!.bytes, m1[1]!.bytes, {file: 'binlog.000001', pos: 4}, relayed.slice(0, split)),
    relayFile('relay-bin.000002', null, m1[0]!.bytes, m1[1]!.bytes, {file: 'binlog.000001', pos: m1[split]!.offset}, [
      {masterFile: 'binlog.000001', bytes: m1[0]!.bytes, artificial: true},
      ...relayed.slice(split),
    ]),
  ]
  const sources = relays.map((r) => bufferSource(r.name, r.bytes))
  const copies = relays.flatMap((r, n) =>
    r.copies.map((c, k) => {
      const next = relays[n + 1]
      // The last master event of a relay file is also answered by the next file's fake Rotate to the same position (as MHA).
      const alsoAt = k === r.copies.length - 1 && next?.fakeRotatePos === c.masterEnd ? {relayFile: next.name, offset: next.afterFakeRotate} : null
      return {...c, relayFile: r.name, alsoAt}
    }),
  )

  it('the relay files read as relay logs, master events marked upstream', async () => {
    const {events, files} = await readBinlogEvents(sources)
    expect(files.map((f) => f.relayLog)).toEqual([true, true])
    const upstream = events.filter((e) => e.upstream && e.logPos !== 0)
    expect(upstream.map((e) => e.logPos)).toEqual(copies.map((c) => c.masterEnd))
    expect(events.filter((e) => !e.upstream).every((e) => e.serverId === REPLICA_ID)).toBe(true)
  })

  it('finds, for every master position a lagging replica can have read, the relay offset right after that event', async () => {
    for (const [i, c] of copies.entries()) {
      const target = {file: c.masterFile, pos: c.masterEnd}
      const start = await findRelayDiffStart(sources, target)
      const after = copies.slice(i + 1).filter((x) => x.bytes[4] !== T.FORMAT_DESCRIPTION).length
      expect(start, `${target.file}:${target.pos}`).toMatchObject({found: true, masterEventsAfter: after})
      if (!start.found) continue
      expect([{relayFile: c.relayFile, offset: c.relayEnd}, ...(c.alsoAt ? [c.alsoAt] : [])], `${target.file}:${target.pos}`).toContainEqual({
        relayFile: start.relayFile,
        offset: start.offset,
      })
      if (!start.found) continue

      const file = join(work, `diff-${i}.bin`)
      const from = relays.findIndex((r) => r.name === start.relayFile)
      const diff = await assembleRelayDiff(
        relays.slice(from).map((r) => bufferRangeSource(r.name, r.bytes)),
        start.offset,
        file,
      )
      // The diff: magic, a master FDE, then exactly the master events after the target (no PREVIOUS_GTIDS), byte for byte.
      const written = rawEvents(readFileSync(file))
      expect(written[0]!.type).toBe(T.FORMAT_DESCRIPTION)
      expect(written.filter((e) => e.type === T.FORMAT_DESCRIPTION).every((e) => e.serverId === MASTER_ID)).toBe(true)
      const wanted = copies.slice(i + 1).filter((x) => x.bytes[4] !== T.PREVIOUS_GTIDS && x.bytes[4] !== T.FORMAT_DESCRIPTION)
      expect(written.filter((e) => e.type !== T.FORMAT_DESCRIPTION).map((e) => e.bytes.toString('hex'))).toEqual(wanted.map((x) => x.bytes.toString('hex')))
      expect(diff.events).toBe(written.filter((e) => e.type !== T.FORMAT_DESCRIPTION).length)
    }
  })

  it('says a position inside an event, or past the relay logs, is not an event end', async () => {
    const inside = await findRelayDiffStart(sources, {file: 'binlog.000001', pos: m1[5]!.offset + 3})
    expect(inside).toMatchObject({found: false, reason: 'not-an-event-end'})
    const beyond = await findRelayDiffStart(sources, {file: 'binlog.000002', pos: 100_000})
    expect(beyond).toMatchObject({found: false, reason: 'newer-than-relay-logs'})
  })
})
