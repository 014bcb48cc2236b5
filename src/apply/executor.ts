import {mkdirSync} from 'node:fs'
import type {ClusterConfig} from '../config/types.js'
import {inspectCluster} from '../inspect/inspect.js'
import {factChanges} from '../plan/fingerprint.js'
import {planDigest} from '../plan/plan-file.js'
import {dialectFor} from '../dialect/index.js'
import {parseServerVersion} from '../dialect/version.js'
import {resumeChanges} from '../plan/resume.js'
import {liveProblems, planProblems, roleProblems, targetProblem, type RoleState} from '../plan/validate.js'
import type {ServerSnapshot, Snapshot} from '../inspect/types.js'
import {leftOutByPlan, observedFacts} from '../plan/planner.js'
import type {Plan, Step} from '../plan/types.js'
import {handlerFor} from '../steps/index.js'
import {repeatFailed, savesToRepeat, workFileName} from '../steps/work-files.js'
import {oneLine} from '../util/errors.js'
import {redact} from '../util/secret.js'
import {RunContext} from './context.js'
import type {ApplyListener, ApplyReport, StepStatus} from './events.js'
import {Journal, type JournalStore} from '../store/journal.js'
import {FileStore} from '../store/files.js'
import {plansDirOf} from '../store/manual-apply.js'
import type {ClusterLock, ClusterStore} from '../store/store.js'
import type {SshPool} from '../remote/session-pool.js'
import type {ServerConnection} from '../inspect/mysql.js'
import {FencedError} from '../util/fenced.js'
import {phase} from '../util/phases.js'

export interface ApplyOptions {
  planFile: string
  plan: Plan
  cluster: ClusterConfig
  listener: ApplyListener
  /** The digest a reviewer approved (mha apply --expect-digest): any other plan is refused. */
  expectDigest?: string
  /** A snapshot taken just now by the caller (mha watch plans and applies at once): not inspected again. */
  snapshot?: Snapshot
  /** SQL connections the caller opened a moment ago (mha switchover's inspection): used as the run's own, closed with them. */
  connections?: ReadonlyMap<string, ServerConnection>
  /** SSH sessions the caller keeps open (mha watch): used instead of new ones, and left open. */
  sshPool?: SshPool
  /** The cluster's store, where steps change its state (a server out of service); the files beside the plans when absent. */
  store?: ClusterStore
  /** The cluster lock the plan is applied under: state changes are written only while it is held. */
  lock?: ClusterLock
  /** Where the journal lives when not in the file beside the plan (etcd, shared by several managers). */
  journal?: JournalStore
  /** Throws when this process may no longer act (its etcd lease or lock is gone): checked before every effect. */
  guard?: () => void
  /** Work files kept beside the journal (etcd): restored before a resume, saved after each step. */
  artifacts?: {save: (dir: string) => Promise<void>; restore: (dir: string) => Promise<void>}
  /** Called once nothing refused the plan, before the journal's first line and the first step. */
  beforeFirstEffect?: () => Promise<void>
  /** How often a long step (a rebuild's copy) reports its progress; 10 s unless given. */
  progressIntervalMs?: number
  /** What the manager's state says of servers taken out by a failover: a rejoin puts back only such a server. */
  roleState?: RoleState | null
  /** The server the operator names at apply (mha apply --target): a rebuild or remove plan runs only on it. */
  target?: string
}

/**
 * A plan applied under the cluster lock: its journal, work files and state changes in the cluster's store, every
 * effect guarded by the lock. For the files store these are the journal and folder beside the plan, as without it.
 */
export function underLock(store: ClusterStore, lock: ClusterLock, plan: Plan, planFile: string): Pick<ApplyOptions, 'store' | 'lock' | 'guard' | 'journal' | 'artifacts'> {
  const digest = planDigest(plan)
  const work = store.workFiles(lock, digest)
  return {store, lock, guard: lock.guard, journal: store.journal(lock, digest, journalFileOf(planFile)), ...(work ? {artifacts: work} : {})}
}

/** The new master's coordinates recorded when it was detached, and how the old master would follow it from there. */
function promotionPoint(plan: Plan, cluster: ClusterConfig, detached: Record<string, unknown> | undefined): ApplyReport['newMaster'] {
  const name = plan.decision.newMaster
  const binlog = detached?.binlog as {file: string; pos: number} | undefined
  if (plan.kind !== 'failover' || !name || !binlog || typeof binlog.file !== 'string') return null
  const server = cluster.servers.find((s) => s.name === name)
  const oldVersion = plan.observed.servers.find((s) => s.name === plan.decision.deadMaster)?.version ?? plan.observed.servers.find((s) => s.name === name)?.version
  const repoint =
    server && oldVersion
      ? dialectFor(parseServerVersion(oldVersion)).changeSource({
          host: server.hostname,
          port: server.port,
          user: cluster.replUser,
          ...(cluster.replPassword ? {password: 'x'} : {}),
          ...(plan.decision.replicationMode === 'gtid' ? {gtid: true} : {coordinates: binlog}),
        }).display
      : null
  return {server: name, binlog, gtid: typeof detached?.gtid === 'string' ? detached.gtid : '', oldMaster: plan.decision.deadMaster, repointOldMaster: repoint}
}

/** Replicas of the dead master (by the plan's observation) whose IO thread still runs from it now. */
function stillStreaming(plan: Plan, servers: readonly ServerSnapshot[]): string[] {
  const dead = plan.observed.servers.find((s) => s.name === plan.decision.deadMaster)
  return servers.flatMap((s) => {
    if (!s.sql.reachable || !s.sql.replica || s.name === dead?.name) return []
    const source = plan.observed.servers.find((o) => o.name === s.name)?.source
    return source === dead?.name && s.sql.replica.ioThread === 'running' ? [s.name] : []
  })
}

/**
 * "none" is said only of a failover whose every survivor was proven complete: a replica left out is named in the
 * loss statement with why (what it lacks, when the final check found it short).
 */
function withLeftOut(statement: string | null, newMaster: string | null, left: {server: string; reason: string}[]): string | null {
  if (statement === null || left.length === 0) return statement
  const named = `left out, not proven complete: ${left.map((l) => `${l.server} (${l.reason})`).join('; ')}`
  return statement.startsWith('none: ') ? `${newMaster ?? 'the new master'} lacks nothing (${statement.slice('none: '.length)}); ${named}` : `${statement}; ${named}`
}

/** The servers a failover plan leaves out from the start (see leftOutByPlan), each with the plan's reason and what to do. */
function plannedLeftOut(plan: Plan): ApplyReport['leftOut'] {
  return leftOutByPlan(plan).map((server) => ({
    server,
    reason: plan.decision.notes.find((n) => n.startsWith(`${server} `))?.slice(server.length + 1) ?? 'the plan leaves it out',
    retry: `rebuild ${server} from ${plan.decision.newMaster ?? 'the new master'} ("mha plan --cluster ${plan.cluster} --rebuild ${server}"), or repair it and rejoin it by hand`,
  }))
}

export function journalFileOf(planFile: string): string {
  return planFile.replace(/\.json$/, '') + '.journal.ndjson'
}

/**
 * Runs a plan's steps, each when the steps it depends on are done, independent ones in parallel.
 * Each step is checked (already done? skip), acted on, verified, and journaled before and after,
 * so that a second run resumes or does nothing. It decides nothing the plan did not decide.
 */
export async function applyPlan(options: ApplyOptions): Promise<ApplyReport> {
  const started = Date.now()
  const {plan, cluster, planFile, listener} = options
  const journal = options.journal ?? new Journal(journalFileOf(planFile))
  const {records, digest: journalDigest} = await journal.read()
  const digest = planDigest(plan)
  const status = new Map<string, {status: StepStatus; reason: string | null}>(plan.steps.map((s) => [s.id, {status: 'not_run', reason: null}]))
  /** When each step this run checked or ran began and how long it took, from the run's start. */
  const timing = new Map<string, {startMs: number; durationMs: number | null}>()
  // What a step handed on: from this run, else from an earlier one that finished it (a step an earlier run only
  // began has no outputs of its own to shadow this run's).
  const outputsOf = (id: string): Record<string, unknown> => ctx.outputs.get(id) ?? (['done', 'skipped'].includes(records.get(id)?.state ?? '') ? records.get(id)!.outputs : {})
  const report = (overall: ApplyReport['status'], message: string, nextAction: string | null, notes: string[] = []): ApplyReport => ({
    planFile,
    cluster: plan.cluster,
    kind: plan.kind,
    status: overall,
    message,
    steps: plan.steps.map((s) => ({id: s.id, type: s.type, server: s.server, status: status.get(s.id)!.status, reason: status.get(s.id)!.reason, outputs: outputsOf(s.id), startMs: timing.get(s.id)?.startMs ?? null, durationMs: timing.get(s.id)?.durationMs ?? null})),
    notes,
    digest,
    leftOut: [],
    newMaster: promotionPoint(plan, cluster, outputsOf(`detach_replication:${plan.decision.newMaster ?? ''}`)),
    dataLoss: plan.kind === 'failover' ? (ctx.lostAtApply ?? plan.decision.dataLoss.statement) : null,
    nextAction,
    durationMs: Date.now() - started,
  })
  const ctx = new RunContext(cluster, plan, planFile.replace(/\.json$/, '') + '.work', options.sshPool, options.guard, options.progressIntervalMs, options.connections)
  ctx.reportProgress = (step, message) => listener({kind: 'progress', step, message})
  ctx.saveWork = async () => await options.artifacts?.save(ctx.workDir)
  const store = options.store ?? new FileStore(plansDirOf(planFile, plan.cluster), plan.cluster)
  ctx.readState = () => store.readState()
  ctx.silentAtPlanning = (name) => {
    const sql = options.snapshot?.servers.find((s) => s.name === name)?.sql
    if (!sql || sql.reachable || sql.observedAt === undefined || !['unreachable', 'timeout'].includes(sql.kind)) return null
    return {ageMs: Date.now() - sql.observedAt, message: sql.message}
  }
  ctx.updateState = (change) => store.updateState(change, options.lock)
  const finished = (r: ApplyReport) => {
    listener({kind: 'finish', report: r})
    return r
  }

  const settled = (id: string) => ['done', 'skipped'].includes(records.get(id)?.state ?? '')
  if (plan.steps.length > 0 && plan.steps.every((s) => settled(s.id))) {
    for (const s of plan.steps) status.set(s.id, {status: 'skipped', reason: 'done in an earlier run (journal)'})
    listener({kind: 'resume', done: plan.steps.length, total: plan.steps.length, doneSteps: plan.steps.map((s) => s.id)})
    return finished(report('already_applied', `plan already applied (${journal.where}); nothing to do`, null))
  }
  // The plan is data: before any change, it must be the approved one and agree with the cluster file.
  const refuse = (message: string, next: string) => {
    listener({kind: 'refused', reason: message})
    return finished(report('refused', message, next))
  }
  if (options.expectDigest !== undefined && options.expectDigest.toLowerCase() !== digest)
    return refuse(`the plan's digest is ${digest}, not the approved ${options.expectDigest}: this is not the plan that was reviewed`, `review ${planFile} ("mha show ${planFile}") and approve its digest, or apply the approved file`)
  if (journalDigest !== undefined && journalDigest !== digest)
    return refuse(`${planFile} changed since apply began (digest ${digest}, the journal's ${journalDigest})`, `restore the plan that was being applied, or make a new plan with "mha plan --cluster ${plan.cluster}"`)
  const problems = planProblems(plan, cluster)
  if (problems.length > 0) return refuse(`${planFile}: the plan disagrees with ${cluster.file}: ${problems.join('; ')}`, `make a new plan with "mha plan --cluster ${plan.cluster}" and review it ("mha show FILE")`)
  // A rebuild wipes a datadir, a removal takes a server out: only the server the operator names again here.
  const unconfirmed = targetProblem(plan, planFile, options.target)
  if (unconfirmed !== null) return refuse(unconfirmed.problem, unconfirmed.next)
  if (plan.kind === 'noop') return finished(report('already_applied', 'a noop plan: nothing to do', null))

  try {
    // Staleness: before the first step, every fact the plan rests on; on a resume, the facts of the servers the
    // remaining steps touch, less those the plan's own started steps change. SQL facts only: no SSH needed.
    // Its connections are the run's own afterwards: the first steps need no handshake. The replication login is not
    // tried: nothing here reads it (a switchover's check tries it on its target).
    const inspected = new Map<string, ServerConnection>()
    let snapshot: Snapshot
    try {
      snapshot = options.snapshot ?? (await inspectCluster(cluster, {relayLookups: false, ssh: false, replLogin: false, keepConnections: inspected}))
    } finally {
      ctx.adopt(inspected)
    }
    const denied = snapshot.servers.flatMap((s) => (!s.sql.reachable && s.sql.kind === 'auth' ? [s.sql.message] : []))
    if (denied.length > 0) {
      listener({kind: 'refused', reason: denied.join('; ')})
      return finished(report('refused', denied.join('; '), `fix user/password in ${cluster.file}, then apply again`))
    }
    const live = liveProblems(plan, snapshot.servers)
    if (live.length > 0) return refuse(`${planFile}: the plan disagrees with the live servers: ${live.join('; ')}`, `make a new plan with "mha plan --cluster ${plan.cluster}"`)
    // Roles from the live servers, not from the plan's word: a step whose target no longer has the role it needs.
    const roles = roleProblems(plan, snapshot, cluster, options.roleState ?? null, records.size > 0)
    if (roles.length > 0) return refuse(`${planFile}: the plan disagrees with the live roles: ${roles.join('; ')}`, `make a new plan with "mha plan --cluster ${plan.cluster}" and review it`)
    // A live master's replicas keep moving: a switchover, rejoin, rebuild or removal rests on the topology, not on positions.
    const now = observedFacts(cluster, snapshot, !['switchover', 'rejoin', 'rebuild', 'remove'].includes(plan.kind))
    const resuming = records.size > 0
    const journaled = new Set([...records.keys()])
    const done = new Set(plan.steps.filter((s) => settled(s.id)).map((s) => s.id))
    const changes = resuming ? resumeChanges(plan, journaled, done, now) : factChanges(plan.observed.facts, now)
    if (changes.length > 0) {
      const message = `the plan is stale${resuming ? ' for the steps left to run' : ''}: ${changes.join('; ')}`
      listener({kind: 'refused', reason: message})
      return finished(report('refused', message, `run "mha plan --cluster ${plan.cluster}" again and review the new plan`))
    }
    if (!resuming) {
      // The same judgement as mha watch: replicas still streaming from the master mean it is alive for them.
      const streaming = plan.kind === 'failover' && !plan.decision.forcedDead ? stillStreaming(plan, snapshot.servers) : []
      if (streaming.length > 0)
        return refuse(
          `${plan.decision.deadMaster} is not dead for its replicas: ${streaming.join(', ')} still replicate${streaming.length === 1 ? 's' : ''} from it (IO thread running); a network problem between mha and ${plan.decision.deadMaster}, no failover`,
          `find out why mha cannot reach ${plan.decision.deadMaster}; to fail over anyway, plan again with --force-dead "<why>"`,
        )
    }
    // Nothing refused the plan: the caller records the failover under way (mha apply, as watch does) before the first write.
    await options.beforeFirstEffect?.()
    if (!resuming) await journal.write({step: '(plan)', event: 'plan', message: digest})
    if (resuming) listener({kind: 'resume', done: done.size, total: plan.steps.length, doneSteps: [...done]})
    for (const [id, record] of records) if (record.state === 'done' || record.state === 'skipped') ctx.outputs.set(id, record.outputs)
    for (const [id, record] of records) if (record.state === 'begun' || record.state === 'failed') ctx.unfinished.add(id)
    mkdirSync(ctx.workDir, {recursive: true})
    // Another manager's saved files, when this one resumes its failover.
    if (resuming) await options.artifacts?.restore(ctx.workDir)
    // A save journaled done whose file is neither in this work folder nor restored from the shared store (it stayed
    // on the disk of a manager that died: too large for etcd, or saved without one) is run again when a step still
    // to run reads the file: saving is a read, repeatable while the host it reads answers; its check decides.
    const repeated = new Map(savesToRepeat(plan, done, (id) => records.get(id)?.outputs, ctx.workDir).map((id) => [id, records.get(id)?.outputs.file]))
    for (const [id, file] of repeated) {
      done.delete(id)
      ctx.outputs.delete(id)
      ctx.note(`${id}: ${workFileName(file) ?? 'its file'} (saved by an earlier run) is not in ${ctx.workDir} nor in the shared store: the step runs again to save it again`)
    }

    const failures: {step: Step; message: string}[] = []
    const running = new Map<string, Promise<void>>()
    for (const id of done) status.set(id, {status: 'skipped', reason: 'done in an earlier run (journal)'})
    const pending = plan.steps.filter((s) => !done.has(s.id))
    const secrets = [cluster.password, cluster.replPassword, ...cluster.servers.map((s) => s.password)]
    const ended = (id: string) => ['applied', 'skipped', 'failed', 'blocked'].includes(status.get(id)?.status ?? '')
    const failedOrBlocked = (id: string) => ['failed', 'blocked'].includes(status.get(id)?.status ?? '')
    ctx.outcomeOf = (id) => (done.has(id) ? 'done' : failedOrBlocked(id) ? 'failed' : 'pending')
    // A plan with rollback steps (a switchover) stops at its first failure and is undone; otherwise a failure
    // only stops the steps that depend on it (a replica left out never keeps the new master from taking writes).
    const stopAtFirstFailure = plan.rollback !== undefined
    const promoted = () => plan.rollback !== undefined && done.has(plan.rollback.ifFailedBefore)
    // A proxy that could not be moved after the promotion (a switchover's route_writer) stops nothing: the promotion
    // stands and the rest of the plan goes on, as in a failover; the report is partial.
    const routingAfterPromotion = (f: {step: Step}) => f.step.group?.startsWith('routing:') === true && promoted()
    const stopping = () => stopAtFirstFailure && failures.some((f) => !routingAfterPromotion(f))
    /** Steps whose act began in this run: whether they then failed or not, they may have changed something. */
    const acted = new Set<string>()

    // Set when this process lost its right to act (etcd lease or lock): nothing more is started or written.
    const stopped: {fenced: string | null} = {fenced: null}
    const guard = options.guard ?? (() => undefined)
    const runStep = async (step: Step): Promise<void> => {
      const handler = handlerFor(step)
      phase(`${step.id} started`)
      listener({kind: 'begin', step})
      const begun = Date.now()
      timing.set(step.id, {startMs: begun - started, durationMs: null})
      try {
        guard()
        const checked = await handler.check(step, ctx)
        phase(`${step.id} checked`)
        if (checked.done) {
          const outputs = checked.outputs ?? {}
          ctx.outputs.set(step.id, outputs)
          // No effect follows a skip of its own: the line is on disk with the next effect's begin (or the run's end).
          await journal.write({step: step.id, event: 'skip', outputs, message: checked.reason}, {deferSync: true})
          status.set(step.id, {status: 'skipped', reason: checked.reason})
          listener({kind: 'skip', step, reason: checked.reason})
          return
        }
        // Before an effect its begin is on disk; a step that only reads has none, and its line goes with the next one.
        await journal.write({step: step.id, event: 'begin'}, {deferSync: handler.readsOnly === true})
        acted.add(step.id)
        guard()
        phase(`${step.id} begun`)
        const outputs = (await handler.act(step, ctx)) ?? {}
        phase(`${step.id} acted`)
        ctx.outputs.set(step.id, outputs)
        guard()
        await handler.verify(step, ctx, outputs)
        phase(`${step.id} verified`)
        // The files a step saved go where the journal goes before it says the step is done.
        await options.artifacts?.save(ctx.workDir)
        // On disk with the next begin, before any effect that follows this one, or at the run's end.
        await journal.write({step: step.id, event: 'end', outputs}, {deferSync: true})
        phase(`${step.id} ended`)
        status.set(step.id, {status: 'applied', reason: null})
        listener({kind: 'end', step, outputs})
      } catch (error) {
        const said = redact(oneLine(error), secrets)
        const message = repeated.has(step.id) && !(error instanceof FencedError) ? repeatFailed(step, repeated.get(step.id), said) : said
        status.set(step.id, {status: 'failed', reason: message})
        listener({kind: 'fail', step, message})
        if (error instanceof FencedError) {
          stopped.fenced ??= message
          return
        }
        await journal.write({step: step.id, event: 'fail', message}).catch((e: unknown) => {
          stopped.fenced ??= redact(oneLine(e), secrets)
        })
        failures.push({step, message})
      } finally {
        timing.set(step.id, {startMs: begun - started, durationMs: Date.now() - begun})
      }
    }

    while (pending.length > 0 || running.size > 0) {
      if (!stopping() && stopped.fenced === null) {
        for (const step of [...pending]) {
          const broken = step.after.find(failedOrBlocked)
          if (broken) {
            pending.splice(pending.indexOf(step), 1)
            status.set(step.id, {status: 'blocked', reason: `not run: ${broken} did not succeed`})
            continue
          }
          if (!step.after.every((d) => done.has(d)) || !(step.settledAfter ?? []).every(ended)) continue
          pending.splice(pending.indexOf(step), 1)
          running.set(
            step.id,
            runStep(step).then(() => {
              running.delete(step.id)
              if (status.get(step.id)!.status !== 'failed') done.add(step.id)
            }),
          )
        }
      }
      if (running.size === 0) {
        // Blocking may have made more steps decidable: go round again until nothing changes.
        if (pending.some((step) => step.after.some(failedOrBlocked)) && !stopping() && stopped.fenced === null) continue
        break
      }
      await Promise.race(running.values())
    }
    await journal.sync?.()

    if (stopped.fenced !== null) {
      // Another manager holds the cluster now and finishes from the shared journal: this one stops here.
      return finished(report('failed', `stopped: ${stopped.fenced}`, `nothing to do here: the manager that holds the cluster's lock now finishes this ${plan.kind} from the shared journal`, ctx.notes))
    }
    // An optional step (the dead master's binlog) that failed was done without; the loss is in the report.
    const counted = failures.filter((f) => f.step.group !== 'optional')
    const failure = counted[0]
    let rolledBack = ''
    const rollback = plan.rollback
    if (failure && rollback && !['applied', 'skipped'].includes(status.get(rollback.ifFailedBefore)?.status ?? 'not_run')) {
      // Before the promotion a failure is undone, in the plan's own visible steps.
      const undone: string[] = []
      // Done, or begun (in this run or an earlier one) and perhaps failed part way: a detach that stopped replication
      // and then failed, a promotion whose read_only=OFF took effect before it failed, a hook that died half-way.
      const began = (id: string) => ['applied', 'skipped'].includes(status.get(id)?.status ?? '') || acted.has(id) || ctx.unfinished.has(id)
      for (const step of rollback.steps) {
        // A rollback step undoes the main steps it names; it runs only if they began. Its check finds nothing to
        // undo where the step failed before any effect. The first undo that fails stops the rollback: the plan
        // lists them so that what follows needs what came before (the target read_only before the old master writes).
        if (!step.after.every(began)) continue
        const handler = handlerFor(step)
        const id = `rollback/${step.id}`
        listener({kind: 'begin', step: {...step, id}})
        try {
          const checked = await handler.check(step, ctx)
          if (!checked.done) {
            await journal.write({step: id, event: 'begin'})
            const outputs = (await handler.act(step, ctx)) ?? {}
            await handler.verify(step, ctx, outputs)
          }
          await journal.write({step: id, event: checked.done ? 'skip' : 'end'})
          listener(checked.done ? {kind: 'skip', step: {...step, id}, reason: checked.reason} : {kind: 'end', step: {...step, id}, outputs: {}})
          undone.push(step.id)
        } catch (error) {
          const message = redact(oneLine(error), secrets)
          await journal.write({step: id, event: 'fail', message})
          listener({kind: 'fail', step: {...step, id}, message})
          rolledBack = `; the rollback failed at ${step.id}: ${message}`
          break
        }
      }
      if (rolledBack === '' && undone.length > 0) rolledBack = `; rolled back (${undone.join(', ')}): ${plan.decision.oldMaster ?? 'the old master'} takes writes again`
      else if (rolledBack === '') rolledBack = '; nothing had changed, so nothing was rolled back'
    }

    if (failure) {
      const applied = plan.steps.filter((s) => ['applied', 'skipped'].includes(status.get(s.id)!.status)).map((s) => s.id)
      const notRun = plan.steps.filter((s) => ['not_run', 'blocked'].includes(status.get(s.id)!.status)).map((s) => s.id)
      const masterSteps = plan.steps.filter((s) => s.group === 'master')
      // A switchover (no master group) is up when its promotion is done and what failed is only a proxy's routing.
      const masterUp = masterSteps.length > 0 ? masterSteps.every((s) => done.has(s.id)) : promoted() && counted.every(routingAfterPromotion)
      if (masterUp) {
        // The new master takes writes: what failed concerns replicas only. Each is named with what to do.
        const leftOut = [...new Set(plan.steps.filter((s) => failedOrBlocked(s.id) && s.group?.startsWith('replica:')).map((s) => s.group!.slice('replica:'.length)))]
        const why = (server: string) => counted.find((f) => f.step.group === `replica:${server}`)?.message ?? 'a step it depends on failed'
        const left = leftOut.map((server) => ({server, reason: why(server), retry: `fix the cause, then run "mha apply ${planFile}" again: only ${server}'s steps run; if it cannot be fixed, rebuild ${server} from ${plan.decision.newMaster}`}))
        const others = counted.filter((f) => !f.step.group?.startsWith('replica:') && !f.step.group?.startsWith('routing:'))
        // A proxy that could not be moved: the promotion stands, the proxy is finished by applying again.
        const proxies = [...new Set(plan.steps.filter((s) => failedOrBlocked(s.id) && s.group?.startsWith('routing:')).map((s) => s.group!.slice('routing:'.length)))]
        const proxyWhy = (proxy: string) => counted.find((f) => f.step.group === `routing:${proxy}`)?.message ?? 'a step it depends on failed'
        const partial = report(
            'partial',
            [
              `${plan.decision.newMaster} is the ${plan.decision.leftToOperator?.disableReadOnly ? 'new master (left read_only, as the plan says)' : 'writable master'}`,
              ...(leftOut.length || !proxies.length ? [`${leftOut.length} replica${leftOut.length === 1 ? '' : 's'} left out: ${left.map((l) => `${l.server} (${l.reason})`).join('; ')}`] : []),
              ...(proxies.length ? [`writes not moved on proxy ${proxies.map((p) => `${p} (${proxyWhy(p)})`).join('; proxy ')}`] : []),
              ...(others.length ? [`also failed: ${others.map((f) => `${f.step.id}: ${f.message}`).join('; ')}`] : []),
            ].join('; '),
            [
              ...left.map((l) => `${l.server}: ${l.retry}`),
              ...proxies.map((p) => `proxy ${p}: once its runtime API answers, run "mha apply ${planFile}" again: only its routing steps run (until then clients reach ${plan.decision.newMaster} only by its own address)`),
            ].join('; ') || null,
            ctx.notes,
          )
        return finished({...partial, dataLoss: withLeftOut(partial.dataLoss, plan.decision.newMaster, left), leftOut: [...plannedLeftOut(plan), ...left]})
      }
      const failed = report(
          'failed',
          `${failure.step.id} failed: ${failure.message}. Done: ${applied.join(', ') || 'nothing'}. Not run: ${notRun.join(', ') || 'nothing'}${rolledBack}`,
          rolledBack
            ? `fix what ${failure.step.id} reports on ${failure.step.server}, then plan again: "mha plan --cluster ${plan.cluster} --switchover"`
            : `fix what ${failure.step.id} reports on ${failure.step.server}, then run "mha apply ${planFile}" again: it resumes from ${failure.step.id}`,
          ctx.notes,
        )
      // Nothing is proven of a failover that did not finish: the plan's statement is what it expects, not what is.
      return finished({...failed, dataLoss: failed.dataLoss === null ? null : `not known yet: the failover did not finish (the plan expects: ${failed.dataLoss})`})
    }
    // Replicas the plan itself left out (unrecoverable, errant, unreachable with ignore_fail): the failover is done,
    // with something left for the operator, and says so as MHA does (exit 10).
    const planned = plannedLeftOut(plan)
    // Work the operator asked to keep for themselves (--skip-change-master, --skip-disable-read-only) is theirs: on
    // its own it leaves the apply complete (exit 0, as MHA), and is named.
    const todo = plan.decision.leftToOperator?.todo ?? []
    const leftToYou = todo.length ? `left to you, as the plan says: ${todo.join('; ')}` : null
    if (planned.length > 0) {
      const partial = report(
        'partial',
        `${plan.kind} applied: ${plan.decision.summary}; ${planned.length} replica${planned.length === 1 ? '' : 's'} left out as planned: ${planned.map((l) => `${l.server} (${l.reason})`).join('; ')}`,
        [...planned.map((l) => `${l.server}: ${l.retry}`), ...(leftToYou ? [leftToYou] : [])].join('; '),
        ctx.notes,
      )
      return finished({...partial, leftOut: planned})
    }
    return finished(report('applied', `${plan.kind} applied: ${plan.decision.summary}`, leftToYou, ctx.notes))
  } finally {
    await ctx.close()
  }
}
