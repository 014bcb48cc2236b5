/** Nanoseconds on the process's monotonic clock: the same in every thread (performance.now() is not). */
export const nowNs = (): bigint => process.hrtime.bigint()

const validUntil = 0
const leaseId = 1
const mainAlive = 2
const generation = 3

/**
 * A manager's lease as its keeper last knew it: its id and until when it is certainly valid. In shared memory, so
 * that a keeper in a thread of its own (LeaseKeeper in lease-worker.ts) writes it and the main thread reads it at
 * once, with no message to wait for. The id and its validity are read together (a generation count around each
 * new lease): a lease granted after a loss is never taken for the one a lock was taken under.
 */
export class LeaseState {
  readonly buffer: SharedArrayBuffer
  readonly #cells: BigInt64Array

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(4 * BigInt64Array.BYTES_PER_ELEMENT)) {
    this.buffer = buffer
    this.#cells = new BigInt64Array(buffer)
  }

  /** A new lease, valid until then. */
  granted(id: string, until: bigint): void {
    const g = Atomics.add(this.#cells, generation, 1n) + 1n
    Atomics.store(this.#cells, validUntil, 0n)
    Atomics.store(this.#cells, leaseId, BigInt(id))
    Atomics.store(this.#cells, validUntil, until)
    Atomics.store(this.#cells, generation, g + 1n)
  }

  /** The same lease, valid until later. */
  extended(until: bigint): void {
    Atomics.store(this.#cells, validUntil, until)
  }

  dropped(): void {
    Atomics.store(this.#cells, validUntil, 0n)
  }

  /** The lease while it is certainly valid, else undefined. */
  valid(): string | undefined {
    // A new lease being written is a few instructions away; a keeper that died in the middle leaves none valid.
    for (let tries = 0; tries < 10_000; tries++) {
      const before = Atomics.load(this.#cells, generation)
      if (before % 2n === 1n) continue
      const id = Atomics.load(this.#cells, leaseId)
      const until = Atomics.load(this.#cells, validUntil)
      if (Atomics.load(this.#cells, generation) !== before) continue
      return until > nowNs() ? String(id) : undefined
    }
    return undefined
  }

  /** The lease last granted, valid or not, unless it was dropped (for its revoke at the end). */
  held(): string | undefined {
    return Atomics.load(this.#cells, validUntil) === 0n ? undefined : String(Atomics.load(this.#cells, leaseId))
  }

  /** Said by the main thread every so often: its event loop runs. */
  mainRuns(): void {
    Atomics.store(this.#cells, mainAlive, nowNs())
  }

  /** How long since the main thread last said so (0 when it never did: a keeper in the main thread itself). */
  mainSilentMs(): number {
    const last = Atomics.load(this.#cells, mainAlive)
    return last === 0n ? 0 : Number(nowNs() - last) / 1e6
  }
}
