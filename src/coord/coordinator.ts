import {hostname} from 'node:os'
import {monitorEventLoopDelay, performance} from 'node:perf_hooks'
import type {IKeyValue, IRequestOp} from 'etcd3'
import {oneLine, UserError} from '../util/errors.js'
import type {FailoverRecord} from '../store/cluster-state.js'
import {LeaderView, type Leader} from './leaders.js'
import {campaignDelayMs, rendezvousOrder} from './ranking.js'
import {bounded, etcdCallTimeoutMs, EtcdSession} from './session.js'
import type {EtcdSettings} from './settings.js'

/** What a manager says of itself under /watchers/. */
export interface ManagerInfo {
  id: string
  host: string
  pid: number
  startedAt: string
  clusters: number
}

/**
 * Campaigns (and hand-overs) per transaction, each its own nested transaction (its compare decides for its key
 * alone): thousands of single transactions, even 50 in flight at once, kept a loaded host busy for seconds at the
 * start. etcd refuses more than 128 operations in one transaction (--max-txn-ops).
 */
const txnBatch = 100

/**
 * New leaderships (campaigns, then hand-overs) a manager starts per round: each costs the cluster's loop a first look
 * (a connection to each of its servers, reads in etcd), and a thousand at once kept a manager's event loop busy for
 * seconds. While this process lags (its event loop late by more than busyLagMs since the last round), the least;
 * else the most (taking 250 a round, a watcher of 10,000 clusters lagged by 150 to 500 ms in bench:etcd; 200 ms
 * as the limit kept it at the least, and on a busy host it took over 300 s to lead its clusters). Another manager does not step in meanwhile (see #leadershipRound): the preferred one is making
 * progress, and the clusters would only be handed over again.
 */
const leadershipsPerRound = {most: 250, least: 25}
const busyLagMs = 1000

/** The leaders/ keys are read in full again this often; the watch on the prefix tells every change between. */
const leadersReadEveryMs = 60_000

/** Leader keys per read when they are read in full (all at one revision): 10,000 in one answer took over 2 s to come on a busy host. */
const leadersPage = 1000

const text = (kv: IKeyValue) => kv.value.toString('utf8')

/** One compare on a key's create revision (0: the key does not exist) and one operation if it holds, as a nested transaction. */
interface KeyTxn {
  key: string
  createRevision: string
  then: IRequestOp
}

/**
 * Leases and leadership in etcd, under one prefix:
 *   watchers/<id>          each manager, under its lease (alive while the lease is)
 *   leaders/<cluster>      the manager that monitors the cluster, under its lease
 * The cluster's own keys under the same prefix (lock, failover record, journals, work files, state) are the
 * store's (src/store/etcd.ts); of those, the coordinator only hears of failover records, to tell followers.
 */
export class Coordinator {
  readonly session: EtcdSession
  readonly settings: EtcdSettings
  readonly info: ManagerInfo
  readonly #clusters: string[]
  readonly #watched: Set<string>
  readonly #mine = new Map<string, string>()
  /** Clusters this manager led when etcd was lost: still pinged, never failed over. */
  readonly #cutOff = new Set<string>()
  readonly #vacantSince = new Map<string, number>()
  /** When each manager last became the leader of a cluster (performance.now()): a manager making progress is not overtaken. */
  readonly #lastGain = new Map<string, number>()
  readonly #leaders: LeaderView
  /** The watch on leaders/ (undefined until the first full read, and once it failed: the next round reads and watches again). */
  #leaderWatch: {cancel: () => Promise<void>} | undefined
  #nextLeadersRead = 0
  #managers = new Map<string, {info: ManagerInfo; seenSince: number}>()
  /** Each cluster's rendezvous order over the managers alive (`#orderOf`), computed again only when they change. */
  #orders = new Map<string, string[]>()
  #ordersFor = ''
  #timer: NodeJS.Timeout | undefined
  /** How late this process's event loop ran since the last round (see leadershipsPerRound). */
  readonly #lag = monitorEventLoopDelay({resolution: 20})
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
  /**
   * Told when this manager's role for a cluster may have changed (it leads it now, no longer does, is cut off, or
   * another manager leads it now): a cluster's loop that follows sleeps until then instead of looking every ping.
   */
  onRoleChange: (cluster: string) => void = () => undefined
  log: (event: string, message: string) => void = () => undefined

  /** leaseInOwnThread: the lease kept in a thread of its own (watch; see EtcdSession). */
  constructor(settings: EtcdSettings, clusters: readonly string[] = [], options: {leaseInOwnThread?: boolean} = {}) {
    this.settings = settings
    this.session = new EtcdSession(settings, {ownThread: options.leaseInOwnThread ?? false})
    this.#clusters = [...clusters]
    this.#watched = new Set(clusters)
    this.#leaders = new LeaderView(this.#key('leaders', ''))
    this.#leaders.onChange = (cluster, before, after) => this.#leaderChanged(cluster, before, after)
    this.info = {id: settings.id, host: hostname(), pid: process.pid, startedAt: new Date().toISOString(), clusters: clusters.length}
    this.session.on('up', (lease) => {
      const cutOff = [...this.#cutOff]
      this.#cutOff.clear()
      for (const cluster of cutOff) this.onRoleChange(cluster)
      void this.#register(lease).catch((error: unknown) => this.log('etcd', `could not register: ${oneLine(error)}`))
      this.log('etcd up', `lease ${lease} granted (TTL ${settings.leaseTtlSeconds} s)`)
      this.#kick()
    })
    this.session.on('lost', (why) => {
      const mine = [...this.#mine.keys()]
      for (const cluster of mine) this.#cutOff.add(cluster)
      this.#mine.clear()
      for (const cluster of mine) this.onRoleChange(cluster)
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
    const failovers = await bounded(this.session.client.watch().prefix(this.#key('failovers', '')).create(), etcdCallTimeoutMs, 'watch failovers').catch(() => undefined)
    failovers?.on('put', (kv) => {
      try {
        this.onFailoverRecord(kv.key.toString().slice(this.#key('failovers', '').length), JSON.parse(text(kv)) as FailoverRecord)
      } catch {
        // A record that does not parse is nobody's business here.
      }
    })
    failovers?.on('error', () => undefined)
    if (failovers) this.#watchers.push(failovers)
    this.#lag.enable()
    this.#kick()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#lag.disable()
    await this.#round
    await Promise.all([...this.#watchers, ...(this.#leaderWatch ? [this.#leaderWatch] : [])].map((w) => w.cancel().catch(() => undefined)))
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
    await bounded(this.session.client.put(this.#key('watchers', this.settings.id)).value(JSON.stringify(this.info)).lease(lease).exec(), etcdCallTimeoutMs, 'register')
  }

  /**
   * A leaders/ key changed (told by the watch, or found by a full read). A key of this manager's that is gone or
   * was replaced is no longer its leadership; one etcd shows under its current lease is, even when the campaign's
   * answer was lost (its deadline passed while etcd committed it): else the cluster stays led by a manager that
   * follows it. A key gone leaves the cluster vacant: a round now.
   */
  #leaderChanged(cluster: string, before: Leader | undefined, after: Leader | undefined): void {
    // Other managers may watch other clusters under the same prefix: theirs are not this one's business.
    if (!this.#watched.has(cluster)) return
    const mine = this.#mine.get(cluster)
    if (mine !== undefined && after?.createRevision !== mine) this.#mine.delete(cluster)
    const lease = this.session.leaseId
    if (after && after.id === this.settings.id && lease !== undefined && after.lease === lease) this.#mine.set(cluster, after.createRevision)
    if (mine !== this.#mine.get(cluster) || before?.id !== after?.id) this.onRoleChange(cluster)
    if (after && after.id !== before?.id) this.#lastGain.set(after.id, performance.now())
    if (!after) this.#kick()
  }

  /** Every leaders/ key (read in pages, all at the revision of the first), and the watch on them from the revision after, started anew if it was lost. */
  async #readLeaders(): Promise<void> {
    const client = this.session.client
    const prefix = this.#key('leaders', '')
    const end = Buffer.from(prefix)
    end[end.length - 1]! += 1
    const kvs: IKeyValue[] = []
    let revision: bigint | undefined
    for (let from = Buffer.from(prefix); ; ) {
      const page = await bounded(client.kv.range({key: from, range_end: end, limit: leadersPage, ...(revision === undefined ? {} : {revision: String(revision)})}), etcdCallTimeoutMs, 'read leaders')
      revision ??= BigInt(page.header.revision)
      kvs.push(...page.kvs)
      if (!page.more || page.kvs.length === 0) break
      from = Buffer.concat([page.kvs.at(-1)!.key, Buffer.from([0])])
    }
    this.#leaders.applySnapshot(kvs, revision)
    this.#nextLeadersRead = performance.now() + leadersReadEveryMs
    if (this.#leaderWatch) return
    const watch = await bounded(client.watch().prefix(prefix).startRevision(String(revision + 1n)).create(), etcdCallTimeoutMs, 'watch leaders')
    watch.on('data', (res) => this.#leaders.applyEvents(res.events.map((e) => ({type: e.type === 'Delete' ? 'delete' : 'put', kv: e.kv}))))
    // Cancelled by etcd (its revision compacted away) or broken: read in full and watched again at the next round.
    watch.on('error', (error: unknown) => {
      if (this.#leaderWatch === watch) this.#leaderWatch = undefined
      void watch.cancel().catch(() => undefined)
      this.#nextLeadersRead = 0
      this.log('etcd', `the watch on the leaders stopped (${oneLine(error)}); reading them again`)
    })
    this.#leaderWatch = watch
  }

  /** The managers' rendezvous order for a cluster; the orders are computed again only when the managers alive change. */
  #orderOf(cluster: string, alive: readonly string[]): string[] {
    const key = alive.join('\n')
    if (key !== this.#ordersFor) {
      this.#orders = new Map()
      this.#ordersFor = key
    }
    let order = this.#orders.get(cluster)
    if (!order) this.#orders.set(cluster, (order = rendezvousOrder(cluster, alive)))
    return order
  }

  /** Who is alive, who leads what; then campaign for vacant clusters this manager should lead, hand over others. */
  async #leadershipRound(): Promise<void> {
    const lease = this.session.leaseId
    if (!lease) return
    const client = this.session.client
    const managers = await bounded(client.getAll().prefix(this.#key('watchers', '')).exec(), etcdCallTimeoutMs, 'read managers')
    // The first read is needed to know anything; a later one only puts right what the watch may have missed, and
    // failing (etcd slow to send 10,000 keys) it does not hold up the round: tried again later.
    if (!this.#leaderWatch) await this.#readLeaders()
    else if (performance.now() >= this.#nextLeadersRead)
      await this.#readLeaders().catch((error: unknown) => {
        this.#nextLeadersRead = performance.now() + 10 * this.#roundMs()
        this.log('etcd', `could not read the leaders again (the watch on them goes on): ${oneLine(error)}`)
      })
    const now = performance.now()
    const seen = new Map<string, {info: ManagerInfo; seenSince: number}>()
    for (const kv of managers.kvs) {
      const info = JSON.parse(text(kv)) as ManagerInfo
      seen.set(info.id, {info, seenSince: this.#managers.get(info.id)?.seenSince ?? now})
    }
    if (!seen.has(this.settings.id)) await this.#register(lease)
    seen.set(this.settings.id, seen.get(this.settings.id) ?? {info: this.info, seenSince: now})
    this.#managers = seen
    // The first round only learns who is there: a manager that starts a moment before the others does not take every cluster.
    if (this.#rounds++ === 0) return
    const alive = [...seen.keys()].sort()
    const settled = (id: string) => now - (seen.get(id)?.seenSince ?? now) > 2 * this.#roundMs()
    const campaigns: string[] = []
    const handOvers: {cluster: string; createRevision: string}[] = []
    for (const cluster of this.#clusters) {
      const leader = this.#leaders.get(cluster)
      if (leader) {
        this.#vacantSince.delete(cluster)
        // Spread the work: a manager leading a cluster another prefers hands it over while nothing is under way.
        if (leader.id !== this.settings.id) continue
        const preferred = this.#orderOf(cluster, alive)[0]!
        if (preferred !== this.settings.id && settled(preferred) && this.canHandOver(cluster)) handOvers.push({cluster, createRevision: leader.createRevision})
        continue
      }
      const since = this.#vacantSince.get(cluster) ?? now
      this.#vacantSince.set(cluster, since)
      // The preferred manager campaigns at once; another only after a lease TTL per rank without progress from those
      // before it (the preferred one is slow, not gone: a gone one's registration expires with its leaderships, and
      // the next in order is then first; one taking its clusters at its own pace is left to it).
      const order = this.#orderOf(cluster, alive)
      const rank = order.indexOf(this.settings.id)
      const waiting = Math.max(since, ...order.slice(0, Math.max(0, rank)).map((id) => this.#lastGain.get(id) ?? 0))
      if (now - waiting >= campaignDelayMs(rank, this.settings.leaseTtlSeconds * 1000)) campaigns.push(cluster)
    }
    const lagMs = this.#lag.max / 1e6
    this.#lag.reset()
    const budget = lagMs > busyLagMs ? leadershipsPerRound.least : leadershipsPerRound.most
    const campaigning = campaigns.slice(0, budget)
    await this.#campaign(campaigning, lease)
    await this.#handOver(handOvers.slice(0, budget - campaigning.length))
  }

  /** Each cluster's leaders/ key created under this manager's lease where none is, in transactions of txnBatch. */
  async #campaign(clusters: readonly string[], lease: string): Promise<void> {
    const value = JSON.stringify({id: this.settings.id, since: new Date().toISOString()})
    for (let i = 0; i < clusters.length; i += txnBatch) {
      if (this.session.leaseId !== lease || this.#stopped) return
      const batch = clusters.slice(i, i + txnBatch)
      const {revision, won} = await this.#eachIf(batch.map((cluster) => ({key: this.#key('leaders', cluster), createRevision: '0', then: {request_put: {key: Buffer.from(this.#key('leaders', cluster)), value: Buffer.from(value), lease}}})))
      batch.forEach((cluster, k) => {
        if (!won[k]) return
        this.#vacantSince.delete(cluster)
        if (this.#mine.get(cluster) === revision) return
        this.#mine.set(cluster, revision)
        this.onRoleChange(cluster)
      })
    }
  }

  /** Leaderships deleted (each only while it is still the key this manager created), for the managers that prefer them. */
  async #handOver(leaderships: readonly {cluster: string; createRevision: string}[]): Promise<void> {
    for (let i = 0; i < leaderships.length; i += txnBatch) {
      if (this.#stopped) return
      const batch = leaderships.slice(i, i + txnBatch)
      for (const {cluster} of batch) if (this.#mine.delete(cluster)) this.onRoleChange(cluster)
      const {won} = await this.#eachIf(batch.map(({cluster, createRevision}) => ({key: this.#key('leaders', cluster), createRevision, then: {request_delete_range: {key: Buffer.from(this.#key('leaders', cluster))}}})))
      batch.forEach(({cluster}, k) => won[k] && this.log('handed over', `${cluster}: leadership handed to the manager it prefers`))
    }
  }

  /** One transaction of nested ones, each deciding for its own key: which held, and the revision of the whole. */
  async #eachIf(txns: readonly KeyTxn[]): Promise<{revision: string; won: boolean[]}> {
    const txn = this.session.client.kv.txn({
      compare: [],
      success: txns.map((t) => ({request_txn: {compare: [{key: Buffer.from(t.key), target: 'Create', result: 'Equal', create_revision: t.createRevision}], success: [t.then], failure: []}})),
      failure: [],
    })
    // An answer lost to this bound may still be committed: the watch then tells the keys, and they are counted as this manager's.
    const result = await bounded(txn, etcdCallTimeoutMs, 'leadership transaction')
    return {revision: result.header.revision, won: txns.map((_, k) => result.responses[k]?.response_txn?.succeeded === true)}
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
}

/** A short-lived etcd session for one command (apply, ack): started with a lease, or one clear refusal saying what was not done. */
export async function commandCoordinator(settings: EtcdSettings, notDone: string): Promise<Coordinator> {
  const coord = new Coordinator(settings)
  await coord.start()
  if (coord.session.valid()) return coord
  await coord.stop()
  throw new UserError(`etcd (${settings.endpoints.join(', ')}): ${coord.session.problem ?? 'no lease'}; ${notDone}`)
}
