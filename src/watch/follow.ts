import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, statSync, writeFileSync, type Stats} from 'node:fs'
import {basename, dirname, join, resolve} from 'node:path'
import {applyPlan} from '../apply/executor.js'
import type {ApplyReport} from '../apply/events.js'
import type {ServerConfig} from '../config/types.js'
import {inspectCluster} from '../inspect/inspect.js'
import {defaultPlanPath, planDigest, readPlan, toolVersion, writePlan} from '../plan/plan-file.js'
import {planRejoin} from '../plan/rejoin.js'
import {rejoinInput} from '../plan/rejoin-inputs.js'
import type {Plan} from '../plan/types.js'
import {afterFailover, endedRecord, recordedKind, withFenced, type FailoverRecord} from '../store/cluster-state.js'
import {failoverRecordFile, readWatchState} from '../store/files.js'
import {recordManualApply} from '../store/manual-apply.js'
import type {ClusterLock} from '../store/store.js'
import {oneLine} from '../util/errors.js'
import {FencedError} from '../util/fenced.js'
import {applyUnderLock} from './act.js'
import type {ClusterContext} from './context.js'
import type {ServerLook} from './monitor.js'
import {fenceReturningMasters} from './returning-master.js'

/** How often a cluster's failover record is looked at while its master answers as writable and no record is unfinished (alone, without etcd). */
const recordLookMs = 5000

/** How often --auto-rejoin looks whether a server taken out by a failover answers again. */
const rejoinLookEveryMs = 5_000

/** What the follow phase needs of the loop. */
export interface FollowHooks {
  /** The master watched now (it changes under a look that takes a while). */
  currentMaster(): ServerConfig | undefined
  /** A failover or switchover was applied to its end: the topology is looked at again. */
  applied(plan: Plan, report: ApplyReport, durationMs: number): void
}

/** The log event that ends an apply: a switchover this watch finished for a stopped mha apply is said as what it is. */
export function outcomeOf(plan: Pick<Plan, 'kind'>, report: Pick<ApplyReport, 'status' | 'message'>): string {
  const rolledBack = report.status === 'failed' && report.message.includes('; rolled back (')
  return `${plan.kind === 'switchover' ? 'switchover' : 'failover'} ${report.status === 'applied' ? 'done' : report.status === 'partial' ? 'done, replicas left out' : rolledBack ? 'rolled back' : 'failed'}`
}

/** Git's author for a repository with none configured. */
const watchIdentity = ['-c', 'user.name=mha watch', '-c', 'user.email=mha-watch@localhost']

/**
 * The follow phase: what comes after a failover (its report archived, the state and record updated, git), a
 * failover or switchover left unfinished by another process (finished from its journal), a returning old master
 * (fenced), and a server taken out by a failover that answers again (--auto-rejoin).
 */
export class Follow {
  readonly #ctx: ClusterContext
  readonly #hooks: FollowHooks
  #lastUnfinishedProblem = ''
  /** With etcd: another process's record is unfinished (told by the watch on the records), until found finished. */
  #unfinishedNoted = false
  /** Alone: the record file as last read (its size and time), and whether it was unfinished. */
  #recordLook: {key: string; unfinished: boolean} | null = null
  /** When the record file was last looked at (ms), alone (without etcd). */
  #recordStatAt = Number.NEGATIVE_INFINITY
  #lastFenceProblem = ''
  #lastRejoinLook = 0
  #lastRejoinProblem = ''
  #stopping = false
  /** Where the failover record is beside the plans (its path made once: it is looked at every few seconds or ticks). */
  readonly #recordFile: string

  constructor(ctx: ClusterContext, hooks: FollowHooks) {
    this.#ctx = ctx
    this.#hooks = hooks
    this.#recordFile = failoverRecordFile(ctx.options.plansDir, ctx.cluster.name)
  }

  /** No new fence or rejoin starts (the watch is stopping). */
  stop(): void {
    this.#stopping = true
  }

  /** After apply: the report beside the plan, the state (anti-flapping, out of service), the log line, git. */
  async finished(plan: Plan, planFile: string, report: ApplyReport, started: number, held: ClusterLock, record: FailoverRecord): Promise<void> {
    const ctx = this.#ctx
    const reportFile = planFile.replace(/\.json$/, '.report.json')
    writeFileSync(reportFile, JSON.stringify(report, null, 2) + '\n')
    try {
      held.guard()
    } catch (error) {
      // Another manager holds the cluster now and finishes the failover: nothing here is recorded as done.
      ctx.say('fenced', `${report.message}; ${oneLine(error)}`, {plan: planFile})
      return
    }
    // One compare-and-swap of the state as the store holds it now (an ack or a fence record meanwhile is kept).
    await ctx.store.updateState(afterFailover({at: new Date(), planFile, reportFile, plan, status: report.status, by: 'watch'}), held)
    // A failed apply is finished too: what to do next is in its report, and a new failover may be planned.
    await ctx.store.writeFailoverRecord(held, endedRecord(record, ctx.actor, report))
    // Nothing awaited from here on: the loop's view (no master, no failure) and the log line change together.
    this.#hooks.applied(plan, report, Date.now() - started)
    ctx.say(outcomeOf(plan, report), report.message + (report.dataLoss ? `; data loss: ${report.dataLoss}` : '') + (report.nextAction ? `; next: ${report.nextAction}` : ''), {plan: planFile, report: reportFile})
    if (ctx.options.git) this.#commit(planFile, reportFile, `mha watch: ${plan.cluster} ${report.status}: ${plan.decision.summary}`)
  }

  #commit(planFile: string, reportFile: string, message: string): void {
    // The repository is the one holding the plans folder, whatever watch's working directory is.
    const files = [resolve(planFile), resolve(reportFile)]
    const git = (args: string[]) => execFileSync('git', args, {cwd: dirname(files[0]!), stdio: 'pipe'}).toString().trim()
    try {
      let identity: string[] = []
      try {
        git(['config', 'user.email'])
      } catch {
        identity = watchIdentity
      }
      git(['add', '--', ...files])
      git([...identity, 'commit', '-q', '-m', message, '--', ...files])
      this.#ctx.say('git', `committed ${planFile} and its report`)
    } catch (error) {
      this.#ctx.say('git', `could not commit: ${oneLine(error)}`)
    }
  }

  /**
   * Whether a record may be unfinished: with etcd, as told by the watch on the records (and looked at when this
   * manager became leader); alone, the record file read again whenever it changed (one stat every recordLookMs
   * otherwise).
   */
  async unfinishedPending(everyTick: boolean, nowMs = Date.now()): Promise<boolean> {
    const ctx = this.#ctx
    if (ctx.options.coord) return this.#unfinishedNoted
    // A thousand healthy clusters would stat a thousand times a second: while the master answers as writable, a
    // record not unfinished at the last look is looked at again after recordLookMs (a failover is never planned
    // over one anyway: the act phase reads it again under the cluster's lock). Otherwise (`everyTick`: a master
    // left read_only by a killed switchover, one that fails), and while one is unfinished, at each tick.
    if (!everyTick && this.#recordLook?.unfinished !== true && nowMs - this.#recordStatAt < recordLookMs) return false
    this.#recordStatAt = nowMs
    let stat: Stats | undefined
    try {
      // No record is the common case: said by the stat itself, not by an error (a thousand clusters stat every second).
      stat = statSync(this.#recordFile, {throwIfNoEntry: false})
    } catch {
      return false
    }
    if (!stat) {
      this.#recordLook = null
      return false
    }
    const key = `${stat.mtimeMs}:${stat.size}:${stat.ino}`
    if (this.#recordLook?.key !== key) this.#recordLook = {key, unfinished: (await ctx.store.failoverRecord())?.finished === false}
    return this.#recordLook.unfinished
  }

  /**
   * A failover or switchover started and not finished (the previous leader died or lost etcd; this host's watch
   * was killed and started again; an mha apply was killed or fenced): finished from its journal once its lock is
   * free, never planned over. A switchover stopped before its promotion may then be rolled back by its own plan.
   */
  async finishUnfinished(): Promise<void> {
    const ctx = this.#ctx
    const record = await ctx.store.failoverRecord()
    if (!record || record.finished) {
      this.#unfinishedNoted = false
      return
    }
    // Looked at again at each tick until it is found finished (a leader that found it under way when it took over
    // hears of no change to it while its apply runs on, and must try again once that apply is gone).
    this.#unfinishedNoted = true
    const coord = ctx.options.coord
    const kind = recordedKind(record)
    let held: ClusterLock
    try {
      held = await ctx.lock(`mha watch finishing ${record.planName} (${coord ? coord.settings.id : `pid ${process.pid}`})`)
    } catch (error) {
      // Its own process may still be applying it: said once, looked at again at each tick.
      const message = `the ${kind} ${record.by} started at ${record.startedAt} (${record.planName}) is unfinished; it is finished here once its lock is free: ${oneLine(error)}`
      if (message !== this.#lastUnfinishedProblem) ctx.say('locked', message)
      this.#lastUnfinishedProblem = message
      return
    }
    ctx.failingOver = true
    const started = Date.now()
    try {
      ctx.say(coord ? 'takeover' : 'resume', `finishing the ${kind} ${record.by} started at ${record.startedAt} (${record.planName}) from its journal${coord ? ' in etcd' : ''}`)
      // The plan is data: (re)written to this manager's plans folder and read back through the same validation as any plan file.
      const planFile = join(ctx.options.plansDir, ctx.cluster.name, basename(record.planName))
      if (!existsSync(planFile)) {
        mkdirSync(dirname(planFile), {recursive: true})
        writeFileSync(planFile, JSON.stringify(record.plan, null, 2) + '\n')
      }
      const plan = readPlan(planFile)
      if (planDigest(plan) !== record.digest) throw new Error(`${planFile} does not match the digest ${record.digest} of the failover under way; finish it by hand`)
      const report = await applyUnderLock(ctx, plan, planFile, held)
      await this.finished(plan, planFile, report, started, held, record)
    } catch (error) {
      if (error instanceof FencedError) ctx.say('fenced', oneLine(error))
      else {
        // Said once per cause, not at every try.
        const message = `cannot finish the ${kind} ${record.by} started (${record.planName}): ${oneLine(error)}; no other failover of ${ctx.cluster.name} starts until it is finished (tried again at each look, or by hand with "mha apply" of that plan${coord ? ' and --etcd' : ''})`
        if (message !== this.#lastUnfinishedProblem) ctx.say('error', message)
        this.#lastUnfinishedProblem = message
      }
    } finally {
      ctx.failingOver = false
      await held.release()
    }
  }

  /** Told of a failover record another manager wrote: followers say that the leader acted. */
  leaderActed(record: FailoverRecord): void {
    const ctx = this.#ctx
    const me = ctx.options.coord?.settings.id
    // Another process's record (an mha apply, a leader before this one) unfinished: the next tick finishes it once its lock is free.
    if (!record.finished && record.by !== me) this.#unfinishedNoted = true
    if (record.finished) this.#unfinishedNoted = false
    const kind = recordedKind(record)
    if (record.finished && record.finishedBy !== me) ctx.say('leader acted', `${record.finishedBy ?? record.by} finished a ${kind} of ${ctx.cluster.name} (${record.planName}): ${record.status ?? ''}: ${record.message ?? ''}`)
    else if (!record.finished && record.by !== me) ctx.say('leader acting', `${record.by} started a ${kind} of ${ctx.cluster.name} (${record.planName})`)
  }

  /**
   * An old master restarted after a failover comes back writable from its my.cnf: set it read only at once. The
   * monitor's light looks only trigger (a server that answers, replicates from nobody and is writable); the decision
   * is taken again under the cluster lock on a fresh look at every server.
   */
  async fenceReturning(master: ServerConfig, looks: readonly ServerLook[]): Promise<void> {
    const ctx = this.#ctx
    const suspects = looks.filter((l) => l.view !== null && l.view.source === null && l.view.writable).map((l) => l.server.name)
    if (suspects.length === 0 || this.#hooks.currentMaster() !== master || this.#stopping) return
    // The state's record of the last failover names the server `master` replaced: with no replica left to
    // tell (a two-server cluster), that one coming back writable is the returning master.
    const outcome = await fenceReturningMasters(ctx.cluster, master, async (purpose) => (await ctx.lock(purpose)).release, ctx.replacedBy(master))
    for (const f of outcome.fenced) {
      ctx.say('fenced returning master', `${f.reason}: set it read only; rejoin it as a replica of ${f.master} or rebuild it`, {server: f.server})
      // With etcd the state is shared: the next leader knows what this one fenced.
      await ctx.store.updateState(withFenced(f)).catch((error: unknown) => ctx.say(ctx.options.coord ? 'etcd' : 'error', `could not record the fence of ${f.server} in ${ctx.store.where}: ${oneLine(error)}`))
    }
    // A problem that lasts is said once, not at every round.
    const problem = [...outcome.failed.map((f) => `could not set ${f.server} read only: ${f.message}; trying again`), ...(outcome.skipped ? [`${suspects.join(', ')} writable and replicating from nobody, left alone: ${outcome.skipped}`] : [])].join('; ')
    if (problem && problem !== this.#lastFenceProblem) ctx.say(outcome.failed.length > 0 ? 'fence failed' : 'not fenced', problem)
    this.#lastFenceProblem = problem
  }

  /**
   * --auto-rejoin: a server a failover took out that answers again is planned back as a replica, the same
   * plan as "mha plan --rejoin", archived and applied. One with transactions the master lacks is never
   * re-pointed (that needs a person: --flashback or a rebuild); that is said once.
   */
  async rejoinReturned(): Promise<void> {
    const ctx = this.#ctx
    const {cluster, options} = ctx
    if (Date.now() - this.#lastRejoinLook < rejoinLookEveryMs) return
    this.#lastRejoinLook = Date.now()
    const out = ctx.outOfService()
    if (out.length === 0) return
    // The topology only: the replication login is tried by the inspection a failover makes.
    const snapshot = await inspectCluster(cluster, {relayLookups: false, ssh: false, replLogin: false})
    for (const name of out) {
      if (!snapshot.servers.find((s) => s.name === name)?.sql.reachable) continue
      let held: ClusterLock | undefined
      try {
        held = await ctx.lock(`mha watch --auto-rejoin (pid ${process.pid})`)
        const full = await inspectCluster(cluster, {relayLookups: false})
        const plan = planRejoin(cluster, full, {tool: toolVersion(), createdAt: new Date().toISOString(), configFile: cluster.file}, await rejoinInput(cluster, full, options.plansDir, name, false))
        const planFile = defaultPlanPath(plan, options.plansDir)
        writePlan(plan, planFile)
        ctx.say('rejoin', `${name} answers again: ${plan.decision.summary}`, {plan: planFile})
        const roleState = {outOfService: ctx.outOfService(), lastDeadMaster: readWatchState(options.plansDir, cluster.name).lastFailover?.deadMaster ?? null}
        const report = await applyPlan({planFile, plan, cluster, roleState, listener: () => undefined, store: ctx.store, lock: held, guard: held.guard})
        await recordManualApply(ctx.store, planFile, plan, report, {lock: held})
        ctx.say(report.status === 'applied' ? 'rejoined' : 'rejoin failed', report.message, {plan: planFile})
      } catch (error) {
        const message = `${name} answers again but is not rejoined automatically: ${oneLine(error)}`
        if (message !== this.#lastRejoinProblem) ctx.say('rejoin refused', message)
        this.#lastRejoinProblem = message
      } finally {
        await held?.release()
      }
    }
  }
}
