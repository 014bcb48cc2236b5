import {EtcdLeaseInvalidError, type Etcd3} from 'etcd3'
import {oneLine} from '../util/errors.js'
import {bounded, etcdCallTimeoutMs, etcdClient} from './client.js'
import {nowNs, type LeaseState} from './lease-state.js'
import type {EtcdSettings} from './settings.js'

export interface KeeperEvents {
  /** A lease was granted: keys may be written under it. */
  up: (leaseId: string) => void
  /** The lease is no longer known valid (etcd unreachable past its TTL, or expired there): nothing may act on it. */
  lost: (why: string) => void
  /** Why etcd cannot be used now, or null once the lease is kept again. */
  problem: (why: string | null) => void
}

/** The main thread's event loop has not run for this long: its lease is not kept for it. */
class MainSilent extends Error {}

/**
 * Lease TTLs the main thread's event loop may go without running before its lease is left to expire: a process
 * whose loop is stuck loses its clusters within three TTLs. One TTL was too short for a manager of 3000 clusters
 * on a small host busy with its servers (loops of 5 to 10 s while it took its clusters, and every one moved).
 */
const mainSilenceTtls = 2

/**
 * Keeps one lease alive by hand, so that its validity is known locally: a lease is valid until the TTL runs out
 * after the last keepalive etcd answered, counted from when that keepalive was sent, and written to a LeaseState.
 * Runs in the main thread (short commands), or in a thread of its own (watch: see lease-worker.ts), where a main
 * thread busy for seconds does not delay its keepalives; there it keeps the lease only while the main thread's
 * event loop has run within the last two TTLs, so that a process whose loop is stuck loses its clusters all the same.
 */
export class LeaseKeeper {
  readonly #settings: EtcdSettings
  readonly #state: LeaseState
  readonly #events: KeeperEvents
  /**
   * The lease's own clients, one per member, tried in turn: a keepalive (a stream, which the client library
   * neither retries nor steers away from a dead member) goes to the next member when one fails, and never
   * waits behind other calls' retries or breakers (a burst of campaigns timing out on a loaded host).
   */
  readonly #clients: Etcd3[]
  #member = 0
  #leaseId: string | undefined
  #validUntil = 0n
  #stopped = false
  #loop: Promise<void> | undefined
  #lastProblem = ''
  #said: string | null | undefined
  #sleeping: {timer: NodeJS.Timeout; done: () => void} | undefined

  constructor(settings: EtcdSettings, state: LeaseState, events: KeeperEvents) {
    this.#settings = settings
    this.#state = state
    this.#events = events
    this.#clients = settings.endpoints.map((endpoint) => etcdClient({...settings, endpoints: [endpoint]}))
  }

  /** Starts keeping a lease; resolves once the first one is granted (or the first attempt failed). */
  async start(): Promise<void> {
    let first: () => void = () => undefined
    const attempted = new Promise<void>((resolve) => (first = resolve))
    this.#loop = this.#keep(first)
    await attempted
  }

  /** Stops keeping the lease (the session revokes it) and closes the clients. */
  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#sleeping) {
      clearTimeout(this.#sleeping.timer)
      this.#sleeping.done()
    }
    await this.#loop?.catch(() => undefined)
    for (const c of this.#clients) c.close()
  }

  async #keep(firstAttempt: () => void): Promise<void> {
    const ttlMs = this.#settings.leaseTtlSeconds * 1000
    while (!this.#stopped) {
      const sentAt = nowNs()
      const client = this.#clients[this.#member]!
      try {
        const silentMs = this.#state.mainSilentMs()
        // Said in the same words however long it lasts: a changing text would be a new problem, said again each time.
        if (silentMs > mainSilenceTtls * ttlMs) throw new MainSilent(`this process's event loop has not run for ${mainSilenceTtls} lease TTLs (${mainSilenceTtls * this.#settings.leaseTtlSeconds} s): its lease is left to expire, so that another manager takes its clusters`)
        if (this.#leaseId === undefined) {
          const granted = await bounded(client.leaseClient.leaseGrant({TTL: this.#settings.leaseTtlSeconds}), etcdCallTimeoutMs, 'lease grant')
          this.#leaseId = granted.ID
          this.#validUntil = sentAt + BigInt(granted.TTL) * 1_000_000_000n
          this.#state.granted(granted.ID, this.#validUntil)
          this.#lastProblem = ''
          this.#problem(null)
          this.#events.up(granted.ID)
        } else {
          const ttl = await keepAliveOnce(client, this.#leaseId)
          if (!(ttl > 0)) throw new EtcdLeaseInvalidError(this.#leaseId)
          this.#validUntil = sentAt + BigInt(ttl) * 1_000_000_000n
          this.#state.extended(this.#validUntil)
          this.#problem(null)
        }
      } catch (error) {
        const expired = error instanceof EtcdLeaseInvalidError
        const text = oneLine(error)
        const refused = /authentication failed|invalid auth|permission denied|user name is empty/i.test(text)
        const message =
          error instanceof MainSilent
            ? error.message
            : expired
              ? 'the lease expired in etcd'
              : refused
                ? `etcd refused the login of ${this.#settings.auth?.user ?? 'this manager'} (${text}); fix the etcd user or its password file`
                : `etcd unreachable or without quorum (${text})`
        this.#problem(message)
        // The next try goes to the next member: the lease is the cluster's, any member can keep it.
        if (!(error instanceof MainSilent)) this.#member = (this.#member + 1) % this.#clients.length
        if (expired || nowNs() >= this.#validUntil) this.#drop(message)
      }
      firstAttempt()
      const leftMs = Number(this.#validUntil - nowNs()) / 1e6
      await this.#sleep(this.#leaseId !== undefined && leftMs > 0 ? Math.min(ttlMs / 4, Math.max(100, leftMs - ttlMs / 2)) : 250)
    }
  }

  /** Told when it changes only (a keeper in its own thread posts each). */
  #problem(why: string | null): void {
    if (why !== this.#said) this.#events.problem(why)
    this.#said = why
  }

  #drop(why: string): void {
    const had = this.#leaseId !== undefined
    this.#leaseId = undefined
    this.#validUntil = 0n
    this.#state.dropped()
    if (had || why !== this.#lastProblem) this.#events.lost(why)
    this.#lastProblem = why
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((done) => (this.#sleeping = {timer: setTimeout(done, ms), done}))
  }
}

/** One keepalive on its own stream: the TTL etcd answers (0 when the lease is gone). */
async function keepAliveOnce(client: Etcd3, id: string): Promise<number> {
  const stream = await client.leaseClient.leaseKeepAlive()
  let timer: NodeJS.Timeout | undefined
  try {
    return await new Promise<number>((resolve, reject) => {
      // A timer that fires late (this process busy for a while) runs before the I/O that waited meanwhile: the answer
      // may be there, unread. It is read first (setImmediate runs after the poll phase); only then is it too late.
      const late = () => reject(new Error(`etcd: lease keepalive timed out after ${etcdCallTimeoutMs} ms`))
      timer = setTimeout(() => setImmediate(late), etcdCallTimeoutMs)
      stream.on('data', (answer: {TTL: string}) => resolve(Number(answer.TTL)))
      stream.on('error', (error: unknown) => reject(error instanceof Error ? error : new Error(String(error))))
      stream.write({ID: id})
    })
  } finally {
    // Ended in every case, an unanswered one too: no stream outlives its keepalive.
    clearTimeout(timer)
    stream.end()
  }
}
