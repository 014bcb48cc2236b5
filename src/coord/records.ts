import {readFailoverRecord, writeFailoverRecord, type FailoverRecord} from '../store/cluster-state.js'
// Types only: a command without --etcd never loads the etcd client.
import type {ClusterLock, Coordinator} from './coordinator.js'

/** Where the failover under way is recorded: in etcd (written only under the cluster lock) with several managers, else beside the plans. */
export function failoverRecordIn(plansDir: string, cluster: string, coord: Coordinator | undefined): Promise<FailoverRecord | null> {
  return coord ? coord.failoverRecord(cluster) : Promise.resolve(readFailoverRecord(plansDir, cluster))
}

export async function recordFailover(plansDir: string, cluster: string, shared: {coord: Coordinator; lock: ClusterLock} | undefined, record: FailoverRecord): Promise<void> {
  if (shared) await shared.coord.writeFailoverRecord(shared.lock, record)
  else writeFailoverRecord(plansDir, cluster, record)
}
