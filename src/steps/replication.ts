import {compareCoordinates, formatCoordinates} from '../binlog/coordinates.js'
import type {ReplicaStatus} from '../dialect/types.js'
import {mariadbMissing, type MariadbMissingRange} from '../gtid/mariadb.js'
import type {Step} from '../plan/types.js'
import type {BinlogCoordinates} from '../dialect/types.js'
import {comparableByGtid, coordinatesShortfall, describeShortfall, shortfall, type HeldAtPromotion} from '../recovery/completeness.js'
import {binaryLogPosition, binlogEnd, gtidRecord, isCoordinates, readOnlyState, replicaStatus, waitReplicating, waitUntil, waitWhileProgressing, WRITE_BLOCK} from './common.js'
import type {StepContext, StepHandler} from './types.js'

type Of<T extends Step['type']> = Extract<Step, {type: T}>

export const stopReplicaIo: StepHandler<Of<'stop_replica_io'>> = {
  async check(step, ctx) {
    const status = await replicaStatus(ctx, step.server)
    if (!status) return {done: true, reason: `${step.server} replicates from nobody`}
    return status.ioThread === 'stopped' ? {done: true, reason: `${step.server}'s IO thread is already stopped`} : {done: false}
  },
  async act(step, ctx) {
    await (await ctx.sql(step.server)).execute((await ctx.dialect(step.server)).stopReplicaIoThread)
    return undefined
  },
  async verify(step, ctx) {
    await waitUntil(`${step.server}'s IO thread to stop`, ctx.timeoutMs, async () => (await replicaStatus(ctx, step.server))?.ioThread !== 'running')
  },
}

/**
 * The replica executes what its relay log holds, then its SQL thread is stopped so nothing moves.
 * A relay log can end inside a transaction (the master died mid-send): the SQL thread then idles short
 * of the read position, and apply_logs adds the replica's own unexecuted relay tail (MHA's exec->read).
 *
 * The executed position alone does not say that everything received was executed: MariaDB's parallel
 * replication commits GTID domains independently, and Exec_Master_Log_Pos is then the furthest commit, not a
 * low-water mark (measured: at the read position while 89 transactions of a held domain waited). STOP SLAVE
 * would leave a held domain's queued transactions unexecuted, behind the position everything else starts from.
 * So on MariaDB the wait also lasts until, in every domain, gtid_slave_pos has reached what the IO thread
 * received (Gtid_IO_Pos), with no parallel worker busy. Gtid_IO_Pos counts whole transactions only (measured on
 * 10.11: a 100,000-row transaction cut by the master's death leaves it at the one before), so a relay log that
 * ends inside a transaction leaves no domain behind: the SQL thread idles short of the read position and the
 * rule "idle twice at the same place, no worker busy" ends the wait, never while a worker holds a transaction or
 * a domain has whole transactions unexecuted. The bound is on lack of progress (executed position and
 * per-domain positions). File/position replication needs none of this: MariaDB commits domains out of order
 * only with GTIDs (measured: with MASTER_USE_GTID=no a held domain holds the others, and Gtid_IO_Pos is empty).
 * The plan starts the new master's saved binlog at its executed position (GTID mode), which may lie past a
 * held domain's transactions: they are in its relay log, and this wait executes them before anything is saved
 * on top; a stop that leaves a domain behind fails the step rather than leaving a hole.
 */
export const waitRelayLogApplied: StepHandler<Of<'wait_relay_log_applied'>> = {
  async check(step, ctx) {
    const status = await replicaStatus(ctx, step.server)
    if (!status) return {done: true, reason: `${step.server} no longer replicates (recovered already)`}
    if (status.sqlThread === 'stopped' && compareCoordinates(status.executed, step.params.until) >= 0 && (await domainsBehind(ctx, step.server, status)).length === 0)
      return {done: true, reason: `${step.server} has executed up to ${formatCoordinates(status.executed)}`, outputs: positionOf(status)}
    return {done: false}
  },
  async act(step, ctx) {
    const dialect = await ctx.dialect(step.server)
    const conn = await ctx.sql(step.server)
    const first = await replicaStatus(ctx, step.server)
    if (first?.sqlThread === 'stopped' && (compareCoordinates(first.executed, step.params.until) < 0 || (await domainsBehind(ctx, step.server, first)).length > 0)) {
      if (first.lastSqlErrno !== 0) throw new Error(`${step.server}'s SQL thread stopped on error ${first.lastSqlErrno}: ${first.lastSqlError}; fix it, then apply again`)
      await conn.execute(`${dialect.startReplica} SQL_THREAD`)
    }
    let previous = ''
    let behind: MariadbMissingRange[] = []
    await waitWhileProgressing(`${step.server} to execute its relay log up to ${formatCoordinates(step.params.until)} in every GTID domain`, ctx.timeoutMs, async () => {
      const status = await replicaStatus(ctx, step.server)
      if (!status) return {done: true, progress: ''}
      if (status.lastSqlErrno !== 0) throw new Error(`${step.server}'s SQL thread stopped on error ${status.lastSqlErrno}: ${status.lastSqlError}`)
      behind = await domainsBehind(ctx, step.server, status)
      const at = `${formatCoordinates(status.executed)}${behind.length ? `, behind in ${describeBehind(behind)}` : ''}`
      if (status.sqlThread === 'stopped') return {done: true, progress: at}
      // Parallel workers may wait on a lock while the coordinator says it has read everything.
      const busy = Number((await conn.queryOne(dialect.busyWorkersQuery))?.busy ?? 0) > 0
      if (compareCoordinates(status.executed, step.params.until) >= 0 && behind.length === 0 && !busy) return {done: true, progress: at}
      // Idle short of the end, twice in a row at the same place, no parallel worker holding a transaction: the
      // rest of that transaction never arrived.
      const idle = dialect.sqlThreadCaughtUpStates.includes(status.sqlThreadState) && !busy && behind.length === 0
      const settled = idle && at === previous
      previous = idle ? at : ''
      return {done: settled, progress: at}
    }, 100)
    await conn.execute(`${dialect.stopReplica} SQL_THREAD`)
    const status = await replicaStatus(ctx, step.server)
    if (!status) throw new Error(`${step.server} lost its replication settings`)
    behind = await domainsBehind(ctx, step.server, status)
    if (behind.length > 0) throw new Error(`${step.server}'s SQL thread stopped with transactions received but not executed (${describeBehind(behind)}); apply again to let it execute them`)
    if (compareCoordinates(status.executed, step.params.until) < 0)
      ctx.note(`${step.server}'s relay log ends inside a transaction after ${formatCoordinates(status.executed)}; its own relay tail is applied with the rest`)
    return positionOf(status)
  },
  async verify(step, ctx, outputs) {
    const status = await replicaStatus(ctx, step.server)
    if (status?.sqlThread === 'running') throw new Error(`${step.server}'s SQL thread is still running`)
    if (!isCoordinates((outputs.position as StoppedPosition | undefined)?.executed)) throw new Error(`${step.server}: no executed position recorded`)
  },
}

/**
 * MariaDB: per GTID domain, what the IO thread received (Gtid_IO_Pos) beyond what the SQL thread committed
 * (gtid_slave_pos). Empty elsewhere, and where the IO thread records no GTIDs (file/position replication).
 */
async function domainsBehind(ctx: StepContext, server: string, status: ReplicaStatus): Promise<MariadbMissingRange[]> {
  if ((await ctx.dialect(server)).version.flavor !== 'mariadb' || status.retrievedGtid.trim() === '') return []
  const row = await (await ctx.sql(server)).queryOne('SELECT @@global.gtid_slave_pos AS pos')
  return mariadbMissing(typeof row?.pos === 'string' ? row.pos : '', status.retrievedGtid)
}

function describeBehind(behind: readonly MariadbMissingRange[]): string {
  return behind.map((b) => `domain ${b.domain} seq ${b.fromSeq + 1n}..${b.toSeq}`).join(', ')
}

export interface StoppedPosition {
  executed: {file: string; pos: number}
  read: {file: string; pos: number}
  relayLogFile: string
  relayLogPos: number
}

function positionOf(status: ReplicaStatus): {position: StoppedPosition} {
  return {position: {executed: status.executed, read: status.read, relayLogFile: status.relayLogFile, relayLogPos: status.relayLogPos}}
}

/**
 * The new master's coordinates, and for a failover the transactions it holds (by GTID): what every survivor must hold
 * too. A switchover's survivors lack nothing (each waited for the old master's final position), and nothing reads it.
 */
async function promotionPoint(ctx: StepContext, server: string): Promise<{binlog: BinlogCoordinates; gtid: string; held?: HeldAtPromotion}> {
  const position = await binaryLogPosition(ctx, server)
  return ctx.plan.kind === 'failover' ? {...position, held: (await gtidRecord(ctx, server)).held} : position
}

/**
 * The new master stops replicating (and forgets its source, RESET SLAVE ALL, unless skip_reset_slave). Where the
 * plan has it record coordinates (a failover's, whose writes start only after it), they are read after the stop; a
 * switchover records them in record_position before its promotion and detaches after it: then none are read here.
 */
export const detachReplication: StepHandler<Of<'detach_replication'>> = {
  async check(step, ctx) {
    const status = await replicaStatus(ctx, step.server)
    if (status && step.params.resetSlaveAll) return {done: false}
    if (status && status.ioThread !== 'stopped') return {done: false}
    if (!recordsPosition(step)) return {done: true, reason: `${step.server} already replicates from nobody`}
    // Writes start only after this step, so the coordinates read now are the ones recorded before.
    const {readOnly} = await readOnlyState(ctx, step.server)
    if (!readOnly) return {done: false}
    return {done: true, reason: `${step.server} already replicates from nobody`, outputs: await promotionPoint(ctx, step.server)}
  },
  async act(step, ctx) {
    const dialect = await ctx.dialect(step.server)
    const conn = await ctx.sql(step.server)
    await conn.execute(dialect.stopReplica)
    if (step.params.resetSlaveAll) await conn.execute(dialect.resetReplicaAll)
    return recordsPosition(step) ? await promotionPoint(ctx, step.server) : undefined
  },
  async verify(step, ctx, outputs) {
    if (recordsPosition(step) && !isCoordinates(outputs.binlog)) throw new Error(`${step.server}: no binlog coordinates recorded (is log_bin on?)`)
    const status = await replicaStatus(ctx, step.server)
    if (step.params.resetSlaveAll && status !== null) throw new Error(`${step.server} still has replication settings after RESET SLAVE ALL`)
    if (status?.ioThread === 'running' || status?.sqlThread === 'running') throw new Error(`${step.server} still replicates`)
  },
}

const recordsPosition = (step: Of<'detach_replication'>) => step.outputs.includes('binlog')

/**
 * A switchover's new master, caught up with the blocked old master and not yet writable: its binlog coordinates and
 * GTID position, where the others start. A read, run again from the start if it did not finish; refused once the
 * server takes writes, since its binlog may then hold writes the others must get from it.
 */
export const recordPosition: StepHandler<Of<'record_position'>> = {
  readsOnly: true,
  check: () => Promise.resolve({done: false}),
  async act(step, ctx) {
    return await binaryLogPosition(ctx, step.server)
  },
  async verify(step, ctx, outputs) {
    if (!isCoordinates(outputs.binlog)) throw new Error(`${step.server}: no binlog coordinates recorded (is log_bin on?)`)
    // read_only after the read: it was read_only while its position was read, so the position holds no client write.
    if (!(await readOnlyState(ctx, step.server)).readOnly) throw new Error(`${step.server} takes writes already: the coordinates just read may come after some of them; make a new plan`)
  },
}

/**
 * The new master takes writes; the same effect undoes a switchover's write block (unblock_writes), which also lets go
 * of the block's lock first: read_only=OFF alone would leave every writer waiting on it.
 */
export const enableWrites: StepHandler<Of<'enable_writes'> | Of<'unblock_writes'>> = {
  async check(step, ctx) {
    const state = await readOnlyState(ctx, step.server)
    const replicating = step.type === 'unblock_writes' && step.params.startReplication ? (await replicaStatus(ctx, step.server))?.ioThread === 'running' : true
    return !state.readOnly && !ctx.heldSession(step.server, WRITE_BLOCK) && replicating ? {done: true, reason: `${step.server} is already writable`} : {done: false}
  },
  async act(step, ctx) {
    const conn = await ctx.sql(step.server)
    const lock = step.type === 'unblock_writes' ? ctx.heldSession(step.server, WRITE_BLOCK) : undefined
    if (lock) {
      await lock.execute('UNLOCK TABLES')
      await ctx.releaseSession(step.server, WRITE_BLOCK)
    }
    const dialect = await ctx.dialect(step.server)
    for (const sql of dialect.setReadOnly(false)) await conn.execute(sql)
    // A pair's old master replicates from its standby again, as before the switch.
    if (step.type === 'unblock_writes' && step.params.startReplication) await conn.execute(dialect.startReplica)
    return undefined
  },
  async verify(step, ctx) {
    if ((await readOnlyState(ctx, step.server)).readOnly) throw new Error(`${step.server} is still read_only`)
    if (step.type === 'unblock_writes' && step.params.startReplication) await waitUntil(`${step.server} to replicate again`, ctx.timeoutMs, async () => (await replicaStatus(ctx, step.server))?.sqlThread === 'running')
    if (ctx.heldSession(step.server, WRITE_BLOCK)) throw new Error(`${step.server}: the write block's lock is still held`)
  },
}

/** Where a re-pointed replica connects: the source server as the cluster file describes it, never the plan's copy. */
function sourceOf(step: Of<'repoint_replica'>, ctx: StepContext): {host: string; port: number; user: string} {
  const source = ctx.server(step.params.source)
  return {host: source.hostname, port: source.port, user: ctx.cluster.replUser}
}

export const repointReplica: StepHandler<Of<'repoint_replica'>> = {
  async check(step, ctx) {
    const status = await replicaStatus(ctx, step.server)
    const p = {...step.params, ...sourceOf(step, ctx)}
    if (status && status.sourceHost === p.host && status.sourcePort === p.port && status.ioThread === 'running' && status.sqlThread === 'running')
      return {done: true, reason: `${step.server} already replicates from ${p.source} with both threads running`}
    return {done: false}
  },
  async act(step, ctx) {
    const p = {...step.params, ...sourceOf(step, ctx)}
    const dialect = await ctx.dialect(step.server)
    const conn = await ctx.sql(step.server)
    const status = await replicaStatus(ctx, step.server)
    const pointing = status !== null && status.sourceHost === p.host && status.sourcePort === p.port
    // Not yet replicating (an earlier run's re-point may have replicated since, and moved its binlog).
    if (p.formerMaster && (!pointing || (status.ioThread === 'stopped' && status.sqlThread === 'stopped'))) await refuseWritesAfterBlock(step, ctx)
    // A switchover's old master that already points at the new master (a master-master pair) resumes where it stopped by
    // file/position; by GTID it starts from its own binlog's position, as any former master.
    const resumeOnly = !(p.formerMaster && p.gtid && ctx.plan.kind === 'switchover')
    if (resumeOnly && pointing) {
      // Re-pointed already by an earlier, interrupted run, and it may have replicated since: restarting it from
      // the recorded coordinates would apply those transactions twice. Start what is stopped instead.
      if (status.lastSqlErrno) throw new Error(`${step.server} replicates from ${p.source} but its SQL thread stopped on error ${status.lastSqlErrno}: ${status.lastSqlError}`)
      await conn.execute(dialect.startReplica)
      return undefined
    }
    if (status) await conn.execute(dialect.stopReplica)
    await refuseWritesRelayedAfterBlock(step, ctx)
    // A former master never replicated: its GTID position is what its own binlog holds.
    // After a rewind (rejoin) the position it matches is the plan's: its binlog no longer says.
    if (p.formerMaster && p.gtid && dialect.version.flavor === 'mariadb') {
      if (p.gtidSlavePos === undefined) await conn.execute('SET GLOBAL gtid_slave_pos = @@global.gtid_binlog_pos')
      else {
        if (!/^[\d,-]*$/.test(p.gtidSlavePos)) throw new Error(`${step.server}: ${JSON.stringify(p.gtidSlavePos)} is not a MariaDB GTID position`)
        await conn.execute(`SET GLOBAL gtid_slave_pos = '${p.gtidSlavePos}'`)
      }
    }
    const coordinates = p.coordinates ? ctx.output(p.coordinates.fromStep, p.coordinates.output) : p.at
    if (!p.gtid && !isCoordinates(coordinates)) throw new Error(`${step.server}: no coordinates from ${p.coordinates?.fromStep ?? 'the plan'} to start from`)
    // By file/position the survivor starts where the new master was promoted: it must hold all that the new master
    // held then, or it would never get the difference.
    if (!p.gtid) {
      const short = await shortOfNewMaster(step, ctx)
      if (short) throw new Error(`${short}; ${step.server} is not re-pointed: rebuild it from ${p.source} ("mha plan --cluster ${ctx.cluster.name} --rebuild ${step.server}")`)
    }
    const change = dialect.changeSource({
      host: p.host,
      port: p.port,
      user: p.user,
      ...(ctx.cluster.replPassword ? {password: ctx.cluster.replPassword.reveal()} : {}),
      ...(p.gtid ? {gtid: true} : {coordinates: coordinates as {file: string; pos: number}}),
    })
    await conn.execute(change.sql)
    await conn.execute(dialect.startReplica)
    return undefined
  },
  async verify(step, ctx) {
    await waitReplicating(ctx, step.server, step.params.source)
    // By GTID the survivor fetches what it lacks from the new master: it is complete once it has caught up.
    if (step.params.gtid) await waitUntilHoldsPromotion(step, ctx)
  },
}

/**
 * A switchover's old master is re-pointed only if its binlog is still where the write block left it. After the lock
 * goes, an account that ignores read_only (SUPER, READ ONLY ADMIN: MariaDB has no super_read_only) can still write
 * there, for instance a client whose connection reached it in the moment between the kill of the waiting clients
 * and the release. Re-pointed, that write would stay on the old master alone: by file/position silently (or as an
 * out-of-order GTID error under gtid_strict_mode), by GTID as a "replica ahead" error of its IO thread.
 */
async function refuseWritesAfterBlock(step: Of<'repoint_replica'>, ctx: StepContext): Promise<void> {
  const block = ctx.plan.steps.find((s) => s.type === 'block_writes' && s.server === step.server)
  const final = block ? ctx.output(block.id, 'binlog') : undefined
  if (!isCoordinates(final)) return
  const now = await binlogEnd(ctx, step.server)
  if (compareCoordinates(now, final) !== 0)
    throw new Error(
      `${step.server} wrote after its write block was released (${formatCoordinates(final)} -> ${formatCoordinates(now)}): an account that ignores read_only wrote there, and those transactions are on ${step.server} only; it is not re-pointed: compare ${step.server} with ${step.params.source}, then rebuild it ("mha plan --cluster ${ctx.cluster.name} --rebuild ${step.server}")`,
    )
}

/**
 * A switchover's other replica reads the old master's binlog until it is re-pointed, which may come after the
 * block's release: an account that ignores read_only may write on the old master in between, and the replica then
 * executes it. Re-pointed by file/position from the new master's coordinates, that write would stay on it alone,
 * silently (by GTID its IO thread would refuse the new master, loudly). Read with its replication stopped.
 */
async function refuseWritesRelayedAfterBlock(step: Of<'repoint_replica'>, ctx: StepContext): Promise<void> {
  if (ctx.plan.kind !== 'switchover' || step.params.formerMaster) return
  const block = ctx.plan.steps.find((s) => s.type === 'block_writes')
  const final = block ? optionalOutput(ctx, block.id, 'binlog') : undefined
  if (!block || !isCoordinates(final)) return
  const old = ctx.server(block.server)
  const status = await replicaStatus(ctx, step.server)
  if (!status || status.sourceHost !== old.hostname || status.sourcePort !== old.port) return
  if (compareCoordinates(status.executed, final) > 0)
    throw new Error(
      `${step.server} executed what ${block.server} wrote after its write block was released (final ${formatCoordinates(final)}, ${step.server} at ${formatCoordinates(status.executed)}): an account that ignores read_only wrote on ${block.server}, and ${step.params.source} lacks it; ${step.server} is not re-pointed (its replication is stopped): compare ${step.server} with ${step.params.source}, then rebuild it ("mha plan --cluster ${ctx.cluster.name} --rebuild ${step.server}")`,
    )
}

/** What the new master held when a failover promoted it, from its detach step; null for other plans and old journals. */
function heldAtPromotion(step: Of<'repoint_replica'>, ctx: StepContext): HeldAtPromotion | null {
  if (ctx.plan.kind !== 'failover') return null
  const detach = ctx.plan.steps.find((s) => s.type === 'detach_replication' && s.server === step.params.source)
  if (!detach || ctx.outcome(detach.id) !== 'done') return null
  const held = optionalOutput(ctx, detach.id, 'held') as HeldAtPromotion | undefined
  return held && typeof held === 'object' && 'flavor' in held ? held : null
}

function optionalOutput(ctx: StepContext, stepId: string, name: string): unknown {
  try {
    return ctx.output(stepId, name)
  } catch {
    return undefined
  }
}

/** How far into the dead master's binlog a server's recovery reached: its apply_logs' end, else where its SQL thread stopped. */
function reachedInDeadBinlog(ctx: StepContext, server: string): BinlogCoordinates | null {
  const apply = ctx.plan.steps.find((s) => s.type === 'apply_logs' && s.server === server)
  if (apply && ctx.outcome(apply.id) === 'done') {
    const through = optionalOutput(ctx, apply.id, 'through')
    return isCoordinates(through) ? through : null
  }
  const wait = ctx.plan.steps.find((s) => s.type === 'wait_relay_log_applied' && s.server === server)
  const position = wait && ctx.outcome(wait.id) === 'done' ? (optionalOutput(ctx, wait.id, 'position') as StoppedPosition | undefined) : undefined
  return isCoordinates(position?.executed) ? position.executed : null
}

/**
 * The final check of a failover, per survivor re-pointed by file/position: the transactions it records (GTIDs,
 * read from the server now) against the new master's at its promotion, and how far its recovery reached in the
 * dead master's binlog against how far the new master's did. Null when it holds everything.
 */
async function shortOfNewMaster(step: Of<'repoint_replica'>, ctx: StepContext): Promise<string | null> {
  const held = heldAtPromotion(step, ctx)
  if (!held) return null
  const problems: string[] = []
  const {record} = await gtidRecord(ctx, step.server)
  if (comparableByGtid(held, record)) {
    const gap = shortfall(held, record)
    if (gap.lacking) problems.push(describeShortfall(step.server, step.params.source, gap))
  }
  const reached = reachedInDeadBinlog(ctx, step.server)
  const newMasterReached = reachedInDeadBinlog(ctx, step.params.source)
  if (reached && newMasterReached) {
    const gap = coordinatesShortfall(step.server, reached, step.params.source, newMasterReached, ctx.plan.decision.deadMaster ?? 'the dead master')
    if (gap) problems.push(gap)
  }
  return problems.length ? problems.join('; ') : null
}

/** GTID: the survivor replicates from the new master until it holds what the new master held when promoted; bounded by lack of progress. */
async function waitUntilHoldsPromotion(step: Of<'repoint_replica'>, ctx: StepContext): Promise<void> {
  const held = heldAtPromotion(step, ctx)
  if (!held) return
  let last = ''
  try {
    await waitWhileProgressing(`${step.server} to hold what ${step.params.source} held when promoted`, ctx.timeoutMs, async () => {
      const status = await replicaStatus(ctx, step.server)
      if (status?.lastSqlErrno) throw new Error(`${step.server}: SQL thread error ${status.lastSqlErrno}: ${status.lastSqlError}`)
      // 1236: the new master's binlog no longer has (or never had) what the survivor asks for.
      if (status?.lastIoErrno === 1236) throw new Error(`${step.server} cannot fetch what it lacks from ${step.params.source}: ${status.lastIoError}`)
      const {record} = await gtidRecord(ctx, step.server)
      if (!comparableByGtid(held, record)) return {done: true, progress: ''}
      const gap = shortfall(held, record)
      last = gap.lacking ? describeShortfall(step.server, step.params.source, gap) : ''
      return {done: !gap.lacking, progress: JSON.stringify(record)}
    })
  } catch (error) {
    throw new Error(`${last ? `${last}: ` : ''}${error instanceof Error ? error.message : String(error)}; rebuild ${step.server} from ${step.params.source} if it cannot catch up`)
  }
}

export const verifyReplication: StepHandler<Of<'verify_replication'>> = {
  readsOnly: true,
  check() {
    return Promise.resolve({done: false})
  },
  act() {
    return Promise.resolve(undefined)
  },
  async verify(step, ctx) {
    const problems: string[] = []
    const master = ctx.server(step.params.master)
    // Left read_only on the operator's request, it is not writable yet, rightly.
    if (!ctx.plan.decision.leftToOperator?.disableReadOnly && (await readOnlyState(ctx, master.name)).readOnly) problems.push(`${master.name} is read_only`)
    if ((await replicaStatus(ctx, master.name)) !== null && ctx.plan.kind === 'failover' && !ctx.cluster.failover.skipResetSlave) problems.push(`${master.name} still has replication settings`)
    // A replica whose recovery failed is already reported as left out: only the re-pointed ones are verified.
    const repointed = (name: string) => {
      const repoint = ctx.plan.steps.find((s) => s.type === 'repoint_replica' && s.server === name)
      return !repoint || ctx.outcome(repoint.id) === 'done'
    }
    await Promise.all(
      step.params.replicas.filter(repointed).map(async (name) => {
        try {
          await waitUntil(`${name} to run both threads`, ctx.timeoutMs, async () => {
            const s = await replicaStatus(ctx, name)
            return s?.ioThread === 'running' && s.sqlThread === 'running'
          })
          const s = (await replicaStatus(ctx, name))!
          if (s.sourceHost !== master.hostname || s.sourcePort !== master.port) problems.push(`${name} replicates from ${s.sourceHost}:${s.sourcePort}, not ${master.name}`)
          if (s.lastIoErrno || s.lastSqlErrno) problems.push(`${name}: ${s.lastIoError || s.lastSqlError}`)
        } catch (error) {
          problems.push(error instanceof Error ? error.message : String(error))
        }
      }),
    )
    if (problems.length > 0) throw new Error(problems.join('; '))
  },
}
