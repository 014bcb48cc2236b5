/** What one look at a replica's connection to its master shows: what moves while the master talks to it. */
export interface ContactSample {
  /** The master it replicates from (host:port): another master starts another count. */
  source: string
  /** Master_Log_File:Read_Master_Log_Pos: moves with every event received. */
  read: string
  /** Heartbeats received: moves once a heartbeat period while the master has no event to send. Null: not known. */
  heartbeats: number | null
  /**
   * Seconds since the last heartbeat or event by the replica's own clock (MySQL's performance_schema), or null
   * (MariaDB 10.11 does not say). Used only when nothing was seen of this replica before.
   */
  serverAgeS: number | null
}

/**
 * When each replica last showed a sign of its master: its read position or its count of received heartbeats
 * moving. What it measures is a lower bound of the silence: a change is dated at the answer of the look that first
 * saw it (never earlier), and the silence runs to the moment the later look was asked (never to when its answer was
 * read: a process slow to read answers must not lengthen a replica's silence by its own lateness). On a live
 * connection something moves at least once a heartbeat period, even on an idle master.
 */
export class ContactClock {
  readonly #seen = new Map<string, {key: string; since: number}>()

  /**
   * Records a look at `replica` asked at `askedAt` and answered at `answeredAt` (ms) and says for how many seconds
   * nothing has moved.
   */
  observe(replica: string, sample: ContactSample, answeredAt: number, askedAt = answeredAt): number {
    const key = `${sample.source} ${sample.read} ${sample.heartbeats ?? '?'}`
    const last = this.#seen.get(replica)
    if (last?.key !== key) this.#seen.set(replica, {key, since: last === undefined ? answeredAt - Math.max(0, sample.serverAgeS ?? 0) * 1000 : answeredAt})
    return Math.max(0, Math.min(askedAt, answeredAt) - this.#seen.get(replica)!.since) / 1000
  }

  /** Another master, another topology: what was seen before says nothing of it. */
  clear(): void {
    this.#seen.clear()
  }
}
