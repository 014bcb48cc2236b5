import {compareCoordinates, formatCoordinates} from '../binlog/coordinates.js'
import {compareMariadbPositions, mysqlGtidIsSubset} from '../gtid/index.js'
import type {Step} from '../plan/types.js'
import {isRead, switchoverNeeds, type SwitchoverParty} from '../plan/switchover.js'
import {readSqlFacts, replicationLogin} from '../inspect/inspect.js'
import {binaryLogPosition, binlogEnd, clientThreads, isCoordinates, readOnlyState, replicaStatus, WRITE_BLOCK} from './common.js'
import type {StepContext, StepHandler} from './types.js'
import type {ServerConnection} from '../inspect/mysql.js'
import {proxyFindings} from '../analysis/routing.js'
import {observeProxies} from '../routing/observe.js'
import {phase} from '../util/phases.js'

type Of<T extends Step['type']> = Extract<Step, {type: T}>

/** The switchover's preconditions, live, right before the first effect. */
export const checkSwitchover: StepHandler<Of<'check_switchover'>> = {
  readsOnly: true,
  check: () => Promise.resolve({done: false}),
  act: () => Promise.resolve(undefined),
  async verify(step, ctx) {
    // Every server read at once, each over its own connection: replication, the old master's running updates, what
    // the plan checked in the snapshot (filters, a busy target, held locks, what re-pointing needs) read again now,
    // since the first effect comes after this step, and each proxy.
    const waiting = ctx.plan.steps.filter((s) => s.type === 'wait_caught_up').map((s) => s.server)
    const replication = async (name: string): Promise<string[]> => {
      const s = await replicaStatus(ctx, name)
      if (!s || s.ioThread !== 'running' || s.sqlThread !== 'running') return [`${name}'s replication is not running`]
      if (name === step.params.target && (s.secondsBehind === null || s.secondsBehind > step.params.maxLagSeconds)) return [`${name} lags ${s.secondsBehind ?? '?'} s (limit ${step.params.maxLagSeconds} s)`]
      return []
    }
    const updates = async (): Promise<string[]> =>
      (await clientThreads(await ctx.sql(step.server))).filter((t) => t.command === 'Query' && t.seconds >= step.params.runningUpdatesLimit && !isRead(t.statement)).map((t) => `${step.server} has an update running for ${t.seconds} s (thread ${t.id})`)
    // The replication login is tried on the target alone: the others are re-pointed to it.
    const party = async (name: string, login = false): Promise<SwitchoverParty> => {
      const server = ctx.cluster.servers.find((s) => s.name === name)
      const [facts, replLogin] = await Promise.all([readSqlFacts(await ctx.sql(name), ctx.cluster.replUser), login && server && ctx.cluster.replPassword ? replicationLogin(ctx.cluster, server) : undefined])
      return {name, facts: replLogin ? {...facts, replLogin} : facts}
    }
    // Each proxy answers and sends writes to the old master alone: a drain that could not run would undo the switch
    // half-way, and one that found two writers would hide a problem the switch should not start on.
    const proxies = async (): Promise<string[]> => proxyFindings(ctx.cluster, await observeProxies(ctx.cluster), {name: step.server, dead: false}).findings.map((f) => f.message)
    const others = waiting.filter((name) => name !== step.params.target)
    // The servers side by side; each one's statements queue on its one connection.
    const [replicationProblems, updateProblems, master, target, rest, proxyProblems] = await Promise.all([
      Promise.all(waiting.map(replication)),
      updates(),
      party(step.server),
      party(step.params.target, true),
      Promise.all(others.map((name) => party(name))),
      proxies(),
    ])
    const problems = [...replicationProblems.flat(), ...updateProblems, ...switchoverNeeds(ctx.cluster, master, target, rest), ...proxyProblems]
    if (problems.length > 0) throw new Error(`switchover refused: ${problems.join('; ')}; nothing was changed`)
  },
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const samePosition = (a: {binlog: {file: string; pos: number}; gtid: string}, b: typeof a) => a.binlog.file === b.binlog.file && a.binlog.pos === b.binlog.pos && a.gtid === b.gtid

/**
 * The old master stops taking writes from every account, and its final position is read once it cannot move.
 * read_only stops ordinary accounts only: SUPER and READ ONLY ADMIN (MariaDB 10.11) ignore it, and MariaDB has no
 * super_read_only. Killing client threads once is no fence either: a client reconnects, and a commit under way
 * may finish after KILL returns. So where super_read_only is missing, mha also takes FLUSH TABLES WITH READ LOCK
 * (MHA's own online-switch fence) on a session of its own and holds it past the promotion (release_write_block)
 * or until the switch is undone (unblock_writes): under it no session commits, whatever its privileges, and FTWRL
 * itself waits for commits under way. The clients are killed beside it, so that none holds it long, and each
 * attempt is bounded by lock_wait_timeout. Under the lock the position is then read once; without it (super_read_only),
 * until two reads 100 ms apart agree with no client left running a statement, within the wait timeout.
 *
 * Writes are blocked from read_only=ON on: the lock's session is connected, its lock_wait_timeout set and the tables
 * flushed (FLUSH NO_WRITE_TO_BINLOG TABLES, as MHA does before its switch, so that FTWRL finds little to close)
 * before that, and the two reads of the final position go over both sessions at once.
 */
export const blockWrites: StepHandler<Of<'block_writes'>> = {
  async check(step, ctx) {
    const state = await readOnlyState(ctx, step.server)
    // A lock from an earlier run ended with its session: block again, and read a position that holds now.
    const locked = state.superReadOnly !== null || ctx.heldSession(step.server, WRITE_BLOCK) !== undefined
    const blocked = state.readOnly && state.superReadOnly !== false && locked && !(step.params.stopReplication && (await replicaStatus(ctx, step.server))?.ioThread === 'running')
    return blocked ? {done: true, reason: `${step.server} already refuses writes`, outputs: await binaryLogPosition(ctx, step.server)} : {done: false}
  },
  async act(step, ctx) {
    const dialect = await ctx.dialect(step.server)
    const conn = await ctx.sql(step.server)
    const deadline = Date.now() + ctx.timeoutMs
    const lock = (await readOnlyState(ctx, step.server)).superReadOnly === null
    try {
      if (lock) await lockSession(step.server, ctx, true)
      // A pair's old master stops replicating from its standby first: once the standby takes writes, the old master
      // would relay them to the replicas that still read its binlog, which then get them again from the new master.
      if (step.params.stopReplication) await conn.execute(dialect.stopReplica)
      for (const sql of dialect.setReadOnly(true)) await conn.execute(sql)
      phase(`${step.id}: read_only on`)
      if (lock) {
        const {holder, killing} = await lockAgainstEveryone(step.server, ctx, deadline)
        phase(`${step.id}: lock held`)
        // FTWRL has waited for every commit under way and admits none: its position is final, and a client can only
        // wait (it is killed before the lock goes). Should a write still slip past, wait_caught_up finds the source
        // moved and refuses before the promotion. Both read at once: the GTID position on the other session, after
        // its kills (most often over by now).
        const [status, gtid] = await Promise.all([holder.queryOne(dialect.showBinaryLogStatus), killing.then(() => conn.queryOne(dialect.gtidStateQuery))])
        const {file, pos} = dialect.parseBinaryLogStatus(status!)
        return {binlog: {file, pos}, gtid: dialect.parseGtidState(gtid!).binlogPos}
      }
      for (;;) {
        // Without the lock any statement may write: clients are killed until none is left running one.
        const clients = await clientThreads(conn, [conn.threadId])
        const writers = clients.filter((t) => t.command !== 'Sleep')
        for (const t of clients) await conn.execute(`KILL ${t.id}`).catch(() => undefined)
        const first = await binaryLogPosition(ctx, step.server)
        await sleep(100)
        const second = await binaryLogPosition(ctx, step.server)
        if (writers.length === 0 && samePosition(first, second)) return second
        if (Date.now() > deadline)
          throw new Error(`${step.server}'s position did not settle within ${Math.ceil(ctx.timeoutMs / 1000)} s (${formatCoordinates(first.binlog)} -> ${formatCoordinates(second.binlog)}, ${writers.length} client(s) still running statements)`)
      }
    } catch (error) {
      // The step fails whole: no rollback step runs for a step that did not succeed, so it undoes itself here.
      await ctx.releaseSession(step.server, WRITE_BLOCK).catch(() => undefined)
      for (const sql of dialect.setReadOnly(false)) await conn.execute(sql).catch(() => undefined)
      if (step.params.stopReplication) await conn.execute(dialect.startReplica).catch(() => undefined)
      throw error
    }
  },
  async verify(step, ctx, outputs) {
    const state = await readOnlyState(ctx, step.server)
    if (!state.readOnly) throw new Error(`${step.server} still takes writes`)
    if (state.superReadOnly === null && !ctx.heldSession(step.server, WRITE_BLOCK)) throw new Error(`${step.server}: the lock against writers is not held`)
    if (!isCoordinates(outputs.binlog)) throw new Error(`${step.server}: no final binlog position recorded`)
    if (step.params.stopReplication && (await replicaStatus(ctx, step.server))?.ioThread === 'running') throw new Error(`${step.server} still replicates from its standby`)
  },
}

/** How long one FTWRL attempt (and the flush before the block) may wait for a lock: 1-3 s, within the wait timeout. */
const lockWaitSeconds = (ctx: StepContext) => Math.max(1, Math.min(3, Math.floor(ctx.timeoutMs / 2000)))

/**
 * The session that takes the lock, opened with its lock_wait_timeout set. Before the block (`flush`), it also closes
 * the tables every session has open, MHA's FLUSH NO_WRITE_TO_BINLOG TABLES: FTWRL then has little to close while
 * writes wait. That flush only saves time: one that cannot be done within lock_wait_timeout (a long statement holds
 * a table) is left to FTWRL, whose attempt kills such statements.
 */
async function lockSession(server: string, ctx: StepContext, flush = false): Promise<ServerConnection> {
  const held = ctx.heldSession(server, WRITE_BLOCK)
  if (held) return held
  const holder = await ctx.holdSession(server, WRITE_BLOCK)
  await holder.execute(`SET SESSION lock_wait_timeout = ${lockWaitSeconds(ctx)}`)
  if (flush) await holder.execute('FLUSH NO_WRITE_TO_BINLOG TABLES', (lockWaitSeconds(ctx) + 5) * 1000).catch(() => undefined)
  return holder
}

/**
 * FLUSH TABLES WITH READ LOCK on a held session, retried until the deadline. Beside each try the client threads
 * are killed over the other session (a long statement would hold FTWRL, and every writer queued behind it, until it
 * ends); the try waits at most lock_wait_timeout. A try that fails is killed on the server, so that no half-taken
 * lock outlives it. Returns once the lock is held, with the kills that may still be under way.
 */
async function lockAgainstEveryone(server: string, ctx: StepContext, deadline: number): Promise<{holder: ServerConnection; killing: Promise<void>}> {
  const conn = await ctx.sql(server)
  for (let attempt = 1; ; attempt++) {
    const holder = await lockSession(server, ctx)
    const killing = killClients(conn, [holder.threadId])
    // Awaited by the caller, or below: never a rejection without a handler meanwhile.
    killing.catch(() => undefined)
    try {
      await holder.execute('FLUSH TABLES WITH READ LOCK', (lockWaitSeconds(ctx) + 5) * 1000)
      return {holder, killing}
    } catch (error) {
      await killing.catch(() => undefined)
      await conn.execute(`KILL ${holder.threadId}`).catch(() => undefined)
      await ctx.releaseSession(server, WRITE_BLOCK).catch(() => undefined)
      if (Date.now() > deadline) throw new Error(`${server}: FLUSH TABLES WITH READ LOCK not granted after ${attempt} tries (${error instanceof Error ? error.message : String(error)})`)
    }
  }
}

/** Every client session of the server killed, but for `conn` itself and `exclude` (mha's own others). */
async function killClients(conn: ServerConnection, exclude: number[]): Promise<void> {
  for (const t of await clientThreads(conn, exclude)) await conn.execute(`KILL ${t.id}`).catch(() => undefined)
}

/**
 * After the promotion, the old master lets go of the lock. First it checks that its position never moved past the
 * final one (a write there would be on the old master only), then kills every client session, since those waiting
 * on the lock would otherwise commit on what is now a replica, and only then releases the lock.
 */
export const releaseWriteBlock: StepHandler<Of<'release_write_block'>> = {
  check: () => Promise.resolve({done: false}),
  async act(step, ctx) {
    const conn = await ctx.sql(step.server)
    const final = ctx.output(step.params.finalPosition.fromStep, step.params.finalPosition.output)
    const now = await binlogEnd(ctx, step.server)
    if (!isCoordinates(final)) throw new Error(`no final position from ${step.params.finalPosition.fromStep}`)
    if (compareCoordinates(now, final) !== 0)
      throw new Error(
        `${step.server} wrote after its final position (${formatCoordinates(final)} -> ${formatCoordinates(now)}): those transactions are on ${step.server} only; compare ${step.server} with ${step.params.newMaster} and rebuild ${step.server} from ${step.params.newMaster} before it replicates`,
      )
    const holder = ctx.heldSession(step.server, WRITE_BLOCK)
    await killClients(conn, holder ? [holder.threadId] : [])
    if (holder) {
      await holder.execute('UNLOCK TABLES')
      await ctx.releaseSession(step.server, WRITE_BLOCK)
    }
    return undefined
  },
  async verify(step, ctx) {
    if (ctx.heldSession(step.server, WRITE_BLOCK)) throw new Error(`${step.server}: the write block's lock is still held`)
    if (!(await readOnlyState(ctx, step.server)).readOnly) throw new Error(`${step.server} takes writes beside ${step.params.newMaster}`)
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

/**
 * The write block holds if the source has written nothing since its final position (a run resumed after its lock's
 * session ended, say). Once the source replicates from the new master (a resumed run after the promotion), its
 * binlog moves: not checked then.
 */
async function blockHeld(step: Of<'wait_caught_up'>, ctx: StepContext): Promise<void> {
  const final = ctx.output(step.params.position.fromStep, 'binlog')
  const now = await binlogEnd(ctx, step.params.source)
  if (isCoordinates(final) && compareCoordinates(now, final) !== 0 && (await replicaStatus(ctx, step.params.source)) === null) {
    // After the release (the other replicas wait after the promotion) an account that ignores read_only can write
    // there; before it, the block itself failed.
    const release = ctx.plan.steps.find((s) => s.type === 'release_write_block' && s.server === step.params.source)
    const why =
      release && ctx.outcome(release.id) === 'done'
        ? `an account that ignores read_only wrote there after the write block's release, and ${step.server} still reads its binlog; ${step.server} is not re-pointed: compare it with the new master, then rebuild it ("mha plan --cluster ${ctx.cluster.name} --rebuild ${step.server}")`
        : 'the write block did not hold'
    throw new Error(`${step.params.source} wrote after its final position (${formatCoordinates(final)} -> ${formatCoordinates(now)}): ${why}`)
  }
}

/** A replica executes everything the blocked master wrote, within the wait timeout, and the master wrote nothing since. */
export const waitCaughtUp: StepHandler<Of<'wait_caught_up'>> = {
  readsOnly: true,
  async check(step, ctx) {
    // A replica that went past the final position (a resumed run whose block ended with the killed run's session,
    // and a write slipped in) is not done: the switchover stops here, before the promotion, and is rolled back.
    // Both read at once: the replica's position and the source's.
    const [caught] = await Promise.all([caughtUp(step, ctx), blockHeld(step, ctx)])
    return caught ? {done: true, reason: `${step.server} has everything ${step.params.source} wrote`} : {done: false}
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
    const [caught] = await Promise.all([caughtUp(step, ctx), blockHeld(step, ctx)])
    if (!caught) throw new Error(`${step.server} still lacks what ${step.params.source} wrote`)
  },
}
