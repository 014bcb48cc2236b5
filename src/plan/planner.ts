import {checkCluster} from '../analysis/check.js'
import {missingHookWarnings} from '../analysis/hooks.js'
import {replicatesFrom, sqlFacts, topologyOf, type Topology} from '../analysis/topology.js'
import {binlogSequence, compareCoordinates, extremeCoordinates, formatCoordinates, siblingBinlogName} from '../binlog/coordinates.js'
import {settingsDigest} from '../config/digest.js'
import type {ClusterConfig, ServerConfig} from '../config/types.js'
import type {Snapshot, SshFacts} from '../inspect/types.js'
import {UserError} from '../util/errors.js'
import {dialectFor} from '../dialect/index.js'
import type {ServerVersion} from '../dialect/types.js'
import {formatMariadbGtidPos, formatMysqlGtidSet, mariadbErrant, mariadbMaxPerDomain, mariadbMissing, mysqlErrant} from '../gtid/index.js'
import {rankCandidates, type ReplicaView} from './candidates.js'
import {fingerprint} from './fingerprint.js'
import type {DataLoss, Fact, ObservedServer, OutputRef, Plan, RelayDiff, Step} from './types.js'
import {drainParams, writerParams} from './routing-params.js'

export interface PlanHeader {
  tool: string
  createdAt: string
  configFile: string
}

export interface PlanOptions {
  /** The operator declares the master dead although replicas still replicate from it, and says why. */
  forceDead?: string
  /** Servers an earlier failover took out of service: not waited for, like ignore_fail. */
  outOfService?: readonly string[]
  /** MHA's --skip_change_master and --skip_disable_read_only: recover every survivor, leave these to the operator. */
  leave?: LeftToOperator
}

/** What a failover leaves to the operator on request: re-pointing the other survivors, making the new master writable. */
export interface LeftToOperator {
  changeMaster: boolean
  disableReadOnly: boolean
}

/** Pure: the same config and snapshot always give the same plan (but for the header). */
export function planFor(cluster: ClusterConfig, snapshot: Snapshot, header: PlanHeader, options: PlanOptions = {}): Plan {
  const topology = topologyOf(cluster, snapshot)
  const byName = new Map(snapshot.servers.map((s) => [s.name, s]))
  const master = topology.master
  if (!master && topology.conflict) throw new UserError(`${cluster.name}: no failover is planned: ${topology.conflict}`)
  if (!master) throw new UserError(`${cluster.name}: no master found (no reachable server replicates from nobody and no replica names a configured server); run "mha check" for details`)
  const masterSql = byName.get(master.name)!.sql
  if (!masterSql.reachable && (masterSql.kind === 'auth' || masterSql.kind === 'too_many_connections'))
    throw new UserError(`${masterSql.message}: the master answers, so it is not dead; no failover is planned`)
  const observed = observe(cluster, snapshot, master)
  if (masterSql.reachable) {
    const report = checkCluster(cluster, snapshot)
    return {
      format: 1,
      header,
      cluster: cluster.name,
      kind: 'noop',
      observed,
      decision: {
        summary: `${master.name} is alive; no changes`,
        replicationMode: report.replicationMode,
        deadMaster: null,
        newMaster: null,
        latest: [],
        oldest: [],
        candidates: [],
        dataLoss: {none: true, statement: 'none', lostAfter: null, lostGtids: null, abandoned: []},
        notes: [...topologyNotes(cluster, topology, null).map((n) => n.message), ...report.findings.filter((f) => f.severity === 'error').map((f) => f.message)],
      },
      steps: [],
    }
  }
  // The same judgement as mha watch: a master its replicas still stream from is alive; mha is cut off from it.
  const streaming = cluster.servers.filter((server) => {
    const replica = server !== master ? sqlFacts(byName.get(server.name)!)?.replica : undefined
    return replica && replicatesFrom(replica, master) && replica.ioThread === 'running'
  })
  if (streaming.length > 0 && !options.forceDead)
    throw new UserError(
      `network problem, not a dead master: mha cannot reach ${master.name} (${masterSql.reachable ? '' : masterSql.message}), but ${streaming.map((s) => s.name).join(', ')} still replicate${streaming.length === 1 ? 's' : ''} from it (IO thread running); no failover is planned. If ${master.name} must be failed over anyway, plan with --force-dead "<why>"`,
    )
  refuseLowerTiers(cluster, topology, 'failover')
  const plan = planFailover(cluster, snapshot, header, master, observed, new Set(options.outOfService ?? []), {changeMaster: options.leave?.changeMaster === true, disableReadOnly: options.leave?.disableReadOnly === true})
  plan.decision.notes.push(...topologyNotes(cluster, topology, plan).map((n) => n.message))
  if (options.forceDead) {
    plan.decision.forcedDead = options.forceDead
    plan.decision.notes.unshift(`the operator declared ${master.name} dead${streaming.length ? ` although ${streaming.map((s) => s.name).join(', ')} still replicated from it` : ''}: ${options.forceDead}`)
  }
  return plan
}

/**
 * The servers a failover plan leaves out that answered when it was made (an unrecoverable or errant replica): done,
 * with something left for the operator (MHA's exit 10). One unreachable with ignore_fail is what the operator told
 * mha to ignore, as MHA ignores it; it is not counted.
 */
export function leftOutByPlan(plan: Plan): string[] {
  if (plan.kind !== 'failover') return []
  const reachable = new Set(plan.observed.servers.filter((s) => s.reachable).map((s) => s.name))
  return plan.decision.dataLoss.abandoned.filter((name) => reachable.has(name))
}

/**
 * MHA refuses replicas of replicas unless multi_tier_slave is set (validate_master_ip_port): a failover or switchover
 * that re-points only the master's replicas would otherwise leave a lower tier behind unnoticed.
 */
export function refuseLowerTiers(cluster: ClusterConfig, topology: Topology, what: 'failover' | 'switchover'): void {
  if (cluster.failover.multiTierSlave || topology.lowerTiers.length === 0) return
  const master = topology.master!.name
  throw new UserError(
    `${what} refused: ${topology.lowerTiers.map((t) => `${t.server.name} replicates from ${t.via.name}, not from the master ${master}`).join('; ')} (a multi-tier topology); set failover.multi_tier_slave: true in ${cluster.file} to keep ${topology.lowerTiers.length === 1 ? 'it' : 'each'} under ${topology.lowerTiers.length === 1 ? 'its' : 'their'} intermediate master, or re-point ${topology.lowerTiers.length === 1 ? 'it' : 'them'} at ${master}`,
  )
}

/**
 * What happens to the servers a plan does not act on: each lower tier with its intermediate master (which a plan
 * promotes, re-points or leaves out), and a master-master pair's other half. `plan` null: the master is alive.
 * `mha check` says the same words (their codes are its findings').
 */
export function topologyNotes(cluster: ClusterConfig, topology: Topology, plan: Plan | null): {code: 'standby_down' | 'rejoin_dead_master' | 'lower_tier'; message: string}[] {
  const notes: ReturnType<typeof topologyNotes> = []
  const master = topology.master
  if (!master) return notes
  if (topology.standby && topology.standbyDown && !plan)
    notes.push({
      code: 'standby_down',
      message: `${topology.standby.name}, the standby master that ${master.name} replicates from, does not answer: ${master.name} is writable and stays the master, so nothing is failed over; start ${topology.standby.name} again (it resumes replicating from ${master.name}) or rebuild it`,
    })
  // A pair (two servers) is left with one: the dead half must come back for the next failover.
  if (plan?.kind === 'failover' && plan.decision.newMaster && cluster.servers.length === 2)
    notes.push({
      code: 'rejoin_dead_master',
      message: `${master.name} is not brought back by this plan and ${plan.decision.newMaster} is left without a standby: once ${master.name} is up again, rejoin it as a replica of ${plan.decision.newMaster} ("mha plan --rejoin ${master.name}") or rebuild it, so that the pair is a pair again`,
    })
  // Without multi_tier_slave a lower tier is refused (refuseLowerTiers, and check's wrong_source), not described.
  if (!cluster.failover.multiTierSlave) return notes
  const fate = (via: string): string => {
    if (!plan) return `which replicates from ${master.name}`
    if (via === plan.decision.newMaster) return 'which becomes the master'
    if (plan.steps.some((s) => s.type === 'repoint_replica' && s.server === via)) return `which is re-pointed to ${plan.decision.newMaster}`
    if (via === master.name) return `the old master, which stays as it is`
    return 'which this plan leaves as it is'
  }
  for (const t of topology.lowerTiers)
    notes.push({
      code: 'lower_tier',
      message: `${t.server.name}${t.tier ? ` (tier ${t.tier})` : ''} replicates from ${t.via.name}, not from ${master.name}: with multi_tier_slave it stays under ${t.via.name}, ${fate(t.via.name)}, and is neither stopped nor re-pointed`,
    })
  return notes
}

function planFailover(cluster: ClusterConfig, snapshot: Snapshot, header: PlanHeader, dead: ServerConfig, observed: Plan['observed'], outOfService: ReadonlySet<string>, leave: LeftToOperator): Plan {
  const byName = new Map(snapshot.servers.map((s) => [s.name, s]))
  const notes: string[] = []
  const replicas: ReplicaView[] = []
  const abandoned: string[] = []
  const lowerTiers = new Set(topologyOf(cluster, snapshot).lowerTiers.map((t) => t.server.name))
  for (const server of cluster.servers) {
    if (server === dead) continue
    const snap = byName.get(server.name)!
    const facts = sqlFacts(snap)
    if (!facts) {
      if (outOfService.has(server.name)) {
        notes.push(`${server.name} is out of service since an earlier failover: it is left out`)
        continue
      }
      if (!server.ignoreFail) throw new UserError(`${server.name} is unreachable too (${snap.sql.reachable ? '' : snap.sql.message}); mha plans a failover only when every server but the master answers, unless the server has ignore_fail: true`)
      abandoned.push(server.name)
      notes.push(`${server.name} is unreachable and has ignore_fail: it is left out`)
      continue
    }
    const r = facts.replica
    if (!r || !replicatesFrom(r, dead)) {
      // A lower tier is said by topologyNotes, with its intermediate master's fate.
      if (!lowerTiers.has(server.name)) notes.push(`${server.name} does not replicate from ${dead.name}: it is left alone`)
      continue
    }
    replicas.push({server, facts, read: r.read, executed: r.executed})
  }
  if (replicas.length === 0) throw new UserError(`${dead.name} is dead and no reachable replica replicates from it: nothing can be promoted`)

  const gtid = cluster.gtid !== 'off' && replicas.every((r) => r.facts.replica!.gtidMode !== 'no')
  if (cluster.gtid === 'on' && !gtid) throw new UserError(`replication.gtid is "on" but ${replicas.filter((r) => r.facts.replica!.gtidMode === 'no').map((r) => r.server.name).join(', ')} replicate by file/position`)

  const {coordinates: maxRead, items: latest} = extremeCoordinates(replicas, (r) => r.read, 1)
  const oldest = extremeCoordinates(replicas, (r) => r.read, -1).items

  // Relay-log diffs (file/position): for each lagging replica, where its missing events are in a latest replica's relay log.
  const diffs = new Map<string, RelayDiff>()
  const unrecoverable = new Set<string>()
  if (!gtid) {
    for (const r of replicas) {
      if (latest.includes(r)) continue
      const lookup = snapshot.relayLookups.find((l) => l.target === r.server.name && l.found !== null && latest.some((x) => x.server.name === l.source))
      if (lookup?.found) diffs.set(r.server.name, {source: lookup.source, files: lookup.found.files, offset: lookup.found.offset, after: r.read, until: maxRead})
      else {
        unrecoverable.add(r.server.name)
        const why = snapshot.relayLookups.find((l) => l.target === r.server.name)?.problem ?? 'no relay log of a latest replica was read'
        notes.push(`${r.server.name} lacks the events after ${formatCoordinates(r.read)} and they were not found in a latest replica's relay log (${why}); it cannot be recovered and must be rebuilt`)
        abandoned.push(r.server.name)
      }
    }
  }

  // GTID: a replica holding transactions the others lack is never promoted or re-pointed silently.
  const errant = gtid ? errantTransactions(replicas) : new Map<string, string>()
  for (const [name, gtids] of errant) {
    abandoned.push(name)
    notes.push(`${name} has errant transactions (${gtids}) that no other server has; it is neither promoted nor re-pointed: remove them or rebuild it, then re-point it by hand`)
  }
  const excluded = new Set([...unrecoverable, ...errant.keys()])
  // Recovery copies only from servers that are kept: an errant replica's events are never spread.
  const usable = replicas.filter((r) => !excluded.has(r.server.name))
  if (usable.length === 0) throw new UserError(`no replica of ${dead.name} can be kept: ${notes.join('; ')}`)
  const {coordinates: usableRead, items: usableLatest} = extremeCoordinates(usable, (r) => r.read, 1)
  if (compareCoordinates(usableRead, maxRead) < 0)
    notes.push(`what ${latest.map((r) => r.server.name).join(', ')} received after ${formatCoordinates(usableRead)} is not used, since ${latest.length > 1 ? 'they are' : 'it is'} left out`)

  const deadSnap = byName.get(dead.name)!
  // Sizes listed over SSH on the master's host win; the master's Rotate events in relay logs fill in the rest (MHA bug 143).
  const masterFileSizes = new Map((snapshot.masterFileSizes ?? []).flatMap((s) => s.files.map((f) => [f.file, f.size] as const)))
  if (deadSnap.ssh.reachable) for (const b of deadSnap.ssh.binlogs) masterFileSizes.set(b.file, b.size)
  for (const s of snapshot.masterFileSizes ?? []) if (s.problem) notes.push(`${dead.name}'s binlog file sizes: ${s.problem}`)
  const {candidates, chosen} = rankCandidates({
    cluster,
    replicas,
    latest,
    unrecoverable,
    errant,
    masterFileSizes,
    sequenceOf: binlogSequence,
  })
  if (!chosen) throw new UserError(`no replica can become the new master: ${candidates.map((c) => `${c.server} ${c.reason}`).join('; ')}`)
  const newMaster = chosen.server

  // The dead master's binlog tail: saved when its host (or else a binlog server) answers SSH and holds the binlog.
  const tail = masterTail(cluster, dead, snapshot, usableRead)
  // A binlog server's copy may be behind the master, and with the master's host gone nothing proves it is not: what
  // lies past the copy's end is stated as lost (if the master wrote any), never as none.
  const copyEnd = tail.kind === 'lost' || !tail.binlogServer ? null : tail.kind === 'save' ? (tail.lost?.after ?? tail.end) : usableRead
  const lostAfter = tail.kind === 'lost' ? usableRead : tail.kind === 'save' && tail.lost ? tail.lost.after : copyEnd
  const beyondCopy = (b: string) => `; ${dead.name}'s host cannot be read, so anything it wrote after ${formatCoordinates(copyEnd!)}, the end of ${b}'s copy, is lost`
  const saved = (t: Extract<Tail, {kind: 'save'}>) =>
    t.binlogServer
      ? `${dead.name}'s binlog after ${formatCoordinates(usableRead)} (${t.bytes} bytes in ${t.files.join(', ')}) is saved over SSH from binlog server ${t.binlogServer} and applied${t.lost ? '' : beyondCopy(t.binlogServer)}`
      : `${dead.name}'s binlog after ${formatCoordinates(usableRead)} (${t.bytes} bytes in ${t.files.join(', ')}) is saved over SSH and applied`
  // Said without "none: ": that prefix is added once the whole loss is known (dataLoss.none), never before.
  const dataLoss: DataLoss = {
    none: lostAfter === null && abandoned.length === 0,
    statement:
      tail.kind === 'lost'
        ? `events after ${formatCoordinates(usableRead)} in ${dead.name}'s binlog are lost: ${tail.why}`
        : tail.kind === 'none'
          ? tail.binlogServer
            ? `${usableLatest.map((r) => r.server.name).join(', ')} ${usableLatest.length > 1 ? 'have' : 'has'} read as far as binlog server ${tail.binlogServer}'s copy of ${dead.name}'s binlog goes (${formatCoordinates(usableRead)})${beyondCopy(tail.binlogServer)}`
            : `${usableLatest.map((r) => r.server.name).join(', ')} ${usableLatest.length > 1 ? 'have' : 'has'} read ${dead.name}'s binlog to its end (${formatCoordinates(usableRead)})`
          : tail.lost
            ? `events after ${formatCoordinates(tail.lost.after)} in ${dead.name}'s binlog are lost: ${tail.lost.why}; ${saved(tail)}`
            : saved(tail),
    lostAfter,
    lostGtids: null,
    abandoned,
  }
  if (tail.kind === 'lost' && gtid) {
    const last = usableLatest[0]!.facts.replica!.retrievedGtid || usableLatest[0]!.facts.gtid.currentPos
    if (last) dataLoss.statement += ` (transactions after GTID ${last})`
  }
  if (abandoned.length > 0) dataLoss.statement += `; ${abandoned.join(', ')} will not be recovered`

  // GTID mode: the new master takes every transaction it lacks from the dead master's binlog, read from its own
  // executed position (a transaction split across the latest replica's relay log comes whole from there); what it
  // has already is skipped by GTID. Without that binlog it copies from a latest replica instead.
  let stepTail = tail
  let tailFrom = usableRead
  let catchUpSource: string | null = null
  if (gtid) {
    // Not the latest: it first copies what a latest replica has (the binlog above may fail to be saved at
    // apply time; then this is what it keeps). By GTID from a latest replica that logs what it replicates;
    // else from that replica's relay log, as in file/position mode.
    let route: 'catch_up' | 'relay_diff' | null = null
    if (!usableLatest.includes(chosen)) {
      const source = usableLatest.find((r) => r.facts.logBin && r.facts.logSlaveUpdates)
      const lookup = snapshot.relayLookups.find((l) => l.target === newMaster.name && l.found !== null && usableLatest.some((x) => x.server.name === l.source))
      if (source) {
        catchUpSource = source.server.name
        route = 'catch_up'
      } else if (lookup?.found) {
        diffs.set(newMaster.name, {source: lookup.source, files: lookup.found.files, offset: lookup.found.offset, after: chosen.read, until: usableRead})
        route = 'relay_diff'
      }
    }
    // The dead master's binlog from the new master's own executed position: a transaction that the latest
    // replica's relay log holds only in part comes whole; what the new master already has is skipped by GTID.
    // A relay-log copy continues at the latest read position instead (one stream, no transaction twice).
    const fromNewMaster = masterTail(cluster, dead, snapshot, chosen.executed)
    if (fromNewMaster.kind === 'save' && route !== 'relay_diff') {
      stepTail = fromNewMaster
      tailFrom = chosen.executed
    } else if (route === 'catch_up' && tail.kind === 'save') {
      notes.push(`${dead.name}'s binlog is saved from ${formatCoordinates(usableRead)} only (${fromNewMaster.kind === 'lost' ? fromNewMaster.why : 'nothing earlier'}): a transaction that ${catchUpSource}'s relay log holds only in part is not recovered whole`)
    }
    const held = heldDomains(chosen)
    if (held)
      notes.push(
        `${newMaster.name} has received transactions it has not executed in ${held}, while other domains committed on: its executed position ${formatCoordinates(chosen.executed)} is its furthest commit, not a low-water mark (parallel replication commits GTID domains independently); wait_relay_log_applied:${newMaster.name} executes them in every domain before ${stepTail.kind === 'save' && tailFrom === chosen.executed ? `${dead.name}'s binlog after that position is applied` : 'anything else is applied'}`,
      )
    if (!usableLatest.includes(chosen) && route === null && stepTail.kind !== 'save') {
      const why = `${usableLatest.map((r) => r.server.name).join(', ')} ${usableLatest.length > 1 ? 'have log_bin or log_slave_updates off and their relay logs were' : 'has log_bin or log_slave_updates off and its relay log was'} not read`
      notes.push(`what ${newMaster.name} lacks after ${formatCoordinates(chosen.read)} cannot be copied to it: ${why}`)
      dataLoss.none = false
      dataLoss.statement += `; ${newMaster.name} will lack the transactions after ${formatCoordinates(chosen.read)}: ${why}`
    }
  }
  if (dataLoss.none) dataLoss.statement = `none: ${dataLoss.statement}`
  const steps = buildSteps({cluster, dead, newMaster: chosen, replicas, gtid, diffs, unrecoverable: excluded, tail: stepTail, tailFrom, catchUpSource, latest: usableLatest, leave})
  notes.push(...unprovableNotes(replicas.filter((r) => !excluded.has(r.server.name)), steps))
  const others = replicas.filter((r) => r !== chosen && !excluded.has(r.server.name)).map((r) => r.server.name)
  const summary =
    `${dead.name} is dead; promote ${newMaster.name} (${candidates.find((c) => c.chosen)!.reason.replace(/^chosen: /, '')})` +
    (others.length ? (leave.changeMaster ? `; recover ${others.join(', ')} without re-pointing them` : `; re-point ${others.join(', ')}`) : '') +
    (diffs.size ? `; relay-log diffs for ${[...diffs.keys()].join(', ')}` : '') +
    (tail.kind === 'save' ? `; save and apply ${dead.name}'s binlog after ${formatCoordinates(usableRead)}${tail.binlogServer ? ` from binlog server ${tail.binlogServer}` : ''}` : '')

  return {
    format: 1,
    header,
    cluster: cluster.name,
    kind: 'failover',
    observed,
    decision: {
      summary,
      replicationMode: gtid ? 'gtid' : 'file',
      deadMaster: dead.name,
      newMaster: newMaster.name,
      latest: latest.map((r) => r.server.name),
      oldest: oldest.map((r) => r.server.name),
      candidates,
      dataLoss,
      notes,
      ...failoverWarnings(cluster),
      ...leftToOperator(leave, newMaster.name, dead.name, others),
    },
    steps,
  }
}

/** The decision's record of what the operator asked to do by hand, absent when nothing: plans without it keep their shape. */
function leftToOperator(leave: LeftToOperator, newMaster: string, dead: string, others: string[]): Pick<Plan['decision'], 'leftToOperator'> {
  if (!leave.changeMaster && !leave.disableReadOnly) return {}
  const todo = [
    ...(leave.changeMaster && others.length ? [`re-point ${others.join(', ')} to ${newMaster} (each is recovered to ${newMaster}'s data and left stopped, still configured to replicate from ${dead})`] : []),
    ...(leave.disableReadOnly ? [`make ${newMaster} writable (SET GLOBAL read_only=0): it is left read_only`] : []),
  ]
  return {leftToOperator: {repoint: leave.changeMaster ? others : [], disableReadOnly: leave.disableReadOnly, todo}}
}

/**
 * What the apply could not prove or redo, said before anything runs: MySQL without GTIDs gives the final check
 * only binlog coordinates to compare, and an interrupted apply_logs into a target that has neither GTIDs nor a
 * binlog cannot tell what committed, so it is refused rather than run twice (that server is then rebuilt).
 */
function unprovableNotes(kept: ReplicaView[], steps: Step[]): string[] {
  const noGtids = kept.filter((r) => r.facts.version.flavor === 'mysql' && !r.facts.gtid.enabled)
  const notes = noGtids.length > 0 ? [`${noGtids.map((r) => r.server.name).join(', ')} record${noGtids.length === 1 ? 's' : ''} no GTIDs (gtid_mode=OFF): the final check compares only how far each recovery reached in the dead master's binlog`] : []
  for (const r of noGtids.filter((v) => !v.facts.logBin && steps.some((s) => s.type === 'apply_logs' && s.server === v.server.name)))
    notes.push(`${r.server.name} has neither GTIDs nor a binlog: if its apply_logs is interrupted, what committed cannot be told, a retry is refused and ${r.server.name} must be rebuilt`)
  return notes
}

/** The plan carries the missing-hook warnings only when there are some, so plans of fully hooked clusters keep their shape. */
export function failoverWarnings(cluster: ClusterConfig): {warnings?: string[]} {
  const warnings = missingHookWarnings(cluster.hooks, cluster.proxies.length).map((w) => w.message)
  return warnings.length > 0 ? {warnings} : {}
}

/**
 * `lost` on a save: the files stop at a hole in the master's list, so only what comes before it is saved.
 * `binlogServer`: the copy is read from that binlog server, not from the dead master's own host.
 */
type Tail =
  | {kind: 'save'; dir: string; files: string[]; bytes: number; end: {file: string; pos: number}; lost?: {after: {file: string; pos: number}; why: string}; binlogServer?: string}
  | {kind: 'none'; binlogServer?: string}
  | {kind: 'lost'; why: string}

/**
 * The dead master's binlog after `from`: from its own host when that answers SSH and holds it, else from the
 * binlog server whose copy reaches furthest (MHA: the largest output wins).
 */
function masterTail(cluster: ClusterConfig, dead: ServerConfig, snapshot: Snapshot, from: {file: string; pos: number}): Tail {
  const snap = snapshot.servers.find((s) => s.name === dead.name)!
  const own: Tail = snap.ssh.reachable
    ? tailIn(snap.ssh, from, {where: `on ${dead.name}`, dirs: dead.masterBinlogDirs, sshUser: dead.sshUser})
    : {kind: 'lost', why: `${dead.name}'s host cannot be reached over SSH (${snap.ssh.message})`}
  if (own.kind !== 'lost' || cluster.binlogServers.length === 0) return own
  const copies = cluster.binlogServers.map((b) => {
    const listed = snapshot.binlogServers?.find((l) => l.name === b.name)?.ssh
    const tail: Tail = !listed
      ? {kind: 'lost', why: `binlog server ${b.name} was not listed`}
      : !listed.reachable
        ? {kind: 'lost', why: `binlog server ${b.name} cannot be reached over SSH (${listed.message})`}
        : tailIn(listed, from, {where: `on binlog server ${b.name}`, dirs: b.masterBinlogDirs, sshUser: b.sshUser, copy: true})
    return tail.kind === 'lost' ? tail : {...tail, binlogServer: b.name}
  })
  const saves = copies.filter((t) => t.kind === 'save')
  const best = saves.sort((a, b) => b.bytes - a.bytes)[0] ?? copies.find((t) => t.kind === 'none')
  if (best) return best
  return {kind: 'lost', why: [own.why, ...copies.map((t) => (t.kind === 'lost' ? t.why : ''))].join('; ')}
}

/** The binlog after `from` in one listing of a master's binlog files (the master's own host, or a binlog server's copy). */
function tailIn(facts: SshFacts, from: {file: string; pos: number}, host: {where: string; dirs: string[]; sshUser: string; copy?: boolean}): Tail {
  if (!facts.binlogDir || facts.binlogs.length === 0) return {kind: 'lost', why: `${from.file} is in none of master_binlog_dir (${host.dirs.join(', ')}) ${host.where}`}
  if (!facts.binlogReadable) return {kind: 'lost', why: `the binlogs in ${facts.binlogDir} ${host.where} are not readable by ${host.sshUser}`}
  const listed = facts.binlogs.filter((b) => binlogSequence(b.file) >= binlogSequence(from.file))
  if (listed[0]?.file !== from.file) return {kind: 'lost', why: `${from.file} is no longer in ${facts.binlogDir} ${host.where}`}
  // Files must follow one another: past a missing one, the rest cannot be applied in order.
  const hole = listed.findIndex((b, i) => i > 0 && binlogSequence(b.file) !== binlogSequence(listed[i - 1]!.file) + 1)
  const files = hole === -1 ? listed : listed.slice(0, hole)
  const bytes = files.reduce((sum, b) => sum + b.size, 0) - from.pos
  if (hole !== -1) {
    const last = files.at(-1)!
    const missing = siblingBinlogName(last.file, 1)
    const why = `${missing} is missing from ${facts.binlogDir} ${host.where} (the list goes on at ${listed[hole]!.file}), so nothing after it can be applied in order`
    if (bytes <= 0) return {kind: 'lost', why}
    return {kind: 'save', dir: facts.binlogDir, files: files.map((b) => b.file), bytes, end: {file: last.file, pos: last.size}, lost: {after: {file: last.file, pos: last.size}, why}}
  }
  // A copy shorter than what a replica read has nothing to add, and says nothing of what the master wrote after.
  if (host.copy && files.length === 1 && bytes < 0) return {kind: 'lost', why: `the copy of ${from.file} ${host.where} ends at byte ${files[0]!.size}, before ${formatCoordinates(from)}`}
  // A later file holds at least its header; a tail of only headers is still saved, so that nothing is assumed.
  if (files.length === 1 && bytes <= 0) return {kind: 'none'}
  return {kind: 'save', dir: facts.binlogDir, files: files.map((b) => b.file), bytes, end: {file: files.at(-1)!.file, pos: files.at(-1)!.size}}
}

interface StepInputs {
  cluster: ClusterConfig
  dead: ServerConfig
  newMaster: ReplicaView
  replicas: ReplicaView[]
  latest: ReplicaView[]
  gtid: boolean
  diffs: Map<string, RelayDiff>
  unrecoverable: Set<string>
  tail: Tail
  /** Where the saved binlog starts: the latest replica's read position, or (GTID) the new master's executed one. */
  tailFrom: {file: string; pos: number}
  /** GTID mode: the latest replica the new master replicates from to catch up, when the binlog is not saved. */
  catchUpSource: string | null
  leave: LeftToOperator
}

function buildSteps(inputs: StepInputs): Step[] {
  const {cluster, dead, newMaster, replicas, gtid, diffs, unrecoverable, tail, leave} = inputs
  const steps: Step[] = []
  const nm = newMaster.server.name
  const id = (type: string, server: string) => `${type}:${server}`

  const frozen = replicas.map((r) => id('stop_replica_io', r.server.name))
  for (const r of replicas)
    steps.push({id: id('stop_replica_io', r.server.name), type: 'stop_replica_io', server: r.server.name, params: {}, after: [], outputs: [], reason: `freeze what ${r.server.name} has received from ${dead.name}`})
  const fence = id('fence_master', dead.name)
  steps.push({
    id: fence,
    type: 'fence_master',
    server: dead.name,
    params: {
      ...(cluster.hooks.shutdown ? {method: 'hook' as const, hook: cluster.hooks.shutdown} : {method: 'read_only_and_kill' as const}),
      ...(cluster.hooks.masterIpFailover ? {ipHook: cluster.hooks.masterIpFailover} : {}),
    },
    after: [],
    outputs: [],
    reason: cluster.hooks.shutdown ? `make sure ${dead.name} cannot take writes again: the shutdown hook fences it` : `make sure ${dead.name} cannot take writes again: where it still answers SQL, set read_only and kill client connections`,
  })
  let tailRef: OutputRef | null = null
  const save = id('save_master_binlog', dead.name)
  if (tail.kind === 'save') {
    const from = inputs.tailFrom
    steps.push({
      id: save,
      type: 'save_master_binlog',
      server: dead.name,
      params: {dir: tail.dir, from, files: tail.files, ...(tail.binlogServer ? {binlogServer: tail.binlogServer} : {})},
      after: [...frozen, fence],
      outputs: ['file', 'end'],
      reason: `copy ${dead.name}'s binlog after ${formatCoordinates(from)} (${gtid ? `where ${nm} has executed to` : 'what no replica received'}) over SSH${tail.binlogServer ? ` from binlog server ${tail.binlogServer} (${dead.name}'s host cannot be read); only whole transactions are kept` : ''}; a torn final event is trimmed`,
    })
    tailRef = {fromStep: save, output: 'file'}
  }

  // The new master: everything it lacks, then it takes writes.
  const nmWait = id('wait_relay_log_applied', nm)
  steps.push({id: nmWait, type: 'wait_relay_log_applied', server: nm, params: {until: newMaster.read}, after: [id('stop_replica_io', nm)], outputs: ['position'], reason: `let ${nm} execute the relay log it already has (up to ${formatCoordinates(newMaster.read)})`})
  let nmReady = nmWait
  if (inputs.catchUpSource) {
    const source = inputs.catchUpSource
    const catchUp = id('catch_up_from', nm)
    steps.push({id: catchUp, type: 'catch_up_from', server: nm, params: {source}, after: [nmWait, id('wait_relay_log_applied', source)], outputs: [], reason: `${nm} is behind ${source}: replicate from it by GTID until it has everything ${source} has`})
    nmReady = catchUp
  }
  // Relay-log ranges are copied first: the source's relay logs are deleted when it is detached.
  const diffSaves = new Map<string, string>()
  for (const [target, diff] of diffs) {
    if (unrecoverable.has(target)) continue
    const saveDiff = id('save_relay_diff', target)
    steps.push({
      id: saveDiff,
      type: 'save_relay_diff',
      server: diff.source,
      params: {target, diff},
      after: [id('stop_replica_io', diff.source)],
      outputs: ['file'],
      reason: `copy over SSH the part of ${diff.source}'s relay log that ${target} lacks: ${diff.files[0]}:${diff.offset} on, master events after ${formatCoordinates(diff.after)} up to ${formatCoordinates(diff.until)}`,
    })
    diffSaves.set(target, saveDiff)
  }
  const diffSavesFrom = (source: string): string[] => [...diffSaves.entries()].filter(([target]) => diffs.get(target)!.source === source).map(([, step]) => step)
  const diffRef = (target: string): OutputRef | null => (diffSaves.has(target) ? {fromStep: diffSaves.get(target)!, output: 'file'} : null)
  const nmDiff = diffRef(nm)
  // Its own unexecuted relay log, unless a catch-up replaced it or the saved binlog starts where it executed to.
  const tailFromNewMaster = tailRef !== null && compareCoordinates(inputs.tailFrom, newMaster.executed) === 0 && gtid
  const nmOwn = nmReady === nmWait && !tailFromNewMaster ? {fromStep: nmWait, output: 'position'} : null
  if (nmOwn || nmDiff || tailRef) {
    const apply = id('apply_logs', nm)
    steps.push({
      id: apply,
      type: 'apply_logs',
      server: nm,
      params: {ownRelay: nmOwn, relayDiff: nmDiff, masterTail: tailRef},
      after: [nmReady, ...(nmDiff ? [nmDiff.fromStep] : [])],
      // The dead master's binlog is a bonus: when it cannot be saved the new master goes on without it.
      ...(tailRef ? {settledAfter: [save]} : {}),
      outputs: [],
      reason: describeApply(nm, nmOwn !== null, diffs.get(nm) ?? null, tailRef, dead.name),
    })
    nmReady = apply
  }
  const detach = id('detach_replication', nm)
  steps.push({
    id: detach,
    type: 'detach_replication',
    server: nm,
    params: {resetSlaveAll: !cluster.failover.skipResetSlave},
    after: [nmReady],
    // RESET SLAVE ALL deletes the relay logs the others' diffs are copied from: those copies end first, but a
    // failed copy leaves out only its replica.
    ...(diffSavesFrom(nm).length ? {settledAfter: diffSavesFrom(nm)} : {}),
    outputs: ['binlog', 'gtid'],
    reason: `stop replication on ${nm} for good and record its binlog coordinates, where the others will start`,
  })
  let beforeWrites = detach
  if (cluster.hooks.masterIpFailover) {
    const hook = id('run_hook', `master_ip_failover_start`)
    steps.push({id: hook, type: 'run_hook', server: nm, params: {hook: 'master_ip_failover', command: 'start', path: cluster.hooks.masterIpFailover}, after: [detach, fence], outputs: [], reason: `move the writer address to ${nm}`})
    beforeWrites = hook
  }
  // Left read_only on request (MHA's --skip_disable_read_only), the promotion ends before writes are enabled.
  const writable = leave.disableReadOnly ? beforeWrites : id('enable_writes', nm)
  if (!leave.disableReadOnly) steps.push({id: writable, type: 'enable_writes', server: nm, params: {}, after: [beforeWrites, fence], outputs: [], reason: `${nm} becomes the writable master (read_only=0)`})

  // In GTID mode the new master copies from the latest replica, which must first execute its own relay log.
  if (inputs.catchUpSource) {
    const source = inputs.replicas.find((r) => r.server.name === inputs.catchUpSource)!
    const wait = id('wait_relay_log_applied', source.server.name)
    if (!steps.some((s) => s.id === wait))
      steps.splice(steps.findIndex((s) => s.id === id('catch_up_from', nm)), 0, {id: wait, type: 'wait_relay_log_applied', server: source.server.name, params: {until: source.read}, after: [id('stop_replica_io', source.server.name)], outputs: ['position'], reason: `let ${source.server.name} execute its relay log before ${nm} copies from it`})
  }
  // The other replicas, in parallel once the new master's coordinates are known.
  const repointed: string[] = []
  for (const r of replicas) {
    const name = r.server.name
    if (r === newMaster || unrecoverable.has(name)) continue
    let ready = id('stop_replica_io', name)
    if (!gtid) {
      const wait = id('wait_relay_log_applied', name)
      steps.push({id: wait, type: 'wait_relay_log_applied', server: name, params: {until: r.read}, after: [ready], outputs: ['position'], reason: `let ${name} execute the relay log it already has (up to ${formatCoordinates(r.read)})`})
      ready = wait
      // Always: a relay log that stopped short (parallel workers, a transaction cut at the crash) is finished here.
      const diff = diffRef(name)
      const apply = id('apply_logs', name)
      // The tail only if the new master applied it: every survivor ends with the same transactions. With a tail
      // the replica's recovery needs the new master's to have succeeded (a failed one is retried, and this one
      // with it); merely settled, it would end done without the tail.
      const nmApply = id('apply_logs', nm)
      const nmApplies = steps.some((s) => s.id === nmApply)
      const needsMaster = tailRef !== null && nmApplies
      steps.push({
        id: apply,
        type: 'apply_logs',
        server: name,
        params: {ownRelay: {fromStep: wait, output: 'position'}, relayDiff: diff, masterTail: tailRef},
        after: [wait, ...(diff ? [diff.fromStep] : []), ...(needsMaster ? [nmApply] : [])],
        ...(!needsMaster && nmApplies ? {settledAfter: [nmApply]} : {}),
        outputs: [],
        reason: describeApply(name, true, diffs.get(name) ?? null, tailRef, dead.name),
      })
      ready = apply
    } else if (steps.some((s) => s.id === id('wait_relay_log_applied', name))) ready = id('wait_relay_log_applied', name)
    // Recovered but not re-pointed on request (MHA's --skip_change_master): the operator does that.
    if (leave.changeMaster) continue
    const repoint = id('repoint_replica', name)
    const target = {host: newMaster.server.hostname, port: newMaster.server.port, user: cluster.replUser}
    const preview = changePreview(cluster, r.facts.version, target, gtid, detach)
    steps.push({
      id: repoint,
      type: 'repoint_replica',
      server: name,
      params: {source: nm, ...target, gtid, coordinates: gtid ? null : {fromStep: detach, output: 'binlog'}, preview},
      after: [ready, detach],
      outputs: [],
      reason: gtid ? `${name} replicates from ${nm} by GTID and fetches what it lacks from it` : `${name} has the same data as ${nm} had when detached: replicate from ${nm}'s recorded coordinates`,
    })
    repointed.push(repoint)
  }
  const verify = id('verify_replication', nm)
  steps.push({
    id: verify,
    type: 'verify_replication',
    server: nm,
    params: {master: nm, replicas: leave.changeMaster ? [] : replicas.filter((r) => r !== newMaster && !unrecoverable.has(r.server.name)).map((r) => r.server.name)},
    after: [writable],
    // A replica whose recovery failed is reported as left out, not verified.
    ...(repointed.length ? {settledAfter: repointed} : {}),
    outputs: [],
    reason: `${nm} is writable and every survivor replicates from it with both threads running`,
  })
  if (cluster.hooks.report)
    steps.push({id: id('run_hook', 'report'), type: 'run_hook', server: nm, params: {hook: 'report', command: 'report', path: cluster.hooks.report}, after: [verify], outputs: [], reason: 'tell the report hook how the failover went'})
  // Each proxy: the dead master out of its writer backend right after the fence (a failure there never holds up the
  // promotion), the new master in only once it takes writes, every other server in maint first.
  const drains: Step[] = cluster.proxies.map((p) => ({
    id: id('route_drain', p.name),
    type: 'route_drain',
    server: dead.name,
    params: drainParams(p, dead.name),
    after: [fence],
    outputs: [],
    reason: `no write goes through proxy ${p.name} to ${dead.name} any more: maint, and its sessions through the proxy shut`,
  }))
  steps.splice(steps.findIndex((s) => s.id === fence) + 1, 0, ...drains)
  for (const p of cluster.proxies)
    steps.push({
      id: id('route_writer', p.name),
      type: 'route_writer',
      server: nm,
      params: writerParams(cluster, p, nm),
      after: [writable],
      settledAfter: [id('route_drain', p.name)],
      outputs: [],
      reason: `proxy ${p.name} sends writes to ${nm} alone, now that it takes writes; a new connection through ${p.frontend.host}:${p.frontend.port} must reach it`,
    })
  return withGroups(steps, writable)
}

/**
 * Marks what each step serves: the steps the promotion needs (enable_writes and everything it depends on)
 * are "master"; a replica's own recovery is "replica:NAME"; the saved binlog, which the recovery goes on
 * without, is "optional"; the rest (verification, report) is "finish". A failure outside "master" never
 * keeps the new master from taking writes.
 */
function withGroups(steps: Step[], promotion: string): Step[] {
  const byId = new Map(steps.map((s) => [s.id, s]))
  const master = new Set<string>()
  const visit = (id: string): void => {
    if (master.has(id)) return
    master.add(id)
    for (const dependency of byId.get(id)!.after) visit(dependency)
  }
  visit(promotion)
  return steps.map((s) => {
    const group = master.has(s.id)
      ? 'master'
      : s.type === 'route_drain' || s.type === 'route_writer'
        ? `routing:${s.params.proxy}`
      : s.type === 'save_master_binlog'
        ? 'optional'
        : s.type === 'save_relay_diff'
          ? `replica:${s.params.target}`
          : s.type === 'verify_replication' || s.type === 'run_hook' || s.type === 'fence_master'
            ? 'finish'
            : `replica:${s.server}`
    return {...s, group}
  })
}

function describeApply(server: string, own: boolean, diff: RelayDiff | null, tail: OutputRef | null, dead: string): string {
  const parts: string[] = []
  if (own) parts.push(`what ${server}'s own relay log holds beyond its executed position, if anything`)
  if (diff) parts.push(`${diff.source}'s relay log from ${diff.files[0]}:${diff.offset} (master events after ${formatCoordinates(diff.after)} up to ${formatCoordinates(diff.until)})`)
  if (tail) parts.push(`${dead}'s saved binlog tail`)
  return `apply to ${server}, as one stream so transactions stay whole, skipping any transaction ${server} has already: ${parts.join(', then ')}`
}

/** The facts a plan rests on, observed again at apply time to refuse a stale plan. */
export function observedFacts(cluster: ClusterConfig, snapshot: Snapshot, positions = true): Fact[] {
  const master = topologyOf(cluster, snapshot).master
  return observe(cluster, snapshot, master, positions).facts
}

/** `positions`: false for a live master, whose replicas' positions move all the time (switchover). */
export function observe(cluster: ClusterConfig, snapshot: Snapshot, master: ServerConfig | undefined, positions = true): Plan['observed'] {
  const servers: ObservedServer[] = []
  const facts: Fact[] = []
  for (const server of cluster.servers) {
    const snap = snapshot.servers.find((s) => s.name === server.name)!
    const f = sqlFacts(snap)
    const source = f?.replica ? (cluster.servers.find((s) => (s.hostname === f.replica!.sourceHost || s.ip === f.replica!.sourceHost) && s.port === f.replica!.sourcePort)?.name ?? `${f.replica.sourceHost}:${f.replica.sourcePort}`) : null
    servers.push({
      name: server.name,
      address: snap.address,
      reachable: f !== undefined,
      role: !f ? 'down' : server === master ? 'master' : f.replica ? 'replica' : 'other',
      version: f?.version.text ?? null,
      serverId: f?.serverId ?? null,
      logBin: f?.logBin ?? null,
      readOnly: f?.readOnly ?? null,
      source,
      read: f?.replica?.read ?? null,
      executed: f?.replica?.executed ?? null,
      gtidMode: f?.replica?.gtidMode ?? null,
      gtidPosition: f ? f.gtid.currentPos || null : null,
      ssh: snap.ssh.reachable ? true : snap.ssh.kind === 'skipped' ? null : false,
    })
    // Only what the plan's decisions rest on: facts that keep changing while replicas apply (executed positions) are left out.
    facts.push({server: server.name, fact: 'sql', value: f ? 'reachable' : 'unreachable'})
    if (!f) continue
    facts.push({server: server.name, fact: 'server_id', value: String(f.serverId)})
    facts.push({server: server.name, fact: 'source', value: source ?? 'none'})
    if (f.replica) {
      if (positions) facts.push({server: server.name, fact: 'read', value: formatCoordinates(f.replica.read)})
      facts.push({server: server.name, fact: 'gtid_mode', value: f.replica.gtidMode})
    }
  }
  return {servers, facts, fingerprint: fingerprint(facts), settings: settingsDigest(cluster)}
}

/** The CHANGE MASTER a replica will run, as the reviewer sees it: password masked, coordinates named by the step that records them. */
export function changePreview(cluster: ClusterConfig, version: ServerVersion, target: {host: string; port: number; user: string}, gtid: boolean, detachStep: string): string {
  return dialectFor(version)
    .changeSource({
      ...target,
      ...(cluster.replPassword ? {password: 'x'} : {}),
      ...(gtid ? {gtid: true} : {coordinates: {file: `<${detachStep}.binlog file>`, pos: 0}}),
    })
    .display.replace(/_LOG_POS = 0\b/, `_LOG_POS = <${detachStep}.binlog pos>`)
}

/**
 * MariaDB with several GTID domains: the domains in which a replica received whole transactions (Gtid_IO_Pos)
 * that it has not executed (gtid_slave_pos), as words; null when there are none or only one domain (plain lag).
 */
function heldDomains(r: ReplicaView): string | null {
  if (r.facts.version.flavor !== 'mariadb' || !r.facts.replica) return null
  const received = r.facts.replica.retrievedGtid
  if (mariadbMaxPerDomain(received).size < 2) return null
  const behind = mariadbMissing(r.facts.gtid.slavePos, received)
  return behind.length ? behind.map((b) => `domain ${b.domain} (seq ${b.fromSeq + 1n}..${b.toSeq})`).join(', ') : null
}

/** Per replica, the GTIDs it holds that no other replica has received or executed (errant transactions). */
function errantTransactions(replicas: ReplicaView[]): Map<string, string> {
  const found = new Map<string, string>()
  for (const r of replicas) {
    const others = replicas.filter((o) => o !== r)
    if (others.length === 0) continue
    if (r.facts.version.flavor === 'mariadb') {
      // gtid_binlog_state, not gtid_binlog_pos: a local write followed by replicated transactions in its domain
      // shows only there. Snapshots recorded before it was read have only the position.
      const state = (o: ReplicaView) => o.facts.gtid.binlogState ?? o.facts.gtid.binlogPos
      const otherPositions = others.flatMap((o) => [state(o), o.facts.replica!.retrievedGtid, o.facts.gtid.currentPos].filter((p) => p !== ''))
      if (otherPositions.length === 0) continue
      // The dead master's own transactions are not errant, even those only this replica received.
      const masterServerId = r.facts.replica!.sourceServerId ?? replicas.find((o) => o.facts.replica!.sourceServerId !== null)?.facts.replica!.sourceServerId ?? null
      const errant = mariadbErrant(state(r), otherPositions, {byServer: true, masterServerId})
      if (errant.length > 0) found.set(r.server.name, formatMariadbGtidPos(errant))
    } else {
      // The dead master's own transactions are not errant, even those only this replica received.
      const fromMaster = r.facts.replica!.sourceUuid
      const errant = mysqlErrant(r.facts.gtid.binlogPos, others.flatMap((o) => [o.facts.gtid.binlogPos, o.facts.replica!.retrievedGtid])).filter((g) => g.uuid !== fromMaster)
      if (errant.length > 0) found.set(r.server.name, formatMysqlGtidSet(errant))
    }
  }
  return found
}
