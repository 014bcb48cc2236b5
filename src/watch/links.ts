import type {ClusterConfig, ServerConfig} from '../config/types.js'
import {dialectFor, parseServerVersion, type Dialect} from '../dialect/index.js'
import {endpointOf} from '../inspect/inspect.js'
import {ServerConnection, SqlError} from '../inspect/mysql.js'

/** What a use of a link runs: on its connection, with the server's dialect when needed (read once per connection). */
export type Use<T> = (conn: ServerConnection, dialect: () => Promise<Dialect>) => Promise<T>

/**
 * One SQL connection to one server of a watched cluster, kept between uses: opened at its first use, dropped when a
 * use fails (the connection lost, or silent: not for a statement the server refused), opened again at the next. The pings, the looks at the other servers and the questions to the replicas go
 * over it, so that watching a cluster costs round trips, not connections. With ping_type connect nothing is kept:
 * each use has a connection of its own, closed after it.
 */
export class ServerLink {
  readonly server: ServerConfig
  readonly #cluster: ClusterConfig
  readonly #keep: boolean
  #conn: ServerConnection | undefined
  /** The connection being opened: uses that come meanwhile wait for it rather than open one of their own. */
  #opening: Promise<ServerConnection> | undefined
  /** The server's dialect, read once per connection (a server restarted may have been upgraded). */
  #dialect: Dialect | undefined
  #closed = false
  /** Told when the kept connection is closed or reset by the other end (a crashed mysqld's host resets it at once). */
  onLost: () => void = () => undefined

  constructor(cluster: ClusterConfig, server: ServerConfig) {
    this.#cluster = cluster
    this.server = server
    this.#keep = cluster.monitor.pingType !== 'connect'
  }

  /**
   * `fn` on the kept connection (opened within `timeoutMs` when there is none). A use that fails drops the
   * connection at once, without the goodbye a silent peer would hold for a second. With `again`, a kept connection
   * found lost (the server restarted since the last use) is replaced by a fresh one once; a silence is not tried
   * again (it would cost a second timeout).
   */
  async use<T>(timeoutMs: number, fn: Use<T>, again = false): Promise<T> {
    const reused = this.#conn !== undefined
    try {
      return await this.#attempt(timeoutMs, fn)
    } catch (error) {
      if (!again || !reused || !(error instanceof SqlError) || error.kind !== 'unreachable') throw error
      return await this.#attempt(timeoutMs, fn)
    }
  }

  async #attempt<T>(timeoutMs: number, fn: Use<T>): Promise<T> {
    if (!this.#keep) return await withOwnConnection(await this.#connect(timeoutMs), timeoutMs, fn)
    const conn = this.#conn ?? (await (this.#opening ??= this.#open(timeoutMs).finally(() => (this.#opening = undefined))))
    const dialect = async () => {
      const known = this.#conn === conn ? this.#dialect : undefined
      const read = known ?? (await readDialect(conn, timeoutMs))
      if (this.#conn === conn) this.#dialect = read
      return read
    }
    try {
      return await fn(conn, dialect)
    } catch (error) {
      // A statement refused (a privilege missing, a syntax the server does not know) leaves the connection as it was.
      if (error instanceof SqlError && error.kind === 'sql') throw error
      if (this.#conn === conn) this.drop()
      else conn.destroy()
      throw error
    }
  }

  async #connect(timeoutMs: number): Promise<ServerConnection> {
    const conn = await ServerConnection.open(endpointOf(this.#cluster, this.server), timeoutMs)
    if (this.#closed) {
      conn.destroy()
      throw new SqlError('unreachable', 'CLOSED', `${this.server.name}: the watch of ${this.#cluster.name} is stopping`)
    }
    return conn
  }

  async #open(timeoutMs: number): Promise<ServerConnection> {
    const conn = await this.#connect(timeoutMs)
    this.adopt(conn)
    return conn
  }

  /** A connection opened elsewhere (the retry beside a silent ping) becomes the kept one. */
  adopt(conn: ServerConnection): void {
    if (this.#conn && this.#conn !== conn) this.#conn.destroy()
    this.#conn = conn
    this.#dialect = undefined
    conn.onLost(() => {
      if (this.#conn !== conn) return
      this.drop()
      this.onLost()
    })
  }

  /** The kept connection is dropped at once (it failed, or the server is no longer watched this way). */
  drop(): void {
    const conn = this.#conn
    this.#conn = undefined
    this.#dialect = undefined
    conn?.destroy()
  }

  /** The kept connection is closed politely and not kept (it is opened again at the next use). */
  release(): void {
    const conn = this.#conn
    this.#conn = undefined
    this.#dialect = undefined
    void conn?.close()
  }

  async close(): Promise<void> {
    this.#closed = true
    const conn = this.#conn
    this.#conn = undefined
    await conn?.close()
  }
}

/** One use on a connection of its own, closed after it (dropped if it failed). */
async function withOwnConnection<T>(conn: ServerConnection, timeoutMs: number, fn: Use<T>): Promise<T> {
  try {
    const result = await fn(conn, () => readDialect(conn, timeoutMs))
    await conn.close()
    return result
  } catch (error) {
    conn.destroy()
    throw error
  }
}

async function readDialect(conn: ServerConnection, timeoutMs: number): Promise<Dialect> {
  const row = await conn.queryOne('SELECT @@version AS v, @@version_comment AS c', [], timeoutMs)
  return dialectFor(parseServerVersion(String(row?.v), typeof row?.c === 'string' ? row.c : ''))
}

/** Every configured server's link, made when first asked for. */
export class ServerLinks {
  readonly #cluster: ClusterConfig
  readonly #lost: (server: ServerConfig) => void
  readonly #links = new Map<string, ServerLink>()

  /** `lost`: told when a server's kept connection is closed or reset by the other end. */
  constructor(cluster: ClusterConfig, lost: (server: ServerConfig) => void) {
    this.#cluster = cluster
    this.#lost = lost
  }

  of(server: ServerConfig): ServerLink {
    let link = this.#links.get(server.name)
    if (!link) {
      link = new ServerLink(this.#cluster, server)
      link.onLost = () => this.#lost(server)
      this.#links.set(server.name, link)
    }
    return link
  }

  dropAll(): void {
    for (const link of this.#links.values()) link.drop()
  }

  async close(): Promise<void> {
    await Promise.all([...this.#links.values()].map((l) => l.close()))
  }
}
