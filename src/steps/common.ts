import type {ServerConnection} from '../inspect/mysql.js'
import type {BinlogCoordinates, ReplicaStatus} from '../dialect/types.js'
import type {HeldAtPromotion, SurvivorRecord} from '../recovery/completeness.js'
import {progressMarks} from '../recovery/apply.js'
import {PROGRESS_TABLE} from '../recovery/exactly-once.js'
import type {StepContext} from './types.js'

/** The held session of mha's own whose lock blocks every writer on a switchover's old master (block_writes to release_write_block). */
export const WRITE_BLOCK = 'write-block'

export async function replicaStatus(ctx: StepContext, server: string): Promise<ReplicaStatus | null> {
  const dialect = await ctx.dialect(server)
  const row = await (await ctx.sql(server)).queryOne(dialect.showReplicaStatus)
  return row ? dialect.parseReplicaStatus(row) : null
}

export async function readOnlyState(ctx: StepContext, server: string): Promise<{readOnly: boolean; superReadOnly: boolean | null}> {
  const dialect = await ctx.dialect(server)
  const row = (await (await ctx.sql(server)).queryOne(dialect.readOnlyQuery))!
  const on = (v: unknown) => v === 1 || v === '1' || v === 'ON'
  return {readOnly: on(row.read_only), superReadOnly: row.super_read_only === null || row.super_read_only === undefined ? null : on(row.super_read_only)}
}

export async function binaryLogPosition(ctx: StepContext, server: string): Promise<{binlog: BinlogCoordinates; gtid: string}> {
  const dialect = await ctx.dialect(server)
  const conn = await ctx.sql(server)
  const status = dialect.parseBinaryLogStatus((await conn.queryOne(dialect.showBinaryLogStatus))!)
  const gtid = dialect.parseGtidState((await conn.queryOne(dialect.gtidStateQuery))!)
  return {binlog: {file: status.file, pos: status.pos}, gtid: gtid.binlogPos}
}

/** Where a server's binlog ends now (SHOW MASTER STATUS alone): one round trip where the GTID position is not needed. */
export async function binlogEnd(ctx: StepContext, server: string): Promise<BinlogCoordinates> {
  const dialect = await ctx.dialect(server)
  const {file, pos} = dialect.parseBinaryLogStatus((await (await ctx.sql(server)).queryOne(dialect.showBinaryLogStatus))!)
  return {file, pos}
}

/**
 * The pauses between looks: most waits end within milliseconds (a thread stops, a replica connects its IO thread), so
 * for the first 20 ms a look comes every millisecond, and later ones at 5 ms doubling to stepMs, sparing a server
 * that takes its time.
 */
function* pauses(stepMs: number): Generator<number> {
  const started = Date.now()
  while (Date.now() - started < 20) yield Math.min(1, stepMs)
  for (let ms = Math.min(5, stepMs); ; ms = Math.min(stepMs, ms * 2)) yield ms
}

/** Poll until probe() says yes; every wait is bounded. */
export async function waitUntil(what: string, timeoutMs: number, probe: () => Promise<boolean>, stepMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (const pause of pauses(stepMs)) {
    if (await probe()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, pause))
  }
}

/**
 * Poll until probe() says done; the bound is on lack of progress: each change of `progress` (a position, say)
 * starts the timeout again, so a large backlog that keeps moving is waited for and a stuck one is not.
 */
export async function waitWhileProgressing(what: string, idleTimeoutMs: number, probe: () => Promise<{done: boolean; progress: string}>, stepMs = 50): Promise<void> {
  let deadline = Date.now() + idleTimeoutMs
  let last: string | undefined
  for (const pause of pauses(stepMs)) {
    const {done, progress} = await probe()
    if (done) return
    if (progress !== last) {
      last = progress
      deadline = Date.now() + idleTimeoutMs
    }
    if (Date.now() > deadline) throw new Error(`no progress for ${Math.round(idleTimeoutMs / 1000)} s waiting for ${what} (still at ${progress})`)
    await new Promise((resolve) => setTimeout(resolve, pause))
  }
}

export function isCoordinates(value: unknown): value is BinlogCoordinates {
  return typeof value === 'object' && value !== null && typeof (value as BinlogCoordinates).file === 'string' && typeof (value as BinlogCoordinates).pos === 'number'
}

/** Wait until `server` runs both replication threads; an SQL error ends the wait at once, a timeout says the last state. */
export async function waitReplicating(ctx: StepContext, server: string, source: string): Promise<void> {
  let last = ''
  await waitUntil(`${server} to replicate from ${source}`, ctx.timeoutMs, async () => {
    const status = await replicaStatus(ctx, server)
    if (status?.lastSqlErrno) throw new Error(`${server}: SQL thread error ${status.lastSqlErrno}: ${status.lastSqlError}`)
    last = status ? `io=${status.ioThread} sql=${status.sqlThread} ${status.lastIoError}` : 'no replication'
    return status?.ioThread === 'running' && status.sqlThread === 'running'
  }).catch((error: unknown) => {
    throw new Error(`${error instanceof Error ? error.message : String(error)} (${last})`)
  })
}

/** Client threads of a server: everything but its own threads, replication dumps, this connection and `exclude` (mha's others). */
export async function clientThreads(conn: ServerConnection, exclude: number[] = []): Promise<{id: number; seconds: number; statement: string; command: string}[]> {
  const rows = await conn.query(
    "SELECT ID AS id, TIME AS seconds, COALESCE(INFO, '') AS statement, COMMAND AS command FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND USER NOT IN ('system user', 'event_scheduler') AND COMMAND NOT IN ('Binlog Dump', 'Binlog Dump GTID', 'Daemon')",
  )
  return rows.map((r) => ({id: Number(r.id), seconds: Number(r.seconds), statement: String(r.statement), command: String(r.command)})).filter((t) => !exclude.includes(t.id))
}

/**
 * What a server records of the transactions it holds, in both forms the final comparison of a failover uses:
 * as the new master at its promotion, and as a survivor. Read in one statement (and mha's progress marks on a
 * MariaDB server without a binlog, where apply_logs left them).
 */
export async function gtidRecord(ctx: StepContext, server: string): Promise<{held: HeldAtPromotion; record: SurvivorRecord}> {
  const conn = await ctx.sql(server)
  const text = (row: Record<string, unknown> | undefined, column: string): string => {
    const value = row?.[column]
    return typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint' ? String(value) : Buffer.isBuffer(value) ? value.toString() : ''
  }
  if ((await ctx.dialect(server)).version.flavor === 'mariadb') {
    const row = await conn.queryOne('SELECT @@global.server_id AS server_id, @@global.log_bin AS log_bin, @@global.gtid_binlog_state AS state, @@global.gtid_slave_pos AS slave_pos')
    const logBin = Number(row?.log_bin) === 1
    let marks: string | null = null
    if (!logBin && (await conn.queryOne(`SELECT 1 AS found FROM information_schema.TABLES WHERE CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) = '${PROGRESS_TABLE}'`)))
      marks = await progressMarks(conn)
    return {
      held: {flavor: 'mariadb', serverId: Number(row?.server_id), binlogState: text(row, 'state'), slavePos: text(row, 'slave_pos')},
      record: {flavor: 'mariadb', logBin, binlogState: text(row, 'state'), slavePos: text(row, 'slave_pos'), marks},
    }
  }
  const row = await conn.queryOne('SELECT @@global.server_uuid AS uuid, @@global.gtid_mode AS gtid_mode, @@global.gtid_executed AS executed')
  return {
    held: {flavor: 'mysql', uuid: text(row, 'uuid'), gtidMode: text(row, 'gtid_mode'), executed: text(row, 'executed')},
    record: {flavor: 'mysql', gtidMode: text(row, 'gtid_mode'), executed: text(row, 'executed')},
  }
}
