import {compareMariadbPositions, mysqlGtidIsSubset} from '../gtid/index.js'
import type {Step} from '../plan/types.js'
import {replicaStatus, waitUntil, waitWhileProgressing} from './common.js'
import type {StepContext, StepHandler} from './types.js'

type CatchUp = Extract<Step, {type: 'catch_up_from'}>

async function gtidOf(ctx: StepContext, server: string) {
  const dialect = await ctx.dialect(server)
  return dialect.parseGtidState((await (await ctx.sql(server)).queryOne(dialect.gtidStateQuery))!)
}

async function hasAll(ctx: StepContext, step: CatchUp): Promise<boolean> {
  const [target, source] = await Promise.all([gtidOf(ctx, step.server), gtidOf(ctx, step.params.source)])
  const flavor = (await ctx.dialect(step.server)).version.flavor
  // What the source has executed, logged or not: a source with log_slave_updates off cannot serve it, and the
  // wait then fails for lack of progress instead of passing on a binlog that lacks the replicated part.
  if (flavor === 'mariadb') return ['equal', 'ahead'].includes(compareMariadbPositions(target.currentPos, source.currentPos))
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
    const sourceState = await gtidOf(ctx, source.name)
    const sourceGtid = (await ctx.dialect(source.name)).version.flavor === 'mariadb' ? sourceState.currentPos : sourceState.binlogPos
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
    // Bounded by lack of progress: a large backlog that keeps arriving is waited for.
    await waitWhileProgressing(`${step.server} to reach ${step.params.source}'s GTID position ${sourceGtid}`, ctx.timeoutMs, async () => {
      const row = await conn.queryOne(dialect.waitForGtid(sourceGtid, 1), [], 10_000)
      const status = await replicaStatus(ctx, step.server)
      if (status?.lastSqlErrno) throw new Error(`${step.server}: SQL thread error ${status.lastSqlErrno}: ${status.lastSqlError}`)
      return {done: Number(row?.result) === 0, progress: status ? `${status.read.file}:${status.read.pos}/${status.executed.file}:${status.executed.pos}` : ''}
    })
    await conn.execute(dialect.stopReplica)
    await waitUntil(`${step.server}'s replication to stop`, ctx.timeoutMs, async () => (await replicaStatus(ctx, step.server))?.sqlThread !== 'running')
    return undefined
  },
  async verify(step, ctx) {
    if (!(await hasAll(ctx, step))) throw new Error(`${step.server} still lacks transactions ${step.params.source} has`)
  },
}
