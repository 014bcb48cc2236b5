import type {BinaryLogStatus, BinlogCoordinates, GtidState, ReplicaStatus, ReplicationFilters, ServerVersion} from '../dialect/types.js'
import type {SqlErrorKind} from './mysql.js'

/** What one server said over SQL. Plain data: a recorded snapshot is a test fixture. */
export interface SqlFacts {
  reachable: true
  version: ServerVersion
  serverId: number
  readOnly: boolean
  /** null where the server has no super_read_only (MariaDB). */
  superReadOnly: boolean | null
  logBin: boolean
  logSlaveUpdates: boolean
  relayLogPurge: boolean
  binlogFormat: string
  binlogChecksum: string
  gtid: GtidState
  /** null when the server replicates from nobody. */
  replica: ReplicaStatus | null
  /** null when log_bin is off. */
  binaryLog: BinaryLogStatus | null
  binaryLogs: {file: string; size: number}[]
  replUser: {exists: boolean; canReplicate: boolean}
  /** Client statements running for a second or more (MHA's running_updates_limit looks at these). */
  longQueries: {id: number; user: string; seconds: number; statement: string}[]
  /**
   * Sessions (the replication threads included) waiting a second or more for a table lock another session holds
   * (LOCK TABLES, FLUSH TABLES WITH READ LOCK, a DDL's metadata lock); absent in snapshots recorded before it was read.
   */
  lockWaits?: {id: number; user: string; seconds: number; state: string}[]
  /** The server's own replicate-* filters, a master's too; absent where the server does not tell them (MySQL 5.7). */
  filters?: ReplicationFilters
  /** Full path of the relay log index, to find the relay logs over SSH. */
  relayLogIndex: string | null
  /** How long a replica waits on a silent master before its IO thread gives up (slave_net_timeout, seconds). */
  slaveNetTimeout?: number
  /** Its MASTER_HEARTBEAT_PERIOD in seconds (0: off); null when it does not say (performance_schema off); absent when not read. */
  heartbeatPeriod?: number | null
  /** A login as the replication user with the configured repl_password: ok, or why not; absent when not tried. */
  replLogin?: {ok: true} | {ok: false; kind: string; message: string}
}

export interface SqlFailure {
  reachable: false
  kind: SqlErrorKind
  message: string
  /** When the caller saw this failure itself before the inspection (mha watch's last ping), as epoch milliseconds. */
  observedAt?: number
}

export interface SshFacts {
  reachable: true
  /** The master_binlog_dir entry that holds this server's binlogs, if found. */
  binlogDir: string | null
  binlogReadable: boolean
  mysqlbinlog: string | null
  workdirWritable: boolean
  /** Binlog files (NAME.NNNNNN) found in binlogDir, in sequence order, with their sizes. */
  binlogs: {file: string; size: number}[]
  /** Relay log files named by the relay log index, in order, with their sizes; empty if none. */
  relayLogs: {file: string; size: number}[]
}

export interface SshFailure {
  reachable: false
  kind: string
  message: string
}

export interface ServerSnapshot {
  name: string
  /** ip:port as configured. */
  address: string
  sql: SqlFacts | SqlFailure
  ssh: SshFacts | SshFailure
}

/** Where, in `source`'s relay logs, the events `target` has not received start (found by reading them over SSH). */
export interface RelayLookup {
  target: string
  source: string
  /** The target's Master_Log_File:Read_Master_Log_Pos. */
  after: BinlogCoordinates
  /** The relay file holding the first missing event, its offset, and every later relay file; null if not found. */
  found: {files: string[]; offset: number} | null
  /** Why it was not found. */
  problem: string | null
}

/**
 * Sizes of the dead master's binlog files as a latest replica's relay logs state them (the master's Rotate
 * at the end of each file), read when the master is down: they count lag across files when the master's
 * host cannot be listed over SSH.
 */
export interface RelayMasterFileSizes {
  /** The replica whose relay logs were read. */
  source: string
  files: {file: string; size: number}[]
  /** Why they could not be read (files is then empty). */
  problem: string | null
}

/** The manager host's own tools that applying binlogs needs. */
export interface ManagerFacts {
  mysqlbinlog: string | null
  mysqlClient: string | null
  /** Each configured hook's command word as found on this host (PATH or path), or why it is not; absent in older snapshots. */
  hooks?: {field: string; command: string; file: string | null; problem: string | null}[]
}

/** A binlog server's copy of the master's binlogs as listed over SSH (binlogs: the files named like the master's). */
export interface BinlogServerSnapshot {
  name: string
  ssh: SshFacts | SshFailure
}

export interface Snapshot {
  /** Absent in snapshots recorded before it was inspected. */
  manager?: ManagerFacts
  cluster: string
  servers: ServerSnapshot[]
  relayLookups: RelayLookup[]
  /** Absent from snapshots recorded before it existed, and when no size was needed. */
  masterFileSizes?: RelayMasterFileSizes[]
  /** Binlog servers, listed only when the master's own host could not be (or for mha check); absent otherwise. */
  binlogServers?: BinlogServerSnapshot[]
}
