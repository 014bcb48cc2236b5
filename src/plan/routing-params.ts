import type {ClusterConfig, ProxyConfig} from '../config/types.js'
import type {Step} from './types.js'

type Params<T extends Step['type']> = Extract<Step, {type: T}>['params']

/**
 * What a routing step does to one proxy, from the cluster file alone: the planners build their steps with these,
 * and apply checks a plan's steps against them.
 */
export function drainParams(proxy: ProxyConfig, server: string): Params<'route_drain'> {
  return {proxy: proxy.name, backend: proxy.writerBackend, backendServer: proxy.servers[server]!}
}

/** `writer` the one enabled server of the proxy's writer backend, every other server of the cluster file in maint. */
export function writerParams(cluster: ClusterConfig, proxy: ProxyConfig, writer: string): Params<'route_writer'> {
  return {
    proxy: proxy.name,
    backend: proxy.writerBackend,
    writer: proxy.servers[writer]!,
    others: cluster.servers.filter((s) => s.name !== writer).map((s) => proxy.servers[s.name]!),
    frontend: `${proxy.frontend.host}:${proxy.frontend.port}`,
  }
}

/**
 * Behind proxies, a server that is not to take writes (rejoining, rebuilt, taken out) is out of every writer backend
 * (maint, its sessions through the proxy shut) before it is changed, whoever put it in: one step per proxy.
 */
export function drainSteps(cluster: ClusterConfig, name: string, why: string): Step[] {
  return cluster.proxies.map((p) => ({
    id: `route_drain:${p.name}`,
    type: 'route_drain',
    server: name,
    params: drainParams(p, name),
    after: [],
    outputs: [],
    reason: `proxy ${p.name} sends no write to ${name}: ${why}`,
  }))
}
