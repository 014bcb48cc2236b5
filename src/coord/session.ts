import {readFileSync} from 'node:fs'
import {performance} from 'node:perf_hooks'
import {Etcd3, EtcdLeaseInvalidError} from 'etcd3'
import {oneLine} from '../util/errors.js'
import type {EtcdSettings} from './settings.js'
import {FencedError} from '../util/fenced.js'

/** A unary etcd call that takes longer has no quorum behind it (or no network): it fails instead of hanging (bounded). */
export const etcdCallTimeoutMs = 2000

/**
 * gRPC's own deadline, well past the bound each call is waited for: a deadline gRPC sees pass makes the etcd client
 * close and reopen its channels to that member (watches included), and three in a row shut the member out for 5 s.
 * With 10,000 clusters, a process busy for two seconds turned one late answer into many seconds without etcd, and
 * lost its lease. It remains, so that a call nobody waits for any more does not live on.
 */
const grpcDeadlineMs = 5 * etcdCallTimeoutMs

export function etcdClient(settings: EtcdSettings): Etcd3 {
  const tls = settings.tls
  return new Etcd3({
    hosts: settings.endpoints,
    ...(tls
      ? {
          credentials: {
            rootCertificate: tls.caFile ? readFileSync(tls.caFile) : (undefined as unknown as Buffer),
            ...(tls.certFile && tls.keyFile ? {certChain: readFileSync(tls.certFile), privateKey: readFileSync(tls.keyFile)} : {}),
          },
        }
      : {}),
    // The token exchange is bounded by each call's own deadline (a fixed deadline here would be long past later).
    ...(settings.auth ? {auth: {username: settings.auth.user, password: settings.auth.password.reveal()}} : {}),
    dialTimeout: etcdCallTimeoutMs,
    defaultCallOptions: (context) => (context.isStream ? {} : {deadline: Date.now() + grpcDeadlineMs}),
  })
}

/** Any promise bounded in time: etcd without quorum accepts a call and never answers it. */
export async function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    // Judged after the I/O that waited meanwhile is read (see keepAliveOnce): a busy process is not etcd without quorum.
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => setImmediate(() => reject(new Error(`etcd: ${what} timed out after ${ms} ms`))), ms)))])
  } finally {
    clearTimeout(timer)
  }
}

export interface SessionEvents {
  /** A lease was granted: keys may be written under it. */
  up: (leaseId: string) => void
  /** The lease is no longer known valid (etcd unreachable past its TTL, or expired there): nothing may act on it. */
  lost: (why: string) => void
}

/**
 * One manager's lease in etcd, kept alive by hand so that its validity is known locally: a lease is valid
 * until the TTL runs out after the last keepalive etcd answered, counted from when that keepalive was sent.
 * A process frozen past that moment (SIGSTOP, a long GC pause, a VM migration) finds its lease invalid
 * before it does anything, even if nobody told it.
 */
export class EtcdSession {
  readonly client: Etcd3
  /**
   * The lease's own clients, one per member, tried in turn: a keepalive (a stream, which the client library
   * neither retries nor steers away from a dead member) goes to the next member when one fails, and never
   * waits behind other calls' retries or breakers (a burst of campaigns timing out on a loaded host).
   */
  readonly #leaseClients: Etcd3[]
  #member = 0
  readonly settings: EtcdSettings
  #leaseId: string | undefined
  #validUntil = 0
  #stopped = false
  #loop: Promise<void> | undefined
  #lastProblem = ''
  readonly #listeners: {up: SessionEvents['up'][]; lost: SessionEvents['lost'][]} = {up: [], lost: []}
  /** Why etcd cannot be used now, for logs, status and metrics; null while the lease is valid. */
  problem: string | null = 'not connected yet'

  constructor(settings: EtcdSettings) {
    this.settings = settings
    this.client = etcdClient(settings)
    this.#leaseClients = settings.endpoints.map((endpoint) => etcdClient({...settings, endpoints: [endpoint]}))
  }

  on<E extends keyof SessionEvents>(event: E, listener: SessionEvents[E]): void {
    ;(this.#listeners[event] as SessionEvents[E][]).push(listener)
  }

  get leaseId(): string | undefined {
    return this.valid() ? this.#leaseId : undefined
  }

  /** True while the lease is certainly alive in etcd. */
  valid(): boolean {
    return this.#leaseId !== undefined && performance.now() < this.#validUntil
  }

  /** Throws unless the lease is valid: called before every effect a leader or lock holder makes. */
  assertValid(what: string, lease?: string): void {
    if (!this.valid() || (lease !== undefined && lease !== this.#leaseId)) throw new FencedError(`${what}: this manager's etcd lease is no longer valid (${this.problem ?? 'expired'}); another manager may act now, so this one does nothing more`)
  }

  /** Starts keeping a lease; resolves once the first one is granted (or the first attempt failed). */
  async start(): Promise<void> {
    let first: () => void = () => undefined
    const granted = new Promise<void>((resolve) => (first = resolve))
    this.#loop = this.#keep(first)
    await granted
  }

  async #keep(firstAttempt: () => void): Promise<void> {
    const ttlMs = this.settings.leaseTtlSeconds * 1000
    while (!this.#stopped) {
      const sentAt = performance.now()
      const client = this.#leaseClients[this.#member]!
      try {
        if (this.#leaseId === undefined) {
          const granted = await bounded(client.leaseClient.leaseGrant({TTL: this.settings.leaseTtlSeconds}), etcdCallTimeoutMs, 'lease grant')
          this.#leaseId = granted.ID
          this.#validUntil = sentAt + Number(granted.TTL) * 1000
          this.problem = null
          this.#lastProblem = ''
          for (const l of this.#listeners.up) l(granted.ID)
        } else {
          const ttl = await keepAliveOnce(client, this.#leaseId)
          if (!(ttl > 0)) throw new EtcdLeaseInvalidError(this.#leaseId)
          this.#validUntil = sentAt + ttl * 1000
          this.problem = null
        }
      } catch (error) {
        const expired = error instanceof EtcdLeaseInvalidError
        const text = oneLine(error)
        const refused = /authentication failed|invalid auth|permission denied|user name is empty/i.test(text)
        const message = expired
          ? 'the lease expired in etcd'
          : refused
            ? `etcd refused the login of ${this.settings.auth?.user ?? 'this manager'} (${text}); fix the etcd user or its password file`
            : `etcd unreachable or without quorum (${text})`
        this.problem = message
        // The next try goes to the next member: the lease is the cluster's, any member can keep it.
        this.#member = (this.#member + 1) % this.#leaseClients.length
        if (expired || performance.now() >= this.#validUntil) this.#drop(message)
      }
      firstAttempt()
      await sleep(this.valid() ? Math.min(ttlMs / 4, Math.max(100, this.#validUntil - performance.now() - ttlMs / 2)) : 250)
    }
  }

  #drop(why: string): void {
    const had = this.#leaseId !== undefined
    this.#leaseId = undefined
    this.#validUntil = 0
    if (had || why !== this.#lastProblem) for (const l of this.#listeners.lost) l(why)
    this.#lastProblem = why
  }

  /** Ends the lease at once (its keys vanish now, not after the TTL) and closes the clients. */
  async stop(): Promise<void> {
    this.#stopped = true
    const id = this.#leaseId
    this.#leaseId = undefined
    if (id !== undefined) await bounded(this.client.leaseClient.leaseRevoke({ID: id}), etcdCallTimeoutMs, 'lease revoke').catch(() => undefined)
    await this.#loop?.catch(() => undefined)
    this.client.close()
    for (const c of this.#leaseClients) c.close()
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


function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
