import {execFileSync, spawnSync} from 'node:child_process'
import {copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {
  compareCoordinates,
  EventType,
  fileSource,
  findRelayDiffStart,
  readBinlogEvents,
  type BinlogCoordinates,
  type BinlogEventRecord,
} from '../../src/binlog/index.js'
import {
  assembleBinlogTail,
  assembleRelayDiff,
  concatSyntheticBinlogs,
  FILE_BOOKKEEPING_TYPES,
  localRangeSource,
  withoutStartupMark,
} from '../../src/recovery/index.js'
import {fixtureNames, fixturePath, fixtureSources, hasMariadbBinlog, mariadbBinlog, recorded} from '../fixtures/binlog/fixtures.js'

let work: string
let masterEvents: BinlogEventRecord[]
let relayEvents: BinlogEventRecord[]

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'mha-recovery-unit-'))
  masterEvents = (await readBinlogEvents(fixtureSources('master'))).events
  relayEvents = (await readBinlogEvents(fixtureSources('relay'))).events
})
afterAll(() => rmSync(work, {recursive: true, force: true}))

const out = (name: string): string => join(work, name)
const masterFiles = (from: string, dir = join(fixturePath('master', from), '..')) =>
  fixtureNames('master')
    .filter((n) => n >= from)
    .map((n) => localRangeSource(join(dir, n)))
const relayFiles = (from: string) =>
  fixtureNames('relay')
    .filter((n) => n >= from)
    .map((n) => localRangeSource(fixturePath('relay', n)))
const end = (e: BinlogEventRecord): number => e.offset + e.size
const at = (e: BinlogEventRecord): BinlogCoordinates => ({file: e.file, pos: e.offset})

/** What a comparison needs of an event: enough to tell any two apart, not where it sits. */
const identity = (e: BinlogEventRecord) => ({type: e.type, serverId: e.serverId, logPos: e.logPos, size: e.size, timestamp: e.timestamp})

async function eventsIn(file: string): Promise<BinlogEventRecord[]> {
  return (await readBinlogEvents(fileSource(file))).events
}

/** mariadb-binlog's verdict on a file, with checksums verified; null when it is not installed. */
function mariadbBinlogReads(file: string): {ok: boolean; stderr: string; text: string} | null {
  if (!hasMariadbBinlog) return null
  const result = spawnSync(mariadbBinlog, ['--no-defaults', '--verify-binlog-checksum', file], {encoding: 'utf8', maxBuffer: 64 * 1024 * 1024})
  return {ok: result.status === 0 && !/ERROR/.test(result.stderr), stderr: result.stderr, text: result.stdout}
}

/** The master events a tail from `from` must hold: all later events but per-file bookkeeping, each file's FDE included. */
function expectedTail(from: BinlogCoordinates): BinlogEventRecord[] {
  const first = masterEvents.find((e) => e.file === from.file && e.type === EventType.FORMAT_DESCRIPTION)!
  const rest = masterEvents.filter((e) => compareCoordinates(at(e), from) >= 0 && !FILE_BOOKKEEPING_TYPES.has(e.type) && !(e.file === from.file && e.offset === 4))
  return [first, ...rest]
}

describe('assembleBinlogTail (the dead master binlog tail as one synthetic binlog)', () => {
  it('joins files across a binlog_checksum change (CRC32, then NONE), keeping each file FDE and dropping bookkeeping', async () => {
    const from = {file: 'mysql-bin.000002', pos: 706}
    const saved = await assembleBinlogTail(masterFiles(from.file), from, out('tail-across.bin'))
    const last = masterEvents.at(-1)!
    expect(saved).toMatchObject({end: {file: last.file, pos: end(last)}, trimmed: 0})
    const written = await eventsIn(out('tail-across.bin'))
    const expected = expectedTail(from)
    expect(written.map(identity)).toEqual(expected.map(identity))
    expect(saved.events).toBe(expected.filter((e) => e.type !== EventType.FORMAT_DESCRIPTION).length)
    expect(saved.bytes).toBe(readFileSync(out('tail-across.bin')).length)
    // The later files' Rotate (end of file) events are kept; mysqlbinlog prints them as comments.
    expect(written.filter((e) => e.type === EventType.ROTATE).map((e) => e.nextFile)).toEqual(['mysql-bin.000003', 'mysql-bin.000004'])
    const verdict = mariadbBinlogReads(out('tail-across.bin'))
    if (verdict) expect(verdict.stderr).toBe('')
    if (verdict) expect(verdict.ok).toBe(true)
  })

  it('needs the later FDE: without it mariadb-binlog misreads the file after the checksum change', async () => {
    if (!hasMariadbBinlog) return
    const written = await eventsIn(out('tail-across.bin'))
    const bytes = readFileSync(out('tail-across.bin'))
    const laterFormat = written.filter((e) => e.type === EventType.FORMAT_DESCRIPTION)[1]!
    writeFileSync(out('tail-no-fde.bin'), Buffer.concat([bytes.subarray(0, laterFormat.offset), bytes.subarray(end(laterFormat))]))
    expect(mariadbBinlogReads(out('tail-no-fde.bin'))!.ok).toBe(false)
  })

  it('starts anywhere: at the header, mid-file (header FDE + events from there), or at the very end', async () => {
    const fde = masterEvents.find((e) => e.file === 'mysql-bin.000001' && e.type === EventType.FORMAT_DESCRIPTION)!
    const fileEnd = end(masterEvents.filter((e) => e.file === 'mysql-bin.000001').at(-1)!)
    const last = masterEvents.at(-1)!
    for (const pos of [4, end(fde), recorded.replicationStart.pos, recorded.crcMid.pos, fileEnd]) {
      const from = {file: 'mysql-bin.000001', pos}
      const saved = await assembleBinlogTail(masterFiles(from.file), from, out(`tail-${pos}.bin`))
      expect(saved.end).toEqual({file: last.file, pos: end(last)})
      const written = await eventsIn(out(`tail-${pos}.bin`))
      expect(written.map(identity), `from ${pos}`).toEqual(expectedTail(from).map(identity))
      expect(mariadbBinlogReads(out(`tail-${pos}.bin`))?.ok ?? true).toBe(true)
    }
    // Nothing after `from` at all: magic + FDE, and the end is where it started.
    const lastFile = 'mysql-bin.000004'
    const saved = await assembleBinlogTail(masterFiles(lastFile), {file: lastFile, pos: end(last)}, out('tail-empty.bin'))
    expect(saved).toMatchObject({end: {file: lastFile, pos: end(last)}, events: 0, trimmed: 0})
    expect((await eventsIn(out('tail-empty.bin'))).map((e) => e.type)).toEqual([EventType.FORMAT_DESCRIPTION])
  })

  it('cuts a torn final event and the unfinished transaction before it, and says where the kept part ends', async () => {
    const dir = mkdtempSync(join(work, 'torn-'))
    for (const name of fixtureNames('master')) copyFileSync(fixturePath('master', name), join(dir, name))
    const lastFile = fixtureNames('master').at(-1)!
    const inLast = masterEvents.filter((e) => e.file === lastFile)
    const xids = inLast.filter((e) => e.type === EventType.XID)
    const lastXid = xids.at(-1)!
    const previousXid = xids.at(-2)!
    truncateSync(join(dir, lastFile), lastXid.offset + 7)

    const from = {file: 'mysql-bin.000003', pos: 4}
    const saved = await assembleBinlogTail(masterFiles(from.file, dir), from, out('tail-torn.bin'))
    expect(saved.end).toEqual({file: lastFile, pos: end(previousXid)})
    // The torn Xid's 7 bytes, and the complete events of its transaction (GTID .. Write_rows).
    expect(saved.trimmed).toBe(lastXid.offset + 7 - end(previousXid))
    const written = await eventsIn(out('tail-torn.bin'))
    expect(written.at(-1)!.type).toBe(EventType.XID)
    expect(identity(written.at(-1)!)).toEqual(identity(previousXid))
    expect(mariadbBinlogReads(out('tail-torn.bin'))?.ok ?? true).toBe(true)
  })

  it('cuts a transaction that lacks only its commit (no torn event)', async () => {
    const dir = mkdtempSync(join(work, 'half-'))
    const lastFile = fixtureNames('master').at(-1)!
    copyFileSync(fixturePath('master', lastFile), join(dir, lastFile))
    const inLast = masterEvents.filter((e) => e.file === lastFile)
    const lastXid = inLast.filter((e) => e.type === EventType.XID).at(-1)!
    const previousXid = inLast.filter((e) => e.type === EventType.XID).at(-2)!
    truncateSync(join(dir, lastFile), lastXid.offset)
    const saved = await assembleBinlogTail([localRangeSource(join(dir, lastFile))], {file: lastFile, pos: end(previousXid)}, out('tail-half.bin'))
    expect(saved).toMatchObject({end: {file: lastFile, pos: end(previousXid)}, events: 0, trimmed: lastXid.offset - end(previousXid)})
  })

  it('drops an unfinished transaction at the end of an earlier file too (a crash, then a restart into a new binlog)', async () => {
    const dir = mkdtempSync(join(work, 'crash-restart-'))
    for (const name of ['mysql-bin.000003', 'mysql-bin.000004']) copyFileSync(fixturePath('master', name), join(dir, name))
    // mysql-bin.000003 without its Rotate and last Xid: as if the server died in the middle of writing it.
    const in3 = masterEvents.filter((e) => e.file === 'mysql-bin.000003')
    const lastXid = in3.filter((e) => e.type === EventType.XID).at(-1)!
    const previousXid = in3.filter((e) => e.type === EventType.XID).at(-2)!
    truncateSync(join(dir, 'mysql-bin.000003'), lastXid.offset + 3)
    const from = {file: 'mysql-bin.000003', pos: 4}
    const saved = await assembleBinlogTail(masterFiles(from.file, dir), from, out('tail-crash-restart.bin'))
    const written = await eventsIn(out('tail-crash-restart.bin'))
    const i = written.findIndex((e) => e.type === EventType.FORMAT_DESCRIPTION && e.offset > 4)
    expect(identity(written[i - 1]!)).toEqual(identity(previousXid))
    expect(saved.trimmed).toBe(lastXid.offset + 3 - end(previousXid))
    expect(saved.end).toEqual({file: 'mysql-bin.000004', pos: end(masterEvents.at(-1)!)})
  })

  it('refuses a start that is not an event boundary, a list not starting at from.file, and a missing file; leaves no file behind', async () => {
    const before = readdirSync(work).length
    // Offsets inside events, with and without checksums. (Fewer than 19 bytes before the file's end cannot
    // be told from a torn event header: they are dropped as one, and hold nothing to lose.)
    for (const file of ['mysql-bin.000001', 'mysql-bin.000003']) {
      const events = masterEvents.filter((e) => e.file === file && e.type !== EventType.FORMAT_DESCRIPTION)
      const fileEnd = end(events.at(-1)!)
      for (const e of events.filter((_, i) => i % 3 === 0)) {
        for (const pos of [e.offset + 1, e.offset + 13, end(e) - 1].filter((p) => p <= fileEnd - 19)) {
          await expect(assembleBinlogTail(masterFiles(file), {file, pos}, out('bad.bin')), `${file}:${pos}`).rejects.toThrow(
            /not an event boundary|inside an event|CRC32 mismatch|impossible event size/,
          )
        }
      }
    }
    await expect(assembleBinlogTail(masterFiles('mysql-bin.000002'), {file: 'mysql-bin.000001', pos: 4}, out('bad.bin'))).rejects.toThrow(/must start with mysql-bin.000001/)
    const gap = [localRangeSource(fixturePath('master', 'mysql-bin.000001')), localRangeSource(fixturePath('master', 'mysql-bin.000003'))]
    await expect(assembleBinlogTail(gap, {file: 'mysql-bin.000001', pos: 4}, out('bad.bin'))).rejects.toThrow(/missing/)
    await expect(assembleBinlogTail(masterFiles('mysql-bin.000002'), {file: 'mysql-bin.000002', pos: 999_999}, out('bad.bin'))).rejects.toThrow(/shorter than offset/)
    expect(existsSync(out('bad.bin'))).toBe(false)
    expect(readdirSync(work).length).toBe(before)
  }, 30_000)
})

describe('assembleRelayDiff (a lagging replica missing events, from a latest replica relay logs)', () => {
  /** The master events a diff from (relayFile, offset) must hold: relayed, not artificial, not bookkeeping. */
  function expectedDiff(relayFile: string, offset: number): BinlogEventRecord[] {
    return relayEvents.filter(
      (e) =>
        (e.file > relayFile || (e.file === relayFile && e.offset >= offset)) &&
        e.upstream &&
        e.type !== EventType.FORMAT_DESCRIPTION &&
        e.logPos !== 0 &&
        !FILE_BOOKKEEPING_TYPES.has(e.type),
    )
  }

  it('copies from the recorded lagging position to the end, across relay rotations and the checksum change', async () => {
    const start = await findRelayDiffStart(fixtureSources('relay'), recorded.laggingRead, {replicaServerId: recorded.replicaServerId})
    if (!start.found) throw new Error(start.message)
    const diff = await assembleRelayDiff(relayFiles(start.relayFile), start.offset, out('diff.bin'))
    const written = await eventsIn(out('diff.bin'))
    expect(written[0]!.type).toBe(EventType.FORMAT_DESCRIPTION)
    expect(written[0]!.serverId).toBe(recorded.masterServerId)
    expect(written.every((e) => e.serverId === recorded.masterServerId)).toBe(true)
    const data = written.filter((e) => e.type !== EventType.FORMAT_DESCRIPTION)
    expect(data.map(identity)).toEqual(expectedDiff(start.relayFile, start.offset).map(identity))
    expect(diff.events).toBe(data.length)
    // It begins right after the lagging replica's position and ends where the master's binlog ends.
    expect(data[0]!.logPos - data[0]!.size).toBe(recorded.laggingRead.pos)
    expect(data.at(-1)!.logPos).toBe(recorded.final.pos)
    // Checksums: on in the first master FDE, off in a later one.
    expect(written.filter((e) => e.type === EventType.FORMAT_DESCRIPTION).map((e) => e.checksumAlg)).toContain(0)
    const verdict = mariadbBinlogReads(out('diff.bin'))
    if (verdict) expect(verdict.stderr).toBe('')
    if (verdict) expect(verdict.ok).toBe(true)
  })

  it('from every master event end a replica can report, the diff holds exactly the events after it', async () => {
    let checked = 0
    for (const m of masterEvents.filter((e) => e.type === EventType.XID || e.type === EventType.QUERY)) {
      const start = await findRelayDiffStart(fixtureSources('relay'), {file: m.file, pos: m.logPos}, {replicaServerId: recorded.replicaServerId})
      if (!start.found) continue
      await assembleRelayDiff(relayFiles(start.relayFile), start.offset, out('diff-each.bin'))
      const data = (await eventsIn(out('diff-each.bin'))).filter((e) => e.type !== EventType.FORMAT_DESCRIPTION)
      expect(data.map(identity)).toEqual(expectedDiff(start.relayFile, start.offset).map(identity))
      checked++
    }
    expect(checked).toBeGreaterThan(40)
  })

  it('starts in a relay file that holds only the master Rotate (no master FDE): the next file supplies it', async () => {
    const onlyRotate = fixtureNames('relay').find((name) => {
      const inFile = relayEvents.filter((e) => e.file === name && e.upstream)
      return inFile.length === 1 && inFile[0]!.type === EventType.ROTATE
    })!
    const replicaFde = relayEvents.find((e) => e.file === onlyRotate && e.offset === 4)!
    const masterRotate = relayEvents.find((e) => e.file === onlyRotate && e.upstream)!
    await assembleRelayDiff(relayFiles(onlyRotate), end(replicaFde), out('diff-rotate.bin'))
    const written = await eventsIn(out('diff-rotate.bin'))
    expect(written[0]!.type).toBe(EventType.FORMAT_DESCRIPTION)
    expect(written[0]!.offset).toBe(4)
    // The Rotate had no FDE to go with: left out (mysqlbinlog only prints it as a comment).
    expect(written.some((e) => e.type === EventType.ROTATE && e.logPos === masterRotate.logPos)).toBe(false)
    expect(written.filter((e) => e.type !== EventType.FORMAT_DESCRIPTION).map(identity)).toEqual(expectedDiff(onlyRotate, end(masterRotate)).map(identity))
    expect(mariadbBinlogReads(out('diff-rotate.bin'))?.ok ?? true).toBe(true)
  })
})

describe('concatSyntheticBinlogs (relay diff, then master tail, applied as ONE stream)', () => {
  it('keeps a transaction whole when the diff ends inside it and the tail completes it', async () => {
    // A relay file that ends inside a transaction (the replica rotated its relay log mid-transaction).
    const cutFile = fixtureNames('relay').find((name) => {
      const inFile = relayEvents.filter((e) => e.file === name && e.upstream && e.logPos !== 0)
      return inFile.length > 0 && inFile.at(-1)!.type === EventType.TABLE_MAP
    })!
    const lastRelayed = relayEvents.filter((e) => e.file === cutFile && e.upstream && e.logPos !== 0).at(-1)!
    const masterFile = masterEvents.find((e) => e.logPos === lastRelayed.logPos && e.type === EventType.TABLE_MAP)!.file
    const firstInFile = relayEvents.find((e) => e.file === cutFile && e.upstream && e.logPos !== 0 && e.type !== EventType.FORMAT_DESCRIPTION)!
    await assembleRelayDiff([localRangeSource(fixturePath('relay', cutFile))], firstInFile.offset, out('diff-cut.bin'))
    const from = {file: masterFile, pos: lastRelayed.logPos}
    const tail = await assembleBinlogTail(masterFiles(masterFile), from, out('tail-cut.bin'))
    // The tail starts mid-transaction: its first events complete the one the diff left open.
    expect(tail.trimmed).toBe(0)
    await concatSyntheticBinlogs([out('diff-cut.bin'), out('tail-cut.bin')], out('combined.bin'))

    const combined = await eventsIn(out('combined.bin'))
    const diffEvents = await eventsIn(out('diff-cut.bin'))
    const tailEvents = await eventsIn(out('tail-cut.bin'))
    expect(combined.map((e) => [e.type, e.logPos])).toEqual([...diffEvents, ...tailEvents].map((e) => [e.type, e.logPos]))
    if (!hasMariadbBinlog) return
    const verdict = mariadbBinlogReads(out('combined.bin'))!
    expect(verdict.ok).toBe(true)
    // The master binlog was created at server startup: its FDE, left as is, would make mysqlbinlog roll back
    // the open transaction before the tail's first event. Only mysqlbinlog's own final ROLLBACK may appear.
    const rollbacks = verdict.text.split('\n').filter((l) => /^ROLLBACK/.test(l))
    expect(rollbacks).toEqual(['ROLLBACK /* added by mysqlbinlog */;'])
    const naive = Buffer.concat([readFileSync(out('diff-cut.bin')), readFileSync(out('tail-cut.bin')).subarray(4)])
    writeFileSync(out('naive.bin'), naive)
    const naiveText = execFileSync(mariadbBinlog, ['--no-defaults', out('naive.bin')], {encoding: 'utf8', maxBuffer: 64 * 1024 * 1024})
    expect(naiveText.split('\n').filter((l) => /^ROLLBACK/.test(l)).length).toBe(2)
  })

  it('withoutStartupMark clears the create time and in-use flag and keeps a valid checksum', async () => {
    const fde = masterEvents.find((e) => e.file === 'mysql-bin.000001' && e.type === EventType.FORMAT_DESCRIPTION)!
    const lastFde = masterEvents.filter((e) => e.type === EventType.FORMAT_DESCRIPTION).at(-1)!
    for (const e of [fde, lastFde]) {
      const bytes = readFileSync(fixturePath('master', e.file)).subarray(e.offset, end(e))
      const cleared = withoutStartupMark(bytes)
      const {events} = await readBinlogEvents({name: 'x', open: () => Buffer.concat([Buffer.from([0xfe, 0x62, 0x69, 0x6e]), cleared])})
      expect(events[0]!.type).toBe(EventType.FORMAT_DESCRIPTION)
      expect(cleared.readUInt32LE(19 + 2 + 50)).toBe(0)
      expect(cleared.readUInt16LE(17) & 1).toBe(0)
    }
  })
})
