import {existsSync, mkdirSync, readFileSync, renameSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {replaceDurably} from '../util/durable.js'
import {EMPTY_STATE, type FailoverRecord, type StateChange, type WatchState} from './cluster-state.js'
import {Journal, type JournalStore} from './journal.js'
import {holdLockFile, lockCluster} from './lock.js'
import type {ClusterLock, ClusterStore, WorkFiles} from './store.js'

/** A file operation as a promise: its failure is a rejection, as etcd's are, never a throw. */
const settled = <T>(operation: () => T): Promise<T> => new Promise((resolve) => resolve(operation()))

/**
 * The store of one manager, in files: <plans>/<cluster>/watch-state.json and failover-record.json, each journal
 * beside its plan, work files in the folder beside the plan, and this host's lock file (lock.ts).
 */
export class FileStore implements ClusterStore {
  readonly plansDir: string
  readonly cluster: string

  constructor(plansDir: string, cluster: string) {
    this.plansDir = plansDir
    this.cluster = cluster
  }

  get where(): string {
    return stateFile(this.plansDir, this.cluster)
  }

  readState(): Promise<WatchState> {
    return settled(() => readWatchState(this.plansDir, this.cluster))
  }

  refreshLocalCopy(): Promise<void> {
    return Promise.resolve()
  }

  updateState(change: StateChange): Promise<WatchState> {
    return settled(() => updateWatchState(this.plansDir, this.cluster, change))
  }

  failoverRecord(): Promise<FailoverRecord | null> {
    return settled(() => readFailoverRecord(this.plansDir, this.cluster))
  }

  writeFailoverRecord(_lock: ClusterLock, record: FailoverRecord): Promise<void> {
    return settled(() => writeFailoverRecord(this.plansDir, this.cluster, record))
  }

  lock(purpose: string): Promise<ClusterLock> {
    return settled(() => {
      const release = lockCluster(this.cluster, purpose)
      // Two processes never both hold a lock file: there is nothing to fence.
      return {cluster: this.cluster, token: 'file', guard: () => undefined, release: () => settled(release)}
    })
  }

  journal(_lock: ClusterLock, _digest: string, localCopy: string): JournalStore {
    return new Journal(localCopy)
  }

  workFiles(): WorkFiles | undefined {
    return undefined
  }
}

/** The names of the servers a failover took out of service, for the planner. */
export function outOfService(plansDir: string, cluster: string): string[] {
  return (readWatchState(plansDir, cluster).outOfService ?? []).map((o) => o.server)
}

export function stateFile(plansDir: string, cluster: string): string {
  return join(plansDir, cluster, 'watch-state.json')
}

export function readWatchState(plansDir: string, cluster: string): WatchState {
  const file = stateFile(plansDir, cluster)
  if (!existsSync(file)) return EMPTY_STATE
  return JSON.parse(readFileSync(file, 'utf8')) as WatchState
}

export function writeWatchState(plansDir: string, cluster: string, state: WatchState): void {
  const file = stateFile(plansDir, cluster)
  mkdirSync(dirname(file), {recursive: true})
  // Written aside (a name of this process's own: two writers never share it), then renamed: a crash never leaves half a state file.
  const aside = `${file}.${process.pid}.tmp`
  writeFileSync(aside, JSON.stringify(state, null, 2) + '\n')
  renameSync(aside, file)
}

/**
 * One read-modify-write of the state file that no other process's can undo: under a short lock beside the file
 * (`lock.ts`'s, held by pid and start time: a killed holder's is taken over, a live one is waited for, never
 * displaced). `change` sees the state as it is now.
 */
export function updateWatchState(plansDir: string, cluster: string, change: StateChange): WatchState {
  const file = stateFile(plansDir, cluster)
  mkdirSync(dirname(file), {recursive: true})
  const release = holdLockFile(`${file}.lock`, `update of ${file}`, 10_000)
  try {
    const now = readWatchState(plansDir, cluster)
    const next = change(now)
    if (next === null) return now
    replaceDurably(file, JSON.stringify(next, null, 2) + '\n')
    return next
  } finally {
    release()
  }
}

export function failoverRecordFile(plansDir: string, cluster: string): string {
  return join(plansDir, cluster, 'failover-record.json')
}

export function readFailoverRecord(plansDir: string, cluster: string): FailoverRecord | null {
  const file = failoverRecordFile(plansDir, cluster)
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as FailoverRecord) : null
}

export function writeFailoverRecord(plansDir: string, cluster: string, record: FailoverRecord): void {
  const file = failoverRecordFile(plansDir, cluster)
  mkdirSync(dirname(file), {recursive: true})
  replaceDurably(file, JSON.stringify(record) + '\n')
}
