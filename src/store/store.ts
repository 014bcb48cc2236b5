import type {FailoverRecord, StateChange, WatchState} from './cluster-state.js'
import type {JournalStore} from './journal.js'

/**
 * The cluster lock taken by watch's failover or mha apply. With etcd its fencing token is the lock key's create
 * revision; a file lock needs none (two processes never both hold it) and its guard does nothing.
 */
export interface ClusterLock {
  cluster: string
  token: string
  /** Throws unless this lock is certainly still held (with etcd: the lease it lives under is valid). */
  guard: () => void
  release: () => Promise<void>
}

/** The files a plan's steps saved (binlog tail, relay diffs), copied where another manager resuming it finds them. */
export interface WorkFiles {
  save: (dir: string) => Promise<void>
  restore: (dir: string) => Promise<void>
}

/**
 * Everything mha keeps of one cluster between runs and between managers: its state (anti-flapping, out of
 * service, fence records), the failover under way, the step journals and work files, and the cluster lock.
 * Files beside the plans (one manager), or etcd (several).
 */
export interface ClusterStore {
  readonly cluster: string
  /** Where the state lives, for messages. */
  readonly where: string
  readState(): Promise<WatchState>
  /** Brings this host's copy of the state (the file status and the planner read) up to date: etcd's; nothing for files. */
  refreshLocalCopy(): Promise<void>
  /**
   * One compare-and-swap of the state, retried on conflict: `change` sees the state as it is now and returns the
   * next one (or null: nothing is written). Under `lock`, written only while it is still held. Returns the state after.
   */
  updateState(change: StateChange, lock?: ClusterLock): Promise<WatchState>
  failoverRecord(): Promise<FailoverRecord | null>
  writeFailoverRecord(lock: ClusterLock, record: FailoverRecord): Promise<void>
  /** The cluster lock, refused while someone else holds it. */
  lock(purpose: string): Promise<ClusterLock>
  /** The step journal of one plan, written under the lock; `localCopy` is the file beside the plan. */
  journal(lock: ClusterLock, digest: string, localCopy: string): JournalStore
  /** Where the work files of one plan are shared; undefined when they stay in the folder beside the plan. */
  workFiles(lock: ClusterLock, digest: string): WorkFiles | undefined
}

/** Picks a cluster's store from the backend chosen once per process. */
export type StoreOf = (cluster: string) => ClusterStore
