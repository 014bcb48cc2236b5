import {compareMariadbPositions, mysqlGtidIsSubset} from '../gtid/index.js'
import type {Step} from '../plan/types.js'
import {replicaStatus, waitUntil} from './common.js'
import type {StepContext, StepHandler} from './types.js'

type CatchUp = Extract<Step, {type: 'catch_up_from'}>

async function gtidOf(ctx: StepContext, server: string) {
  const dialect = await ctx.dialect(server)
  return dialect.parseGtidState((await (await ctx.sql(server)).queryOne(dialect.gtidStateQuery))!)
}

async function hasAll(ctx: StepContext, step: CatchUp): Promise<boolean> {
  const [target, source] = await Promise.all([gtidOf(ctx, step.server), gtidOf(ctx, step.params.source)])
  const flavor = (await ctx.dialect(step.server)).version.flavor
  if (flavor === 'mariadb') return ['equal', 'ahead'].includes(compareMariadbPositions(target.currentPos, source.binlogPos))
  return mysqlGtidIsSubset(source.binlogPos, target.binlogPos)
}

/** GTID mode: the new master replicates from the most advanced replica until it has everything that one has. */
export const catchUpFrom: StepHandler<CatchUp> = {
  async check(step, ctx) {
    return (await hasAll(ctx, step)) ? {done: true, reason: `${step.server} already has every transaction ${step.params.source} has`} : {done: false}
  },
  async act(step, ctx) {
    const dialect = await ctx.dialect(step.server)
    const conn = await ctx.sql(step.server)
    const source = ctx.server(step.params.source)
    const sourceGtid = (await gtidOf(ctx, source.name)).binlogPos
    if (await replicaStatus(ctx, step.server)) await conn.execute(dialect.stopReplica)
    const change = dialect.changeSource({
      host: source.hostname,
      port: source.port,
      user: ctx.cluster.replUser,
      ...(ctx.cluster.replPassword ? {password: ctx.cluster.replPassword.reveal()} : {}),
      gtid: true,
    })
    await conn.execute(change.sql)
    await conn.execute(dialect.startReplica)
    const seconds = Math.ceil(ctx.timeoutMs / 1000)
    const row = await conn.queryOne(dialect.waitForGtid(sourceGtid, seconds), [], ctx.timeoutMs + 5000)
    if (Number(row?.result) !== 0) throw new Error(`${step.server} did not reach ${step.params.source}'s GTID position ${sourceGtid} within ${seconds} s`)
    await conn.execute(dialect.stopReplica)
    await waitUntil(`${step.server}'s replication to stop`, ctx.timeoutMs, async () => (await replicaStatus(ctx, step.server))?.sqlThread !== 'running')
    return undefined
  },
  async verify(step, ctx) {
    if (!(await hasAll(ctx, step))) throw new Error(`${step.server} still lacks transactions ${step.params.source} has`)
  },
}
