import {endpointOf, quickAnswerMs} from '../inspect/inspect.js'
import {ServerConnection, SqlError} from '../inspect/mysql.js'
import {hookAccepted, passwordsFor, runHook} from '../hooks/run.js'
import type {Step} from '../plan/types.js'
import {clientThreads, readOnlyState} from './common.js'
import type {StepContext, StepHandler} from './types.js'

type Fence = Extract<Step, {type: 'fence_master'}>

/**
 * A short connect: a dead master must not hold the failover up for the usual timeout. It was just found
 * silent; a master that still answers SQL does within a second (as watch's retried pings assume).
 */
async function reach(step: Fence, ctx: StepContext): Promise<ServerConnection | null> {
  try {
    return await ServerConnection.open(endpointOf(ctx.cluster, ctx.server(step.server)), quickAnswerMs(ctx.cluster))
  } catch (error) {
    if (error instanceof SqlError && (error.kind === 'unreachable' || error.kind === 'timeout')) return null
    throw error
  }
}

/** The fencing hooks come from the cluster file (apply has checked that the plan shows the same). */
const hooksOf = (ctx: StepContext) => ({shutdown: ctx.cluster.hooks.shutdown, ip: ctx.cluster.hooks.masterIpFailover})

export const fenceMaster: StepHandler<Fence> = {
  async check(step, ctx) {
    if (hooksOf(ctx).shutdown || hooksOf(ctx).ip) return {done: false}
    // mha watch's last ping, silent less than one short connect ago, is that look: waiting for another would only
    // add its timeout to the failover (a host gone without a reset).
    const silent = ctx.silentAtPlanning(step.server)
    if (silent && silent.ageMs <= quickAnswerMs(ctx.cluster)) return {done: true, reason: `${step.server} did not answer SQL to mha watch ${silent.ageMs} ms ago (${silent.message}), so it takes no writes`}
    const conn = await reach(step, ctx)
    if (!conn) return {done: true, reason: `${step.server} does not answer SQL, so it takes no writes`}
    try {
      const ro = (await conn.queryOne('SELECT @@global.read_only+0 AS ro'))?.ro
      const clients = await clientThreads(conn)
      return Number(ro) === 1 && clients.length === 0 ? {done: true, reason: `${step.server} is read_only with no client connections`} : {done: false}
    } finally {
      await conn.close()
    }
  },
  async act(step, ctx) {
    const server = ctx.server(step.server)
    // Hooks are told whether the host answers SSH (stopssh) or not (stop); without hooks, no need to ask.
    const hooks = hooksOf(ctx)
    const ssh =
      hooks.ip || hooks.shutdown
        ? await ctx.ssh(step.server).then(
            () => true,
            () => false,
          )
        : false
    const sshArgs = {...(server.sshPort !== 22 ? {orig_master_ssh_port: server.sshPort} : {})}
    if (hooks.ip) {
      // MHA phase 2: the writer address leaves the old master before anything else.
      const result = await runHook(
        hooks.ip,
        {command: ssh ? 'stopssh' : 'stop', ssh_user: server.sshUser, orig_master_host: server.hostname, orig_master_ip: server.ip, orig_master_port: server.port, ...sshArgs},
        ctx.timeoutMs,
        // MHA passes no password here; what the hook prints is still masked.
        passwordsFor(ctx.cluster, []),
      )
      if (!hookAccepted(result)) throw new Error(`master_ip_failover hook (--command=${ssh ? 'stopssh' : 'stop'}) exited ${result.code}: ${result.stderr.trim().split('\n')[0] ?? ''}`)
    }
    if (hooks.shutdown) {
      const result = await runHook(
        hooks.shutdown,
        {command: ssh ? 'stopssh' : 'stop', ssh_user: server.sshUser, host: server.hostname, ip: server.ip, port: server.port, ...(server.sshPort !== 22 ? {ssh_port: server.sshPort} : {})},
        ctx.timeoutMs,
        // MHA passes no password here; what the hook prints is still masked.
        passwordsFor(ctx.cluster, []),
      )
      if (!hookAccepted(result)) throw new Error(`shutdown hook exited ${result.code}: ${result.stderr.trim().split('\n')[0] ?? ''}`)
      ctx.note(`shutdown hook exited ${result.code} (${result.code === 0 ? 'powered off' : 'killed over SSH'})`)
      return undefined
    }
    const conn = await reach(step, ctx)
    if (!conn) return undefined
    try {
      const dialect = await ctx.dialect(step.server).catch(() => null)
      for (const sql of dialect?.setReadOnly(true) ?? ['SET GLOBAL read_only = ON']) await conn.execute(sql)
      for (const {id} of await clientThreads(conn)) await conn.execute(`KILL ${id}`).catch(() => undefined)
    } finally {
      await conn.close()
    }
    return undefined
  },
  async verify(step, ctx) {
    if (hooksOf(ctx).shutdown) return
    const conn = await reach(step, ctx)
    if (!conn) return
    await conn.close()
    if (!(await readOnlyState(ctx, step.server)).readOnly) throw new Error(`${step.server} answers SQL and is still writable`)
  },
}
