/** What every server reports, in one shape whatever its flavor and version. */
export type Flavor = 'mariadb' | 'mysql'

export interface ServerVersion {
  flavor: Flavor
  major: number
  minor: number
  patch: number
  /** As the server reported it, e.g. "10.11.19-MariaDB-0+deb12u1-log". */
  text: string
}

export interface ReplicationFilters {
  doDb: string
  ignoreDb: string
  doTable: string
  ignoreTable: string
  wildDoTable: string
  wildIgnoreTable: string
}

/** A binlog coordinate of the *master's* binlog (file name + byte offset). */
export interface BinlogCoordinates {
  file: string
  pos: number
}

/** SHOW SLAVE STATUS / SHOW REPLICA STATUS, normalised. */
export interface ReplicaStatus {
  sourceHost: string
  sourcePort: number
  sourceUser: string
  sourceServerId: number | null
  /** MySQL Master_UUID / Source_UUID: whose GTIDs come from the master; empty on MariaDB. */
  sourceUuid: string
  /** Slave_IO_Running: Yes, No or Connecting. */
  ioThread: 'running' | 'stopped' | 'connecting'
  sqlThread: 'running' | 'stopped'
  /** Master_Log_File:Read_Master_Log_Pos, how far the IO thread has read. */
  read: BinlogCoordinates
  /** Relay_Master_Log_File:Exec_Master_Log_Pos, how far the SQL thread has executed. */
  executed: BinlogCoordinates
  relayLogFile: string
  relayLogPos: number
  relayLogSpace: number | null
  secondsBehind: number | null
  lastIoErrno: number
  lastIoError: string
  lastSqlErrno: number
  lastSqlError: string
  filters: ReplicationFilters
  /** How the replica positions itself: file/position, MariaDB slave_pos/current_pos, MySQL auto-position. */
  gtidMode: 'no' | 'slave_pos' | 'current_pos' | 'auto_position'
  /** MySQL Retrieved_Gtid_Set / MariaDB Gtid_IO_Pos. */
  retrievedGtid: string
  /** MySQL Executed_Gtid_Set; empty on MariaDB (use gtid_slave_pos). */
  executedGtid: string
  /** The SQL thread's state text (Slave_SQL_Running_State / Replica_SQL_Running_State). */
  sqlThreadState: string
}

/**
 * The heartbeat of the default replication connection: how a replica (and mha watch) can tell a silent master from
 * a quiet one. A master sends a heartbeat when it has sent no event for the period, so on a live connection the
 * read position or the received-heartbeat count moves at least once a period.
 */
export interface ReplicaHeartbeat {
  /** MASTER_HEARTBEAT_PERIOD / SOURCE_HEARTBEAT_PERIOD in seconds; 0 means heartbeats are off. */
  periodSeconds: number
  /** Heartbeats received on this connection; null where the server does not say. */
  received: number | null
  /** Seconds since the last heartbeat by the server's clock (MySQL); null where the server does not say or none came. */
  lastHeartbeatAgeSeconds: number | null
  /** Seconds since the last transaction was fully queued (MySQL 8.0); null where the server does not say or none came. */
  lastEventAgeSeconds: number | null
}

/** SHOW MASTER STATUS / SHOW BINARY LOG STATUS, normalised. */
export interface BinaryLogStatus {
  file: string
  pos: number
  doDb: string
  ignoreDb: string
  /** MySQL Executed_Gtid_Set, empty on MariaDB. */
  executedGtid: string
}

export interface ChangeSourceOptions {
  host: string
  port: number
  user: string
  /** Omitted: the server keeps the password it has (MHA does the same when repl_password is unset). */
  password?: string
  /** File/position mode. */
  coordinates?: BinlogCoordinates
  /** GTID mode: MariaDB MASTER_USE_GTID=slave_pos, MySQL SOURCE_AUTO_POSITION=1. */
  gtid?: boolean
}

/** SQL text for one flavor and version. Builders only: nothing here talks to a server. */
export interface Dialect {
  version: ServerVersion
  showReplicaStatus: string
  parseReplicaStatus(row: Record<string, unknown>): ReplicaStatus
  /** On a master: the replicas registered with it (connected), one row each with its Server_id. */
  showReplicaHosts: string
  /** Rows (one per replication connection or channel) that parseReplicaHeartbeat reads. */
  replicaHeartbeatQuery: string
  /** The default connection's heartbeat, or null when it has none (not a replica, performance_schema off). */
  parseReplicaHeartbeat(rows: readonly Record<string, unknown>[]): ReplicaHeartbeat | null
  /** The statement that sets the heartbeat period of a stopped replica, keeping its other settings. */
  setHeartbeatPeriod(seconds: number): string
  showBinaryLogStatus: string
  parseBinaryLogStatus(row: Record<string, unknown>): BinaryLogStatus
  showBinaryLogs: string
  stopReplica: string
  stopReplicaIoThread: string
  startReplica: string
  resetReplicaAll: string
  /** The statement, and the same statement with the password masked for logs and plans. */
  changeSource(options: ChangeSourceOptions): {sql: string; display: string}
  /** SELECT returning one column `result`: -1 timeout, NULL error, >=0 done. */
  waitForCoordinates(coordinates: BinlogCoordinates, timeoutSeconds: number): string
  /** SELECT returning one column `result`: 0 reached, 1 (or -1) timeout. */
  waitForGtid(gtid: string, timeoutSeconds: number): string
  /** Statements that make the server refuse client writes (super_read_only where it exists). */
  setReadOnly(on: boolean): string[]
  /** SELECT of one row with columns read_only, super_read_only (null where absent). */
  readOnlyQuery: string
  /** SELECT of one row with the GTID state: see GtidState. */
  gtidStateQuery: string
  parseGtidState(row: Record<string, unknown>): GtidState
  /** SQL thread states meaning "has executed everything it has and waits for more". */
  sqlThreadCaughtUpStates: readonly string[]
  /**
   * SELECT of one row, column `busy`: parallel replication workers holding a transaction. The coordinator says
   * "has read all relay log" while workers still apply (or wait on a lock): positions are settled only at 0.
   */
  busyWorkersQuery: string
  /**
   * The server's own replicate-* filters, which a master has too although it replicates from nobody (MariaDB: the
   * global variables; MySQL 8: performance_schema.replication_applier_global_filters). null where only SHOW SLAVE
   * STATUS tells them (MySQL 5.7): then a master's are unknown.
   */
  replicationFiltersQuery: string | null
  parseReplicationFilters(rows: readonly Record<string, unknown>[]): ReplicationFilters
}

export interface GtidState {
  /** MySQL: gtid_mode=ON. MariaDB: always true (GTIDs are always in its binlogs). */
  enabled: boolean
  /** MySQL gtid_executed / MariaDB gtid_binlog_pos. */
  binlogPos: string
  /**
   * MariaDB gtid_binlog_state: the last GTID of every (domain, server_id) pair in the binlog, where
   * gtid_binlog_pos has only the last of each domain. Absent on MySQL and in snapshots recorded before it
   * was read: then take binlogPos.
   */
  binlogState?: string
  /** MariaDB gtid_slave_pos, MySQL gtid_executed. */
  slavePos: string
  /** MariaDB gtid_current_pos, MySQL gtid_executed. */
  currentPos: string
  /** MariaDB gtid_strict_mode; MySQL enforce_gtid_consistency. */
  strict: boolean
  /** MariaDB gtid_domain_id; null on MySQL. */
  domainId: number | null
}
