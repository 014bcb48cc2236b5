import {hostname} from 'node:os'
import {performance} from 'node:perf_hooks'
import type {IKeyValue} from 'etcd3'
import {oneLine, UserError} from '../util/errors.js'
import type {FailoverRecord} from '../store/cluster-state.js'
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

/** Campaigns (and hand-overs) in flight at once: a thousand at once time out on a loaded host. */
const campaignBatch = 50

async function inBatches(tasks: readonly (() => Promise<void>)[], size: number): Promise<void> {
  for (let i = 0; i < tasks.length; i += size) await Promise.all(tasks.slice(i, i + size).map((t) => t()))
}

const text = (kv: IKeyValue) => kv.value.toString('utf8')

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
