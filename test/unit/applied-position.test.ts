/**
 * Exactly once on MySQL with gtid_mode=OFF (src/recovery/applied-position.ts): the target's binlog position is
 * recorded before a stream starts, and a retry counts the whole transactions its binlog holds after it. The
 * target's binlog is played by rows shaped like MySQL 8.0's SHOW BINLOG EVENTS, made here from the real MySQL
 * fixtures (test/fixtures/binlog/mysql): one row per event, Event_type by MySQL's names, Info as MySQL shows it.
 * The expected counts are the stream layout's (streamLayout) for the same bytes: the same boundary rules.
 */
import {existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {bufferSource, EventType, queryText, scanBinlog, type FormatDescription} from '../../src/binlog/index.js'
import {
  appliedByPosition,
  BinlogRowCounter,
  countTransactionsSince,
  positionPrefix,
  positionRecordPath,
  positionRefusal,
  readPositionRecord,
  rowQueryKind,
  streamFiles,
  type BinlogEventRow,
  type PositionRecord,
} from '../../src/recovery/applied-position.js'
import {streamLayout} from '../../src/recovery/exactly-once.js'
import {fixtureDir} from '../fixtures/binlog/fixtures.js'

const work = mkdtempSync(join(tmpdir(), 'mha-applied-position-'))
afterAll(() => rmSync(work, {recursive: true, force: true}))

const mysqlFixture = (path: string): string => join(fixtureDir, 'mysql', path)

/** MySQL's Log_event::get_type_str for the types in the fixtures. */
const MYSQL_NAMES: Record<number, string> = {
  [EventType.QUERY]: 'Query',
  [EventType.STOP]: 'Stop',
  [EventType.ROTATE]: 'Rotate',
  [EventType.FORMAT_DESCRIPTION]: 'Format_desc',
  [EventType.XID]: 'Xid',
  [EventType.TABLE_MAP]: 'Table_map',
  [EventType.WRITE_ROWS]: 'Write_rows',
  [EventType.UPDATE_ROWS]: 'Update_rows',
  [EventType.DELETE_ROWS]: 'Delete_rows',
  [EventType.GTID]: 'Gtid',
  [EventType.ANONYMOUS_GTID]: 'Anonymous_Gtid',
  [EventType.PREVIOUS_GTIDS]: 'Previous_gtids',
  [EventType.TRANSACTION_PAYLOAD]: 'Transaction_payload',
}

/** SHOW BINLOG EVENTS IN '<name>' for a fixture, as MySQL 8.0 lists it (Info only where the count reads it). */
async function showBinlogEvents(path: string, logName: string): Promise<BinlogEventRow[]> {
  const rows: BinlogEventRow[] = []
  let format: FormatDescription | null = null
  await scanBinlog(
    bufferSource(logName, readFileSync(path)),
    (e) => {
      if (e.format) format = e.format
      const name = MYSQL_NAMES[e.type]
      if (!name) throw new Error(`no MySQL name for event type ${e.type} in ${path}`)
      const end = e.offset + e.size
      let info = ''
      if (e.type === EventType.QUERY) {
        const text = queryText(e.data!, 0, e.size, e.checksummed, format)
        info = text === 'BEGIN' ? text : `use \`test\`; ${text}`
      } else if (e.type === EventType.XID) info = `COMMIT /* xid=${rows.length} */`
      rows.push({Log_name: logName, Pos: e.offset, Event_type: name, Server_id: e.serverId, End_log_pos: end, Info: info})
      // MySQL lists a compressed payload's events after it (here: a transaction as the server would log it).
      if (e.type === EventType.TRANSACTION_PAYLOAD)
        for (const [type, inner] of [['Query', 'BEGIN'], ['Table_map', 'table_id: 90 (test.t)'], ['Write_rows', 'table_id: 90 flags: STMT_END_F'], ['Xid', 'COMMIT /* xid=7 */']])
          rows.push({Log_name: logName, Pos: e.offset, Event_type: type, Server_id: e.serverId, End_log_pos: end, Info: inner})
    },
    {bodies: [EventType.QUERY]},
  )
  return rows
}

function count(rows: readonly BinlogEventRow[]): BinlogRowCounter {
  const counter = new BinlogRowCounter()
  for (const row of rows) counter.feed(row)
  return counter
}

const row = (Event_type: string, Info = '', Pos = 0): BinlogEventRow => ({Log_name: 'binlog.000009', Pos, Event_type, Server_id: 2, End_log_pos: Pos + 10, Info})

describe('counting whole transactions in SHOW BINLOG EVENTS rows', () => {
  for (const path of ['position/binlog.000001', 'position/binlog.000002', 'gtid/binlog.000001', 'gtid/binlog.000002', '5.7/mysql-bin.000080', 'compressed/mysql-bin.000057']) {
    it(`${path}: as many as the stream layout finds in the same bytes`, async () => {
      const rows = await showBinlogEvents(mysqlFixture(path), 'binlog.000001')
      const layout = await streamLayout(mysqlFixture(path))
      const counter = count(rows)
      expect(counter.transactions).toBe(layout.transactions.length)
      expect(counter.unfinished).toBe(false)
    })
  }

  it('the gtid_mode=OFF fixtures: CREATE TABLE, two inserts, a transaction of four inserts, then after the Rotate an UPDATE and a DELETE', async () => {
    const rows = [...(await showBinlogEvents(mysqlFixture('position/binlog.000001'), 'binlog.000001')), ...(await showBinlogEvents(mysqlFixture('position/binlog.000002'), 'binlog.000002'))]
    expect(rows.map((r) => r.Event_type)).toContain('Anonymous_Gtid')
    expect(rows.map((r) => r.Event_type)).toContain('Rotate')
    expect(count(rows).transactions).toBe(6)
  })

  it('a compressed transaction once, not again for the events MySQL lists inside the payload', async () => {
    const rows = await showBinlogEvents(mysqlFixture('compressed/mysql-bin.000057'), 'mysql-bin.000057')
    expect(rows.filter((r) => r.Event_type === 'Xid').length).toBe(2)
    expect(count(rows).transactions).toBe(3)
  })

  it('a non-transactional BEGIN … Query COMMIT, an XA transaction and its XA COMMIT, a DDL: as the stream layout counts them', () => {
    const rows = [
      row('Anonymous_Gtid', "SET @@SESSION.GTID_NEXT= 'ANONYMOUS'"),
      row('Query', 'BEGIN'),
      row('Table_map', 'table_id: 91 (test.m)'),
      row('Write_rows', 'table_id: 91 flags: STMT_END_F'),
      row('Query', 'COMMIT'),
      row('Anonymous_Gtid'),
      row('Query', "XA START X'7831',X'',1"),
      row('Table_map'),
      row('Write_rows'),
      row('Query', "XA END X'7831',X'',1"),
      row('XA_prepare', "XA PREPARE X'7831',X'',1"),
      row('Anonymous_Gtid'),
      row('Query', "XA COMMIT X'7831',X'',1"),
      row('Anonymous_Gtid'),
      row('Query', 'use `te``st`; ALTER TABLE t ADD COLUMN c INT /* xid=44 */'),
    ]
    const counter = count(rows)
    expect(counter.transactions).toBe(4)
    expect(counter.unfinished).toBe(false)
  })

  it('rows that end inside a transaction leave it unfinished, uncounted', () => {
    const counter = count([row('Format_desc', 'Server ver: 8.0.45, Binlog ver: 4'), row('Previous_gtids'), row('Anonymous_Gtid'), row('Query', 'BEGIN'), row('Table_map')])
    expect(counter.transactions).toBe(0)
    expect(counter.unfinished).toBe(true)
  })

  it('reads a Query row by its statement, after the use prefix MySQL shows', () => {
    expect(rowQueryKind('BEGIN')).toBe('begin')
    expect(rowQueryKind("XA START X'01',X'',1")).toBe('begin')
    expect(rowQueryKind('COMMIT')).toBe('commit')
    expect(rowQueryKind('use `db`; ROLLBACK')).toBe('rollback')
    expect(rowQueryKind('use `db`; COMMIT /* not alone */')).toBe('other')
    expect(rowQueryKind('use `a``b`; CREATE TABLE t1 (id INT)')).toBe('other')
  })
})

/** A MySQL 8.0 target whose binlog is the given fixture files: SHOW BINARY LOGS and SHOW BINLOG EVENTS … FROM … LIMIT … */
async function fakeTarget(logs: Array<{name: string; path: string}>, status = {File: logs.at(-1)!.name, Position: 0}) {
  const events = new Map<string, BinlogEventRow[]>()
  for (const l of logs) events.set(l.name, await showBinlogEvents(mysqlFixture(l.path), l.name))
  const asked: string[] = []
  const query = (sql: string): Promise<Record<string, unknown>[]> => {
    asked.push(sql)
    if (sql === 'SHOW BINARY LOGS') return Promise.resolve(logs.map((l) => ({Log_name: l.name, File_size: statSync(mysqlFixture(l.path)).size, Encrypted: 'No'})))
    if (sql === 'SHOW BINARY LOG STATUS') return Promise.resolve([{...status, Binlog_Do_DB: '', Binlog_Ignore_DB: '', Executed_Gtid_Set: ''}])
    const m = /^SHOW BINLOG EVENTS IN '([^']+)' FROM (\d+) LIMIT (\d+)$/.exec(sql)
    if (!m) return Promise.reject(new Error(`unexpected query: ${sql}`))
    const rows = events.get(m[1]!)!
    const from = rows.findIndex((r) => r.Pos === Number(m[2]))
    if (from < 0) return Promise.reject(new Error(`Error when executing command SHOW BINLOG EVENTS: Wrong offset or I/O error`))
    return Promise.resolve(rows.slice(from, from + Number(m[3])))
  }
  return {query, asked}
}

const twoFiles = [
  {name: 'binlog.000001', path: 'position/binlog.000001'},
  {name: 'binlog.000002', path: 'position/binlog.000002'},
]
const UUID = '3e11fa47-71ca-11e1-9e33-c80aa9429562'

function record(file: string, pos: number, stream = streamFiles([mysqlFixture('position/binlog.000001')])): PositionRecord {
  return {server: 'db2', serverUuid: UUID, file, pos, stream, at: '2026-12-01T00:00:00.000Z'}
}

describe('reading the target binlog from a position across files, page by page', () => {
  it('follows the Rotate into the next binlog and pages by each page’s last event end', async () => {
    const target = await fakeTarget(twoFiles)
    const logs = twoFiles.map((l) => ({name: l.name, size: statSync(mysqlFixture(l.path)).size}))
    const counter = await countTransactionsSince(target.query, {file: 'binlog.000001', pos: 4}, logs, 3)
    expect(counter.transactions).toBe(6)
    expect(target.asked.length).toBeGreaterThan(4)
    expect(target.asked.every((q) => /^SHOW BINLOG EVENTS IN 'binlog\.00000[12]' FROM \d+ LIMIT 3$/.test(q))).toBe(true)
  })
})

describe('the applied prefix from the position record', () => {
  const stream = {files: streamFiles([mysqlFixture('position/binlog.000001'), mysqlFixture('position/binlog.000002')]), transactions: 6}

  it('no record: the earlier attempt was killed before it could stream, nothing is applied', async () => {
    const target = await fakeTarget(twoFiles)
    expect(await positionPrefix(null, {serverUuid: UUID, query: target.query}, stream)).toEqual({count: 0, known: true})
    expect(target.asked).toEqual([])
  })

  it('a record: the whole transactions after it are the prefix, also when nothing came after it', async () => {
    const target = await fakeTarget(twoFiles)
    // The first binlog's events up to the end of its first transaction (the CREATE TABLE).
    const rows = await showBinlogEvents(mysqlFixture('position/binlog.000001'), 'binlog.000001')
    const afterDdl = Number(rows.find((r) => String(r.Info).includes('CREATE TABLE'))!.End_log_pos)
    expect(await positionPrefix(record('binlog.000001', afterDdl), {serverUuid: UUID, query: target.query}, stream)).toEqual({count: 5, known: true})
    const end = statSync(mysqlFixture('position/binlog.000002')).size
    expect(await positionPrefix(record('binlog.000002', end), {serverUuid: UUID, query: target.query}, stream)).toEqual({count: 0, known: true})
  })

  it('refuses where the binlog holds more transactions than the stream, the recorded binlog is purged or reset, or the server is another', async () => {
    const target = await fakeTarget(twoFiles)
    const small = {...stream, transactions: 3}
    const tooMany = await positionPrefix(record('binlog.000001', 4), {serverUuid: UUID, query: target.query}, small)
    expect(tooMany).toEqual({problem: 'its binlog after binlog.000001:4 holds 6 transactions, more than the 3 of the stream (something else wrote to it)'})
    const purged = await fakeTarget([twoFiles[1]!])
    expect(await positionPrefix(record('binlog.000001', 4), {serverUuid: UUID, query: purged.query}, stream)).toEqual({
      problem: 'its binlog binlog.000001 (recorded position binlog.000001:4) is gone (purged or reset)',
    })
    expect(await positionPrefix(record('binlog.000002', 99_999), {serverUuid: UUID, query: target.query}, stream)).toMatchObject({problem: expect.stringMatching(/shorter than the recorded position binlog\.000002:99999 \(reset\)$/) as unknown})
    expect(await positionPrefix(record('binlog.000001', 4), {serverUuid: 'another', query: target.query}, stream)).toMatchObject({problem: expect.stringMatching(/^its server_uuid is another, not 3e11fa47/) as unknown})
  })

  it('refuses where the earlier attempt streamed files that do not begin this stream', async () => {
    const target = await fakeTarget(twoFiles)
    const other = record('binlog.000001', 4, streamFiles([mysqlFixture('position/binlog.000002')]))
    expect(await positionPrefix(other, {serverUuid: UUID, query: target.query}, stream)).toMatchObject({problem: expect.stringMatching(/^the earlier attempt streamed binlog\.000002 \(\d+ bytes\), which does not begin this stream/) as unknown})
    expect(target.asked).toEqual([])
  })

  it('refuses where the binlog ends inside a transaction', async () => {
    const rows = [row('Anonymous_Gtid', '', 4), row('Query', 'BEGIN', 14)]
    const query = (sql: string): Promise<Record<string, unknown>[]> => Promise.resolve(sql === 'SHOW BINARY LOGS' ? [{Log_name: 'binlog.000009', File_size: 24}] : rows)
    expect(await positionPrefix(record('binlog.000009', 4), {serverUuid: UUID, query}, stream)).toEqual({problem: 'its binlog after binlog.000009:4 ends inside a transaction (after 0 whole ones)'})
  })

  it('the refusal is one line naming the server and what to do', () => {
    const text = positionRefusal('db2', 'its binlog binlog.000001 (recorded position binlog.000001:4) is gone (purged or reset)')
    expect(text).toBe(
      "an earlier attempt streamed into db2 and what it committed cannot be told from db2's binlog: its binlog binlog.000001 (recorded position binlog.000001:4) is gone (purged or reset); " +
        'nothing is applied twice: compare db2 with the saved binlogs and apply the missing part by hand, or restore db2 from a backup (a replica: rebuild it from the new master)',
    )
    expect(text).not.toMatch(/\n/)
  })
})

describe('the position record', () => {
  const files = [mysqlFixture('position/binlog.000001'), mysqlFixture('position/binlog.000002')]
  const options = (dir: string, retry: boolean, persist?: () => Promise<void>) => ({
    dir,
    server: 'db2',
    serverUuid: UUID,
    files,
    streamId: 'plan-digest:apply_logs:db2',
    retry,
    transactions: 6,
    statusQuery: 'SHOW BINARY LOG STATUS',
    ...(persist ? {persist} : {}),
  })

  it('is one file per target and stream, named the same on every attempt', () => {
    const a = positionRecordPath(work, 'db2', files, 'p:apply_logs:db2')
    expect(positionRecordPath(work, 'db2', files, 'p:apply_logs:db2')).toBe(a)
    expect(positionRecordPath(work, 'db3', files, 'p:apply_logs:db2')).not.toBe(a)
    expect(positionRecordPath(work, 'db2', files, 'p:apply_logs:db3')).not.toBe(a)
    expect(positionRecordPath(work, 'db2', files)).not.toBe(positionRecordPath(work, 'db2', files.slice(0, 1)))
  })

  it('a first attempt records the status position whole, then persists, before the stream; a retry counts from it and keeps it', async () => {
    const dir = mkdtempSync(join(work, 'first-'))
    const target = await fakeTarget(twoFiles, {File: 'binlog.000001', Position: 4})
    const persisted: Array<PositionRecord | null> = []
    const first = await appliedByPosition(target.query, options(dir, false, () => Promise.resolve(void persisted.push(readPositionRecord(positionRecordPath(dir, 'db2', files, 'plan-digest:apply_logs:db2'))))))
    expect(first.prefix).toEqual({count: 0, known: true})
    expect(readdirSync(dir)).toEqual([])
    await first.recordBeforeStream()
    const path = positionRecordPath(dir, 'db2', files, 'plan-digest:apply_logs:db2')
    expect(readdirSync(dir)).toEqual([path.slice(dir.length + 1)])
    expect(readPositionRecord(path)).toMatchObject({server: 'db2', serverUuid: UUID, file: 'binlog.000001', pos: 4, stream: streamFiles(files)})
    expect(persisted).toEqual([readPositionRecord(path)])

    // The attempt committed all six (the fake's binlog holds them after binlog.000001:4): the retry skips them all.
    const retry = await appliedByPosition(target.query, options(dir, true))
    expect(retry.prefix).toEqual({count: 6, known: true})
    const before = readFileSync(path, 'utf8')
    await retry.recordBeforeStream()
    expect(readFileSync(path, 'utf8')).toBe(before)
    expect(target.asked.filter((q) => q === 'SHOW BINARY LOG STATUS')).toHaveLength(1)
  })

  it('a retry with no record applies from the start and records first; a first attempt ignores a record left behind', async () => {
    const dir = mkdtempSync(join(work, 'none-'))
    const target = await fakeTarget(twoFiles, {File: 'binlog.000002', Position: 807})
    const retry = await appliedByPosition(target.query, options(dir, true))
    expect(retry.prefix).toEqual({count: 0, known: true})
    await retry.recordBeforeStream()
    const path = positionRecordPath(dir, 'db2', files, 'plan-digest:apply_logs:db2')
    expect(readPositionRecord(path)).toMatchObject({file: 'binlog.000002', pos: 807})
    const again = await fakeTarget(twoFiles, {File: 'binlog.000002', Position: 4})
    const fresh = await appliedByPosition(again.query, options(dir, false))
    expect(fresh.prefix).toEqual({count: 0, known: true})
    await fresh.recordBeforeStream()
    expect(readPositionRecord(path)).toMatchObject({file: 'binlog.000002', pos: 4})
    expect(existsSync(`${path}.partial`)).toBe(false)
  })

  it('no binlog file in the status (log_bin off): nothing is recorded and the stream does not start', async () => {
    const dir = mkdtempSync(join(work, 'off-'))
    const query = (): Promise<Record<string, unknown>[]> => Promise.resolve([])
    const first = await appliedByPosition(query, options(dir, false))
    await expect(first.recordBeforeStream()).rejects.toThrow('SHOW BINARY LOG STATUS returned no binlog file (log_bin off?)')
    expect(readdirSync(dir)).toEqual([])
  })
})
