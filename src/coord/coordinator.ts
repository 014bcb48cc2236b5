import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync} from 'node:fs'
import {hostname} from 'node:os'
import {join} from 'node:path'
import {performance} from 'node:perf_hooks'
import type {IKeyValue} from 'etcd3'
import type {JournalEntry, JournalStore} from '../store/journal.js'
import {parseJournalLines} from '../store/journal.js'
import {oneLine, UserError} from '../util/errors.js'
import {EMPTY_STATE, type FailoverRecord, type StateChange, type WatchState} from '../store/cluster-state.js'
import {campaignDelayMs, rendezvousOrder} from './ranking.js'
import {bounded, etcdCallTimeoutMs, EtcdSession, FencedError} from './session.js'
import type {EtcdSettings} from './settings.js'

/** What a manager says of itself under /watchers/. */
export interface ManagerInfo {
  id: string
  host: string
  pid: number
  startedAt: string
  clusters: number
}

/** The cluster lock taken by a manager (watch) or an operator (mha apply): its fencing token is the key's create revision. */
export interface ClusterLock {
  cluster: string
  token: string
  /** Throws unless this lock is certainly still held (the lease it lives under is valid). */
  guard: () => void
  release: () => Promise<void>
}

/** Campaigns (and hand-overs) in flight at once: a thousand at once time out on a loaded host. */
const campaignBatch = 50

async function inBatches(tasks: readonly (() => Promise<void>)[], size: number): Promise<void> {
  for (let i = 0; i < tasks.length; i += size) await Promise.all(tasks.slice(i, i + size).map((t) => t()))
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

/**
 * mha's state in etcd, under one prefix:
 *   watchers/<id>          each manager, under its lease (alive while the lease is)
 *   leaders/<cluster>      the manager that monitors the cluster, under its lease
 *   locks/<cluster>        who may change the cluster (watch's failover, mha apply), under the holder's lease
 *   failovers/<cluster>    the failover under way or last done, with its plan
 *   journal/<cluster>/<digest>/...   the step journal of that plan, written only under the lock (fencing)
 *   work/<cluster>/<digest>/...      the files its steps saved (binlog tail, relay diffs)
 *   state/<cluster>        anti-flapping state, out-of-service servers
 */
export class Coordinator {
  readonly session: EtcdSession
  readonly settings: EtcdSettings
  readonly info: ManagerInfo
  readonly #clusters: string[]
  readonly #mine = new Map<string, string>()
  /** Clusters this manager led when etcd was lost: still pinged, never failed over. */
  readonly #cutOff = new Set<string>()
  readonly #vacantSince = new Map<string, number>()
  #leaders = new Map<string, {id: string; createRevision: string}>()
  #managers = new Map<string, {info: ManagerInfo; seenSince: number}>()
  #timer: NodeJS.Timeout | undefined
  #round: Promise<void> = Promise.resolve()
  /** A round is under way: a kick then asks for one more right after it (never a second loop of rounds). */
  #inRound = false
  #kicked = false
  #stopped = false
  #rounds = 0
  #watchers: {cancel: () => Promise<void>}[] = []
  /** May this cluster's leadership be handed to the preferred manager now? (watch: when idle and healthy) */
  canHandOver: (cluster: string) => boolean = () => true
  /** Told when a failover record is written by any manager. */
  onFailoverRecord: (cluster: string, record: FailoverRecord) => void = () => undefined
  log: (event: string, message: string) => void = () => undefined

  constructor(settings: EtcdSettings, clusters: readonly string[] = []) {
    this.settings = settings
    this.session = new EtcdSession(settings)
    this.#clusters = [...clusters]
    this.info = {id: settings.id, host: hostname(), pid: process.pid, startedAt: new Date().toISOString(), clusters: clusters.length}
    this.session.on('up', (lease) => {
      this.#cutOff.clear()
      void this.#register(lease).catch((error: unknown) => this.log('etcd', `could not register: ${oneLine(error)}`))
      this.log('etcd up', `lease ${lease} granted (TTL ${settings.leaseTtlSeconds} s)`)
      this.#kick()
    })
    this.session.on('lost', (why) => {
      for (const cluster of this.#mine.keys()) this.#cutOff.add(cluster)
      this.#mine.clear()
      this.log('etcd down', `${why}: no automatic failover starts and none under way goes on until etcd answers again`)
    })
  }

  #key(...parts: string[]): string {
    return [this.settings.prefix, ...parts].join('/')
  }

  /** Connects, takes a lease and, when clusters were given, starts taking part in their leadership. */
  async start(): Promise<void> {
    await this.session.start()
    if (this.#clusters.length === 0) return
    const watcher = await bounded(this.session.client.watch().prefix(this.#key('leaders', '')).create(), etcdCallTimeoutMs, 'watch leaders').catch(() => undefined)
    watcher?.on('delete', () => this.#kick())
    watcher?.on('error', () => undefined)
    const failovers = await bounded(this.session.client.watch().prefix(this.#key('failovers', '')).create(), etcdCallTimeoutMs, 'watch failovers').catch(() => undefined)
    failovers?.on('put', (kv) => {
      try {
        this.onFailoverRecord(kv.key.toString().slice(this.#key('failovers', '').length), JSON.parse(text(kv)) as FailoverRecord)
      } catch {
        // A record that does not parse is nobody's business here.
      }
    })
    failovers?.on('error', () => undefined)
    for (const w of [watcher, failovers]) if (w) this.#watchers.push(w)
    this.#kick()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    await this.#round
    await Promise.all(this.#watchers.map((w) => w.cancel().catch(() => undefined)))
    await this.session.stop()
  }

  /** Does this manager lead the cluster now (its lease certainly valid)? */
  leads(cluster: string): boolean {
    return this.session.valid() && this.#mine.has(cluster)
  }

  /** This manager led the cluster when etcd was lost: it keeps pinging but never fails over. */
  cutOff(cluster: string): boolean {
    return this.#cutOff.has(cluster)
  }

  /** The manager that leads the cluster, as this one last saw; null when none (or only its own lost lease). */
  leaderOf(cluster: string): string | null {
    if (this.#mine.has(cluster) && this.session.valid()) return this.settings.id
    // A key naming this manager that it does not hold (a lease lost since) is nobody's any more.
    const leader = this.#leaders.get(cluster)?.id ?? null
    return leader === this.settings.id ? null : leader
  }

  managers(): ManagerInfo[] {
    return [...this.#managers.values()].map((m) => m.info)
  }

  /** A round now, or right after the one under way: one loop of rounds only, however many events come. */
  #kick(): void {
    if (this.#stopped || this.#clusters.length === 0) return
    if (this.#inRound) this.#kicked = true
    else this.#schedule(0)
  }

  #schedule(ms: number): void {
    if (this.#stopped) return
    // The pending round is replaced, never doubled: a second timer would start a second loop for good.
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#inRound = true
      this.#round = this.#leadershipRound()
        .catch((error: unknown) => this.log('etcd', `leadership round failed: ${oneLine(error)}`))
        .finally(() => {
          this.#inRound = false
          const again = this.#kicked
          this.#kicked = false
          this.#schedule(again ? 0 : this.#roundMs())
        })
    }, ms)
  }

  #roundMs(): number {
    return Math.max(250, (this.settings.leaseTtlSeconds * 1000) / 5)
  }

  async #register(lease: string): Promise<void> {
    await this.session.client.put(this.#key('watchers', this.settings.id)).value(JSON.stringify(this.info)).lease(lease).exec()
  }

  /** Who is alive, who leads what; then campaign for vacant clusters this manager should lead, hand over others. */
  async #leadershipRound(): Promise<void> {
    const lease = this.session.leaseId
    if (!lease) return
    const client = this.session.client
    const [managers, leaders] = await Promise.all([client.getAll().prefix(this.#key('watchers', '')).exec(), client.getAll().prefix(this.#key('leaders', '')).exec()])
    const now = performance.now()
    const seen = new Map<string, {info: ManagerInfo; seenSince: number}>()
    for (const kv of managers.kvs) {
      const info = JSON.parse(text(kv)) as ManagerInfo
      seen.set(info.id, {info, seenSince: this.#managers.get(info.id)?.seenSince ?? now})
    }
    if (!seen.has(this.settings.id)) await this.#register(lease)
    seen.set(this.settings.id, seen.get(this.settings.id) ?? {info: this.info, seenSince: now})
    this.#managers = seen
    const prefix = this.#key('leaders', '')
    this.#leaders = new Map(leaders.kvs.map((kv) => [kv.key.toString().slice(prefix.length), {id: (JSON.parse(text(kv)) as {id: string}).id, createRevision: kv.create_revision}]))
    // A leadership etcd no longer shows as ours (it expired with an old lease) is not ours.
    for (const [cluster, revision] of this.#mine) if (this.#leaders.get(cluster)?.createRevision !== revision) this.#mine.delete(cluster)
    // A leadership etcd shows under this manager's current lease is its own, even when the campaign's answer was
    // lost (its deadline passed while etcd committed it): else the cluster stays led by a manager that follows it.
    if (this.session.leaseId === lease)
      for (const kv of leaders.kvs) {
        const cluster = kv.key.toString().slice(prefix.length)
        if (kv.lease === lease && this.#leaders.get(cluster)?.id === this.settings.id && !this.#mine.has(cluster)) this.#mine.set(cluster, kv.create_revision)
      }
    // The first round only learns who is there: a manager that starts a moment before the others does not take every cluster.
    if (this.#rounds++ === 0) return
    const alive = [...seen.keys()]
    const settled = (id: string) => now - (seen.get(id)?.seenSince ?? now) > 2 * this.#roundMs()
    const campaigns: (() => Promise<void>)[] = []
    for (const cluster of this.#clusters) {
      const order = rendezvousOrder(cluster, alive)
      const leader = this.#leaders.get(cluster)
      if (leader) {
        this.#vacantSince.delete(cluster)
        // Spread the work: a manager leading a cluster another prefers hands it over while nothing is under way.
        const preferred = order[0]!
        if (leader.id === this.settings.id && preferred !== this.settings.id && settled(preferred) && this.canHandOver(cluster)) campaigns.push(() => this.#resign(cluster, leader.createRevision))
        continue
      }
      const since = this.#vacantSince.get(cluster) ?? now
      this.#vacantSince.set(cluster, since)
      // The preferred manager campaigns at once; another only after a lease TTL per rank of vacancy (the preferred one
      // is slow, not gone: a gone one's registration expires with its leaderships, and the next in order is then first).
      if (now - since >= campaignDelayMs(order.indexOf(this.settings.id), this.settings.leaseTtlSeconds * 1000)) campaigns.push(() => this.#campaign(cluster, lease))
    }
    await inBatches(campaigns, campaignBatch)
  }

  async #campaign(cluster: string, lease: string): Promise<void> {
    const key = this.#key('leaders', cluster)
    const value = JSON.stringify({id: this.settings.id, since: new Date().toISOString()})
    const result = await this.session.client.if(key, 'Create', '==', 0).then(this.session.client.put(key).value(value).lease(lease)).commit()
    if (!result.succeeded) return
    const revision = result.header.revision
    this.#mine.set(cluster, revision)
    this.#leaders.set(cluster, {id: this.settings.id, createRevision: revision})
    this.#vacantSince.delete(cluster)
  }

  async #resign(cluster: string, revision: string): Promise<void> {
    const key = this.#key('leaders', cluster)
    this.#mine.delete(cluster)
    await this.session.client.if(key, 'Create', '==', revision).then(this.session.client.delete().key(key)).commit()
    this.log('handed over', `${cluster}: leadership handed to the manager it prefers`)
  }

  /** The cluster lock, the same for every manager and for mha apply: refused while someone else holds it. */
  async lock(cluster: string, purpose: string): Promise<ClusterLock> {
    const lease = this.session.leaseId
    if (!lease) throw new UserError(`cannot lock cluster ${cluster} in etcd: ${this.session.problem ?? 'no lease'}; nothing was changed`)
    const key = this.#key('locks', cluster)
    const holder = JSON.stringify({id: this.settings.id, purpose, pid: process.pid, since: new Date().toISOString()})
    const client = this.session.client
    const result = await bounded(client.if(key, 'Create', '==', 0).then(client.put(key).value(holder).lease(lease)).else(client.get(key)).commit(), etcdCallTimeoutMs, 'lock')
    if (!result.succeeded) {
      const held = result.responses[0]?.response_range?.kvs[0]
      const who = held ? (JSON.parse(text(held)) as {id: string; purpose: string; since: string}) : undefined
      throw new UserError(`cluster ${cluster} is locked in etcd by ${who ? `${who.id} (${who.purpose}, since ${who.since})` : 'another manager'}; wait for it to finish`)
    }
    const token = result.header.revision
    const session = this.session
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
    const client = this.session.client
    const result = await bounded(client.if(this.#key('locks', lock.cluster), 'Create', '==', lock.token).then(client.put(key).value(value)).commit(), etcdCallTimeoutMs, 'guarded write')
    if (!result.succeeded) throw new FencedError(`cluster ${lock.cluster}'s lock (token ${lock.token}) is no longer this manager's: another took over, so this one does nothing more`)
  }

  async failoverRecord(cluster: string): Promise<FailoverRecord | null> {
    const value = await bounded(this.session.client.get(this.#key('failovers', cluster)).string(), etcdCallTimeoutMs, 'read failover')
    return value ? (JSON.parse(value) as FailoverRecord) : null
  }

  async writeFailoverRecord(lock: ClusterLock, record: FailoverRecord): Promise<void> {
    await this.#guardedPut(lock, this.#key('failovers', lock.cluster), JSON.stringify(record))
    // A new failover replaces the last one in etcd: its journal and files live on in the plans folders only.
    if (!record.finished) await this.#prune(lock, record.digest)
  }

  async #prune(lock: ClusterLock, keep: string): Promise<void> {
    const client = this.session.client
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

  async readState(cluster: string): Promise<WatchState | null> {
    const value = await bounded(this.session.client.get(this.#key('state', cluster)).string(), etcdCallTimeoutMs, 'read state')
    return value ? (JSON.parse(value) as WatchState) : null
  }

  /**
   * One read-modify-write of the cluster's state in etcd, as a transaction that compares the key's revision it
   * read (and, under the cluster lock, the lock's create revision: the fencing token): a concurrent update (an
   * ack, a fence record, another manager's failover) makes it read again and apply `change` to what is there now,
   * never overwrite it. `change` returns null to write nothing. Returns the state as it is after.
   */
  async updateState(cluster: string, change: StateChange, lock?: ClusterLock): Promise<WatchState> {
    const key = this.#key('state', cluster)
    const client = this.session.client
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
      if (result.succeeded) return next
      if (lock) await this.#stillHeld(lock)
      if (attempt >= 50) throw new Error(`cluster ${cluster}: its state in etcd changed under 50 updates in a row; not written`)
    }
  }

  /** Throws FencedError when the cluster lock's key no longer has this holder's create revision. */
  async #stillHeld(lock: ClusterLock): Promise<void> {
    const held = await bounded(this.session.client.get(this.#key('locks', lock.cluster)).exec(), etcdCallTimeoutMs, 'read the lock')
    if (held.kvs[0]?.create_revision !== String(lock.token)) throw new FencedError(`cluster ${lock.cluster}'s lock (token ${lock.token}) is no longer this manager's: another took over, so this one does nothing more`)
  }

  /** The leaders etcd shows now, per cluster (for mha status). */
  async leadersNow(): Promise<Map<string, string>> {
    const prefix = this.#key('leaders', '')
    const leaders = await bounded(this.session.client.getAll().prefix(prefix).exec(), etcdCallTimeoutMs, 'read leaders')
    return new Map(leaders.kvs.map((kv) => [kv.key.toString().slice(prefix.length), (JSON.parse(text(kv)) as {id: string}).id]))
  }

  async managersNow(): Promise<ManagerInfo[]> {
    const managers = await bounded(this.session.client.getAll().prefix(this.#key('watchers', '')).exec(), etcdCallTimeoutMs, 'read managers')
    return managers.kvs.map((kv) => JSON.parse(text(kv)) as ManagerInfo)
  }

  /** The step journal of one plan, in etcd: read by whoever resumes it, written only under the lock. */
  journal(lock: ClusterLock, digest: string, localCopy: string): JournalStore {
    const prefix = this.#key('journal', lock.cluster, digest, '')
    const client = this.session.client
    let counter = 0
    const id = this.settings.id
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
  artifacts(lock: ClusterLock, digest: string): {save: (dir: string) => Promise<void>; restore: (dir: string) => Promise<void>} {
    const prefix = this.#key('work', lock.cluster, digest, '')
    const client = this.session.client
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
          const index = JSON.parse((await client.get(`${prefix}${name}/index`).string()) ?? '{}') as {bytes: number; chunks: number; sha256: string}
          if (existsSync(file) && createHash('sha256').update(readFileSync(file)).digest('hex') === index.sha256) continue
          const parts: Buffer[] = []
          for (let i = 0; i < index.chunks; i++) parts.push((await client.get(`${prefix}${name}/${String(i).padStart(6, '0')}`).buffer()) ?? Buffer.alloc(0))
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

/** A short-lived etcd session for one command (apply, ack): started with a lease, or one clear refusal saying what was not done. */
export async function commandCoordinator(settings: EtcdSettings, notDone: string): Promise<Coordinator> {
  const coord = new Coordinator(settings)
  await coord.start()
  if (coord.session.valid()) return coord
  await coord.stop()
  throw new UserError(`etcd (${settings.endpoints.join(', ')}): ${coord.session.problem ?? 'no lease'}; ${notDone}`)
}
