/**
 * applyBinlogs against a MySQL server that reports super_read_only=ON: a fake server speaking the MySQL client
 * protocol on 127.0.0.1 (handshake v10, any login accepted, COM_QUERY answered from a table, each query
 * recorded) stands in for MySQL, and small shell scripts stand in for mysqlbinlog and the client.
 */
import {existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {createServer, type Server, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {applyBinlogs} from '../../src/recovery/index.js'
import {Secret} from '../../src/util/secret.js'
import {fixturePath} from '../fixtures/binlog/fixtures.js'

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
