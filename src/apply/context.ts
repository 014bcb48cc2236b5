import type {ClusterConfig, ServerConfig, SshHost} from '../config/types.js'
import {dialectFor, parseServerVersion} from '../dialect/index.js'
import type {Dialect} from '../dialect/types.js'
import {endpointOf, sshTargetOf} from '../inspect/inspect.js'
import {ServerConnection} from '../inspect/mysql.js'
import type {Plan, Step} from '../plan/types.js'
import type {SshPool} from '../remote/session-pool.js'
import {SshSession} from '../remote/ssh.js'
import type {StepContext} from '../steps/types.js'
import type {StateChange, WatchState} from '../store/cluster-state.js'

/** Connections for one apply run: opened on first use, reused, all closed at the end. */
export class RunContext implements StepContext {
  readonly cluster: ClusterConfig
  readonly plan: Plan
  readonly workDir: string
  readonly timeoutMs: number
  readonly outputs = new Map<string, Record<string, unknown>>()
  readonly notes: string[] = []
  /** Steps an earlier run began without finishing, from the journal. */
  readonly unfinished = new Set<string>()
  /** Set by the executor: how a step ended, in this run or an earlier one. */
  outcomeOf: (stepId: string) => 'done' | 'failed' | 'pending' = () => 'pending'
  /** Set by the executor: where a step's progress goes (its listener). */
  reportProgress: (step: Step, message: string) => void = () => undefined
  /** Set by the executor: copies workDir to the shared store, where there is one. */
  saveWork: () => Promise<void> = () => Promise.resolve()
  /** Set by the executor: the cluster's state in its store. */
  readState: () => Promise<WatchState> = () => Promise.reject(new Error('no store for the cluster state'))
  updateState: (change: StateChange) => Promise<WatchState> = () => Promise.reject(new Error('no store for the cluster state'))
  readonly progressIntervalMs: number
  /** Set by the executor from the snapshot its caller took (mha watch): what the caller saw of a silent server. */
  silentAtPlanning: (name: string) => {ageMs: number; message: string} | null = () => null
  /** The failover's data loss when apply found it larger than the plan said (a binlog that could not be saved). */
  lostAtApply: string | null = null
  readonly #sql = new Map<string, Promise<ServerConnection>>()
  readonly #ssh = new Map<string, Promise<SshSession>>()
  readonly #dialects = new Map<string, Promise<Dialect>>()
  readonly #held = new Map<string, ServerConnection>()

  readonly #pool: SshPool | undefined
  /** Throws when this process may no longer act (mha with etcd): every statement and SSH use asks it first. */
  readonly #guard: () => void

  /** `connections`: open ones the caller hands over (mha switchover's inspection), used as this run's own and closed with them. */
  constructor(cluster: ClusterConfig, plan: Plan, workDir: string, pool?: SshPool, guard: () => void = () => undefined, progressIntervalMs = 10_000, connections?: ReadonlyMap<string, ServerConnection>) {
    this.#guard = guard
    this.adopt(connections ?? new Map())
    this.#pool = pool
    this.progressIntervalMs = progressIntervalMs
    this.cluster = cluster
    this.plan = plan
    this.workDir = workDir
    this.timeoutMs = cluster.failover.waitTimeoutMs
  }

  /** Open connections (an inspection's, a moment old) become this run's own, one per server; a second one is closed. */
  adopt(connections: ReadonlyMap<string, ServerConnection>): void {
    for (const [name, conn] of connections) {
      if (this.#sql.has(name)) {
        void conn.close()
        continue
      }
      conn.guard = this.#guard
      const kept = Promise.resolve(conn)
      this.#sql.set(name, kept)
      this.#dropWhenLost(name, conn, kept)
    }
  }

  /**
   * A connection the server ended (its mariadbd stopped or restarted by a step: a rebuild, a fence) is dropped, so
   * that the next statement opens a new one instead of failing on it. An inspection's connection, adopted at the
   * start, outlives such a restart otherwise.
   */
  #dropWhenLost(name: string, conn: ServerConnection, kept: Promise<ServerConnection>): void {
    conn.onLost(() => {
      if (this.#sql.get(name) === kept) this.#sql.delete(name)
    })
  }

  server(name: string): ServerConfig {
    const server = this.cluster.servers.find((s) => s.name === name)
    if (!server) throw new Error(`the plan names server ${name}, which is not in ${this.cluster.file}`)
    return server
  }

  sql(name: string): Promise<ServerConnection> {
    this.#guard()
    return cached(this.#sql, name, () => {
      const opening = this.#open(name)
      void opening.then((conn) => this.#dropWhenLost(name, conn, opening)).catch(() => undefined)
      return opening
    })
  }

  async #open(name: string): Promise<ServerConnection> {
    const conn = await ServerConnection.open(endpointOf(this.cluster, this.server(name)), this.cluster.monitor.connectTimeoutMs * 2)
    conn.guard = this.#guard
    return conn
  }

  async holdSession(name: string, purpose: string): Promise<ServerConnection> {
    const key = `${name}\0${purpose}`
    const held = this.#held.get(key)
    if (held) return held
    this.#guard()
    const conn = await this.#open(name)
    this.#held.set(key, conn)
    return conn
  }

  heldSession(name: string, purpose: string): ServerConnection | undefined {
    return this.#held.get(`${name}\0${purpose}`)
  }

  async releaseSession(name: string, purpose: string): Promise<void> {
    const key = `${name}\0${purpose}`
    const conn = this.#held.get(key)
    this.#held.delete(key)
    await conn?.close()
  }

  dialect(name: string): Promise<Dialect> {
    return cached(this.#dialects, name, async () => {
      const row = await (await this.sql(name)).queryOne('SELECT @@version AS version, @@version_comment AS comment')
      return dialectFor(parseServerVersion(String(row?.version), typeof row?.comment === 'string' ? row.comment : ''))
    })
  }

  /** A server's host, or a binlog server (the cluster file keeps their names apart), as the cluster file says now. */
  #sshHost(name: string): SshHost {
    return this.cluster.binlogServers.find((b) => b.name === name) ?? this.server(name)
  }

  async ssh(name: string): Promise<SshSession> {
    this.#guard()
    if (this.#pool) return await this.#pool.session(sshTargetOf(this.cluster, this.#sshHost(name)))
    const session = await cached(this.#ssh, name, () => SshSession.open(sshTargetOf(this.cluster, this.#sshHost(name))))
    if (!session.lost) return session
    // The host went away since (a reboot, a fencing hook): try a fresh connection once.
    this.#ssh.delete(name)
    return await cached(this.#ssh, name, () => SshSession.open(sshTargetOf(this.cluster, this.#sshHost(name))))
  }

  output(fromStep: string, name: string): unknown {
    const outputs = this.outputs.get(fromStep)
    if (!outputs || !(name in outputs)) throw new Error(`step ${fromStep} has not produced "${name}" yet`)
    return outputs[name]
  }

  outcome(stepId: string): 'done' | 'failed' | 'pending' {
    return this.outcomeOf(stepId)
  }

  declareLoss(statement: string): void {
    this.lostAtApply = statement
  }

  attempted(stepId: string): boolean {
    return this.unfinished.has(stepId)
  }

  note(message: string): void {
    this.notes.push(message)
  }

  progress(step: Step, message: string): void {
    this.reportProgress(step, message)
  }

  /** Drop a server's connection (after it broke, or to reconnect fresh). */
  forget(name: string): void {
    const conn = this.#sql.get(name)
    this.#sql.delete(name)
    void conn?.then((c) => c.close()).catch(() => undefined)
  }

  async close(): Promise<void> {
    await Promise.all([...this.#sql.values()].map(async (c) => (await c.catch(() => undefined))?.close()))
    // A session still held (a lock) ends with the run: closing it is what releases the lock on the server.
    await Promise.all([...this.#held.values()].map((c) => c.close().catch(() => undefined)))
    this.#held.clear()
    for (const s of this.#ssh.values()) (await s.catch(() => undefined))?.close()
    this.#sql.clear()
    this.#ssh.clear()
  }
}

/** One promise per key; a failed one is forgotten, so that the next step may try again. */
function cached<T>(map: Map<string, Promise<T>>, key: string, make: () => Promise<T>): Promise<T> {
  let value = map.get(key)
  if (!value) {
    value = make()
    value.catch(() => map.delete(key))
    map.set(key, value)
  }
  return value
}
