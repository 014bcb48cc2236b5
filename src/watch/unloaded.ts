import {oneLine} from '../util/errors.js'
import {complaintPauseMs} from './complaints.js'
import type {Verdict} from './judge.js'
import {tryLoadCluster, type UnloadableFile} from './load-clusters.js'
import {ClusterWatcher, type WatchOptions} from './watcher.js'

/** How often the file of a cluster that does not load is read again. */
const rereadEveryMs = 5_000

/**
 * A cluster file of the watched folder that does not load: that cluster is not monitored (said at once, then
 * again with a growing pause, and shown by /status and the metrics) while the others are watched. The file is
 * read again every few seconds; once it loads, the cluster is watched like the others.
 */
export class UnloadedCluster {
  readonly file: string
  readonly options: WatchOptions
  /** Why the file does not load, as last read. */
  problem: string
  /** The cluster's watcher, once its file loads. */
  watcher: ClusterWatcher | undefined
  readonly #name: string
  readonly #since = Date.now()
  #nextComplaint = 0
  #timer: NodeJS.Timeout | undefined
  #stopping = false

  constructor(entry: UnloadableFile, options: WatchOptions) {
    this.#name = entry.name
    this.file = entry.file
    this.problem = entry.problem
    this.options = options
  }

  get name(): string {
    return this.watcher?.name ?? this.#name
  }

  /** Why it cannot be monitored, or null once its file loads and its watcher can monitor it. */
  get unmonitored(): string | null {
    return this.watcher ? this.watcher.unmonitored : `cannot load ${this.file}: ${this.problem}`
  }

  get verdict(): Verdict {
    return this.watcher?.verdict ?? {state: 'healthy'}
  }

  get firstLook(): Promise<void> {
    return this.watcher?.firstLook ?? Promise.resolve()
  }

  start(): void {
    this.#complain()
    this.#schedule()
  }

  async stop(): Promise<void> {
    this.#stopping = true
    clearTimeout(this.#timer)
    await this.watcher?.stop()
  }

  #schedule(): void {
    if (this.#stopping) return
    this.#timer = setTimeout(() => this.#reread(), rereadEveryMs)
  }

  #reread(): void {
    try {
      const found = tryLoadCluster(this.file)
      if ('problem' in found) {
        this.problem = found.problem
        this.#complain()
        return this.#schedule()
      }
      this.options.log(found.name, 'monitored', `${this.file} loads now (it did not for ${Math.round((Date.now() - this.#since) / 1000)} s): watching ${found.name}`)
      this.watcher = new ClusterWatcher(found, this.options)
      this.watcher.start()
    } catch (error) {
      this.options.log(this.#name, 'error', oneLine(error))
      this.#schedule()
    }
  }

  #complain(): void {
    const now = Date.now()
    if (now < this.#nextComplaint) return
    const pause = complaintPauseMs(this.#since, now)
    this.#nextComplaint = now + pause
    this.options.log(this.#name, 'unmonitored', `${this.#name} cannot be monitored: ${this.unmonitored}; no automatic failover until this is fixed (reading the file again every ${rereadEveryMs / 1000} s, said again in ${Math.round(pause / 1000)} s)`)
  }
}

/** What watch runs per cluster: a watcher, or a cluster whose file does not load (yet). */
export type WatchedCluster = ClusterWatcher | UnloadedCluster
