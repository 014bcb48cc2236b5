import {connect} from 'node:net'
import mysql from 'mysql2/promise'
import type {Connection, RowDataPacket} from 'mysql2/promise'
import type {Connection as CoreConnection} from 'mysql2'
import {redact, type Secret} from '../util/secret.js'

/** Why a server could not be used. MHA treats auth and too-many-connections as "alive". */
export type SqlErrorKind = 'unreachable' | 'auth' | 'too_many_connections' | 'timeout' | 'sql'

export class SqlError extends Error {
  readonly kind: SqlErrorKind
  readonly code: string
  constructor(kind: SqlErrorKind, code: string, message: string) {
    super(message)
    this.kind = kind
    this.code = code
  }
}

export interface Endpoint {
  /** Server name, for messages. */
  name: string
  host: string
  port: number
  user: string
  password: Secret
  /** Where user and password are configured ("servers[1].password in FILE"), for an access-denied message. */
  loginFields?: string | undefined
  /** Local address to connect from. */
  localAddress?: string | undefined
}

const unreachableCodes = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE', 'PROTOCOL_CONNECTION_LOST', 'ENOTFOUND', 'EAI_AGAIN'])

export function classifySqlError(error: unknown, endpoint: Endpoint): SqlError {
  if (error instanceof SqlError) return error
  const e = error as {code?: string; errno?: number; message?: string}
  const code = e.code ?? 'UNKNOWN'
  const text = redact(e.message ?? String(error), [endpoint.password])
  const where = `${endpoint.name} (${endpoint.host}:${endpoint.port})`
  if (code === 'ER_ACCESS_DENIED_ERROR' || e.errno === 1045)
    return new SqlError('auth', code, `${where}: access denied for user ${endpoint.user}; check ${endpoint.loginFields ?? 'user/password in the cluster file'}`)
  if (code === 'ER_CON_COUNT_ERROR' || e.errno === 1040) return new SqlError('too_many_connections', code, `${where}: too many connections`)
  if (unreachableCodes.has(code)) return new SqlError('unreachable', code, `${where}: cannot connect (${code})`)
  if ((error as {fatal?: boolean}).fatal === true || /closed state/.test(text)) return new SqlError('unreachable', code, `${where}: connection lost`)
  if (code === 'PROTOCOL_SEQUENCE_TIMEOUT' || /timeout/i.test(text)) return new SqlError('timeout', code, `${where}: timed out (${text})`)
  return new SqlError('sql', code, `${where}: ${text}`)
}

/** One connection to one server, with every call bounded in time. */
export class ServerConnection {
  readonly endpoint: Endpoint
  readonly #conn: Connection
  readonly #timeoutMs: number
  #closing = false
  /** Asked before every statement: throws when the process may no longer act (a lost etcd lease). */
  guard: () => void = () => undefined

  private constructor(endpoint: Endpoint, conn: Connection, timeoutMs: number) {
    this.endpoint = endpoint
    this.#conn = conn
    this.#timeoutMs = timeoutMs
  }

  static async open(endpoint: Endpoint, timeoutMs: number): Promise<ServerConnection> {
    try {
      const conn = await mysql.createConnection({
        host: endpoint.host,
        port: endpoint.port,
        user: endpoint.user,
        password: endpoint.password.reveal(),
        connectTimeout: timeoutMs,
        // mysql2 3.x accepts localAddress but does not pass it to the socket: open the socket ourselves.
        ...(endpoint.localAddress
          ? {
              stream: () => {
                const socket = connect({host: endpoint.host, port: endpoint.port, localAddress: endpoint.localAddress})
                socket.setNoDelay(true)
                return socket
              },
            }
          : {}),
        supportBigNumbers: true,
        bigNumberStrings: true,
        dateStrings: true,
        multipleStatements: false,
        // mha sends no prepared statements; the default cache (16000 entries) costs memory per connection, and watch keeps one per server.
        maxPreparedStatements: 1,
        // Rows are read by mysql2's generic parser: compiling one for each new result shape (new Function) costs a
        // command run once more than it saves on mha's few rows.
        disableEval: true,
        // No caller's stack captured for each query (an Error made per statement, half the CPU of a ping): a failure
        // is classified into an SqlError of ours anyway, named by its server, and watch sends a thousand pings a second.
        trace: false,
      })
      // A fatal protocol error arrives as an event; without a listener it would crash the process.
      conn.on('error', () => undefined)
      return new ServerConnection(endpoint, conn, timeoutMs)
    } catch (error) {
      throw classifySqlError(error, endpoint)
    }
  }

  async query(sql: string, params: unknown[] = [], timeoutMs = this.#timeoutMs): Promise<Record<string, unknown>[]> {
    this.guard()
    // Without values mysql2 sends the text as it is, instead of scanning it for placeholders.
    // On the connection under mysql2's promise wrapper, whose extra promise and callback per statement cost about a
    // third of a ping's CPU (47 against 33 us measured): watch sends a thousand pings a second.
    const core = (this.#conn as unknown as {connection: CoreConnection}).connection
    return await new Promise((resolve, reject) => {
      core.query<RowDataPacket[]>(params.length > 0 ? {sql, timeout: timeoutMs, values: params} : {sql, timeout: timeoutMs}, (error, rows) => (error ? reject(classifySqlError(error, this.endpoint)) : resolve(rows)))
    })
  }

  async queryOne(sql: string, params: unknown[] = [], timeoutMs?: number): Promise<Record<string, unknown> | undefined> {
    return (await this.query(sql, params, timeoutMs))[0]
  }

  /** A statement whose text holds a secret: errors never echo the SQL. */
  async execute(sql: string, timeoutMs = this.#timeoutMs): Promise<void> {
    this.guard()
    try {
      await this.#conn.query({sql, timeout: timeoutMs})
    } catch (error) {
      throw classifySqlError(error, this.endpoint)
    }
  }

  /**
   * Called once when the server ends the connection or its socket fails (a crashed mysqld's kernel resets it
   * within milliseconds), never for close(): lets a watcher react to the event instead of the next ping.
   */
  onLost(listener: () => void): void {
    let fired = false
    const fire = () => {
      if (fired || this.#closing) return
      fired = true
      listener()
    }
    this.#conn.on('end', fire)
    this.#conn.on('error', fire)
    // mysql2 reports a reset socket on its stream before (or instead of) the connection's events.
    const inner = (this.#conn as unknown as {connection?: {stream?: {on?: (event: string, fn: () => void) => void}}}).connection
    inner?.stream?.on?.('close', fire)
  }

  /** Drop the connection at once, without the goodbye: for one that just failed (a silent peer never answers it). */
  destroy(): void {
    this.#closing = true
    this.#conn.destroy()
  }

  get threadId(): number {
    return this.#conn.threadId
  }

  #closed: Promise<void> | undefined

  /** Ends the connection; a second call waits for the first. */
  close(): Promise<void> {
    this.#closed ??= this.#close()
    return this.#closed
  }

  async #close(): Promise<void> {
    this.#closing = true
    // A peer that does not answer the goodbye gets a second; the timer must not keep a finished command alive.
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([this.#conn.end(), new Promise((resolve) => (timer = setTimeout(resolve, 1000)))])
    } catch {
      // The peer may already be gone.
    } finally {
      clearTimeout(timer)
      this.#conn.destroy()
    }
  }
}

export async function withConnection<T>(endpoint: Endpoint, timeoutMs: number, fn: (conn: ServerConnection) => Promise<T>): Promise<T> {
  const conn = await ServerConnection.open(endpoint, timeoutMs)
  try {
    return await fn(conn)
  } finally {
    await conn.close()
  }
}
