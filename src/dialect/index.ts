import {parseBinaryLogStatus, parseMariadbFilters, parseMariadbGtidState, parseMariadbHeartbeat, parseMysqlFilters, parseMysqlGtidState, parseMysqlHeartbeat, parseReplicaStatus} from './rows.js'
import type {ChangeSourceOptions, Dialect, ServerVersion} from './types.js'
import {atLeast} from './version.js'

export type * from './types.js'
export {compareVersions, parseServerVersion} from './version.js'

/**
 * A SQL string literal. Quotes are doubled rather than backslash-escaped so the literal cannot be
 * closed early even in a session with NO_BACKSLASH_ESCAPES (where the doubled backslashes would then
 * be taken literally, so sessions running these statements must keep the default sql_mode on that).
 */
export function sqlString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`
}

function position(pos: number): number {
  if (!Number.isSafeInteger(pos) || pos < 0) throw new Error(`binlog position must be a non-negative integer, got ${pos}`)
  return pos
}

/** Whole seconds: MASTER_POS_WAIT truncates fractions, and 0 means "no timeout" to some of these functions. */
function seconds(timeout: number): number {
  if (!Number.isFinite(timeout) || timeout <= 0) throw new Error(`timeout must be a positive number of seconds, got ${timeout}`)
  return Math.ceil(timeout)
}

interface ChangeSyntax {
  statement: string
  prefix: 'MASTER' | 'SOURCE'
  /** The clause that turns GTID positioning on or off. */
  gtid(on: boolean): string
}

function changeSource(syntax: ChangeSyntax, options: ChangeSourceOptions): {sql: string; display: string} {
  const {host, port, user, password, coordinates, gtid} = options
  if (gtid && coordinates) throw new Error('changeSource takes either coordinates or gtid, not both')
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new Error(`invalid port ${port}`)
  const p = syntax.prefix
  const tail: string[] = []
  if (gtid) tail.push(syntax.gtid(true))
  else if (coordinates) tail.push(syntax.gtid(false), `${p}_LOG_FILE = ${sqlString(coordinates.file)}`, `${p}_LOG_POS = ${position(coordinates.pos)}`)
  const render = (passwordLiteral: string | undefined) => {
    const clauses = [`${p}_HOST = ${sqlString(host)}`, `${p}_PORT = ${port}`, `${p}_USER = ${sqlString(user)}`]
    if (passwordLiteral !== undefined) clauses.push(`${p}_PASSWORD = ${passwordLiteral}`)
    return `${syntax.statement} ${[...clauses, ...tail].join(', ')}`
  }
  return {
    sql: render(password === undefined ? undefined : sqlString(password)),
    display: render(password === undefined ? undefined : "'********'"),
  }
}

/** MASTER_HEARTBEAT_PERIOD takes seconds with a millisecond resolution, up to 4294967 (about 49 days). */
function heartbeatPeriod(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0 || seconds > 4_294_967) throw new Error(`heartbeat period must be between 0 and 4294967 seconds, got ${seconds}`)
  return String(Math.round(seconds * 1000) / 1000)
}

/**
 * MySQL's heartbeat facts from performance_schema, ages computed by the server against its own clock (the
 * timestamps are in the session time zone, as NOW() is). A zero timestamp means none yet. 5.7 has no
 * LAST_QUEUED_TRANSACTION columns.
 */
function mysqlHeartbeatQuery(lastQueued: boolean): string {
  const age = (column: string) => `IF(UNIX_TIMESTAMP(s.${column}) > 0, TIMESTAMPDIFF(MICROSECOND, s.${column}, NOW(6)), NULL)`
  return (
    'SELECT c.HEARTBEAT_INTERVAL AS heartbeat_period, s.COUNT_RECEIVED_HEARTBEATS AS received_heartbeats, ' +
    `${age('LAST_HEARTBEAT_TIMESTAMP')} AS last_heartbeat_age_us, ${lastQueued ? age('LAST_QUEUED_TRANSACTION_END_QUEUE_TIMESTAMP') : 'NULL'} AS last_event_age_us ` +
    'FROM performance_schema.replication_connection_configuration c JOIN performance_schema.replication_connection_status s ON s.CHANNEL_NAME = c.CHANNEL_NAME ' +
    "WHERE c.CHANNEL_NAME = ''"
  )
}

const SLAVE_CAUGHT_UP = 'Slave has read all relay log; waiting for more updates'

function mariadb(version: ServerVersion): Dialect {
  if (version.major < 10) throw new Error(`MariaDB ${version.text} is not supported: GTID replication needs MariaDB 10.0 or newer`)
  const syntax: ChangeSyntax = {statement: 'CHANGE MASTER TO', prefix: 'MASTER', gtid: (on) => `MASTER_USE_GTID = ${on ? 'slave_pos' : 'no'}`}
  return {
    version,
    showReplicaStatus: 'SHOW SLAVE STATUS',
    parseReplicaStatus,
    showReplicaHosts: 'SHOW SLAVE HOSTS',
    // SHOW SLAVE STATUS lacks the heartbeat columns; the ALL form has them, one row per connection.
    replicaHeartbeatQuery: 'SHOW ALL SLAVES STATUS',
    parseReplicaHeartbeat: parseMariadbHeartbeat,
    setHeartbeatPeriod: (s) => `CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD = ${heartbeatPeriod(s)}`,
    showBinaryLogStatus: 'SHOW MASTER STATUS',
    parseBinaryLogStatus,
    showBinaryLogs: 'SHOW BINARY LOGS',
    stopReplica: 'STOP SLAVE',
    stopReplicaIoThread: 'STOP SLAVE IO_THREAD',
    startReplica: 'START SLAVE',
    resetReplicaAll: 'RESET SLAVE ALL',
    changeSource: (options) => changeSource(syntax, options),
    waitForCoordinates: (c, timeout) =>
      `SELECT MASTER_POS_WAIT(${sqlString(c.file)}, ${position(c.pos)}, ${seconds(timeout)}) AS result`,
    waitForGtid: (gtid, timeout) => `SELECT MASTER_GTID_WAIT(${sqlString(gtid)}, ${seconds(timeout)}) AS result`,
    setReadOnly: (on) => [`SET GLOBAL read_only = ${on ? 'ON' : 'OFF'}`],
    readOnlyQuery: 'SELECT @@global.read_only AS read_only, NULL AS super_read_only',
    gtidStateQuery:
      'SELECT @@global.gtid_binlog_pos AS gtid_binlog_pos, @@global.gtid_binlog_state AS gtid_binlog_state, @@global.gtid_slave_pos AS gtid_slave_pos, ' +
      '@@global.gtid_current_pos AS gtid_current_pos, @@global.gtid_strict_mode AS gtid_strict_mode, ' +
      '@@global.gtid_domain_id AS gtid_domain_id',
    parseGtidState: parseMariadbGtidState,
    // MariaDB 10.0 and 10.1 still used the older wording.
    sqlThreadCaughtUpStates: [SLAVE_CAUGHT_UP, 'Slave has read all relay log; waiting for the slave I/O thread to update it'],
    busyWorkersQuery: "SELECT COUNT(*) AS busy FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_worker' AND STATE <> 'Waiting for work from SQL thread'",
    replicationFiltersQuery:
      'SELECT @@global.replicate_do_db AS replicate_do_db, @@global.replicate_ignore_db AS replicate_ignore_db, @@global.replicate_do_table AS replicate_do_table, ' +
      '@@global.replicate_ignore_table AS replicate_ignore_table, @@global.replicate_wild_do_table AS replicate_wild_do_table, @@global.replicate_wild_ignore_table AS replicate_wild_ignore_table',
    parseReplicationFilters: parseMariadbFilters,
  }
}

function mysql(version: ServerVersion): Dialect {
  if (!atLeast(version, 5, 7)) throw new Error(`MySQL ${version.text} is not supported: MySQL 5.7 or newer is needed`)
  const replica = atLeast(version, 8, 0, 22)
  const superReadOnly = atLeast(version, 5, 7, 8)
  const syntax: ChangeSyntax = atLeast(version, 8, 0, 23)
    ? {statement: 'CHANGE REPLICATION SOURCE TO', prefix: 'SOURCE', gtid: (on) => `SOURCE_AUTO_POSITION = ${on ? 1 : 0}`}
    : {statement: 'CHANGE MASTER TO', prefix: 'MASTER', gtid: (on) => `MASTER_AUTO_POSITION = ${on ? 1 : 0}`}
  const posWait = atLeast(version, 8, 0, 26) ? 'SOURCE_POS_WAIT' : 'MASTER_POS_WAIT'
  const keyword = replica ? 'REPLICA' : 'SLAVE'
  return {
    version,
    showReplicaStatus: `SHOW ${keyword} STATUS`,
    parseReplicaStatus,
    showReplicaHosts: replica ? 'SHOW REPLICAS' : 'SHOW SLAVE HOSTS',
    replicaHeartbeatQuery: mysqlHeartbeatQuery(atLeast(version, 8, 0, 2)),
    parseReplicaHeartbeat: parseMysqlHeartbeat,
    setHeartbeatPeriod: (s) => `${syntax.statement} ${syntax.prefix}_HEARTBEAT_PERIOD = ${heartbeatPeriod(s)}`,
    showBinaryLogStatus: atLeast(version, 8, 2) ? 'SHOW BINARY LOG STATUS' : 'SHOW MASTER STATUS',
    parseBinaryLogStatus,
    showBinaryLogs: 'SHOW BINARY LOGS',
    stopReplica: `STOP ${keyword}`,
    stopReplicaIoThread: `STOP ${keyword} IO_THREAD`,
    startReplica: `START ${keyword}`,
    resetReplicaAll: `RESET ${keyword} ALL`,
    changeSource: (options) => changeSource(syntax, options),
    waitForCoordinates: (c, timeout) => `SELECT ${posWait}(${sqlString(c.file)}, ${position(c.pos)}, ${seconds(timeout)}) AS result`,
    waitForGtid: (gtid, timeout) => `SELECT WAIT_FOR_EXECUTED_GTID_SET(${sqlString(gtid)}, ${seconds(timeout)}) AS result`,
    // super_read_only=ON implies read_only=ON and read_only=OFF implies super_read_only=OFF, hence the order.
    setReadOnly: (on) => {
      if (!superReadOnly) return [`SET GLOBAL read_only = ${on ? 'ON' : 'OFF'}`]
      return on ? ['SET GLOBAL read_only = ON', 'SET GLOBAL super_read_only = ON'] : ['SET GLOBAL super_read_only = OFF', 'SET GLOBAL read_only = OFF']
    },
    readOnlyQuery: `SELECT @@global.read_only AS read_only, ${superReadOnly ? '@@global.super_read_only' : 'NULL'} AS super_read_only`,
    gtidStateQuery:
      'SELECT @@global.gtid_mode AS gtid_mode, @@global.gtid_executed AS gtid_executed, ' +
      '@@global.enforce_gtid_consistency AS enforce_gtid_consistency',
    parseGtidState: parseMysqlGtidState,
    // 8.0.26 renamed the stage; terminology_use_previous brings the old name back.
    sqlThreadCaughtUpStates: [SLAVE_CAUGHT_UP, 'Replica has read all relay log; waiting for more updates'],
    // The same stage name in 5.7 and 8.x; the thread was renamed replica_worker in 8.0.26.
    busyWorkersQuery:
      "SELECT COUNT(*) AS busy FROM performance_schema.threads WHERE NAME IN ('thread/sql/slave_worker', 'thread/sql/replica_worker') AND COALESCE(PROCESSLIST_STATE, '') <> 'Waiting for an event from Coordinator'",
    // 8.0 keeps the global filters in performance_schema; 5.7 shows them only in SHOW SLAVE STATUS.
    replicationFiltersQuery: atLeast(version, 8, 0) ? 'SELECT FILTER_NAME, FILTER_RULE FROM performance_schema.replication_applier_global_filters' : null,
    parseReplicationFilters: parseMysqlFilters,
  }
}

export function dialectFor(version: ServerVersion): Dialect {
  return version.flavor === 'mariadb' ? mariadb(version) : mysql(version)
}
