import {compareCoordinates, formatCoordinates} from '../binlog/coordinates.js'
import {compareMariadbPositions, mysqlGtidIsSubset} from '../gtid/index.js'
import type {Step} from '../plan/types.js'
import {isRead} from '../plan/switchover.js'
import {binaryLogPosition, clientThreads, isCoordinates, readOnlyState, replicaStatus} from './common.js'
import type {StepContext, StepHandler} from './types.js'

type Of<T extends Step['type']> = Extract<Step, {type: T}>

/** The switchover's preconditions, live, right before the first effect. */
export const checkSwitchover: StepHandler<Of<'check_switchover'>> = {
  check: () => Promise.resolve({done: false}),
  act: () => Promise.resolve(undefined),
  async verify(step, ctx) {
    const problems: string[] = []
    for (const name of ctx.plan.steps.filter((s) => s.type === 'wait_caught_up').map((s) => s.server)) {
      const s = await replicaStatus(ctx, name)
      if (!s || s.ioThread !== 'running' || s.sqlThread !== 'running') problems.push(`${name}'s replication is not running`)
      else if (name === step.params.target && (s.secondsBehind === null || s.secondsBehind > step.params.maxLagSeconds)) problems.push(`${name} lags ${s.secondsBehind ?? '?'} s (limit ${step.params.maxLagSeconds} s)`)
    }
    for (const t of await clientThreads(await ctx.sql(step.server)))
      if (t.command === 'Query' && t.seconds >= step.params.runningUpdatesLimit && !isRead(t.statement)) problems.push(`${step.server} has an update running for ${t.seconds} s (thread ${t.id})`)
    if (problems.length > 0) throw new Error(`switchover refused: ${problems.join('; ')}; nothing was changed`)
  },
}

/** The old master stops taking writes: read_only (super_read_only on MySQL), then remaining clients are killed. */
export const blockWrites: StepHandler<Of<'block_writes'>> = {
  async check(step, ctx) {
    const state = await readOnlyState(ctx, step.server)
    const blocked = state.readOnly && state.superReadOnly !== false
    // Blocked already: nothing is written any more, so the position read now is the final one.
    return blocked ? {done: true, reason: `${step.server} already refuses writes`, outputs: await binaryLogPosition(ctx, step.server)} : {done: false}
  },
  async act(step, ctx) {
    const conn = await ctx.sql(step.server)
    for (const sql of (await ctx.dialect(step.server)).setReadOnly(true)) await conn.execute(sql)
    // Accounts with READ ONLY ADMIN or SUPER could still write: their connections go too.
    for (const t of await clientThreads(await ctx.sql(step.server))) await conn.execute(`KILL ${t.id}`).catch(() => undefined)
    return await binaryLogPosition(ctx, step.server)
  },
  async verify(step, ctx, outputs) {
    if (!(await readOnlyState(ctx, step.server)).readOnly) throw new Error(`${step.server} still takes writes`)
    if (!isCoordinates(outputs.binlog)) throw new Error(`${step.server}: no final binlog position recorded`)
  },
}

async function caughtUp(step: Of<'wait_caught_up'>, ctx: StepContext): Promise<boolean> {
  const target = ctx.output(step.params.position.fromStep, step.params.position.output)
  if (step.params.gtid) {
    const dialect = await ctx.dialect(step.server)
    const state = dialect.parseGtidState((await (await ctx.sql(step.server)).queryOne(dialect.gtidStateQuery))!)
    return dialect.version.flavor === 'mariadb' ? ['equal', 'ahead'].includes(compareMariadbPositions(state.currentPos, String(target))) : mysqlGtidIsSubset(String(target), state.binlogPos)
  }
  const status = await replicaStatus(ctx, step.server)
  return status !== null && isCoordinates(target) && compareCoordinates(status.executed, target) >= 0
}

/** A replica executes everything the blocked master wrote, within the wait timeout. */
export const waitCaughtUp: StepHandler<Of<'wait_caught_up'>> = {
  async check(step, ctx) {
    return (await caughtUp(step, ctx)) ? {done: true, reason: `${step.server} has everything ${step.params.source} wrote`} : {done: false}
  },
  async act(step, ctx) {
    const dialect = await ctx.dialect(step.server)
    const target = ctx.output(step.params.position.fromStep, step.params.position.output)
    const seconds = Math.ceil(ctx.timeoutMs / 1000)
    const sql = step.params.gtid ? dialect.waitForGtid(String(target), seconds) : isCoordinates(target) ? dialect.waitForCoordinates(target, seconds) : null
    if (!sql) throw new Error(`no position from ${step.params.position.fromStep}`)
    const row = await (await ctx.sql(step.server)).queryOne(sql, [], ctx.timeoutMs + 5000)
    const result = row?.result === null || row?.result === undefined ? null : Number(row.result)
    const ok = step.params.gtid ? result === 0 : result !== null && result >= 0
    if (!ok) throw new Error(`${step.server} did not reach ${isCoordinates(target) ? formatCoordinates(target) : String(target)} within ${seconds} s`)
    return undefined
  },
  async verify(step, ctx) {
    if (!(await caughtUp(step, ctx))) throw new Error(`${step.server} still lacks what ${step.params.source} wrote`)
  },
}
