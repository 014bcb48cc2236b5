import type {BinlogServerConfig, ClusterConfig, ServerConfig} from '../config/types.js'
import {dialectFor, parseServerVersion} from '../dialect/index.js'
import type {SshRunner, SshSessions} from '../remote/session-pool.js'
import {shellQuote, SshError} from '../remote/ssh.js'
import {oneLine, UserError} from '../util/errors.js'
import {readFileSync} from 'node:fs'
import {ServerConnection, SqlError, withConnection} from './mysql.js'
import {endpointOf, sshTargetOf} from './targets.js'
import {openHostSessions} from './host-sessions.js'
import type {BinlogServerSnapshot, ServerSnapshot, Snapshot, SqlFacts, SqlFailure, SshFacts, SshFailure} from './types.js'
import {findMasterFileSizes, findRelayLookups} from './relay-lookup.js'
import {configuredHooks, locateHookCommand} from '../hooks/command.js'
import {findExecutable} from '../util/executables.js'
import {binlogBaseName, binlogSequence} from '../binlog/coordinates.js'
import {replicatesFrom, topologyOf} from '../analysis/topology.js'
import {dirname, posix} from 'node:path'
import {phase} from '../util/phases.js'

// In a module of their own, so that the relay lookup (which inspect uses) reaches them without an import circle.
export {endpointOf, quickAnswerMs, sshTargetOf} from './targets.js'

export interface InspectOptions {
  relayLookups?: boolean
  ssh?: boolean
  /**
   * What the caller has just found out itself (mha watch, which has been failing to reach the dead master):
   * those servers or hosts are recorded as unreachable without waiting for another timeout.
   */
  knownDown?: {server: string; sql?: SqlFailure; ssh?: SshFailure}[]
  /** How SSH sessions are had: fresh per call by default; mha watch keeps them open (a warm inspection). */
  sshRunner?: SshRunner
  /** The hosts' SSH sessions, already started by the caller (openHostSessions), who closes them. */
  sessions?: SshSessions
  /** Also log in as the replication user on every server (what a failover's CHANGE MASTER will need); default true. */
  replLogin?: boolean
  /**
   * List the binlog servers' copies: 'always' (mha check), or by default only when they are needed: the master
   * does not answer SQL and its own host's binlogs cannot be listed over SSH.
   */
  binlogServers?: 'always' | 'when-needed'
  /**
   * Each server's SQL connection left open here by name instead of closed, for the caller to use and close (mha
   * switchover hands them to its apply): the apply's first statements need no handshake.
   */
  keepConnections?: Map<string, ServerConnection>
}

/** Read every server over SQL and every host over SSH, all at once. Changes nothing. */
export async function inspectCluster(cluster: ClusterConfig, options: InspectOptions = {}): Promise<Snapshot> {
  const known = (server: string) => options.knownDown?.find((k) => k.server === server)
  // The SSH handshakes take longer than the SQL reads: unless the caller keeps sessions (watch) or has started
  // them, each host's is started now, beside its SQL read.
  const own = options.sessions || options.sshRunner ? undefined : openHostSessions(cluster, (name) => options.ssh === false || known(name)?.ssh !== undefined)
  const sshRunner = options.sshRunner ?? (options.sessions ?? own!).run
  try {
    const facts = cluster.servers.map(async (server): Promise<SqlFacts | SqlFailure> => known(server.name)?.sql ?? (await inspectSql(cluster, server, options.keepConnections)))
    // The replication user's login, once its server has answered (never a second connection beside the first).
    const reads = facts.map((read, i) =>
      read
        .then(async (f) => (f.reachable && cluster.replPassword && options.replLogin !== false ? {...f, replLogin: await replicationLogin(cluster, cluster.servers[i]!)} : f))
        .finally(() => phase(`sql ${cluster.servers[i]!.name} read`)),
    )
    const allFacts = Promise.all(facts)
    // Each host's probe starts once its server has answered over SQL (the binlog to look for is the server's
    // own), or for a server that did not, once every server has (its replicas name the binlog).
    const servers = await Promise.all(
      cluster.servers.map(async (server, i): Promise<ServerSnapshot> => {
        const own = await facts[i]!
        const ssh: ServerSnapshot['ssh'] =
          options.ssh === false
            ? {reachable: false, kind: 'skipped', message: 'SSH not inspected'}
            : (known(server.name)?.ssh ??
              (await inspectSsh(cluster, server, await binlogHint(server, own, allFacts), own.reachable ? own.relayLogIndex : null, sshRunner).finally(() => phase(`ssh ${server.name} probed`))))
        return {name: server.name, address: `${server.ip}:${server.port}`, sql: await reads[i]!, ssh}
      }),
    )
    const sql = await Promise.all(reads)
    const snapshot: Snapshot = {
      cluster: cluster.name,
      manager: {
        mysqlbinlog: findExecutable(['mariadb-binlog', 'mysqlbinlog']) ?? null,
        mysqlClient: findExecutable(['mariadb', 'mysql']) ?? null,
        hooks: configuredHooks(cluster.hooks).map(({field, command}) => ({field, command, ...locateHookCommand(command)})),
      },
      servers,
      relayLookups: [],
    }
    if (cluster.binlogServers.length > 0 && options.ssh !== false) {
      const listed = await inspectBinlogServers(cluster, snapshot, sql, options.binlogServers ?? 'when-needed', sshRunner)
      if (listed) snapshot.binlogServers = listed
    }
    if (options.relayLookups !== false) {
      snapshot.relayLookups = await findRelayLookups(cluster, snapshot, sshRunner)
      const sizes = await findMasterFileSizes(cluster, snapshot, sshRunner)
      if (sizes.length > 0) snapshot.masterFileSizes = sizes
    }
    return snapshot
  } finally {
    await own?.close()
  }
}

/**
 * The binlog file to look for on a host: its own current binlog, or for a server that does not
 * answer SQL, the newest master file its replicas have read (a dead master's binlogs are found that way).
 */
async function binlogHint(server: ServerConfig, own: SqlFacts | SqlFailure | undefined, all: Promise<(SqlFacts | SqlFailure)[]>): Promise<string | null> {
  if (own?.reachable) return own.binaryLog?.file ?? null
  const read = (await all)
    .map((f) => (f.reachable && f.replica && replicatesFrom(f.replica, server) ? f.replica.read.file : null))
    .filter((f): f is string => f !== null && f !== '')
  return read.sort((a, b) => binlogSequence(b) - binlogSequence(a))[0] ?? null
}

/**
 * Each binlog server's copy of the master's binlogs, listed in parallel: the file names are the master's,
 * found as the master's own host is searched (its current binlog, or the newest its replicas read).
 */
async function inspectBinlogServers(
  cluster: ClusterConfig,
  snapshot: Snapshot,
  sql: (SqlFacts | SqlFailure)[],
  when: 'always' | 'when-needed',
  ssh: SshRunner,
): Promise<BinlogServerSnapshot[] | undefined> {
  const master = topologyOf(cluster, snapshot).master
  const masterSnap = master ? snapshot.servers.find((s) => s.name === master.name) : undefined
  const needed = masterSnap !== undefined && !masterSnap.sql.reachable && !(masterSnap.ssh.reachable && masterSnap.ssh.binlogs.length > 0 && masterSnap.ssh.binlogReadable)
  if (when === 'when-needed' && !needed) return undefined
  const hint = master ? await binlogHint(master, sql[cluster.servers.indexOf(master)], Promise.resolve(sql)) : null
  return await Promise.all(cluster.binlogServers.map(async (b) => ({name: b.name, ssh: await inspectSsh(cluster, b, hint, null, ssh)})))
}

async function inspectSql(cluster: ClusterConfig, server: ServerConfig, keep?: Map<string, ServerConnection>): Promise<SqlFacts | SqlFailure> {
  try {
    const read = (conn: ServerConnection) => {
      phase(`sql ${server.name} connected`)
      return readSqlFacts(conn, cluster.replUser)
    }
    return await (keep ? keptConnection(cluster, server, keep, read) : withConnection(endpointOf(cluster, server), cluster.monitor.connectTimeoutMs * 2, read))
  } catch (error) {
    if (error instanceof SqlError) return {reachable: false, kind: error.kind, message: error.message}
    return {reachable: false, kind: 'sql', message: `${server.name}: ${oneLine(error)}`}
  }
}

/** `read` over a new connection that is then kept under the server's name (closed if the read fails). */
async function keptConnection<T>(cluster: ClusterConfig, server: ServerConfig, keep: Map<string, ServerConnection>, read: (conn: ServerConnection) => Promise<T>): Promise<T> {
  const conn = await ServerConnection.open(endpointOf(cluster, server), cluster.monitor.connectTimeoutMs * 2)
  try {
    const result = await read(conn)
    keep.set(server.name, conn)
    return result
  } catch (error) {
    await conn.close()
    throw error
  }
}

/** The password a failover puts into CHANGE MASTER, tried as the replicas will use it. */
export async function replicationLogin(cluster: ClusterConfig, server: ServerConfig): Promise<NonNullable<SqlFacts['replLogin']>> {
  try {
    await withConnection({...endpointOf(cluster, server), user: cluster.replUser, password: cluster.replPassword!, loginFields: `repl_user and repl_password in ${cluster.file}`}, cluster.monitor.connectTimeoutMs, () => Promise.resolve())
    return {ok: true}
  } catch (error) {
    return error instanceof SqlError ? {ok: false, kind: error.kind, message: error.message} : {ok: false, kind: 'sql', message: oneLine(error)}
  }
}

const bool = (value: unknown) => value === 1 || value === '1' || value === 'ON' || value === 'on'

/** A client statement running for a second or more (with TIME >= 1), as MHA's running_updates_limit looks at them. */
const longQuery = "COMMAND = 'Query' AND USER NOT IN ('system user', 'event_scheduler')"
/** A session waiting for a table lock another holds (with TIME >= 1). */
const lockWait = "STATE LIKE 'Waiting for %lock'"

/** One SELECT of several one-row SELECTs of server variables (no FROM): one round trip, the same columns. */
export function selectTogether(...queries: string[]): string {
  const lists = queries.map((q) => {
    const list = /^SELECT\s+(.*)$/is.exec(q)?.[1]
    if (list === undefined || /\bFROM\b/i.test(list)) throw new Error(`not a SELECT of variables alone: ${q}`)
    return list
  })
  return `SELECT ${lists.join(', ')}`
}

// Every statement is a round trip of its own (each bounded by the connection's timeout, as a statement on an
// overloaded server should be): the one-row SELECTs of server variables are asked together.
export async function readSqlFacts(conn: ServerConnection, replUser: string): Promise<SqlFacts> {
  const vars = (await conn.queryOne(
    `SELECT @@version AS version, @@version_comment AS comment, @@server_id AS server_id, @@global.read_only+0 AS read_only,
            @@log_bin+0 AS log_bin, @@log_slave_updates+0 AS log_slave_updates, @@relay_log_purge+0 AS relay_log_purge,
            @@binlog_format AS binlog_format, @@binlog_checksum AS binlog_checksum, @@global.slave_net_timeout AS slave_net_timeout,
            @@relay_log_index AS relay_log_index`,
  ))!
  const version = parseServerVersion(String(vars.version), typeof vars.comment === 'string' ? vars.comment : '')
  const dialect = dialectFor(version)
  const state = (await conn.queryOne(selectTogether(dialect.readOnlyQuery, dialect.gtidStateQuery)))!
  const gtid = dialect.parseGtidState(state)
  const replicaRow = await conn.queryOne(dialect.showReplicaStatus)
  // A replica's heartbeat period (mha check warns when it makes silence slow to see); unknown rather than an error.
  const heartbeat = replicaRow ? await conn.query(dialect.replicaHeartbeatQuery).then((rows) => dialect.parseReplicaHeartbeat(rows), () => null) : null
  const logBin = bool(vars.log_bin)
  const binaryLogRow = logBin ? await conn.queryOne(dialect.showBinaryLogStatus) : undefined
  const binaryLogs = logBin
    ? (await conn.query(dialect.showBinaryLogs)).map((r) => ({file: String(r.Log_name), size: Number(r.File_size)}))
    : []
  const users = await conn.query('SELECT Repl_slave_priv AS priv FROM mysql.user WHERE User = ?', [replUser])
  const relayIndex = vars.relay_log_index
  // The long client statements and the lock waits, from one read of the process list; the server says which is which.
  const sessions = await conn.query(
    `SELECT ID AS id, USER AS user, TIME AS seconds, LEFT(INFO, 200) AS statement, STATE AS state, (${longQuery}) AS is_long, (${lockWait}) AS is_lock_wait
       FROM information_schema.PROCESSLIST WHERE TIME >= 1 AND ID <> CONNECTION_ID() AND ((${longQuery}) OR (${lockWait})) ORDER BY ID`,
  )
  const long = sessions.filter((s) => bool(s.is_long))
  const lockWaits = sessions.filter((s) => bool(s.is_lock_wait))
  // Unknown rather than an error (performance_schema not readable by this account): then SHOW SLAVE STATUS tells them.
  const filters = dialect.replicationFiltersQuery ? await conn.query(dialect.replicationFiltersQuery).then((rows) => dialect.parseReplicationFilters(rows), () => undefined) : undefined
  return {
    reachable: true,
    version,
    serverId: Number(vars.server_id),
    readOnly: bool(state.read_only),
    superReadOnly: state.super_read_only === null || state.super_read_only === undefined ? null : bool(state.super_read_only),
    logBin,
    logSlaveUpdates: bool(vars.log_slave_updates),
    relayLogPurge: bool(vars.relay_log_purge),
    slaveNetTimeout: Number(vars.slave_net_timeout),
    ...(replicaRow ? {heartbeatPeriod: heartbeat?.periodSeconds ?? null} : {}),
    binlogFormat: String(vars.binlog_format),
    binlogChecksum: String(vars.binlog_checksum),
    gtid,
    replica: replicaRow ? dialect.parseReplicaStatus(replicaRow) : null,
    binaryLog: binaryLogRow ? dialect.parseBinaryLogStatus(binaryLogRow) : null,
    binaryLogs,
    replUser: {exists: users.length > 0, canReplicate: users.some((u) => u.priv === 'Y')},
    relayLogIndex: typeof relayIndex === 'string' && relayIndex !== '' ? relayIndex : null,
    longQueries: long.map((q) => ({id: Number(q.id), user: String(q.user), seconds: Number(q.seconds), statement: typeof q.statement === 'string' ? q.statement : ''})),
    lockWaits: lockWaits.map((q) => ({id: Number(q.id), user: String(q.user), seconds: Number(q.seconds), state: String(q.state)})),
    ...(filters ? {filters} : {}),
  }
}

async function inspectSsh(cluster: ClusterConfig, server: ServerConfig | BinlogServerConfig, currentBinlog: string | null, relayLogIndex: string | null, ssh: SshRunner): Promise<SshFacts | SshFailure> {
  const bindir = server.clientBindir ? `${server.clientBindir.replace(/\/$/, '')}/` : ''
  // One round trip: each probe prints key=value. Shell builtins where they do, and the files' sizes by one stat for
  // all the binlogs and one for all the relay logs: every process started costs the host, and a server keeps
  // hundreds of binlogs (a stat and a basename per file made a probe last seconds).
  const script = [
    `for d in ${server.masterBinlogDirs.map(shellQuote).join(' ')}; do`,
    currentBinlog ? `  if [ -f "$d"/${shellQuote(currentBinlog)} ]; then echo "binlog_dir=$d"; [ -r "$d"/${shellQuote(currentBinlog)} ] && echo binlog_readable=1; break; fi` : `  if [ -d "$d" ]; then echo "binlog_dir=$d"; [ -r "$d" ] && echo binlog_readable=1; break; fi`,
    'done',
    bindir
      ? `for p in ${shellQuote(bindir + 'mysqlbinlog')} ${shellQuote(bindir + 'mariadb-binlog')}; do [ -x "$p" ] && echo "mysqlbinlog=$p" && break; done`
      : 'for p in mysqlbinlog mariadb-binlog; do command -v "$p" >/dev/null && printf mysqlbinlog= && command -v "$p" && break; done',
    `{ [ -d ${shellQuote(server.remoteWorkdir)} ] || mkdir -p ${shellQuote(server.remoteWorkdir)} 2>/dev/null; } && [ -w ${shellQuote(server.remoteWorkdir)} ] && echo workdir_writable=1`,
    currentBinlog
      ? `[ -n "$d" ] && { set --; for f in "$d"/${shellQuote(binlogBaseName(currentBinlog))}.[0-9]*; do [ -f "$f" ] && set -- "$@" "$f"; done; [ $# -gt 0 ] && stat -c 'binlog=%s %n' -- "$@"; }`
      : '',
    relayLogIndex
      ? `[ -r ${shellQuote(relayLogIndex)} ] && { set --; while read -r f; do case "$f" in /*) p="$f";; *) p=${shellQuote(dirname(relayLogIndex))}/"$f";; esac; [ -f "$p" ] && set -- "$@" "$p"; done < ${shellQuote(relayLogIndex)}; [ $# -gt 0 ] && stat -c 'relay=%s %n' -- "$@"; }`
      : '',
    'true',
  ].join('\n')
  try {
    const result = await ssh(sshTargetOf(cluster, server), (session) => session.exec(script, server.ssh.connectTimeoutMs * 2))
    const pairs = result.stdout
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const)
    const facts = new Map(pairs)
    const files = (key: string, name: (path: string) => string = (path) => path) =>
      pairs
        .filter(([k]) => k === key)
        .map(([, v]) => ({size: Number(v.slice(0, v.indexOf(' '))), file: name(posix.normalize(v.slice(v.indexOf(' ') + 1)))}))
    return {
      reachable: true,
      binlogDir: facts.get('binlog_dir') ?? null,
      binlogReadable: facts.get('binlog_readable') === '1',
      mysqlbinlog: facts.get('mysqlbinlog') ?? null,
      workdirWritable: facts.get('workdir_writable') === '1',
      binlogs: files('binlog', (path) => posix.basename(path)).sort((a, b) => binlogSequence(a.file) - binlogSequence(b.file)),
      relayLogs: files('relay'),
    }
  } catch (error) {
    if (error instanceof SshError) return {reachable: false, kind: error.kind, message: error.message}
    return {reachable: false, kind: 'exec', message: `${server.name}: ${oneLine(error)}`}
  }
}

/** A snapshot recorded with `mha plan --save-snapshot`, for planning offline and for golden tests. */
export function readSnapshot(file: string): Snapshot {
  try {
    const data = JSON.parse(readFileSync(file, 'utf8')) as Snapshot
    if (!Array.isArray(data.servers) || !Array.isArray(data.relayLookups)) throw new Error('servers or relayLookups missing')
    return data
  } catch (error) {
    throw new UserError(`${file}: not a snapshot recorded by mha (${oneLine(error)})`)
  }
}
