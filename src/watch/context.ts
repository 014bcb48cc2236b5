import type {Coordinator} from '../coord/coordinator.js'
import type {ClusterConfig, ServerConfig} from '../config/types.js'
import {SshPool} from '../remote/session-pool.js'
import {FileStore, outOfService, readWatchState} from '../store/files.js'
import type {ClusterLock, ClusterStore, StoreOf} from '../store/store.js'
import type {Logger} from './log.js'
import type {LoopLag} from './loop-lag.js'

export interface WatchOptions {
  plansDir: string
  git: boolean
  log: Logger
  /** Rejoin a server taken out by a failover as soon as it answers again (never one with extra transactions). */
  autoRejoin?: boolean
  /** Several managers through etcd: only the cluster's leader pings, plans and applies. */
  coord?: Coordinator
  /** Where each cluster's state, failover record, journals and lock are kept: the files beside the plans unless given (etcd with a coordinator). */
  store?: StoreOf
  /** This process's event-loop delay (the process-wide sampler unless given): its own slowness is not a master's silence. */
  lag?: LoopLag
}

/**
 * What the phases of one cluster's watch (monitor, judge, plan, act, follow) share: the cluster, where its state
 * and lock are, the kept SSH sessions, the log, and the two facts more than one phase reads (a failover under way,
 * the verdict last said).
 */
export class ClusterContext {
  readonly cluster: ClusterConfig
  readonly options: WatchOptions
  /** The cluster's state, failover record, journals and lock; with etcd this host's state file is a copy for status. */
  readonly store: ClusterStore
  /** SSH sessions to the cluster's hosts, kept open while watching: a failover spends no handshake. */
  readonly pool = new SshPool()
  /** A failover (or its takeover) is under way in this process. */
  failingOver = false
  /** The verdict last said (a state, 'suspectN' or 'blocked'): a lasting one is said once. */
  lastReport = ''

  constructor(cluster: ClusterConfig, options: WatchOptions) {
    this.cluster = cluster
    this.options = options
    this.store = options.store?.(cluster.name) ?? new FileStore(options.plansDir, cluster.name)
  }

  say(event: string, message: string, fields?: Record<string, unknown>): void {
    this.options.log(this.cluster.name, event, message, fields)
  }

  /** Who this process is, in records and lock purposes: the etcd manager's id, or this pid. */
  get actor(): string {
    return this.options.coord ? this.options.coord.settings.id : `mha watch pid ${process.pid}`
  }

  /** The cluster lock: this host's file alone, or with several managers the one in etcd that mha apply takes too. */
  lock(purpose: string): Promise<ClusterLock> {
    return this.store.lock(purpose)
  }

  outOfService(): string[] {
    return outOfService(this.options.plansDir, this.cluster.name)
  }

  /** The server the last failover (the watch state's record) replaced by `master`, or null. */
  replacedBy(master: ServerConfig | undefined): string | null {
    const last = readWatchState(this.options.plansDir, this.cluster.name).lastFailover
    return master && last?.newMaster === master.name ? last.deadMaster : null
  }
}
