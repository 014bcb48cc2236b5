import mysql from 'mysql2/promise'
import type {SandboxState} from './sandbox.js'
import {secretsOf} from './sandbox.js'

/**
 * A client that inserts numbered rows as the DML-only app user and records every acknowledged id.
 * When its master fails it looks for the writable server (read_only=0) and carries on there.
 */
export class WriteLoad {
  readonly acked: number[] = []
  /** performance.now() of each acknowledgement, in the order of `acked`: the gaps a client saw. */
  readonly ackedAt: number[] = []
  errors = 0
  #stopped = false
  #loop: Promise<void> | undefined

  readonly state: SandboxState
  readonly intervalMs: number
  /** An address the client always connects to (a proxy's frontend), as an application does, instead of finding the writable server itself. */
  readonly through: {host: string; port: number} | undefined

  constructor(state: SandboxState, intervalMs = 20, options: {through?: {host: string; port: number}} = {}) {
    this.state = state
    this.intervalMs = intervalMs
    this.through = options.through
  }

  static async prepare(state: SandboxState, master: string): Promise<void> {
    const host = state.hosts.find((h) => h.name === master)!
    const conn = await mysql.createConnection({host: host.ip, port: 3306, user: 'app', password: secretsOf(state.dir).app.reveal(), database: 'mhatest'})
    await conn.query('CREATE TABLE IF NOT EXISTS acked (id INT PRIMARY KEY, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))')
    // No unique key: a transaction applied twice shows here as a second row, where acked would refuse it.
    await conn.query('CREATE TABLE IF NOT EXISTS acked_log (id INT NOT NULL, KEY (id))')
    await conn.end()
  }

  start(): void {
    this.#loop = this.run()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    await this.#loop
  }

  /** The acknowledged ids that the server named does not hold. */
  async missingOn(server: string): Promise<number[]> {
    const host = this.state.hosts.find((h) => h.name === server)!
    const conn = await mysql.createConnection({host: host.ip, port: 3306, user: 'app', password: secretsOf(this.state.dir).app.reveal(), database: 'mhatest'})
    try {
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT id FROM acked')
      const present = new Set(rows.map((r) => Number(r.id)))
      return this.acked.filter((id) => !present.has(id))
    } finally {
      await conn.end()
    }
  }

  /** The server that takes writes now (read_only=0), if any. */
  async currentMaster(): Promise<string | undefined> {
    const conn = await this.writable()
    if (!conn) return undefined
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT @@report_host AS h')
    await conn.end()
    return this.state.hosts.find((h) => h.ip === String(rows[0]?.h))?.name
  }

  private async writable(): Promise<mysql.Connection | undefined> {
    if (this.through) {
      // Through a proxy: wherever it sends this connection; a write there that fails (read only) is not acknowledged.
      try {
        const conn = await mysql.createConnection({host: this.through.host, port: this.through.port, user: 'app', password: secretsOf(this.state.dir).app.reveal(), database: 'mhatest', connectTimeout: 500})
        conn.on('error', () => undefined)
        return conn
      } catch {
        return undefined
      }
    }
    for (const host of this.state.hosts) {
      try {
        const conn = await mysql.createConnection({host: host.ip, port: 3306, user: 'app', password: secretsOf(this.state.dir).app.reveal(), database: 'mhatest', connectTimeout: 500})
        conn.on('error', () => undefined)
        const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT @@global.read_only+0 AS ro')
        if (Number(rows[0]?.ro) === 0) return conn
        await conn.end()
      } catch {
        // Not this one.
      }
    }
    return undefined
  }

  private async run(): Promise<void> {
    let conn: mysql.Connection | undefined
    // Unknown until the master is reached: a second load on the same tables continues after the ids already there.
    let next: number | undefined
    while (!this.#stopped) {
      try {
        conn ??= await this.writable()
        if (!conn) throw new Error('no writable server')
        next ??= (await highestId(conn)) + 1
        // One transaction of two rows, so that recovery has multi-statement transactions to keep whole.
        await conn.query({sql: 'BEGIN', timeout: 2000})
        await conn.query({sql: 'INSERT INTO acked (id) VALUES (?)', values: [next], timeout: 2000})
        await conn.query({sql: 'INSERT INTO acked_log (id) VALUES (?)', values: [next], timeout: 2000})
        await conn.query({sql: 'COMMIT', timeout: 2000})
        this.acked.push(next)
        this.ackedAt.push(performance.now())
        next++
      } catch {
        this.errors++
        conn?.destroy()
        conn = undefined
        // The id may or may not have been written; never reuse it.
        if (next !== undefined) next++
      }
      await new Promise((r) => setTimeout(r, this.intervalMs))
    }
    conn?.destroy()
  }
}

/** The highest id already in either table (0 when both are empty). */
async function highestId(conn: mysql.Connection): Promise<number> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>({sql: 'SELECT GREATEST((SELECT COALESCE(MAX(id), 0) FROM acked), (SELECT COALESCE(MAX(id), 0) FROM acked_log)) AS top', timeout: 2000})
  return Number(rows[0]?.top ?? 0)
}

/** The longest time between two consecutive acknowledgements (ms): the outage a client saw. */
export function longestGap(times: readonly number[]): number {
  let gap = 0
  for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!)
  return gap
}
