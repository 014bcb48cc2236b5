import type {BinaryLogStatus, GtidState, ReplicaHeartbeat, ReplicaStatus, ReplicationFilters} from './types.js'

type Row = Record<string, unknown>

/** Reads a row by column name, trying each spelling in turn (MySQL 8.0.22 renamed Master_* to Source_* and so on). */
function columns(row: Row) {
  const value = (names: readonly string[], required: boolean): unknown => {
    for (const name of names) if (Object.hasOwn(row, name)) return row[name]
    if (required) throw new Error(`status row has no column ${names.join(' or ')}`)
    return undefined
  }
  const text = (names: readonly string[], required: boolean): string => {
    const v = value(names, required)
    if (v === null || v === undefined) return ''
    if (typeof v === 'string') return v
    if (typeof v === 'number' || typeof v === 'bigint') return String(v)
    throw new Error(`column ${names[0]} holds ${typeof v}, not text`)
  }
  const integer = (names: readonly string[], required: boolean): number | null => {
    const v = value(names, required)
    if (v === null || v === undefined || v === '') return null
    const n = typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint' ? Number(v) : NaN
    if (!Number.isSafeInteger(n)) throw new Error(`column ${names[0]} holds ${JSON.stringify(v)}, not an integer`)
    return n
  }
  const decimal = (names: readonly string[]): number => {
    const v = value(names, true)
    const n = typeof v === 'string' || typeof v === 'number' ? Number(v) : NaN
    if (v === '' || !Number.isFinite(n)) throw new Error(`column ${names[0]} holds ${JSON.stringify(v)}, not a number`)
    return n
  }
  return {
    text: (...names: string[]) => text(names, true),
    decimal: (...names: string[]) => decimal(names),
    optionalText: (...names: string[]) => text(names, false),
    int: (...names: string[]) => {
      const n = integer(names, true)
      if (n === null) throw new Error(`column ${names[0]} is NULL`)
      return n
    },
    optionalInt: (...names: string[]) => integer(names, false),
  }
}

/** MySQL breaks long GTID sets over lines after each comma. */
function gtidSet(text: string): string {
  return text.replace(/\s+/g, '')
}

function flag(value: unknown): boolean {
  return /^(1|on|yes|true)$/i.test(String(value))
}

function gtidMode(row: Row, col: ReturnType<typeof columns>): ReplicaStatus['gtidMode'] {
  if (Object.hasOwn(row, 'Using_Gtid')) {
    const using = col.text('Using_Gtid').toLowerCase()
    if (using === 'no' || using === 'slave_pos' || using === 'current_pos') return using
    throw new Error(`unknown Using_Gtid value ${JSON.stringify(using)}`)
  }
  return col.optionalInt('Auto_Position') === 1 ? 'auto_position' : 'no'
}

export function parseReplicaStatus(row: Row): ReplicaStatus {
  const col = columns(row)
  const io = col.text('Slave_IO_Running', 'Replica_IO_Running')
  const mariadb = Object.hasOwn(row, 'Gtid_IO_Pos')
  return {
    sourceHost: col.text('Master_Host', 'Source_Host'),
    sourcePort: col.int('Master_Port', 'Source_Port'),
    sourceUser: col.text('Master_User', 'Source_User'),
    // 0 until the IO thread has talked to the source: no server may replicate with server_id 0.
    sourceServerId: col.optionalInt('Master_Server_Id', 'Source_Server_Id') || null,
    sourceUuid: col.optionalText('Master_UUID', 'Source_UUID').toLowerCase(),
    ioThread: io === 'Yes' ? 'running' : io === 'Connecting' ? 'connecting' : 'stopped',
    sqlThread: col.text('Slave_SQL_Running', 'Replica_SQL_Running') === 'Yes' ? 'running' : 'stopped',
    read: {file: col.text('Master_Log_File', 'Source_Log_File'), pos: col.int('Read_Master_Log_Pos', 'Read_Source_Log_Pos')},
    executed: {file: col.text('Relay_Master_Log_File', 'Relay_Source_Log_File'), pos: col.int('Exec_Master_Log_Pos', 'Exec_Source_Log_Pos')},
    relayLogFile: col.text('Relay_Log_File'),
    relayLogPos: col.int('Relay_Log_Pos'),
    relayLogSpace: col.optionalInt('Relay_Log_Space'),
    secondsBehind: col.optionalInt('Seconds_Behind_Master', 'Seconds_Behind_Source'),
    lastIoErrno: col.int('Last_IO_Errno'),
    lastIoError: col.text('Last_IO_Error'),
    lastSqlErrno: col.int('Last_SQL_Errno'),
    lastSqlError: col.text('Last_SQL_Error'),
    filters: {
      doDb: col.text('Replicate_Do_DB'),
      ignoreDb: col.text('Replicate_Ignore_DB'),
      doTable: col.text('Replicate_Do_Table'),
      ignoreTable: col.text('Replicate_Ignore_Table'),
      wildDoTable: col.text('Replicate_Wild_Do_Table'),
      wildIgnoreTable: col.text('Replicate_Wild_Ignore_Table'),
    },
    gtidMode: gtidMode(row, col),
    retrievedGtid: gtidSet(mariadb ? col.text('Gtid_IO_Pos') : col.optionalText('Retrieved_Gtid_Set')),
    executedGtid: mariadb ? '' : gtidSet(col.optionalText('Executed_Gtid_Set')),
    sqlThreadState: col.optionalText('Slave_SQL_Running_State', 'Replica_SQL_Running_State'),
  }
}

/** SHOW ALL SLAVES STATUS: the default connection (Connection_name ''), the one mha manages. */
export function parseMariadbHeartbeat(rows: readonly Row[]): ReplicaHeartbeat | null {
  const row = rows.find((r) => r.Connection_name === '')
  if (!row) return null
  const col = columns(row)
  // MariaDB 10.11 gives no time of the last heartbeat or event: mha watch measures it from the count and the position.
  return {periodSeconds: col.decimal('Slave_heartbeat_period'), received: col.int('Slave_received_heartbeats'), lastHeartbeatAgeSeconds: null, lastEventAgeSeconds: null}
}

/** The row of the MySQL heartbeat query in index.ts (performance_schema; no row when it is off). */
export function parseMysqlHeartbeat(rows: readonly Row[]): ReplicaHeartbeat | null {
  const row = rows[0]
  if (!row) return null
  const col = columns(row)
  const seconds = (micro: number | null) => (micro === null ? null : micro / 1e6)
  return {
    periodSeconds: col.decimal('heartbeat_period'),
    received: col.optionalInt('received_heartbeats'),
    lastHeartbeatAgeSeconds: seconds(col.optionalInt('last_heartbeat_age_us')),
    lastEventAgeSeconds: seconds(col.optionalInt('last_event_age_us')),
  }
}

export function parseBinaryLogStatus(row: Row): BinaryLogStatus {
  const col = columns(row)
  return {
    file: col.text('File'),
    pos: col.int('Position'),
    doDb: col.text('Binlog_Do_DB'),
    ignoreDb: col.text('Binlog_Ignore_DB'),
    executedGtid: gtidSet(col.optionalText('Executed_Gtid_Set')),
  }
}

/** The row of the MariaDB gtid state query in index.ts. */
export function parseMariadbGtidState(row: Row): GtidState {
  const col = columns(row)
  const binlogState = col.optionalText('gtid_binlog_state')
  return {
    enabled: true,
    binlogPos: col.text('gtid_binlog_pos'),
    // Older recorded rows lack the column; the query reads it.
    ...(Object.hasOwn(row, 'gtid_binlog_state') ? {binlogState} : {}),
    slavePos: col.text('gtid_slave_pos'),
    currentPos: col.text('gtid_current_pos'),
    strict: flag(col.text('gtid_strict_mode')),
    domainId: col.int('gtid_domain_id'),
  }
}

/** The row of the MySQL gtid state query in index.ts. */
export function parseMysqlGtidState(row: Row): GtidState {
  const col = columns(row)
  const executed = gtidSet(col.text('gtid_executed'))
  return {
    // OFF_PERMISSIVE and ON_PERMISSIVE still allow anonymous transactions, so auto-positioning is not safe yet.
    enabled: col.text('gtid_mode').toUpperCase() === 'ON',
    binlogPos: executed,
    slavePos: executed,
    currentPos: executed,
    strict: flag(col.text('enforce_gtid_consistency')),
    domainId: null,
  }
}

/** The row of the MariaDB filters query in index.ts: the global replicate_* variables. */
export function parseMariadbFilters(rows: readonly Row[]): ReplicationFilters {
  const col = columns(rows[0] ?? {})
  return {
    doDb: col.optionalText('replicate_do_db'),
    ignoreDb: col.optionalText('replicate_ignore_db'),
    doTable: col.optionalText('replicate_do_table'),
    ignoreTable: col.optionalText('replicate_ignore_table'),
    wildDoTable: col.optionalText('replicate_wild_do_table'),
    wildIgnoreTable: col.optionalText('replicate_wild_ignore_table'),
  }
}

/** MySQL 8's global filters: one row per configured filter (FILTER_NAME REPLICATE_DO_DB ..., FILTER_RULE a list). */
export function parseMysqlFilters(rows: readonly Row[]): ReplicationFilters {
  const rule = (name: string) =>
    rows
      .map((r) => columns(r))
      .filter((col) => col.text('FILTER_NAME').toUpperCase() === name)
      .map((col) => col.optionalText('FILTER_RULE'))
      .filter(Boolean)
      .join(',')
  return {
    doDb: rule('REPLICATE_DO_DB'),
    ignoreDb: rule('REPLICATE_IGNORE_DB'),
    doTable: rule('REPLICATE_DO_TABLE'),
    ignoreTable: rule('REPLICATE_IGNORE_TABLE'),
    wildDoTable: rule('REPLICATE_WILD_DO_TABLE'),
    wildIgnoreTable: rule('REPLICATE_WILD_IGNORE_TABLE'),
  }
}
