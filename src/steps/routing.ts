import type {ProxyConfig} from '../config/types.js'
import {withConnection} from '../inspect/mysql.js'
import type {Step} from '../plan/types.js'
import {HaproxyRuntime, type BackendServer} from '../routing/haproxy.js'
import type {StepContext, StepHandler} from './types.js'

type Drain = Extract<Step, {type: 'route_drain'}>
type Writer = Extract<Step, {type: 'route_writer'}>

function proxyOf(ctx: StepContext, name: string): ProxyConfig {
  const proxy = ctx.cluster.proxies.find((p) => p.name === name)
  if (!proxy) throw new Error(`proxy ${name} is not in ${ctx.cluster.file} (routing.haproxy)`)
  return proxy
}

const runtime = (ctx: StepContext, proxy: ProxyConfig) => new HaproxyRuntime(proxy, {localAddress: ctx.cluster.sourceAddress})

function serverIn(servers: BackendServer[], name: string, where: string): BackendServer {
  const server = servers.find((s) => s.name === name)
  if (!server) throw new Error(`${where}: has no server ${name}`)
  return server
}

/** The dead master out of the writer backend: maint (no new connection), then its sessions through the proxy shut. */
export const routeDrain: StepHandler<Drain> = {
  async check(step, ctx) {
    const proxy = proxyOf(ctx, step.params.proxy)
    const servers = await runtime(ctx, proxy).showServersState(step.params.backend)
    const server = serverIn(servers, step.params.backendServer, `proxy ${proxy.name} backend ${step.params.backend}`)
    return server.maint ? {done: true, reason: `${step.params.backend}/${server.name} is already in maint on proxy ${proxy.name}`} : {done: false}
  },
  async act(step, ctx) {
    const api = runtime(ctx, proxyOf(ctx, step.params.proxy))
    await api.setServerState(step.params.backend, step.params.backendServer, 'maint')
    await api.shutdownSessions(step.params.backend, step.params.backendServer)
    return undefined
  },
  async verify(step, ctx) {
    const proxy = proxyOf(ctx, step.params.proxy)
    const server = serverIn(await runtime(ctx, proxy).showServersState(step.params.backend), step.params.backendServer, `proxy ${proxy.name} backend ${step.params.backend}`)
    if (!server.maint) throw new Error(`proxy ${proxy.name}: ${step.params.backend}/${server.name} is not in maint after "set server ... state maint"`)
  },
}

/** The new master's @@server_id, and the one a new connection through the proxy's frontend reaches. */
async function serverIds(step: Writer, ctx: StepContext, proxy: ProxyConfig): Promise<{master: number; through: number}> {
  const master = Number((await (await ctx.sql(step.server)).queryOne('SELECT @@server_id AS id'))?.id)
  const endpoint = {name: `proxy ${proxy.name} frontend`, host: proxy.frontend.host, port: proxy.frontend.port, user: proxy.verifyUser, password: proxy.verifyPassword, localAddress: ctx.cluster.sourceAddress}
  const through = Number(await withConnection(endpoint, proxy.timeoutMs, async (conn) => (await conn.queryOne('SELECT @@server_id AS id'))?.id))
  return {master, through}
}

/** Only the new master enabled in the writer backend (the others in maint first, so never two writers), verified through the frontend. */
export const routeWriter: StepHandler<Writer> = {
  async check(step, ctx) {
    const proxy = proxyOf(ctx, step.params.proxy)
    const servers = await runtime(ctx, proxy).showServersState(step.params.backend)
    const enabled = servers.filter((s) => s.enabled).map((s) => s.name)
    if (enabled.length !== 1 || enabled[0] !== step.params.writer) return {done: false}
    const ids = await serverIds(step, ctx, proxy)
    return ids.master === ids.through ? {done: true, reason: `proxy ${proxy.name} already sends writes to ${step.server} (${step.params.backend}/${step.params.writer}) and only there`} : {done: false}
  },
  async act(step, ctx) {
    const api = runtime(ctx, proxyOf(ctx, step.params.proxy))
    const servers = await api.showServersState(step.params.backend)
    for (const other of step.params.others) {
      // Already in maint (drained): nothing to do, and the new master is put in a moment sooner.
      if (servers.find((s) => s.name === other)?.maint) continue
      await api.setServerState(step.params.backend, other, 'maint')
      // Connections a drain could not cut (the proxy was away then) go too: the old master never takes a write through the proxy.
      await api.shutdownSessions(step.params.backend, other)
    }
    await api.setServerState(step.params.backend, step.params.writer, 'ready')
    return undefined
  },
  async verify(step, ctx) {
    const proxy = proxyOf(ctx, step.params.proxy)
    const servers = await runtime(ctx, proxy).showServersState(step.params.backend)
    const enabled = servers.filter((s) => s.enabled).map((s) => s.name)
    if (enabled.length !== 1 || enabled[0] !== step.params.writer)
      throw new Error(`proxy ${proxy.name}: backend ${step.params.backend} enables ${enabled.join(', ') || 'no server'}, not ${step.params.writer} alone`)
    const ids = await serverIds(step, ctx, proxy)
    if (ids.master !== ids.through)
      throw new Error(`proxy ${proxy.name}: a new connection to ${proxy.frontend.host}:${proxy.frontend.port} reaches server_id ${ids.through}, not ${step.server}'s ${ids.master}`)
  },
}
