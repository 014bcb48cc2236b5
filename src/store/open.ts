import type {EtcdSettings} from '../coord/settings.js'
import type {EtcdAccess} from './etcd.js'
import {FileStore} from './files.js'
import type {ClusterStore, StoreOf} from './store.js'

/** The backend, chosen once per process: etcd when a coordinator is given (the etcd client is loaded only then), else files. */
export async function storesFor(plansDir: string, etcd?: EtcdAccess): Promise<StoreOf> {
  if (!etcd) return (cluster) => new FileStore(plansDir, cluster)
  const {EtcdStore} = await import('./etcd.js')
  return (cluster) => new EtcdStore(etcd, plansDir, cluster)
}

/**
 * A command's store for one cluster: in etcd through a short-lived session of its own when etcd is configured
 * (or one clear refusal saying what was not done), else the files. close() ends the session.
 */
export async function commandStore(plansDir: string, cluster: string, etcd: EtcdSettings | undefined, notDone: string): Promise<{store: ClusterStore; close: () => Promise<void>}> {
  if (!etcd) return {store: new FileStore(plansDir, cluster), close: () => Promise.resolve()}
  const coord = await (await import('../coord/coordinator.js')).commandCoordinator(etcd, notDone)
  return {store: (await storesFor(plansDir, coord))(cluster), close: () => coord.stop()}
}
