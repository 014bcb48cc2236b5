import type {ClusterConfig, ServerConfig} from '../config/types.js'
import {dialectFor} from '../dialect/index.js'
import type {ServerSnapshot, Snapshot, SqlFacts} from '../inspect/types.js'
import {returningMasters, roleViewsOf, sourceServer, sqlFacts, topologyOf} from './topology.js'
import {leftOutByPlan, planFor, topologyNotes} from '../plan/planner.js'
import {missingHookWarnings} from './hooks.js'
import {filterDifferences, filtersAdvice, filtersOf} from './filters.js'
import {proxyFindings, type ProxyRow} from './routing.js'
import type {ProxyObservation} from '../routing/observe.js'

export type Severity = 'error' | 'warning' | 'info'

export interface Finding {
  severity: Severity
  code: string
  server: string | null
  message: string
}

export interface ServerRow {
  name: string
  address: string
  role: 'master' | 'replica' | 'other' | 'down'
  version: string | null
  source: string | null
  ioThread: string | null
  sqlThread: string | null
  secondsBehind: number | null
  readOnly: boolean | null
  logBin: boolean | null
  gtid: string | null
  ssh: 'ok' | 'failed'
}

/** The answer of `mha check`: can a failover succeed right now, and if not, why. */
export interface CheckReport {
  cluster: string
  /** ok: healthy, a failover would be possible; master_dead: the master is dead and a failover is possible now; not_ok: see the findings. */
  verdict: 'ok' | 'master_dead' | 'not_ok'
  failoverPossible: boolean
  master: string | null
  replicationMode: 'gtid' | 'file'
  servers: ServerRow[]
  /** The proxies of the routing section, as their runtime APIs answered; empty without one. */
  proxies: ProxyRow[]
  findings: Finding[]
}

/** A server an earlier failover took out of the active topology (kept beside the plans by watch and apply). */
export interface OutOfService {
  server: string
  since: string
  reason: string
}

/** MHA's check_repl and check_ssh, as a pure function of what was observed. */
export function checkCluster(cluster: ClusterConfig, snapshot: Snapshot, options: {outOfService?: readonly OutOfService[]; proxies?: ProxyObservation[]} = {}): CheckReport {
  const findings: Finding[] = []
  // A server taken out by a failover is said once, as such, and not counted against the cluster.
  const out = new Map((options.outOfService ?? []).map((o) => [o.server, o]))
  for (const o of out.values()) findings.push({severity: 'info', code: 'out_of_service', server: o.server, message: `${o.server} is out of service since ${o.since} (${o.reason}); rejoin or rebuild it, or remove it from ${cluster.file}`})
  const add = (severity: Severity, code: string, server: string | null, message: string) => findings.push({severity, code, server, message})
  const snap = new Map(snapshot.servers.map((s) => [s.name, s]))
  const factsOf = (s: ServerConfig) => sqlFacts(snap.get(s.name)!)
  const topology = topologyOf(cluster, snapshot)
  const master = topology.master
  // A master that does not answer (not a refused login): then the replicas' IO threads are expected to have
  // lost it, and the question is whether the failover mha would plan can be done.
  const masterSql = master ? snap.get(master.name)!.sql : undefined
  const masterDead = masterSql !== undefined && !masterSql.reachable && masterSql.kind !== 'auth' && masterSql.kind !== 'too_many_connections'

  for (const server of cluster.servers) {
    const s = snap.get(server.name)!
    if (!s.sql.reachable && !out.has(server.name)) {
      const severity = server === master && masterDead ? 'info' : server.ignoreFail && server !== master ? 'warning' : 'error'
      const code = s.sql.kind === 'auth' ? 'sql_access_denied' : s.sql.kind === 'too_many_connections' ? 'sql_too_many_connections' : server === master && masterDead ? 'master_dead' : 'sql_unreachable'
      add(severity, code, server.name, server === master && masterDead ? `${s.sql.message}: the master is dead` : s.sql.message)
    }
  }

  // Exactly one writable master. A writable server besides it is a returning old master (split brain).
  const returning = master ? returningMasters(master.name, roleViewsOf(cluster, snapshot)).map((v) => v.name) : []
  for (const name of returning)
    add('error', 'returning_master', name, `${name} is writable (read_only=0) and replicates from nobody while ${master!.name} is the master: clients can write to both (split brain); run SET GLOBAL read_only=ON on ${name}, then rejoin it as a replica of ${master!.name} or rebuild it`)
  const writableRoots = topology.roots.filter((s) => factsOf(s)?.readOnly === false && s !== master && !returning.includes(s.name))
  if (!master && writableRoots.length > 1)
    add('error', 'several_masters', null, `${writableRoots.map((r) => r.name).join(' and ')} are ${writableRoots.length === 2 ? 'both' : 'all'} writable and replicate from nobody, and no replica tells which is the master; set read_only=ON on every one but the master, then rejoin or rebuild them`)
  else if (master && writableRoots.length > 0)
    add('error', 'several_masters', null, `${writableRoots.map((r) => r.name).join(' and ')} ${writableRoots.length === 1 ? 'is' : 'are'} writable and replicate${writableRoots.length === 1 ? 's' : ''} from nobody besides the master ${master.name}, to which no replica is connected now; set read_only=ON on every one but the master`)
  if (!master && topology.conflict) add('error', 'several_masters', null, `no failover or switchover can be planned: ${topology.conflict}`)
  else if (!master && writableRoots.length <= 1) add('error', 'no_master', null, 'no master found: the replicas name no single configured server, and no single reachable server replicates from nobody')
  // The same words as the plan: a pair's standby that is down, and each lower tier with what a plan does to it.
  for (const note of topologyNotes(cluster, topology, null)) add('info', note.code, null, note.message)
  if (master) {
    const f = factsOf(master)
    if (f?.readOnly) add('error', 'master_read_only', master.name, `${master.name} is the master but read_only=1; it cannot take writes`)
    if (f && !f.logBin) add('error', 'master_log_bin_off', master.name, `${master.name} is the master but log_bin is off; replicas cannot follow it`)
  }

  // Every replica follows the master, with both threads running.
  const replicaFacts: [ServerConfig, SqlFacts][] = []
  for (const server of cluster.servers) {
    if (server === master) continue
    const f = factsOf(server)
    if (!f) continue
    // Taken out of service (a failed-over master, mha plan --remove): said once above, not judged as a replica.
    if (out.has(server.name) && !f.replica) continue
    const soft: Severity = server.ignoreFail ? 'warning' : 'error'
    if (!f.replica) {
      if (master && !returning.includes(server.name) && !writableRoots.includes(server)) add('error', 'not_replicating', server.name, `${server.name} replicates from nobody; point it at ${master.name}`)
      continue
    }
    const source = sourceServer(cluster, f.replica)
    if (master && source?.name !== master.name) {
      // A lower tier under multi_tier_slave is said once above (lower_tier), as the plan says it.
      if (cluster.failover.multiTierSlave && source) continue
      add(
        'error',
        'wrong_source',
        server.name,
        `${server.name} replicates from ${source?.name ?? `${f.replica.sourceHost}:${f.replica.sourcePort} (not in the cluster file)`}, not from the master ${master.name}${source ? `: a failover or switchover is refused; set failover.multi_tier_slave: true in ${cluster.file} to keep it under ${source.name}, or re-point it at ${master.name}` : ''}`,
      )
      continue
    }
    replicaFacts.push([server, f])
    const r = f.replica
    if (r.ioThread !== 'running' && masterDead) add('info', 'io_thread_lost_master', server.name, `${server.name}: its IO thread lost the dead master, as expected`)
    else if (r.ioThread !== 'running')
      add(soft, 'io_thread_not_running', server.name, `${server.name}: replication IO thread is ${r.ioThread === 'connecting' ? 'still connecting' : 'stopped'}${r.lastIoError ? ` (${r.lastIoErrno}: ${r.lastIoError})` : ''}; run START SLAVE IO_THREAD or fix the error`)
    if (r.sqlThread !== 'running')
      add(soft, 'sql_thread_not_running', server.name, `${server.name}: replication SQL thread is stopped${r.lastSqlError ? ` (${r.lastSqlErrno}: ${r.lastSqlError})` : ''}; run START SLAVE SQL_THREAD or fix the error`)
    if (r.secondsBehind !== null && r.secondsBehind > cluster.failover.maxSecondsBehindMaster)
      add(soft, 'replica_lagging', server.name, `${server.name} is ${r.secondsBehind} s behind the master (limit ${cluster.failover.maxSecondsBehindMaster} s)`)
    if (f.slaveNetTimeout !== undefined && f.slaveNetTimeout > 30)
      add('warning', 'slow_detection', server.name, `${server.name}: slave_net_timeout=${f.slaveNetTimeout} s: its IO thread notices a master gone without a reset only after that long, so mha watch must rely on the other routes (SSH to the replicas' hosts) for such a death; SET GLOBAL slave_net_timeout=10 (and MASTER_HEARTBEAT_PERIOD below it) to let the replicas confirm it themselves`)
    const heartbeat = slowHeartbeat(server.name, f)
    if (heartbeat) add('warning', 'slow_heartbeat', server.name, heartbeat)
    // A failover goes ahead with it (MHA's check_repl only warns): said as what it risks, not as what stops one.
    if (!f.readOnly) add('warning', 'replica_writable', server.name, `${server.name} is a replica but read_only=0, so clients can write to it (writes a failover may not carry over); SET GLOBAL read_only=1`)
    if (!f.logBin) add('warning', 'log_bin_off', server.name, `${server.name}: log_bin is off, so it can never become the master`)
    else if (!f.logSlaveUpdates) add('warning', 'log_slave_updates_off', server.name, `${server.name}: log_slave_updates is off; after promotion the other replicas could not be re-pointed by GTID`)
  }

  const mode = replicationMode(cluster, replicaFacts.map(([, f]) => f), add)
  if (mode === 'file')
    for (const [server, f] of replicaFacts)
      if (f.relayLogPurge) add('warning', 'relay_log_purge_on', server.name, `${server.name}: relay_log_purge=1 may delete the relay logs that recover lagging replicas; set relay_log_purge=0`)

  // The master's own filters count too: after a switchover it is a replica, and its filters then skip writes.
  if (cluster.failover.checkReplFilter) {
    const masterFacts = master ? factsOf(master) : undefined
    const compared = [...(master && masterFacts ? [filtersOf(master.name, masterFacts)] : []), ...replicaFacts.map(([server, f]) => filtersOf(server.name, f))]
    for (const difference of filterDifferences(compared)) add('error', 'filters_differ', null, `${difference}: ${filtersAdvice}`)
  }
  checkVersions(cluster, snapshot, add)

  // SSH: every host reachable, binlogs readable, mysqlbinlog present, workdir writable.
  for (const server of cluster.servers) {
    const s = snap.get(server.name)!
    const soft: Severity = server.ignoreFail && server !== master ? 'warning' : 'error'
    if (!s.ssh.reachable && out.has(server.name)) continue
    if (!s.ssh.reachable) {
      if (server === master && masterDead) add('warning', 'ssh_failed', server.name, `${s.ssh.message}: the dead master's binlog cannot be saved; mha plan states what is lost`)
      else add(soft, 'ssh_failed', server.name, s.ssh.message)
      continue
    }
    const f = s.sql.reachable ? s.sql : undefined
    if (f?.logBin && !s.ssh.binlogDir)
      add(server === master ? 'error' : 'warning', 'binlog_not_found', server.name, `${server.name}: ${f.binaryLog?.file ?? 'its binlog'} is in none of master_binlog_dir (${server.masterBinlogDirs.join(', ')}); set master_binlog_dir`)
    else if (f?.logBin && !s.ssh.binlogReadable) add(soft, 'binlog_unreadable', server.name, `${server.name}: binlogs in ${s.ssh.binlogDir} are not readable by ${server.sshUser}`)
    if (!s.ssh.mysqlbinlog) add(soft, 'mysqlbinlog_missing', server.name, `${server.name}: neither mysqlbinlog nor mariadb-binlog found${server.clientBindir ? ` in ${server.clientBindir}` : ' on the PATH'}; install the server package or set client_bindir`)
    if (!s.ssh.workdirWritable) add(soft, 'workdir_not_writable', server.name, `${server.name}: remote_workdir ${server.remoteWorkdir} is not writable by ${server.sshUser}`)
  }

  // Binlog servers (MHA checks them at the start of every failover): a bonus to a failover, so warnings only.
  for (const b of cluster.binlogServers) {
    const listed = snapshot.binlogServers?.find((l) => l.name === b.name)?.ssh
    if (!listed) continue
    if (!listed.reachable) {
      add('warning', 'binlog_server_ssh_failed', b.name, `binlog server ${b.name}: ${listed.message}; a failover with ${master?.name ?? 'the master'}'s host gone could not save its binlog from there`)
      continue
    }
    if (!listed.binlogDir) add('warning', 'binlog_server_binlog_not_found', b.name, `binlog server ${b.name}: the master's current binlog is in none of master_binlog_dir (${b.masterBinlogDirs.join(', ')}); set master_binlog_dir, or see why its copy is behind`)
    else if (!listed.binlogReadable) add('warning', 'binlog_server_binlog_unreadable', b.name, `binlog server ${b.name}: the binlogs in ${listed.binlogDir} are not readable by ${b.sshUser}`)
    if (!listed.mysqlbinlog) add('warning', 'binlog_server_mysqlbinlog_missing', b.name, `binlog server ${b.name}: neither mysqlbinlog nor mariadb-binlog found${b.clientBindir ? ` in ${b.clientBindir}` : ' on the PATH'}; install the client package or set client_bindir`)
  }

  // Someone must be promotable, and the replication user must work on every promotable replica.
  const promotable = replicaFacts.filter(([server, f]) => !server.noMaster && f.logBin)
  if (master && replicaFacts.length > 0 && promotable.length === 0) add('error', 'no_candidate', null, 'no replica can become the master: every one has no_master set or log_bin off')
  if (master && replicaFacts.length === 0 && findings.every((x) => x.code !== 'not_replicating')) add('error', 'no_replica', null, `no replica of ${master.name} is reachable`)
  for (const [server, f] of promotable)
    if (!f.replUser.canReplicate)
      add('error', 'repl_user_missing', server.name, `${server.name}: replication user ${cluster.replUser} ${f.replUser.exists ? 'lacks REPLICATION SLAVE' : 'does not exist'}; the others could not replicate from it after promotion`)
  // The password a failover writes into CHANGE MASTER must work where replicas will connect.
  for (const [server, f] of [...promotable, ...(master && factsOf(master) ? [[master, factsOf(master)!] as [ServerConfig, SqlFacts]] : [])])
    if (f.replLogin && !f.replLogin.ok && f.replLogin.kind === 'auth')
      add('error', 'repl_password_wrong', server.name, `${server.name}: the replication user ${cluster.replUser} cannot log in with repl_password from ${cluster.file} (${f.replLogin.message}); replicas re-pointed after a failover would fail to connect: fix repl_password (or allow ${cluster.replUser} from this host)`)
  // The manager applies binlogs with its own clients.
  if (snapshot.manager) {
    if (!snapshot.manager.mysqlbinlog) add('error', 'manager_mysqlbinlog_missing', null, 'this host has neither mariadb-binlog nor mysqlbinlog: mha applies relay-log diffs and the dead master\'s binlog with it; install the mariadb-client or mysql-client package')
    if (!snapshot.manager.mysqlClient) add('error', 'manager_mysql_missing', null, 'this host has neither the mariadb nor the mysql client: mha applies binlogs through it; install the mariadb-client or mysql-client package')
  }
  // Hooks run on this host: a command it cannot find fails the failover (or, for report, only the report).
  for (const hook of snapshot.manager?.hooks ?? [])
    if (hook.problem)
      add(hook.field === 'report' ? 'warning' : 'error', 'hook_not_found', null, `hooks.${hook.field} in ${cluster.file}: ${hook.problem}; install it, or give the command's path (a word with a "/")`)
  for (const warning of missingHookWarnings(cluster.hooks, cluster.proxies.length)) add('warning', warning.code, null, warning.message)
  // With the master dead, what matters is whether mha can plan the failover now.
  if (masterDead) {
    try {
      const plan = planFor(cluster, snapshot, {tool: 'mha check', createdAt: new Date(0).toISOString(), configFile: cluster.file}, {outOfService: [...out.keys()]})
      // The failover would go ahead without them, and its apply ends with exit 10 naming them: said here the same way.
      for (const name of leftOutByPlan(plan))
        add('warning', 'failover_leaves_out', name, `a failover now would leave ${name} out (${plan.decision.notes.find((n) => n.startsWith(`${name} `)) ?? 'it cannot be recovered'}); mha apply would end with exit 10 and ${name} to rebuild`)
    } catch (error) {
      add('error', 'failover_not_plannable', master?.name ?? null, `the master is dead but no failover can be planned: ${error instanceof Error ? error.message : String(error)}`)
    }
  }

  const routing = proxyFindings(cluster, options.proxies ?? [], master ? {name: master.name, dead: masterDead} : null)
  findings.push(...routing.findings)

  const failoverPossible = !findings.some((x) => x.severity === 'error')
  return {
    cluster: cluster.name,
    verdict: !failoverPossible ? 'not_ok' : masterDead ? 'master_dead' : 'ok',
    failoverPossible,
    master: master?.name ?? null,
    replicationMode: mode,
    servers: cluster.servers.map((s) => serverRow(s, snap.get(s.name)!, master, topology.replicas.includes(s))),
    proxies: routing.rows,
    findings,
  }
}

/** Heartbeat periods above this make watch wait more than 3 × this on a replica whose IO thread still says Yes. */
export const slowHeartbeatPeriodS = 5

/**
 * A live master sends a heartbeat each period it has no event to send; mha watch counts a replica whose IO thread
 * still says Yes as having lost the master after 3 periods without either (at least 2 s). A long period, or none,
 * leaves a master gone without a TCP reset to the other routes; one not below slave_net_timeout makes an idle
 * master's connection time out before a heartbeat is due.
 */
function slowHeartbeat(name: string, f: SqlFacts): string | null {
  const period = f.heartbeatPeriod
  if (period === undefined || period === null) return null
  const d = dialectFor(f.version)
  const fix = `${d.stopReplica}; ${d.setHeartbeatPeriod(1)}; ${d.startReplica}`
  const timeout = f.slaveNetTimeout
  if (period === 0) return `${name}: heartbeats are off (heartbeat period 0): on a quiet master neither its IO thread nor mha watch can tell a master gone without a TCP reset from one with nothing to send; run ${fix}`
  if (timeout !== undefined && period >= timeout)
    return `${name}: heartbeat period ${period} s is not below slave_net_timeout=${timeout} s: a quiet master's connection times out and reconnects before a heartbeat is due, and a silent master is seen only after ${timeout} s; run ${fix}`
  if (period > slowHeartbeatPeriodS)
    return `${name}: heartbeat period ${period} s: mha watch counts this replica as having lost a master gone without a TCP reset only after ${3 * period} s of silence (3 periods), so it must rely on the other routes (SSH to the replicas' hosts); run ${fix}`
  return null
}

type Add = (severity: Severity, code: string, server: string | null, message: string) => void

function replicationMode(cluster: ClusterConfig, replicas: SqlFacts[], add: Add): 'gtid' | 'file' {
  const gtidReplicas = replicas.filter((f) => f.replica && f.replica.gtidMode !== 'no')
  const allGtid = replicas.length > 0 && gtidReplicas.length === replicas.length
  if (gtidReplicas.length > 0 && !allGtid)
    add('error', 'gtid_mixed', null, `replicas disagree on GTID: ${gtidReplicas.length} of ${replicas.length} use it; use GTID on all or none`)
  if (replicas.some((f) => f.version.flavor === 'mysql' && !f.gtid.enabled) && replicas.some((f) => f.version.flavor === 'mysql' && f.gtid.enabled))
    add('error', 'gtid_mode_mixed', null, 'gtid_mode differs between servers; set it the same everywhere')
  if (cluster.gtid === 'on' && !allGtid) add('error', 'gtid_required', null, 'replication.gtid is "on" but the replicas do not all replicate with GTID')
  return cluster.gtid === 'off' || !allGtid ? 'file' : 'gtid'
}

function checkVersions(cluster: ClusterConfig, snapshot: Snapshot, add: Add): void {
  const facts = snapshot.servers.map((s) => [s, sqlFacts(s)] as const).filter((x): x is readonly [ServerSnapshot, SqlFacts] => x[1] !== undefined)
  const flavors = new Set(facts.map(([, f]) => f.version.flavor))
  if (flavors.size > 1) add('error', 'flavors_mixed', null, `the cluster mixes ${[...flavors].join(' and ')}; mha fails over within one flavor only`)
  const majors = new Set(facts.map(([, f]) => `${f.version.major}.${f.version.minor}`))
  if (majors.size > 1)
    add('warning', 'versions_differ', null, `servers run different versions (${facts.map(([s, f]) => `${s.name} ${f.version.major}.${f.version.minor}.${f.version.patch}`).join(', ')}); a newer one is never promoted over older replicas`)
  void cluster
}

function serverRow(server: ServerConfig, s: ServerSnapshot, master: ServerConfig | undefined, isReplica: boolean): ServerRow {
  const f = sqlFacts(s)
  return {
    name: server.name,
    address: s.address,
    role: !f ? 'down' : server === master ? 'master' : isReplica ? 'replica' : 'other',
    version: f ? f.version.text : null,
    source: f?.replica ? `${f.replica.sourceHost}:${f.replica.sourcePort}` : null,
    ioThread: f?.replica ? f.replica.ioThread : null,
    sqlThread: f?.replica ? f.replica.sqlThread : null,
    secondsBehind: f?.replica ? f.replica.secondsBehind : null,
    readOnly: f ? f.readOnly : null,
    logBin: f ? f.logBin : null,
    gtid: f ? (f.replica ? f.replica.gtidMode : f.gtid.binlogPos || null) : null,
    ssh: s.ssh.reachable ? 'ok' : 'failed',
  }
}
