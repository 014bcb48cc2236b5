import type {ClusterConfig, ProxyConfig} from '../config/types.js'
import type {SshRunner} from '../remote/session-pool.js'
import {oneLine} from '../util/errors.js'
import {HaproxyRuntime, runtimeApiText, type BackendServer} from './haproxy.js'

/** What one proxy's runtime API said of its writer backend: plain data, for the analysis. */
export interface ProxyObservation {
  name: string
  runtimeApi: string
  backend: string
  /** The runtime API answered (even with a refusal). */
  reachable: boolean
  /** Why the backend could not be read (unreachable, or haproxy's refusal: no such backend, permission denied). */
  error: string | null
  /** The writer backend's servers, when it could be read. */
  servers: BackendServer[] | null
}

/** Read every proxy's writer backend, in parallel; one that fails is said, never thrown. */
export async function observeProxies(cluster: ClusterConfig, options: {ssh?: SshRunner} = {}): Promise<ProxyObservation[]> {
  return await Promise.all(cluster.proxies.map((proxy) => observeProxy(proxy, {...options, localAddress: cluster.sourceAddress})))
}

export async function observeProxy(proxy: ProxyConfig, options: {ssh?: SshRunner; localAddress?: string | undefined} = {}): Promise<ProxyObservation> {
  const base = {name: proxy.name, runtimeApi: runtimeApiText(proxy.runtimeApi), backend: proxy.writerBackend}
  try {
    const servers = await new HaproxyRuntime(proxy, options).showServersState(proxy.writerBackend)
    return {...base, reachable: true, error: null, servers}
  } catch (error) {
    const kind = (error as {kind?: string}).kind
    return {...base, reachable: kind === 'refused', error: oneLine(error), servers: null}
  }
}
