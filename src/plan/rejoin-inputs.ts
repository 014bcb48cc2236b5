import {existsSync, mkdtempSync, readdirSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, posix} from 'node:path'
import {EventType} from '../binlog/constants.js'
import {findBinlogTail, transactionStartAt} from '../binlog/tail.js'
import {compareCoordinates, binlogSequence} from '../binlog/coordinates.js'
import type {ClusterConfig} from '../config/types.js'
import type {BinlogCoordinates} from '../dialect/types.js'
import {Journal} from '../store/journal.js'
import {journalFileOf} from '../apply/executor.js'
import {sshTargetOf} from '../inspect/inspect.js'
import type {Snapshot} from '../inspect/types.js'
import {localRangeSource, scanRange} from '../recovery/range-source.js'
import {saveBinlogTail} from '../recovery/binlog-tail.js'
import {formatStreamGtid, streamLayout} from '../recovery/exactly-once.js'
import {shellQuote, withSsh} from '../remote/ssh.js'
import {oneLine} from '../util/errors.js'
import {readPlan} from './plan-file.js'
import type {BinlogRange, FailoverRecord, RejoinInput} from './rejoin.js'

const ROW_EVENTS: ReadonlySet<number> = new Set([
  EventType.PRE_GA_WRITE_ROWS,
  EventType.PRE_GA_UPDATE_ROWS,
  EventType.PRE_GA_DELETE_ROWS,
  EventType.WRITE_ROWS_V1,
  EventType.UPDATE_ROWS_V1,
  EventType.DELETE_ROWS_V1,
  EventType.WRITE_ROWS,
  EventType.UPDATE_ROWS,
  EventType.DELETE_ROWS,
  EventType.PARTIAL_UPDATE_ROWS,
  EventType.MARIADB_WRITE_ROWS_COMPRESSED_V1,
  EventType.MARIADB_UPDATE_ROWS_COMPRESSED_V1,
  EventType.MARIADB_DELETE_ROWS_COMPRESSED_V1,
  EventType.MARIADB_WRITE_ROWS_COMPRESSED,
  EventType.MARIADB_UPDATE_ROWS_COMPRESSED,
  EventType.MARIADB_DELETE_ROWS_COMPRESSED,
])

const isCoordinates = (v: unknown): v is BinlogCoordinates => typeof v === 'object' && v !== null && typeof (v as BinlogCoordinates).file === 'string' && typeof (v as BinlogCoordinates).pos === 'number'

/**
 * The latest failover plan of the cluster whose dead master is `server`, with what its journal recorded: the
 * dead master's position the new master holds data up to, and the new master's coordinates at promotion.
 */
export function findFailoverRecord(plansDir: string, cluster: string, server: string): FailoverRecord | null {
  const dir = join(plansDir, cluster)
  if (!existsSync(dir)) return null
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('-failover.json'))
    .sort()
    .reverse()
  for (const file of files) {
    const path = join(dir, file)
    let plan
    try {
      plan = readPlan(path)
    } catch {
      continue
    }
    if (plan.kind !== 'failover' || plan.decision.deadMaster !== server || !plan.decision.newMaster) continue
    const records = new Journal(journalFileOf(path)).readNow().records
    const save = plan.steps.find((s) => s.type === 'save_master_binlog' && s.server === server)
    const savedEnd = save ? records.get(save.id)?.outputs.end : undefined
    // Applied to the new master only when apply_logs of the new master ran with the tail.
    const nmApply = plan.steps.find((s) => s.type === 'apply_logs' && s.server === plan.decision.newMaster)
    const tailApplied = nmApply ? records.get(nmApply.id)?.outputs.tailApplied === true : false
    const reads = plan.observed.servers.flatMap((s) => (s.name !== server && s.read ? [s.read] : []))
    const latestRead = reads.sort((a, b) => compareCoordinates(b, a))[0]
    let held: BinlogCoordinates | undefined
    let heldFrom: FailoverRecord['heldFrom'] = 'latest read position'
    if (isCoordinates(savedEnd) && tailApplied) {
      held = savedEnd
      heldFrom = 'saved binlog end'
    } else if (plan.decision.dataLoss.lostAfter) {
      held = plan.decision.dataLoss.lostAfter
      heldFrom = 'stated loss'
    } else held = latestRead
    if (!held) continue
    const detach = records.get(`detach_replication:${plan.decision.newMaster}`)?.outputs.binlog
    return {plan: path, newMaster: plan.decision.newMaster, held, heldFrom, promotion: isCoordinates(detach) ? detach : null}
  }
  return null
}

/**
 * The server's binlog from `from` to its end, read over SSH with mha's binlog reader: whole transactions, their
 * GTIDs, row events. When `from` lies inside a transaction the range starts where that transaction starts.
 */
export async function readBinlogRange(cluster: ClusterConfig, snapshot: Snapshot, server: string, from: BinlogCoordinates): Promise<{range: BinlogRange | null; problem?: string}> {
  const config = cluster.servers.find((s) => s.name === server)!
  const snap = snapshot.servers.find((s) => s.name === server)!
  if (!snap.ssh.reachable) return {range: null, problem: `${server}'s host does not answer SSH (${snap.ssh.message})`}
  const dir = snap.ssh.binlogDir
  if (!dir) return {range: null, problem: `${server}'s binlogs are in none of master_binlog_dir (${config.masterBinlogDirs.join(', ')})`}
  const files = snap.ssh.binlogs.map((b) => b.file).filter((f) => binlogSequence(f) >= binlogSequence(from.file))
  if (files[0] !== from.file) return {range: null, problem: `${from.file} is no longer in ${dir} on ${server}`}
  const work = mkdtempSync(join(tmpdir(), 'mha-rejoin-'))
  try {
    const local = join(work, 'range.binlog')
    // The new master may hold part of a transaction only (a replica read up to `from` inside it and it was never
    // applied): what the server has from that transaction's start on is what the new master lacks.
    const {start, saved} = await withSsh(sshTargetOf(cluster, config), async (session) => {
      const path = shellQuote(posix.join(dir, from.file))
      const prefix = await findBinlogTail({name: from.file, open: () => session.readStream(`head -c ${from.pos} -- ${path}`, undefined, undefined, {counted: true})})
      const start = {file: from.file, pos: transactionStartAt(prefix, from.pos)}
      return {start, saved: await saveBinlogTail(session, dir, files, start, local)}
    })
    const layout = await streamLayout(local)
    let rowEvents = 0
    await scanRange(localRangeSource(local), 0, (event) => {
      if (ROW_EVENTS.has(event.type)) rowEvents++
    })
    return {range: {from: start, end: saved.end, files, dir, transactions: layout.transactions.map((t) => ({gtid: t.gtid ? formatStreamGtid(t.gtid) : null})), rowEvents}}
  } catch (error) {
    return {range: null, problem: oneLine(error)}
  } finally {
    rmSync(work, {recursive: true, force: true})
  }
}

/** Everything the pure rejoin planner needs that only files and the server's host can tell. */
export async function rejoinInput(cluster: ClusterConfig, snapshot: Snapshot, plansDir: string, server: string, flashback: boolean): Promise<RejoinInput> {
  const failover = findFailoverRecord(plansDir, cluster.name, server)
  const input: RejoinInput = {server, flashback, failover, range: null}
  if (!failover) return input
  const snap = snapshot.servers.find((s) => s.name === server)
  const end = snap?.sql.reachable ? snap.sql.binaryLog : null
  if (!end || compareCoordinates(end, failover.held) <= 0) return input
  const read = await readBinlogRange(cluster, snapshot, server, failover.held)
  input.range = read.range
  if (read.problem) input.rangeProblem = read.problem
  return input
}
