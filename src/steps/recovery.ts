import {existsSync, readFileSync, renameSync, statSync, writeFileSync} from 'node:fs'
import {basename, join} from 'node:path'
import {endpointOf} from '../inspect/inspect.js'
import {planDigest} from '../plan/plan-file.js'
import type {OutputRef, Step} from '../plan/types.js'
import {remoteSource} from '../inspect/relay-lookup.js'
import {applyBinlogs, copyRelayDiff, listRemoteRelayLogs, relayDiffProblem, saveBinlogTail} from '../recovery/index.js'
import {compareCoordinates, formatCoordinates} from '../binlog/coordinates.js'
import type {StoppedPosition} from './replication.js'
import type {StepContext, StepHandler} from './types.js'
import {workFileIn, workFileName} from './work-files.js'

type Save = Extract<Step, {type: 'save_master_binlog'}>
type SaveDiff = Extract<Step, {type: 'save_relay_diff'}>
type Apply = Extract<Step, {type: 'apply_logs'}>

const relayDiffFile = (step: SaveDiff, ctx: StepContext) => join(ctx.workDir, `relay-diff-${step.params.diff.source}-for-${step.params.target}.binlog`)
const masterTailFile = (step: Save, ctx: StepContext) => join(ctx.workDir, `saved-${step.server}-${step.params.from.file}-${step.params.from.pos}.binlog`)

/**
 * A saved file is complete once its record exists: the file is renamed into place whole, then the record
 * beside it is. A run killed after both (before the journal says so) does not copy again. The outputs name the
 * file (its name in the work folder), never its path: another manager resuming finds it in its own work folder.
 */
function recordSaved(file: string, ctx: StepContext, outputs: Record<string, unknown>): Record<string, unknown> {
  // The record names the plan it was saved for: a file left by another plan of the same name is never reused.
  writeFileSync(`${file}.saved.json.partial`, JSON.stringify({...outputs, plan: planDigest(ctx.plan)}), {mode: 0o600})
  renameSync(`${file}.saved.json.partial`, `${file}.saved.json`)
  return outputs
}

function savedAlready(file: string, ctx: StepContext): {done: false} | {done: true; reason: string; outputs: Record<string, unknown>} {
  if (!existsSync(file) || !existsSync(`${file}.saved.json`)) return {done: false}
  const {plan, ...outputs} = JSON.parse(readFileSync(`${file}.saved.json`, 'utf8')) as Record<string, unknown>
  return plan === planDigest(ctx.plan) && workFileName(outputs.file) === basename(file) && statSync(file).size === outputs.bytes
    ? {done: true, reason: `${basename(file)} was saved by an earlier run of this plan (${String(outputs.bytes)} bytes)`, outputs: {...outputs, file: basename(file)}}
    : {done: false}
}

/** The range of the latest replica's relay log that a lagging replica lacks, copied over SSH to the manager. */
export const saveRelayDiff: StepHandler<SaveDiff> = {
  check(step, ctx) {
    return Promise.resolve(savedAlready(relayDiffFile(step, ctx), ctx))
  },
  async act(step, ctx) {
    const diff = step.params.diff
    const file = relayDiffFile(step, ctx)
    const session = await ctx.ssh(diff.source)
    // Where the missing events start is derived again from the source's relay logs before a byte is copied: an
    // offset at an earlier event would apply transactions twice on the target, one inside an event garbage.
    const row = await (await ctx.sql(diff.source)).queryOne('SELECT @@relay_log_index AS i, @@server_id AS id')
    if (typeof row?.i !== 'string' || row.i === '') throw new Error(`step ${step.id}: ${diff.source} names no relay log index (@@relay_log_index); nothing was copied`)
    const live = await listRemoteRelayLogs(session, row.i)
    const problem = await relayDiffProblem({id: step.id, target: step.params.target, diff}, live, (path) => remoteSource(session, path), Number(row.id))
    if (problem !== null) throw new Error(problem)
    const copied = await copyRelayDiff(session, diff.files, diff.offset, file)
    return recordSaved(file, ctx, {file: basename(file), bytes: copied.bytes})
  },
  verify(_step, _ctx, outputs) {
    return typeof outputs.file === 'string' ? Promise.resolve() : Promise.reject(new Error('no relay diff file recorded'))
  },
}

/**
 * The dead master's binlog after what any replica received, copied over SSH to the manager: from the dead
 * master's host, or from the binlog server the plan names (its host and directories as the cluster file says now).
 */
export const saveMasterBinlog: StepHandler<Save> = {
  check(step, ctx) {
    return Promise.resolve(savedAlready(masterTailFile(step, ctx), ctx))
  },
  async act(step, ctx) {
    const p = step.params
    if (!p.dir) throw new Error(`${step.server}: the plan has no binlog directory to read`)
    const holder = p.binlogServer ?? step.server
    if (p.binlogServer !== undefined) {
      const configured = ctx.cluster.binlogServers.find((b) => b.name === p.binlogServer)
      if (!configured) throw new Error(`step ${step.id}: binlog server ${p.binlogServer} is not in ${ctx.cluster.file} any more; nothing was copied`)
      if (!configured.masterBinlogDirs.includes(p.dir)) throw new Error(`step ${step.id}: ${p.dir} is not one of binlog server ${p.binlogServer}'s master_binlog_dir in ${ctx.cluster.file}; nothing was copied`)
    }
    const file = masterTailFile(step, ctx)
    const saved = await saveBinlogTail(await ctx.ssh(holder), p.dir, p.files, p.from, file)
    if (saved.trimmed > 0) ctx.note(`${holder}: ${saved.trimmed} bytes of an incomplete final transaction were left out of the saved binlog`)
    return recordSaved(file, ctx, {file: basename(file), end: saved.end, bytes: saved.bytes, trimmed: saved.trimmed})
  },
  verify(_step, _ctx, outputs) {
    return typeof outputs.file === 'string' ? Promise.resolve() : Promise.reject(new Error('no saved binlog file recorded'))
  },
}

/** A file an earlier step saved, by its name in this run's work folder (whoever saved it, on whichever host). */
export function savedFile(ctx: StepContext, ref: OutputRef): string {
  const recorded = ctx.output(ref.fromStep, ref.output)
  const file = workFileIn(ctx.workDir, recorded)
  if (file === null) throw new Error(`no saved file from ${ref.fromStep}`)
  if (!existsSync(file))
    throw new Error(`${basename(file)}, saved by ${ref.fromStep}, is not in this manager's work folder ${ctx.workDir} nor in the shared store: it was on the manager that saved it`)
  return file
}

/**
 * The dead master's saved binlog is applied to the new master when it could be saved, and to each other
 * replica exactly when the new master applied it: survivors end with the same transactions, and a tail
 * saved late (a resumed run) never lands on replicas of a master that went on without it.
 */
function tailUsable(step: Apply, ctx: StepContext, tail: OutputRef): boolean {
  const newMaster = ctx.plan.decision.newMaster
  if (step.server === newMaster) {
    if (ctx.outcome(tail.fromStep) === 'done') {
      copyEndsInsideTransaction(ctx, tail)
      return true
    }
    const from = ctx.plan.steps.find((s) => s.id === tail.fromStep)
    const after = from?.type === 'save_master_binlog' ? formatCoordinates(from.params.from) : 'the saved position'
    ctx.declareLoss(`events after ${after} in ${from?.server ?? 'the dead master'}'s binlog are lost: it could not be saved (${tail.fromStep} failed), so ${newMaster} was recovered without it`)
    ctx.note(`${tail.fromStep} failed: ${newMaster} was recovered without the dead master's binlog; the events after ${after} are lost`)
    return false
  }
  const masterApply = ctx.plan.steps.find((s) => s.type === 'apply_logs' && s.server === newMaster)
  if (!masterApply || ctx.outcome(masterApply.id) !== 'done') return false
  return ctx.output(masterApply.id, 'tailApplied') === true
}

/**
 * A master writes each transaction into its binlog whole, at commit: a binlog server's copy that ends inside one
 * shows that the master logged more than the copy holds, and that is lost with the master's host.
 */
function copyEndsInsideTransaction(ctx: StepContext, tail: OutputRef): void {
  const save = ctx.plan.steps.find((s) => s.id === tail.fromStep)
  if (save?.type !== 'save_master_binlog' || save.params.binlogServer === undefined) return
  const trimmed = Number(ctx.output(tail.fromStep, 'trimmed'))
  if (trimmed > 0)
    ctx.declareLoss(
      `events after ${formatCoordinates(ctx.output(tail.fromStep, 'end') as {file: string; pos: number})} in ${save.server}'s binlog are lost: binlog server ${save.params.binlogServer}'s copy ends inside a transaction there (${trimmed} bytes of it), which ${save.server} had logged whole, and ${save.server}'s host cannot be read`,
    )
}

/** Where the relay diff a step applies ends, in the dead master's binlog: the plan's save step says. */
function diffEnd(step: Apply, ctx: StepContext): unknown {
  const save = ctx.plan.steps.find((s) => s.id === step.params.relayDiff?.fromStep)
  return save?.type === 'save_relay_diff' ? save.params.diff.until : null
}

/** The target's missing relay-log range and the dead master's tail, applied as one mysqlbinlog stream. */
export const applyLogs: StepHandler<Apply> = {
  check() {
    // What the target already has of the stream is found and skipped in act (applyBinlogs), transaction by transaction.
    return Promise.resolve({done: false})
  },
  async act(step, ctx) {
    const pieces: string[] = []
    const own = step.params.ownRelay ? (ctx.output(step.params.ownRelay.fromStep, step.params.ownRelay.output) as StoppedPosition) : undefined
    if (own && compareCoordinates(own.executed, own.read) < 0) {
      // The relay log ends inside a transaction: its start is only in this replica's own relay log.
      const session = await ctx.ssh(step.server)
      const index = (await (await ctx.sql(step.server)).queryOne('SELECT @@relay_log_index AS i'))?.i
      const files = await listRemoteRelayLogs(session, String(index))
      const first = files.findIndex((f) => f.endsWith(`/${own.relayLogFile}`))
      if (first < 0) throw new Error(`${step.server}: relay log ${own.relayLogFile} is not in ${String(index)}`)
      const file = join(ctx.workDir, `own-relay-${step.server}.binlog`)
      await copyRelayDiff(session, files.slice(first), own.relayLogPos, file)
      pieces.push(file)
    }
    if (step.params.relayDiff) pieces.push(savedFile(ctx, step.params.relayDiff))
    const tail = step.params.masterTail
    const useTail = tail !== null && tailUsable(step, ctx, tail)
    if (tail && useTail) pieces.push(savedFile(ctx, tail))
    // How far into the dead master's binlog the target's data now reaches: the final check compares it with the new master's.
    const through = tail && useTail ? ctx.output(tail.fromStep, 'end') : step.params.relayDiff ? diffEnd(step, ctx) : (own?.read ?? null)
    if (pieces.length === 0) return {applied: [], transactions: 0, alreadyApplied: 0, tailApplied: false, through}
    const result = await applyBinlogs(pieces, endpointOf(ctx.cluster, ctx.server(step.server)), {
      timeoutMs: ctx.timeoutMs,
      retry: ctx.attempted(step.id),
      tempDir: ctx.workDir,
      // MySQL without GTIDs: the target's binlog position before the stream is recorded per plan and step, and
      // saved where a resuming manager looks before the first byte goes (src/recovery/applied-position.ts).
      streamId: `${planDigest(ctx.plan)}:${step.id}`,
      ...(ctx.saveWork ? {persist: ctx.saveWork} : {}),
    })
    if (result.alreadyApplied > 0) ctx.note(`${step.server} had ${result.alreadyApplied} of the ${result.transactions} transactions already (an earlier attempt): they were not applied again`)
    return {applied: pieces, transactions: result.transactions, alreadyApplied: result.alreadyApplied, tailApplied: useTail, through}
  },
  verify() {
    return Promise.resolve()
  },
}
