import {Worker} from 'node:worker_threads'
import type {Etcd3} from 'etcd3'
import {oneLine} from '../util/errors.js'
import {FencedError} from '../util/fenced.js'
import {bounded, etcdCallTimeoutMs, etcdClient} from './client.js'
import {LeaseKeeper, type KeeperEvents} from './lease-keeper.js'
import {LeaseState} from './lease-state.js'
import type {LeaseWorkerData, LeaseWorkerMessage} from './lease-worker.js'
import type {EtcdSettings} from './settings.js'

export {bounded, etcdCallTimeoutMs, etcdClient} from './client.js'

export interface SessionEvents {
  /** A lease was granted: keys may be written under it. */
  up: (leaseId: string) => void
  /** The lease is no longer known valid (etcd unreachable past its TTL, or expired there): nothing may act on it. */
  lost: (why: string) => void
}

/** How often the main thread says that its event loop runs, to a keeper in its own thread. */
const mainRunsEveryMs = 250

/**
 * One manager's lease in etcd, kept alive by hand (LeaseKeeper) so that its validity is known locally: a lease is
 * valid until the TTL runs out after the last keepalive etcd answered, counted from when that keepalive was sent.
 * A process frozen past that moment (SIGSTOP, a VM migration) finds its lease invalid before it does anything,
 * even if nobody told it. With ownThread (watch), the keeper runs in a thread of its own: with 10,000 clusters the
 * main thread was busy for seconds at a time, sent its keepalives late and lost its lease, and every cluster moved.
 */
export class EtcdSession {
  readonly client: Etcd3
  readonly settings: EtcdSettings
  readonly #state = new LeaseState()
  readonly #ownThread: boolean
  #keeper: LeaseKeeper | undefined
  #worker: Worker | undefined
  #mainRuns: NodeJS.Timeout | undefined
  #stopped = false
  readonly #listeners: {up: SessionEvents['up'][]; lost: SessionEvents['lost'][]} = {up: [], lost: []}
  /** Why etcd cannot be used now, for logs, status and metrics; null while the lease is valid. */
  problem: string | null = 'not connected yet'

  constructor(settings: EtcdSettings, options: {ownThread?: boolean} = {}) {
    this.settings = settings
    this.client = etcdClient(settings)
    this.#ownThread = options.ownThread ?? false
  }

  on<E extends keyof SessionEvents>(event: E, listener: SessionEvents[E]): void {
    ;(this.#listeners[event] as SessionEvents[E][]).push(listener)
  }

  get leaseId(): string | undefined {
    return this.#state.valid()
  }

  /** True while the lease is certainly alive in etcd. */
  valid(): boolean {
    return this.#state.valid() !== undefined
  }

  /** Throws unless the lease is valid: called before every effect a leader or lock holder makes. */
  assertValid(what: string, lease?: string): void {
    const current = this.#state.valid()
    if (current === undefined || (lease !== undefined && lease !== current)) throw new FencedError(`${what}: this manager's etcd lease is no longer valid (${this.problem ?? 'expired'}); another manager may act now, so this one does nothing more`)
  }

  readonly #events: KeeperEvents = {
    up: (lease) => this.#listeners.up.forEach((l) => l(lease)),
    lost: (why) => this.#listeners.lost.forEach((l) => l(why)),
    problem: (why) => (this.problem = why),
  }

  /** Starts keeping a lease; resolves once the first one is granted (or the first attempt failed). */
  async start(): Promise<void> {
    if (!this.#ownThread) {
      this.#keeper = new LeaseKeeper(this.settings, this.#state, this.#events)
      return await this.#keeper.start()
    }
    this.#state.mainRuns()
    this.#mainRuns = setInterval(() => this.#state.mainRuns(), mainRunsEveryMs)
    this.#mainRuns.unref()
    await this.#startWorker()
  }

  #startWorker(): Promise<void> {
    const {auth, ...rest} = this.settings
    const data: LeaseWorkerData = {settings: {...rest, auth: auth ? {user: auth.user, password: auth.password.reveal(), source: auth.password.source} : undefined}, buffer: this.#state.buffer}
    const worker = new Worker(new URL('./lease-worker.js', import.meta.url), {workerData: data})
    this.#worker = worker
    return new Promise((started) => {
      worker.on('message', (message: LeaseWorkerMessage) => {
        if (message.kind === 'started') started()
        else if (message.kind === 'up') this.#events.up(message.lease)
        else if (message.kind === 'lost') this.#events.lost(message.why)
        else if (message.kind === 'problem') this.#events.problem(message.why)
      })
      // A keeper thread that dies takes no lease with it: this one is dropped at once, and a new keeper started.
      worker.on('error', (error) => (this.problem = `the thread that keeps the etcd lease failed: ${oneLine(error)}`))
      worker.on('exit', () => {
        started()
        if (this.#stopped || this.#worker !== worker) return
        this.#state.dropped()
        this.#events.lost(this.problem ?? 'the thread that keeps the etcd lease stopped')
        setTimeout(() => void this.#startWorker(), 1000).unref()
      })
    })
  }

  /** Ends the lease at once (its keys vanish now, not after the TTL) and closes the clients. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#mainRuns)
    // Nothing acts on the lease from now on; a grant under way meanwhile is revoked too.
    const leases = new Set([this.#state.held()])
    this.#state.dropped()
    await this.#keeper?.stop()
    const worker = this.#worker
    if (worker) {
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
      worker.postMessage({kind: 'stop'})
      await bounded(exited, 3 * etcdCallTimeoutMs, 'stop the lease keeper').catch(() => worker.terminate())
    }
    leases.add(this.#state.held())
    this.#state.dropped()
    for (const lease of leases) if (lease !== undefined) await bounded(this.client.leaseClient.leaseRevoke({ID: lease}), etcdCallTimeoutMs, 'lease revoke').catch(() => undefined)
    this.client.close()
  }
}
