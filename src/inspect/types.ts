import type {BinaryLogStatus, GtidState, ReplicaStatus, ServerVersion} from '../dialect/types.js'
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
}

export interface SqlFailure {
  reachable: false
  kind: SqlErrorKind
  message: string
}

export interface SshFacts {
  reachable: true
  /** The master_binlog_dir entry that holds this server's binlogs, if found. */
  binlogDir: string | null
  binlogReadable: boolean
  mysqlbinlog: string | null
  workdirWritable: boolean
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

export interface Snapshot {
  cluster: string
  servers: ServerSnapshot[]
}
