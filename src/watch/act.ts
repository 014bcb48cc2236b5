import {applyPlan, underLock} from '../apply/executor.js'
import type {ApplyReport} from '../apply/events.js'
import type {Coordinator} from '../coord/coordinator.js'
import {defaultPlanPath, writePlan} from '../plan/plan-file.js'
import type {Plan} from '../plan/types.js'
import {failoverBlocked, startedRecord, type FailoverRecord, type WatchState} from '../store/cluster-state.js'
import {readWatchState} from '../store/files.js'
import type {ClusterLock} from '../store/store.js'
import type {Snapshot} from '../inspect/types.js'
import {oneLine} from '../util/errors.js'
import {FencedError} from '../util/fenced.js'
import type {ClusterContext} from './context.js'
import {planFailover, type DeathFinding} from './plan-failover.js'

/** What the act phase needs of the loop and the follow phase: the failover left unfinished, what comes after an apply. */
export interface AfterApply {
  /** Resolves once a look at the other servers under way has finished (it may fence a server). */
  settle(): Promise<void>
  finishUnfinished(): Promise<void>
  finished(plan: Plan, planFile: string, report: ApplyReport, started: number, held: ClusterLock, record: FailoverRecord): Promise<void>
}

/**
 * Why no automatic failover may start now, or null: with several managers, only the cluster's leader with a
 * valid etcd lease (nobody may start one another manager could start too); and anti-flapping (a failover within
 * last_failover_minute not yet acknowledged).
 */
export function whyNoFailover(cluster: string, masterName: string, coord: Pick<Coordinator, 'leads'> & {session: {problem: string | null}} | undefined, state: WatchState | null, windowMinutes: number, now = Date.now()): string | null {
  if (coord && !coord.leads(cluster)) return `${masterName} is dead but no automatic failover: ${coord.session.problem ?? 'this manager no longer leads the cluster'}; it starts once etcd answers again`
  const blocked = state ? failoverBlocked(state, windowMinutes, now) : null
  return blocked ? `${masterName} is dead but no automatic failover: ${blocked.replace('<name>', cluster)}` : null
}

/** Apply through the same executor as the command; with etcd, journaled there, under the lock's guard. */
export function applyUnderLock(ctx: ClusterContext, plan: Plan, planFile: string, held: ClusterLock, snapshot?: Snapshot): Promise<ApplyReport> {
  return applyPlan({
    planFile,
    plan,
    cluster: ctx.cluster,
    ...(snapshot ? {snapshot} : {}),
    sshPool: ctx.pool,
    ...underLock(ctx.store, held, plan, planFile),
    listener: (event) => {
      if (event.kind === 'end' || event.kind === 'skip' || event.kind === 'fail') ctx.say(`step ${event.kind}`, `${event.step.id}${event.kind === 'skip' ? `: ${event.reason}` : event.kind === 'fail' ? `: ${event.message}` : ''}`)
    },
  })
}

/**
 * The act phase: a master judged dead is failed over under the cluster lock (no third code path: the same plan
 * and apply as the commands), unless another manager leads the cluster, a failover is left unfinished (finished
 * instead, never planned over) or anti-flapping blocks it.
 */
export class Act {
  readonly #ctx: ClusterContext
  readonly #after: AfterApply

  constructor(ctx: ClusterContext, after: AfterApply) {
    this.#ctx = ctx
    this.#after = after
  }

  #blocked(message: string): void {
    // Said once per outage, not at every ping.
    if (this.#ctx.lastReport !== 'blocked') this.#ctx.say('blocked', message)
    this.#ctx.lastReport = 'blocked'
  }

  async failover(finding: DeathFinding): Promise<void> {
    const ctx = this.#ctx
    const {cluster, options} = ctx
    // A fencing look under way finishes (bounded by the monitor timeouts) before the topology changes.
    await this.#after.settle()
    const coord = options.coord
    // etcd lost: nobody may start a failover that another manager could start too.
    const notLeading = whyNoFailover(cluster.name, finding.dead.name, coord, null, cluster.monitor.lastFailoverMinute)
    if (notLeading) return this.#blocked(notLeading)
    // A failover left unfinished (by another manager, or by this host's watch before a restart) is finished,
    // never planned over: a new plan would ignore what it already changed (a new master detached, not yet writable).
    const unfinished = await ctx.store.failoverRecord()
    if (unfinished && !unfinished.finished) return await this.#after.finishUnfinished()
    await ctx.store.refreshLocalCopy()
    const blocked = whyNoFailover(cluster.name, finding.dead.name, undefined, readWatchState(options.plansDir, cluster.name), cluster.monitor.lastFailoverMinute)
    if (blocked) return this.#blocked(blocked)
    let held: ClusterLock
    try {
      held = await ctx.lock(`mha watch (${coord ? coord.settings.id : `pid ${process.pid}`})`)
    } catch (error) {
      ctx.say('locked', oneLine(error))
      return
    }
    ctx.failingOver = true
    const started = Date.now()
    try {
      ctx.say('failover', `starting: ${finding.reason}`)
      const {plan, snapshot} = await planFailover(cluster, finding, () => ctx.outOfService(), ctx.pool.run)
      if (plan.kind === 'noop') {
        ctx.say('failover', 'the master answers again; nothing to do')
        return
      }
      const planFile = defaultPlanPath(plan, options.plansDir)
      writePlan(plan, planFile)
      ctx.say('plan', `${plan.decision.summary}; data loss: ${plan.decision.dataLoss.statement}`, {plan: planFile})
      const record = startedRecord(plan, planFile, ctx.actor)
      // Before the first effect the failover is recorded (in etcd with several managers): whoever watches next finishes it.
      await ctx.store.writeFailoverRecord(held, record)
      // Taken a moment ago: apply does not inspect again (and wait again for the dead master's timeouts).
      const report = await applyUnderLock(ctx, plan, planFile, held, snapshot)
      await this.#after.finished(plan, planFile, report, started, held, record)
    } catch (error) {
      if (!(error instanceof FencedError)) throw error
      ctx.say('fenced', oneLine(error))
    } finally {
      ctx.failingOver = false
      await held.release()
    }
  }
}
