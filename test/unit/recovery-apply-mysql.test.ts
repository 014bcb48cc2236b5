/**
 * applyBinlogs against a MySQL server that reports super_read_only=ON: a fake server speaking the MySQL client
 * protocol on 127.0.0.1 (handshake v10, any login accepted, COM_QUERY answered from a table, each query
 * recorded) stands in for MySQL, and small shell scripts stand in for mysqlbinlog and the client.
 */
import {existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {createServer, type Server, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {applyBinlogs} from '../../src/recovery/index.js'
import {Secret} from '../../src/util/secret.js'
import {fixtureDir, fixturePath} from '../fixtures/binlog/fixtures.js'

const work = mkdtempSync(join(tmpdir(), 'mha-apply-mysql-'))
afterAll(() => rmSync(work, {recursive: true, force: true}))

// ---- MySQL client/server protocol, the little of it that mysql2 needs ----

const CAPABILITIES =
  0x1 | // LONG_PASSWORD
  0x4 | // LONG_FLAG
  0x8 | // CONNECT_WITH_DB
  0x200 | // PROTOCOL_41
  0x2000 | // TRANSACTIONS
  0x8000 | // SECURE_CONNECTION
  0x10000 | // MULTI_STATEMENTS
  0x20000 | // MULTI_RESULTS
  0x80000 // PLUGIN_AUTH

function packet(seq: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(4)
  header.writeUIntLE(payload.length, 0, 3)
  header[3] = seq & 0xff
  return Buffer.concat([header, payload])
}

function lenenc(n: number): Buffer {
  if (n < 251) return Buffer.from([n])
  const b = Buffer.alloc(3)
  b[0] = 0xfc
  b.writeUInt16LE(n, 1)
  return b
}

const lenencString = (s: string): Buffer => Buffer.concat([lenenc(Buffer.byteLength(s)), Buffer.from(s)])

function handshake(connectionId: number): Buffer {
  const fixed = Buffer.alloc(1 + 4 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10)
  let at = 0
  fixed[at++] = 10
  const version = Buffer.from('8.0.45-fake\0')
  fixed.writeUInt32LE(connectionId, at)
  at += 4
  Buffer.from('abcdefgh').copy(fixed, at)
  at += 8
  fixed[at++] = 0
  fixed.writeUInt16LE(CAPABILITIES & 0xffff, at)
  at += 2
  fixed[at++] = 255 // utf8mb4_0900_ai_ci
  fixed.writeUInt16LE(2, at) // SERVER_STATUS_AUTOCOMMIT
  at += 2
  fixed.writeUInt16LE(CAPABILITIES >>> 16, at)
  at += 2
  fixed[at++] = 21
  return Buffer.concat([Buffer.from([10]), version, fixed.subarray(1), Buffer.from('ijklmnopqrst\0'), Buffer.from('mysql_native_password\0')])
}

const ok = (): Buffer => Buffer.from([0x00, 0, 0, 2, 0, 0, 0])
const eof = (): Buffer => Buffer.from([0xfe, 0, 0, 2, 0])
const error = (code: number, message: string): Buffer =>
  Buffer.concat([Buffer.from([0xff, code & 0xff, code >> 8]), Buffer.from('#HY000'), Buffer.from(message)])

function column(name: string): Buffer {
  const tail = Buffer.alloc(13)
  tail[0] = 0x0c
  tail.writeUInt16LE(255, 1)
  tail.writeUInt32LE(1024, 3)
  tail[7] = 0xfd // VAR_STRING
  return Buffer.concat([lenencString('def'), lenencString(''), lenencString(''), lenencString(''), lenencString(name), lenencString(name), tail])
}

type Answer = {columns: string[]; rows: string[][]} | 'ok'

interface Recorded {
  sql: string
  /** The client script had run when the query came. */
  afterPipeline: boolean
  connection: number
}

class FakeMysql {
  readonly queries: Recorded[] = []
  private readonly server: Server
  private readonly sockets = new Set<Socket>()
  private connections = 0
  port = 0
  /** Drop the connection right after answering this query (a server-side kill, a network cut). */
  dropAfter: string | null = null

  private readonly answer: (sql: string) => Answer
  private readonly marker: string

  constructor(answer: (sql: string) => Answer, marker: string) {
    this.answer = answer
    this.marker = marker
    this.server = createServer((socket) => this.serve(socket))
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    this.port = (this.server.address() as {port: number}).port
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise((resolve) => this.server.close(resolve))
  }

  private serve(socket: Socket): void {
    const id = ++this.connections
    this.sockets.add(socket)
    socket.on('close', () => this.sockets.delete(socket))
    socket.on('error', () => undefined)
    let buffered = Buffer.alloc(0)
    let authenticated = false
    socket.write(packet(0, handshake(id)))
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      while (buffered.length >= 4) {
        const length = buffered.readUIntLE(0, 3)
        if (buffered.length < 4 + length) break
        const seq = buffered[3]!
        const payload = buffered.subarray(4, 4 + length)
        buffered = buffered.subarray(4 + length)
        if (!authenticated) {
          authenticated = true // any user, any password
          socket.write(packet(seq + 1, ok()))
          continue
        }
        this.command(socket, id, payload)
      }
    })
  }

  private command(socket: Socket, id: number, payload: Buffer): void {
    const command = payload[0]
    if (command === 0x01) {
      socket.end()
      return
    }
    if (command === 0x0e) {
      socket.write(packet(1, ok()))
      return
    }
    if (command !== 0x03) {
      socket.write(packet(1, error(1047, 'Unknown command')))
      return
    }
    const sql = payload.toString('utf8', 1)
    this.queries.push({sql, afterPipeline: existsSync(this.marker), connection: id})
    const answer = this.answer(sql)
    if (answer === 'ok') {
      socket.write(packet(1, ok()))
      if (sql === this.dropAfter) socket.destroySoon()
      return
    }
    let seq = 1
    const out = [packet(seq++, lenenc(answer.columns.length))]
    for (const name of answer.columns) out.push(packet(seq++, column(name)))
    out.push(packet(seq++, eof()))
    for (const row of answer.rows) out.push(packet(seq++, Buffer.concat(row.map(lenencString))))
    out.push(packet(seq++, eof()))
    socket.write(Buffer.concat(out))
  }
}

// ---- The test ----

function script(name: string, body: string): string {
  const path = join(work, name)
  writeFileSync(path, `#!/bin/sh\n${body}\n`, {mode: 0o755})
  return path
}

/** A server like MySQL 8 with super_read_only (or like MariaDB, without the variable). */
function mysqlAnswers(superReadOnly: string | null): (sql: string) => Answer {
  return (sql) => {
    if (sql === 'SELECT @@global.max_allowed_packet AS value') return {columns: ['value'], rows: [['67108864']]}
    if (sql === "SHOW GLOBAL VARIABLES LIKE 'super_read_only'") {
      return {columns: ['Variable_name', 'Value'], rows: superReadOnly === null ? [] : [['super_read_only', superReadOnly]]}
    }
    if (/^SET GLOBAL /.test(sql)) return 'ok'
    // Before the stream: no client of an earlier attempt holds the stream lock; what the target has executed.
    if (/IS_USED_LOCK/.test(sql)) return {columns: ['id'], rows: [['0']]}
    if (/IS_FREE_LOCK/.test(sql)) return {columns: ['free'], rows: [['1']]}
    if (sql === 'SELECT @@version AS v') return {columns: ['v'], rows: [['8.0.36']]}
    if (/@@global\.gtid_mode/.test(sql)) return {columns: ['gtid_mode', 'executed'], rows: [['ON', '']]}
    throw new Error(`the fake server was not told how to answer: ${sql}`)
  }
}

describe('applyBinlogs on a MySQL server with super_read_only=ON', () => {
  const binlog = fixturePath('master', 'mysql-bin.000002')
  let n = 0
  let marker: string

  beforeAll(() => {
    marker = join(work, 'pipeline-ran')
  })

  async function run(superReadOnly: string | null, clientFails: boolean, dropAfter: string | null = null): Promise<{queries: Recorded[]; result: unknown}> {
    rmSync(marker, {force: true})
    const server = new FakeMysql(mysqlAnswers(superReadOnly), marker)
    server.dropAfter = dropAfter
    await server.start()
    try {
      const decoder = script(`mysqlbinlog-${n}`, `printf 'SELECT 1/*!*/;\\nSELECT 2/*!*/;\\n'`)
      const client = script(
        `client-${n++}`,
        clientFails ? `cat >/dev/null; : > '${marker}'; echo 'ERROR 1062 (23000) at line 2: Duplicate entry' >&2; exit 1` : `cat >/dev/null; : > '${marker}'; exit 0`,
      )
      const endpoint = {name: 'db2', host: '127.0.0.1', port: server.port, user: 'mha', password: new Secret('pw', 'test')}
      const result = await applyBinlogs([binlog], endpoint, {timeoutMs: 15_000, mysqlbinlog: decoder, mysql: client, tempDir: work}).then(
        (r) => r,
        (e: unknown) => e,
      )
      expect(existsSync(marker)).toBe(true)
      // The settings this test is about, in the order they were sent.
      return {queries: server.queries.filter((q) => /max_allowed_packet|super_read_only/.test(q.sql)), result}
    } finally {
      await server.stop()
    }
  }

  const expectedOrder = [
    {sql: 'SELECT @@global.max_allowed_packet AS value', afterPipeline: false},
    {sql: "SHOW GLOBAL VARIABLES LIKE 'super_read_only'", afterPipeline: false},
    {sql: 'SET GLOBAL max_allowed_packet = 1073741824', afterPipeline: false},
    {sql: 'SET GLOBAL super_read_only = 0', afterPipeline: false},
    // the pipeline
    {sql: 'SET GLOBAL super_read_only = 1', afterPipeline: true},
    {sql: 'SET GLOBAL max_allowed_packet = 67108864', afterPipeline: true},
  ]

  it('reads the settings, raises max_allowed_packet, clears super_read_only, runs the pipeline, then restores both', async () => {
    const {queries, result} = await run('ON', false)
    expect(result).toMatchObject({statements: 2})
    expect(queries.map(({sql, afterPipeline}) => ({sql, afterPipeline}))).toEqual(expectedOrder)
    expect(new Set(queries.map((q) => q.connection)).size).toBe(1)
  })

  it('restores both in the same order when the pipeline fails, and still reports the failure', async () => {
    const {queries, result} = await run('ON', true)
    expect(result).toBeInstanceOf(Error)
    expect((result as Error).message).toMatch(/^db2 \(127\.0\.0\.1:\d+\): applying mysql-bin\.000002 failed: .*ERROR 1062 \(23000\) at line 2: Duplicate entry/)
    expect(queries.map(({sql, afterPipeline}) => ({sql, afterPipeline}))).toEqual(expectedOrder)
  })

  it('restores on a new connection when the first one was lost during the pipeline', async () => {
    const {queries, result} = await run('ON', false, 'SET GLOBAL super_read_only = 0')
    expect(result).toMatchObject({statements: 2})
    expect(queries.map(({sql, afterPipeline}) => ({sql, afterPipeline}))).toEqual(expectedOrder)
    expect(queries.map((q) => q.connection)).toEqual([1, 1, 1, 1, 2, 2])
  })

  it('accepts super_read_only reported as 1', async () => {
    const {queries} = await run('1', false)
    expect(queries.map((q) => q.sql)).toEqual(expectedOrder.map((q) => q.sql))
  })

  it('leaves super_read_only alone where it is OFF, or absent as on MariaDB', async () => {
    for (const value of ['OFF', null]) {
      const {queries, result} = await run(value, false)
      expect(result).toMatchObject({statements: 2})
      expect(queries.map(({sql, afterPipeline}) => ({sql, afterPipeline}))).toEqual(expectedOrder.filter((q) => !q.sql.includes('super_read_only =')))
    }
  })
})

describe('applyBinlogs on MySQL with gtid_mode=OFF and log_bin on: a retry resumes from the recorded binlog position', () => {
  // A stream of four transactions (CREATE TABLE, then three row transactions), from a gtid_mode=OFF MySQL 8.0.
  const stream = join(fixtureDir, 'mysql', 'position', 'binlog.000001')
  const binlogRows = (file: string, from: number, committed: number): string[][] => {
    const rows: string[][] = []
    let pos = from
    const add = (type: string, info: string): void => {
      rows.push([file, String(pos), type, '2', String(pos + 50), info])
      pos += 50
    }
    for (let i = 0; i < committed; i++) {
      add('Anonymous_Gtid', "SET @@SESSION.GTID_NEXT= 'ANONYMOUS'")
      if (i === 0) {
        add('Query', 'use `test`; CREATE TABLE t1 (id INT PRIMARY KEY) /* xid=9 */')
        continue
      }
      add('Query', 'BEGIN')
      add('Table_map', 'table_id: 90 (test.t1)')
      add('Write_rows', 'table_id: 90 flags: STMT_END_F')
      add('Xid', `COMMIT /* xid=${10 + i} */`)
    }
    return rows
  }

  /** The target: binlog.000007 from 4000 on holds `committed` of the stream's transactions; `logs`: what SHOW BINARY LOGS lists. */
  function positionAnswers(committed: number, logs: string[] = ['binlog.000007']): (sql: string) => Answer {
    const base = mysqlAnswers('ON')
    const rows = binlogRows('binlog.000007', 4000, committed)
    const end = 4000 + rows.length * 50
    return (sql) => {
      if (/@@global\.gtid_mode/.test(sql)) return {columns: ['gtid_mode', 'executed', 'log_bin', 'server_uuid'], rows: [['OFF', '', '1', '3e11fa47-71ca-11e1-9e33-c80aa9429562']]}
      if (sql === 'SHOW MASTER STATUS') return {columns: ['File', 'Position', 'Binlog_Do_DB', 'Binlog_Ignore_DB', 'Executed_Gtid_Set'], rows: [['binlog.000007', String(end), '', '', '']]}
      if (sql === 'SHOW BINARY LOGS') return {columns: ['Log_name', 'File_size', 'Encrypted'], rows: logs.map((l) => [l, String(end), 'No'])}
      if (sql.startsWith("SHOW BINLOG EVENTS IN 'binlog.000007' FROM 4000 ")) return {columns: ['Log_name', 'Pos', 'Event_type', 'Server_id', 'End_log_pos', 'Info'], rows}
      return base(sql)
    }
  }

  let n = 0
  async function attempt(dir: string, answers: (sql: string) => Answer, retry: boolean): Promise<{result: unknown; ran: boolean; recordSeenByClient: boolean; queries: Recorded[]}> {
    const marker = join(dir, `ran-${n}`)
    const seen = join(dir, `seen-${n}`)
    const server = new FakeMysql(answers, marker)
    await server.start()
    try {
      const decoder = script(`position-mysqlbinlog-${n}`, `printf 'SELECT 1/*!*/;\\n'`)
      // The client notes whether the position record was there when the stream began.
      const client = script(`position-client-${n++}`, `cat >/dev/null; : > '${marker}'; ls '${dir}'/apply-position-db2-*.json >/dev/null 2>&1 && : > '${seen}'; exit 0`)
      const endpoint = {name: 'db2', host: '127.0.0.1', port: server.port, user: 'mha', password: new Secret('pw', 'test')}
      const options = {timeoutMs: 15_000, mysqlbinlog: decoder, mysql: client, tempDir: dir, retry, streamId: 'plan:apply_logs:db2'}
      const result = await applyBinlogs([stream], endpoint, options).then(
        (r) => r,
        (e: unknown) => e,
      )
      return {result, ran: existsSync(marker), recordSeenByClient: existsSync(seen), queries: server.queries}
    } finally {
      await server.stop()
    }
  }

  it('records the position before the first byte, and a retry skips what the binlog holds after it', async () => {
    const dir = mkdtempSync(join(work, 'position-'))
    const first = await attempt(dir, positionAnswers(0), false)
    expect(first.result).toMatchObject({statements: 1, transactions: 4, alreadyApplied: 0, tracked: true})
    expect(first.recordSeenByClient).toBe(true)
    expect(readdirSync(dir).filter((f) => f.startsWith('apply-position-db2-'))).toHaveLength(1)
    // Killed after two of the four committed: the retry counts them and applies the other two.
    const second = await attempt(dir, positionAnswers(2), true)
    expect(second.result).toMatchObject({statements: 1, transactions: 4, alreadyApplied: 2, tracked: true})
    // Killed after all four committed, before the journal said so: nothing is applied again.
    const third = await attempt(dir, positionAnswers(4), true)
    expect(third.result).toMatchObject({statements: 0, transactions: 4, alreadyApplied: 4})
    expect(third.ran).toBe(false)
  })

  it('a retry with no record (killed before it was written) applies the whole stream', async () => {
    const dir = mkdtempSync(join(work, 'position-'))
    const retry = await attempt(dir, positionAnswers(0), true)
    expect(retry.result).toMatchObject({statements: 1, transactions: 4, alreadyApplied: 0, tracked: true})
    expect(retry.recordSeenByClient).toBe(true)
  })

  it('a retry whose recorded binlog was purged, or that holds more than the stream, is refused in one line and applies nothing', async () => {
    const dir = mkdtempSync(join(work, 'position-'))
    await attempt(dir, positionAnswers(0), false)
    const purged = await attempt(dir, positionAnswers(0, ['binlog.000008']), true)
    expect(purged.ran).toBe(false)
    expect((purged.result as Error).message).toMatch(
      /^db2 \(127\.0\.0\.1:\d+\): applying binlog\.000001 failed: an earlier attempt streamed into db2 and what it committed cannot be told from db2's binlog: its binlog binlog\.000007 \(recorded position binlog\.000007:4000\) is gone \(purged or reset\); nothing is applied twice: .*restore db2 from a backup/,
    )
    expect((purged.result as Error).message).not.toMatch(/\n/)
    const tooMany = await attempt(dir, positionAnswers(5), true)
    expect(tooMany.ran).toBe(false)
    expect((tooMany.result as Error).message).toMatch(/holds 5 transactions, more than the 4 of the stream/)
  })

  it('MySQL with log_bin off keeps the refusal on retry, and records nothing', async () => {
    const dir = mkdtempSync(join(work, 'position-'))
    const base = mysqlAnswers('ON')
    const logBinOff = (sql: string): Answer => (/@@global\.gtid_mode/.test(sql) ? {columns: ['gtid_mode', 'executed', 'log_bin', 'server_uuid'], rows: [['OFF', '', '0', 'u']]} : base(sql))
    const retry = await attempt(dir, logBinOff, true)
    expect(retry.ran).toBe(false)
    expect((retry.result as Error).message).toMatch(/records no GTIDs that tell which part \(log_bin off, or no GTIDs in the stream\); it is not applied twice: rebuild db2 from the new master$/)
    expect(readdirSync(dir)).toEqual([])
  })
})
