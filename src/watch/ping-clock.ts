import {alignedPingDelayMs, monotonicNowMs} from './monitor.js'

/**
 * One timer per ping interval for the whole process: the clusters due at the next multiple of the interval are run
 * from it, in one turn of the event loop. Each cluster's own timer was a Timeout object a second per cluster, each
 * living its second: a thousand clusters filled the old generation with them (RSS grew 0.6 MB/s between full
 * collections, bench:watch).
 */
export class PingClock {
  readonly #slots = new Map<number, {members: Set<() => void>; timer: NodeJS.Timeout}>()
  readonly #now: () => number

  constructor(now: () => number = monotonicNowMs) {
    this.#now = now
  }

  /** `run` once, at the next multiple of `intervalMs` (or at once, if that one is due and not yet run). */
  at(intervalMs: number, run: () => void): void {
    let slot = this.#slots.get(intervalMs)
    if (!slot) {
      const members = new Set<() => void>()
      const timer = setTimeout(() => {
        this.#slots.delete(intervalMs)
        for (const member of members) member()
      }, alignedPingDelayMs(intervalMs, this.#now()))
      slot = {members, timer}
      this.#slots.set(intervalMs, slot)
    }
    slot.members.add(run)
  }

  /** `run` is no longer due (its watcher stops, or is woken to look now). */
  cancel(intervalMs: number, run: () => void): void {
    const slot = this.#slots.get(intervalMs)
    if (!slot?.members.delete(run) || slot.members.size > 0) return
    clearTimeout(slot.timer)
    this.#slots.delete(intervalMs)
  }

  /** How many runs wait for their interval's next multiple. */
  get waiting(): number {
    let n = 0
    for (const slot of this.#slots.values()) n += slot.members.size
    return n
  }
}

/** The process's clock: every cluster watched here shares it. */
export const pingClock = new PingClock()
