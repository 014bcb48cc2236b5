import {overloadedLagMs} from './judge.js'
import type {Logger} from './log.js'

/** How often the lag is sampled: a timer this often, whose lateness is the process's own delay. */
const sampleEveryMs = 50

/** How long samples are kept: longer than any look (a ping, its retry and the replicas' answers). */
const keepMs = 30_000

/**
 * How late this process's timers fire (its event loop's delay): a process too busy to read an answer in time (a
 * thousand clusters starting, a long garbage collection, its host's CPU taken by others) must not take its own
 * slowness for a master's silence. One per process, shared by every cluster's loop; its timer does not keep the
 * process alive.
 */
export class LoopLag {
  readonly #everyMs: number
  /** Samples as [when (performance.now()), how late (ms)], oldest first. */
  readonly #samples: [number, number][] = []
  #last = 0
  #timer: NodeJS.Timeout | undefined

  constructor(everyMs = sampleEveryMs) {
    this.#everyMs = everyMs
  }

  start(): this {
    if (this.#timer) return this
    this.#last = performance.now()
    this.#timer = setInterval(() => this.#sample(), this.#everyMs)
    this.#timer.unref()
    return this
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  #sample(): void {
    const now = performance.now()
    this.record(now, Math.max(0, now - this.#last - this.#everyMs))
    this.#last = now
  }

  /** One sample (the timer's; tests give their own). */
  record(at: number, lateMs: number): void {
    this.#samples.push([at, lateMs])
    while (this.#samples.length > 0 && this.#samples[0]![0] < at - keepMs) this.#samples.shift()
  }

  /**
   * The worst delay since `since` (performance.now()), including the one under way now: a sample overdue means
   * the loop is late at this very moment (the caller runs in the same late turn as the timer that should have fired).
   */
  worstSince(since: number, now = performance.now()): number {
    let worst = this.#timer ? Math.max(0, now - this.#last - this.#everyMs) : 0
    for (let i = this.#samples.length - 1; i >= 0 && this.#samples[i]![0] >= since; i--) worst = Math.max(worst, this.#samples[i]![1])
    return worst
  }
}

/** The process's sampler, started at its first use. */
let shared: LoopLag | undefined
export function processLoopLag(): LoopLag {
  shared ??= new LoopLag().start()
  return shared
}

/**
 * Said when it starts and when it ends, process-wide (never once per cluster): while this process is late, no
 * master's silence counts and none is declared dead. Returns what stops the looking.
 */
export function sayOverload(lag: LoopLag, log: Logger, overloadedMs = overloadedLagMs): () => void {
  let since = 0
  let worst = 0
  let lastLate = 0
  const timer = setInterval(() => {
    const now = performance.now()
    const late = lag.worstSince(now - 1000, now)
    if (late >= overloadedMs) {
      if (!since) {
        since = now
        worst = 0
        log('*', 'overloaded', `this process's timers fire ${Math.round(late)} ms late: a master's silence is not counted while it lasts, and no master is declared dead until it keeps time again`)
      }
      worst = Math.max(worst, late)
      lastLate = now
    } else if (since && now - lastLate >= 5000) {
      log('*', 'keeps time', `on time again after ${((lastLate - since) / 1000).toFixed(1)} s late (at worst ${Math.round(worst)} ms)`)
      since = 0
    }
  }, 1000)
  timer.unref()
  return () => clearInterval(timer)
}
