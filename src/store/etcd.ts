import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import type {IKeyValue} from 'etcd3'
import {bounded, etcdCallTimeoutMs, type EtcdSession} from '../coord/session.js'
import {FencedError} from '../util/fenced.js'
import {UserError} from '../util/errors.js'
import {EMPTY_STATE, type FailoverRecord, type StateChange, type WatchState} from './cluster-state.js'
import {readWatchState, writeWatchState} from './files.js'
import {parseJournalLines, type JournalEntry, type JournalStore} from './journal.js'
import type {ClusterLock, ClusterStore, WorkFiles} from './store.js'

/** What the store uses of a manager's etcd coordinator: its client and lease, the key prefix, the manager's name. */
export interface EtcdAccess {
  readonly session: EtcdSession
  readonly settings: {readonly prefix: string; readonly id: string}
}

const artifactChunkBytes = 1024 * 1024
/**
 * Work files larger than this stay local: etcd is not a file store (1.5 MiB per request, a 2 GiB quota that deleted
 * keys keep filling until a compaction). A takeover whose file did not come through etcd runs the step that saved
 * it again (a read of the dead master's or a replica's files, repeatable while that host answers; the executor's
 * savesToRepeat), and says so plainly when it cannot.
 */
const artifactLimitBytes = 64 * 1024 * 1024

const text = (kv: IKeyValue) => kv.value.toString('utf8')

/** Reads per transaction (etcd refuses more than 128 operations in one). */
const readBatch = 100

/**
 * Single-key reads asked for in the same moment, sent to etcd as transactions of reads: when a manager becomes the
 * leader of a thousand clusters at once, each reads its state and its failover record, and two thousand calls
 * of their own (each with its gRPC round trip and deadline) kept the process too busy to keep its lease.
 */
class BatchedReads {
  readonly #session: EtcdSession
  #waiting: {key: string; done: (value: string | null) => void; failed: (error: unknown) => void}[] = []

  constructor(session: EtcdSession) {
    this.#session = session
  }

  get(key: string): Promise<string | null> {
    return new Promise((done, failed) => {
      if (this.#waiting.push({key, done, failed}) === 1) setImmediate(() => this.#send())
    })
  }

  #send(): void {
    const all = this.#waiting
    this.#waiting = []
    for (let i = 0; i < all.length; i += readBatch) {
      const batch = all.slice(i, i + readBatch)
      const txn = this.#session.client.kv.txn({compare: [], success: batch.map((r) => ({request_range: {key: Buffer.from(r.key)}})), failure: []})
      bounded(txn, etcdCallTimeoutMs, 'read').then(
        (result) =>
          batch.forEach((r, k) => {
            const kv = result.responses[k]?.response_range?.kvs[0]
            r.done(kv ? text(kv) : null)
          }),
        (error: unknown) => batch.forEach((r) => r.failed(error)),
      )
    }
  }
}

const batchedReads = new WeakMap<EtcdSession, BatchedReads>()
const readsOf = (session: EtcdSession): BatchedReads => batchedReads.get(session) ?? batchedReads.set(session, new BatchedReads(session)).get(session)!

/**
 * One cluster's store in etcd, shared by several managers and mha apply, under the coordinator's prefix:
 *   locks/<cluster>        who may change the cluster (watch's failover, mha apply), under the holder's lease
 *   failovers/<cluster>    the failover under way or last done, with its plan
 *   journal/<cluster>/<digest>/...   the step journal of that plan, written only under the lock (fencing)
 *   work/<cluster>/<digest>/...      the files its steps saved (binlog tail, relay diffs)
 *   state/<cluster>        anti-flapping state, out-of-service servers
 * This host's <plans>/<cluster>/watch-state.json is kept as a copy of the state in etcd.
 */
export class EtcdStore implements ClusterStore {
  readonly #etcd: EtcdAccess
  readonly plansDir: string
  readonly cluster: string
  readonly where = 'etcd'

  constructor(etcd: EtcdAccess, plansDir: string, cluster: string) {
    this.#etcd = etcd
    this.plansDir = plansDir
    this.cluster = cluster
  }

  #key(...parts: string[]): string {
    return [this.#etcd.settings.prefix, ...parts].join('/')
  }

  /** The cluster lock, the same for every manager and for mha apply: refused while someone else holds it. */
  async lock(purpose: string): Promise<ClusterLock> {
    const cluster = this.cluster
    const lease = this.#etcd.session.leaseId
    if (!lease) throw new UserError(`cannot lock cluster ${cluster} in etcd: ${this.#etcd.session.problem ?? 'no lease'}; nothing was changed`)
    const key = this.#key('locks', cluster)
    const holder = JSON.stringify({id: this.#etcd.settings.id, purpose, pid: process.pid, since: new Date().toISOString()})
    const client = this.#etcd.session.client
    const result = await bounded(client.if(key, 'Create', '==', 0).then(client.put(key).value(holder).lease(lease)).else(client.get(key)).commit(), etcdCallTimeoutMs, 'lock')
    if (!result.succeeded) {
      const held = result.responses[0]?.response_range?.kvs[0]
      const who = held ? (JSON.parse(text(held)) as {id: string; purpose: string; since: string}) : undefined
      throw new UserError(`cluster ${cluster} is locked in etcd by ${who ? `${who.id} (${who.purpose}, since ${who.since})` : 'another manager'}; wait for it to finish`)
    }
    const token = result.header.revision
    const session = this.#etcd.session
    return {
      cluster,
      token,
      // The lock lives under this lease only: a new lease granted after a freeze holds nothing.
      guard: () => session.assertValid(`cluster ${cluster}'s lock`, lease),
      release: async () => {
        await bounded(client.if(key, 'Create', '==', token).then(client.delete().key(key)).commit(), etcdCallTimeoutMs, 'unlock').catch(() => undefined)
      },
    }
  }

  /** A write that lands only while the lock is still ours in etcd (its create revision unchanged): the fencing token. */
  async #guardedPut(lock: ClusterLock, key: string, value: string | Buffer): Promise<void> {
    lock.guard()
    const client = this.#etcd.session.client
    const result = await bounded(client.if(this.#key('locks', lock.cluster), 'Create', '==', lock.token).then(client.put(key).value(value)).commit(), etcdCallTimeoutMs, 'guarded write')
    if (!result.succeeded) throw new FencedError(`cluster ${lock.cluster}'s lock (token ${lock.token}) is no longer this manager's: another took over, so this one does nothing more`)
  }

  async failoverRecord(): Promise<FailoverRecord | null> {
    const value = await readsOf(this.#etcd.session).get(this.#key('failovers', this.cluster))
    return value ? (JSON.parse(value) as FailoverRecord) : null
  }

  async writeFailoverRecord(lock: ClusterLock, record: FailoverRecord): Promise<void> {
    await this.#guardedPut(lock, this.#key('failovers', lock.cluster), JSON.stringify(record))
    // A new failover replaces the last one in etcd: its journal and files live on in the plans folders only.
    if (!record.finished) await this.#prune(lock, record.digest)
  }

  async #prune(lock: ClusterLock, keep: string): Promise<void> {
    const client = this.#etcd.session.client
    for (const area of ['journal', 'work']) {
      const prefix = this.#key(area, lock.cluster, '')
      const keys = await bounded(client.getAll().prefix(prefix).keys(), etcdCallTimeoutMs, 'list old journals')
      const digests = new Set(keys.map((k) => k.slice(prefix.length).split('/')[0]!).filter((d) => d !== keep))
      for (const digest of digests) {
        lock.guard()
        await bounded(client.delete().prefix(`${prefix}${digest}/`).exec(), etcdCallTimeoutMs, 'delete an old journal')
      }
    }
  }

  /** The state in etcd; null when none was recorded there yet. */
  async sharedState(): Promise<WatchState | null> {
    const value = await readsOf(this.#etcd.session).get(this.#key('state', this.cluster))
    return value ? (JSON.parse(value) as WatchState) : null
  }

  async refreshLocalCopy(): Promise<void> {
    const state = await this.sharedState()
    if (state) writeWatchState(this.plansDir, this.cluster, state)
  }

  /** The state in etcd, or this host's copy while etcd has none yet. */
  async readState(): Promise<WatchState> {
    return (await this.sharedState()) ?? readWatchState(this.plansDir, this.cluster)
  }

  /**
   * One read-modify-write of the cluster's state in etcd, as a transaction that compares the key's revision it
   * read (and, under the cluster lock, the lock's create revision: the fencing token): a concurrent update (an
   * ack, a fence record, another manager's failover) makes it read again and apply `change` to what is there now,
   * never overwrite it. `change` returns null to write nothing. Returns the state as it is after.
   */
  async updateState(change: StateChange, lock?: ClusterLock): Promise<WatchState> {
    const cluster = this.cluster
    const key = this.#key('state', cluster)
    const client = this.#etcd.session.client
    for (let attempt = 1; ; attempt++) {
      lock?.guard()
      const read = await bounded(client.get(key).exec(), etcdCallTimeoutMs, 'read state')
      const kv = read.kvs[0]
      const now = kv ? (JSON.parse(text(kv)) as WatchState) : EMPTY_STATE
      const next = change(now)
      if (next === null) return now
      let txn = client.if(key, 'Mod', '==', kv ? kv.mod_revision : 0)
      if (lock) txn = txn.and(this.#key('locks', lock.cluster), 'Create', '==', lock.token)
      const result = await bounded(txn.then(client.put(key).value(JSON.stringify(next))).commit(), etcdCallTimeoutMs, 'update state')
      if (result.succeeded) {
        // This host's copy follows etcd, never the reverse: status and the planner read it. A copy that cannot be
        // written does not undo what etcd holds (the next refresh writes it again).
        try {
          writeWatchState(this.plansDir, cluster, next)
        } catch {
          // Said by the next refresh, which throws.
        }
        return next
      }
      if (lock) await this.#stillHeld(lock)
      if (attempt >= 50) throw new Error(`cluster ${cluster}: its state in etcd changed under 50 updates in a row; not written`)
    }
  }

  /** Throws FencedError when the cluster lock's key no longer has this holder's create revision. */
  async #stillHeld(lock: ClusterLock): Promise<void> {
    const held = await bounded(this.#etcd.session.client.get(this.#key('locks', lock.cluster)).exec(), etcdCallTimeoutMs, 'read the lock')
    if (held.kvs[0]?.create_revision !== String(lock.token)) throw new FencedError(`cluster ${lock.cluster}'s lock (token ${lock.token}) is no longer this manager's: another took over, so this one does nothing more`)
  }

  /** The step journal of one plan, in etcd: read by whoever resumes it, written only under the lock. */
  journal(lock: ClusterLock, digest: string, localCopy: string): JournalStore {
    const prefix = this.#key('journal', lock.cluster, digest, '')
    const client = this.#etcd.session.client
    let counter = 0
    const id = this.#etcd.settings.id
    const put = (key: string, value: string) => this.#guardedPut(lock, key, value)
    return {
      where: `etcd ${prefix}`,
      async read() {
        const entries = await bounded(client.getAll().prefix(prefix).sort('Create', 'Ascend').strings(), etcdCallTimeoutMs, 'read journal')
        return parseJournalLines(Object.values(entries))
      },
      async write(entry: Omit<JournalEntry, 'at'>) {
        const line = JSON.stringify({at: new Date().toISOString(), by: id, ...entry})
        await put(`${prefix}${Date.now().toString().padStart(15, '0')}-${id}-${counter++}`, line)
        // The same line in the plans folder: the archive beside the plan, as without etcd.
        writeFileSync(localCopy, line + '\n', {flag: 'a'})
      },
    }
  }

  /** Work files (saved binlogs, relay diffs) copied to etcd after each step, so that another manager can resume. */
  workFiles(lock: ClusterLock, digest: string): WorkFiles {
    const prefix = this.#key('work', lock.cluster, digest, '')
    const client = this.#etcd.session.client
    const uploaded = new Map<string, string>()
    const upload = async (dir: string): Promise<void> => {
      if (!existsSync(dir)) return
      for (const name of readdirSync(dir)) {
        const file = join(dir, name)
        // A file still being written (a save under way in a parallel step: dot-named, ".partial") goes up once whole.
        if (name.startsWith('.') || name.includes('.partial') || name.endsWith('.restore')) continue
        const stat = statSync(file, {throwIfNoEntry: false})
        if (!stat?.isFile() || stat.size > artifactLimitBytes) continue
        let bytes: Buffer
        try {
          bytes = readFileSync(file)
        } catch {
          continue // removed since it was listed
        }
        const sum = createHash('sha256').update(bytes).digest('hex')
        if (uploaded.get(name) === sum) continue
        const chunks = Math.max(1, Math.ceil(bytes.length / artifactChunkBytes))
        for (let i = 0; i < chunks; i++) await this.#guardedPut(lock, `${prefix}${name}/${String(i).padStart(6, '0')}`, bytes.subarray(i * artifactChunkBytes, (i + 1) * artifactChunkBytes))
        // The index last: a file is there only once all its chunks are.
        await this.#guardedPut(lock, `${prefix}${name}/index`, JSON.stringify({bytes: bytes.length, chunks, sha256: sum}))
        uploaded.set(name, sum)
      }
    }
    // Steps end in parallel: one upload at a time, so that the chunks and the index of a name come from one reading.
    let last: Promise<void> = Promise.resolve()
    return {
      save: (dir) => {
        const run = last.catch(() => undefined).then(() => upload(dir))
        last = run
        return run
      },
      restore: async (dir) => {
        const all = await bounded(client.getAll().prefix(prefix).keys(), etcdCallTimeoutMs, 'list work files')
        const names = all.filter((k) => k.endsWith('/index')).map((k) => k.slice(prefix.length, -'/index'.length))
        mkdirSync(dir, {recursive: true})
        for (const name of names) {
          const file = join(dir, name)
          const index = JSON.parse((await bounded(client.get(`${prefix}${name}/index`).string(), etcdCallTimeoutMs, 'read a work file')) ?? '{}') as {bytes: number; chunks: number; sha256: string}
          if (existsSync(file) && createHash('sha256').update(readFileSync(file)).digest('hex') === index.sha256) continue
          const parts: Buffer[] = []
          for (let i = 0; i < index.chunks; i++) parts.push((await bounded(client.get(`${prefix}${name}/${String(i).padStart(6, '0')}`).buffer(), etcdCallTimeoutMs, 'read a work file')) ?? Buffer.alloc(0))
          const bytes = Buffer.concat(parts)
          // Not whole (an upload cut by the death of the manager that made it): left out; a step that still needs the
          // file saves it again (saving is a read), or says why it cannot.
          if (bytes.length !== index.bytes || createHash('sha256').update(bytes).digest('hex') !== index.sha256) continue
          writeFileSync(`${file}.restore`, bytes, {mode: 0o600})
          renameSync(`${file}.restore`, file)
          uploaded.set(name, index.sha256)
        }
      },
    }
  }
}
