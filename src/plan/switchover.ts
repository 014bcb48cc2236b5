import {sqlFacts, topologyOf} from '../analysis/topology.js'
import {binlogSequence, extremeCoordinates} from '../binlog/coordinates.js'
import type {ClusterConfig} from '../config/types.js'
import {formatMariadbGtidPos, formatMysqlGtidSet, mariadbErrant, mysqlErrant} from '../gtid/index.js'
import type {Snapshot, SqlFacts} from '../inspect/types.js'
import {filterDifferences, filtersAdvice, filtersOf} from '../analysis/filters.js'
import {UserError} from '../util/errors.js'
import {rankCandidates, type ReplicaView} from './candidates.js'
import {changePreview, observe, refuseLowerTiers, topologyNotes, type PlanHeader} from './planner.js'
import type {Plan, Step} from './types.js'
import {drainParams, writerParams} from './routing-params.js'

/**
 * What a switchover is planned from: the servers over SQL only. Its steps, checks and refusals read no SSH fact and
 * no relay log (MHA's online switch uses none either), so neither is inspected: no SSH handshake per host.
 */
export const switchoverInspection = {ssh: false, relayLookups: false} as const

/** Statements other than reads count as updates for MHA's running_updates_limit. */
export const isRead = (statement: string): boolean => /^\s*(select|show|explain|describe|desc|with)\b/i.test(statement)

/** A server as the switchover's own checks see it: at plan time from the snapshot, at apply from a fresh read. */
export interface SwitchoverParty {
  name: string
  facts: SqlFacts
}

/**
 * What a switchover needs besides healthy replication, judged before its first effect, once at plan time and again by
 * check_switchover at apply (MHA's masterha_master_switch refuses these up front too): the same filters on every
 * server, a target that is not busy, no session on either side waiting on a held table lock, and what re-pointing
 * needs (a replication password for the old master, a replication user on the target that works).
 */
export function switchoverNeeds(cluster: ClusterConfig, master: SwitchoverParty, target: SwitchoverParty, others: readonly SwitchoverParty[]): string[] {
  const problems: string[] = []
  const limit = cluster.switchover.runningSecondsLimit
  if (cluster.failover.checkReplFilter) {
    const differences = filterDifferences([master, target, ...others].map((p) => filtersOf(p.name, p.facts)))
    if (differences.length > 0) problems.push(`replication filters differ (${differences.join('; ')}): ${filtersAdvice}`)
  }
  // Any statement counts on the target, reads too: it becomes the master with them still running (MHA: running_seconds_limit).
  const busy = target.facts.longQueries.filter((q) => q.seconds >= limit)
  if (busy.length > 0) {
    const longest = busy.reduce((a, b) => (b.seconds > a.seconds ? b : a))
    problems.push(
      `${target.name} is busy: ${busy.length} client statement${busy.length === 1 ? ' has' : 's have'} run ${limit} s or more (longest: thread ${longest.id}, ${longest.user}, ${longest.seconds} s: ${longest.statement.slice(0, 60)}); limit switchover.running_seconds_limit=${limit}`,
    )
  }
  for (const party of [master, target]) {
    const waits = (party.facts.lockWaits ?? []).filter((w) => w.seconds >= limit)
    if (waits.length > 0)
      problems.push(`${party.name}: ${waits.length} session${waits.length === 1 ? '' : 's'} (${waits.map((w) => `thread ${w.id} ${w.user}`).join(', ')}) ${waits.length === 1 ? 'has' : 'have'} waited ${limit} s or more for a table lock someone holds (${waits[0]!.state}); release it (UNLOCK TABLES, or end the session holding it); limit switchover.running_seconds_limit=${limit}`)
  }
  // Without repl_password, CHANGE MASTER keeps the password a server already has: the old master, which replicates
  // from nobody, has none, and would fail to connect to the new master after the switch.
  if (cluster.switchover.origMasterIsNewSlave && !cluster.replPassword && !master.facts.replica)
    problems.push(`${master.name} could not be re-pointed to ${target.name}: repl_password is not set in ${cluster.file} and ${master.name} replicates from nobody, so it has no replication password of its own; set repl_password, or switchover.orig_master_is_new_slave: false`)
  const repl = target.facts.replUser
  if (!repl.canReplicate)
    problems.push(`${target.name}: replication user ${cluster.replUser} ${repl.exists ? 'lacks REPLICATION SLAVE' : 'does not exist'}, so no server could replicate from it; GRANT REPLICATION SLAVE ON *.* TO ${cluster.replUser} on ${target.name}`)
  const login = target.facts.replLogin
  if (login && !login.ok && login.kind === 'auth')
    problems.push(`${target.name}: the replication user ${cluster.replUser} cannot log in with repl_password from ${cluster.file} (${login.message}); the servers re-pointed to it would fail to connect: fix repl_password (or allow ${cluster.replUser} from their hosts)`)
  return problems
}

/**
 * An online switch of a live master (MHA's masterha_master_switch --master_state=alive): pure, like the
 * failover planner. Preconditions are checked here and again by the plan's first step at apply time.
 */
export function planSwitchover(cluster: ClusterConfig, snapshot: Snapshot, header: PlanHeader, to: string | undefined): Plan {
  const topology = topologyOf(cluster, snapshot)
  const byName = new Map(snapshot.servers.map((s) => [s.name, s]))
  const master = topology.master
  const masterFacts = master ? sqlFacts(byName.get(master.name)!) : undefined
  if (!master && topology.conflict) throw new UserError(`switchover refused: ${topology.conflict}`)
  if (!master || !masterFacts) throw new UserError(`${cluster.name}: no live master to switch over from; for a dead master run "mha plan" without --switchover`)
  if (masterFacts.readOnly) throw new UserError(`${master.name} is read_only; a switchover starts from a writable master`)
  refuseLowerTiers(cluster, topology, 'switchover')
  // A master-master pair (the master replicates from its standby, or a cluster of two servers) stays a pair: the old
  // master ends up replicating from the new one whatever orig_master_is_new_slave says.
  const standby = topology.standby
  const oldMasterFollows = cluster.switchover.origMasterIsNewSlave || standby !== undefined || cluster.servers.length === 2

  const replicas: ReplicaView[] = topology.replicas.flatMap((server) => {
    const facts = sqlFacts(byName.get(server.name)!)
    return facts?.replica ? [{server, facts, read: facts.replica.read, executed: facts.replica.executed}] : []
  })
  const refusals: string[] = []
  for (const server of cluster.servers) if (server !== master && !sqlFacts(byName.get(server.name)!)) refusals.push(`${server.name} does not answer SQL`)
  for (const r of replicas) {
    const s = r.facts.replica!
    if (s.ioThread !== 'running' || s.sqlThread !== 'running' || s.lastIoErrno || s.lastSqlErrno)
      refusals.push(`${r.server.name}'s replication is not healthy (io=${s.ioThread} sql=${s.sqlThread}${s.lastIoError || s.lastSqlError ? `: ${s.lastIoError || s.lastSqlError}` : ''})`)
  }
  const gtid = cluster.gtid !== 'off' && replicas.length > 0 && replicas.every((r) => r.facts.replica!.gtidMode !== 'no')
  if (gtid)
    for (const r of replicas) {
      const errant =
        r.facts.version.flavor === 'mariadb'
          ? // Per (domain, server_id): a local write followed by replicated ones hides from gtid_binlog_pos.
            formatMariadbGtidPos(
              mariadbErrant(r.facts.gtid.binlogState ?? (r.facts.gtid.binlogPos || r.facts.gtid.currentPos), [masterFacts.gtid.binlogState ?? masterFacts.gtid.binlogPos], {byServer: true, masterServerId: masterFacts.serverId}),
            )
          : formatMysqlGtidSet(mysqlErrant(r.facts.gtid.binlogPos, [masterFacts.gtid.binlogPos]))
      if (errant) refusals.push(`${r.server.name} has errant transactions (${errant}) that ${master.name} lacks`)
    }
  const updates = masterFacts.longQueries.filter((q) => q.seconds >= cluster.switchover.runningUpdatesLimit && !isRead(q.statement))
  for (const q of updates) refusals.push(`${master.name} has an update running for ${q.seconds} s (thread ${q.id}, ${q.user}: ${q.statement.slice(0, 60)}); limit running_updates_limit=${cluster.switchover.runningUpdatesLimit}`)

  let target: ReplicaView | undefined
  if (to) {
    target = replicas.find((r) => r.server.name === to)
    if (!target) throw new UserError(`--to ${to}: not a replica of ${master.name} in ${cluster.file}; choose one of ${replicas.map((r) => r.server.name).join(', ')}`)
  }
  if (replicas.length === 0) throw new UserError(`switchover refused: ${master.name} has no reachable replica to switch to`)
  const latest = extremeCoordinates(replicas, (r) => r.read, 1).items
  const {candidates, chosen} = rankCandidates({
    cluster,
    replicas,
    latest,
    unrecoverable: new Set(),
    errant: new Map(),
    masterFileSizes: new Map(masterFacts.binaryLogs.map((b) => [b.file, b.size])),
    sequenceOf: binlogSequence,
  })
  if (target) {
    const verdict = candidates.find((c) => c.server === target!.server.name)!
    if (!verdict.eligible) refusals.push(`${target.server.name} cannot become the master: ${verdict.reason}`)
    // The operator's choice replaces the ranking: no other verdict may still read "chosen".
    for (const c of candidates) {
      c.chosen = c.server === target.server.name
      if (c.eligible) c.reason = c.chosen ? 'chosen: named with --to' : `eligible, not chosen: ${target.server.name} is named with --to`
    }
  } else target = chosen
  if (!target) refusals.push('no replica can become the master')
  else {
    const lag = target.facts.replica!.secondsBehind
    if (lag === null || lag > cluster.switchover.maxLagSeconds) refusals.push(`${target.server.name} lags ${lag === null ? 'an unknown time' : `${lag} s`} behind ${master.name} (limit switchover.max_lag_seconds=${cluster.switchover.maxLagSeconds})`)
    const chosen = target
    const party = (r: ReplicaView): SwitchoverParty => ({name: r.server.name, facts: r.facts})
    refusals.push(...switchoverNeeds(cluster, {name: master.name, facts: masterFacts}, party(chosen), replicas.filter((r) => r !== chosen).map(party)))
  }
  if (refusals.length > 0 || !target) throw new UserError(`switchover refused: ${refusals.join('; ')}`)

  const nm = target.server
  const steps: Step[] = []
  const add = (step: Omit<Step, 'outputs'> & {outputs?: string[]}) => steps.push({outputs: [], ...step} as Step)
  const check = `check_switchover:${master.name}`
  add({id: check, type: 'check_switchover', server: master.name, params: {target: nm.name, maxLagSeconds: cluster.switchover.maxLagSeconds, runningUpdatesLimit: cluster.switchover.runningUpdatesLimit}, after: [], reason: 'check again, right before acting, that replication is healthy, the target keeps up and no long update runs'})
  let last = check
  const hook = cluster.hooks.masterIpOnlineChange
  if (hook) {
    add({id: 'run_hook:online_change_stop', type: 'run_hook', server: master.name, params: {hook: 'master_ip_online_change', command: 'stop', path: hook}, after: [last], reason: `the online-change hook takes the writer address away from ${master.name}`})
    last = 'run_hook:online_change_stop'
  }
  // Each proxy first takes the old master out of its writer backend (maint, its sessions through the proxy shut), so
  // that no client meets the read_only of the write block: until the new master is put in, new connections through
  // the proxy find no server and fail at once.
  const drains = cluster.proxies.map((p) => {
    const id = `route_drain:${p.name}`
    add({id, type: 'route_drain', server: master.name, params: drainParams(p, master.name), after: [last], reason: `proxy ${p.name} sends no write to ${master.name} any more before it refuses writes: maint, and its sessions through the proxy shut`})
    return id
  })
  const block = `block_writes:${master.name}`
  // Without super_read_only (MariaDB), read_only does not stop SUPER or READ ONLY ADMIN: mha's own FTWRL does, until release.
  const lockNote = masterFacts.superReadOnly !== null ? ', super_read_only' : ', and FLUSH TABLES WITH READ LOCK held by mha until the promotion is over, which stops accounts that ignore read_only'
  add({
    id: block,
    type: 'block_writes',
    server: master.name,
    params: standby ? {stopReplication: true} : {},
    after: drains.length ? drains : [last],
    outputs: ['binlog', 'gtid'],
    reason: `${standby ? `${master.name} stops replicating from its standby ${standby.name} (it would relay the new master's first writes to replicas not yet re-pointed), ` : ''}${master.name} refuses writes (read_only${lockNote}) and its client connections are killed; its final position is recorded ${masterFacts.superReadOnly !== null ? 'once two reads agree' : 'under the lock'}`,
  })
  const position = {fromStep: block, output: gtid ? 'gtid' : 'binlog'}
  const waitTarget = `wait_caught_up:${nm.name}`
  add({id: waitTarget, type: 'wait_caught_up', server: nm.name, params: {source: master.name, position, gtid}, after: [block], reason: `${nm.name} executes everything ${master.name} wrote`})
  // In the write block only what the promotion needs: the new master's coordinates, then its read_only=OFF. Its
  // replication from the old master stops after that (as MHA resets it after its switch): nothing comes from the
  // blocked old master meanwhile, and it stops before the old master's lock goes.
  const recorded = `record_position:${nm.name}`
  add({
    id: recorded,
    type: 'record_position',
    server: nm.name,
    params: {},
    after: [waitTarget],
    outputs: ['binlog', 'gtid'],
    reason: `record ${nm.name}'s binlog coordinates, where the others will start: it has everything ${master.name} wrote, and takes no write yet`,
  })
  const writable = `enable_writes:${nm.name}`
  add({id: writable, type: 'enable_writes', server: nm.name, params: {}, after: [recorded], reason: `${nm.name} becomes the writable master`})
  const detach = `detach_replication:${nm.name}`
  const resetSlaveAll = !cluster.failover.skipResetSlave
  add({
    id: detach,
    type: 'detach_replication',
    server: nm.name,
    params: {resetSlaveAll},
    after: [writable],
    reason: `stop replication on ${nm.name} (${master.name}, blocked, has sent it nothing since its final position), before ${master.name}'s lock goes; ${resetSlaveAll ? `RESET SLAVE ALL forgets ${master.name} as its source` : `skip_reset_slave: its settings to replicate from ${master.name} are kept, stopped`}`,
  })
  const release = `release_write_block:${master.name}`
  add({
    id: release,
    type: 'release_write_block',
    server: master.name,
    params: {finalPosition: {fromStep: block, output: 'binlog'}, newMaster: nm.name},
    after: [detach],
    reason: `${master.name} has written nothing since its final position; its waiting clients are killed (they would write on a replica) and mha's lock goes, once ${nm.name} no longer replicates from it; read_only stays`,
  })
  // Each proxy sends writes to the new master once it takes them: every other server in maint first (never two
  // writers), verified through the frontend. A failure here leaves the promotion standing (routing:PROXY).
  for (const p of cluster.proxies)
    add({
      id: `route_writer:${p.name}`,
      type: 'route_writer',
      server: nm.name,
      params: writerParams(cluster, p, nm.name),
      after: [writable],
      group: `routing:${p.name}`,
      reason: `proxy ${p.name} sends writes to ${nm.name} alone, now that it takes writes; a new connection through ${p.frontend.host}:${p.frontend.port} must reach it`,
    })

  const repointed: string[] = []
  // Re-pointing comes after the promotion: a failure before it leaves every other server as it was (nothing to
  // re-point back), and one after it leaves a writable new master that has everything, with the rest to resume.
  const repoint = (server: ReplicaView['server'], ready: string[], formerMaster: boolean) => {
    const version = sqlFacts(byName.get(server.name)!)!.version
    const id = `repoint_replica:${server.name}`
    const targetParams = {host: nm.hostname, port: nm.port, user: cluster.replUser}
    const preview = changePreview(cluster, version, targetParams, gtid, recorded)
    add({
      id,
      type: 'repoint_replica',
      server: server.name,
      params: {source: nm.name, ...targetParams, gtid, coordinates: gtid ? null : {fromStep: recorded, output: 'binlog'}, preview, ...(formerMaster ? {formerMaster: true} : {})},
      after: [...ready, writable],
      reason: formerMaster
        ? `${server.name}, the old master, replicates from ${nm.name} (${standby ? (standby === nm ? 'the pair stays a pair: the old master is the new standby' : `it replicated from ${standby.name}, its standby; now from the new master`) : cluster.switchover.origMasterIsNewSlave ? 'orig_master_is_new_slave' : 'a cluster of two servers stays a pair'})`
        : `${server.name} replicates from ${nm.name}`,
    })
    repointed.push(id)
  }
  for (const r of replicas) {
    if (r === target) continue
    const wait = `wait_caught_up:${r.server.name}`
    // After the promotion: only the new master's catch-up is in the write block. The old master stays blocked until
    // the new master is detached, so nothing new reaches this replica meanwhile; its reads would only share the two
    // cores with the promotion's (as MHA, which moves its other slaves after the new master takes writes).
    add({id: wait, type: 'wait_caught_up', server: r.server.name, params: {source: master.name, position, gtid}, after: [block, writable], reason: `${r.server.name} executes everything ${master.name} wrote, so it matches ${nm.name}`})
    repoint(r.server, [wait], false)
  }
  // The old master replicates from the new one only after every other replica is re-pointed: until then they still
  // read its binlog, and it would relay the new master's first writes to them, which the new master then sends again
  // (file/position coordinates do not know they were already applied).
  if (oldMasterFollows) repoint(master, [release, ...repointed], true)
  let done = writable
  if (hook) {
    add({id: 'run_hook:online_change_start', type: 'run_hook', server: nm.name, params: {hook: 'master_ip_online_change', command: 'start', path: hook}, after: [writable], reason: `the online-change hook gives the writer address to ${nm.name}`})
    done = 'run_hook:online_change_start'
  }
  add({
    id: `verify_replication:${nm.name}`,
    type: 'verify_replication',
    server: nm.name,
    params: {master: nm.name, replicas: [...replicas.filter((r) => r !== target).map((r) => r.server.name), ...(oldMasterFollows ? [master.name] : [])]},
    after: [done, release, ...repointed],
    reason: `${nm.name} is writable and every other server replicates from it`,
  })

  const reasonOfTarget = candidates.find((c) => c.chosen)?.reason.replace(/^chosen: /, '') ?? 'named with --to'
  return {
    format: 1,
    header,
    cluster: cluster.name,
    kind: 'switchover',
    observed: observe(cluster, snapshot, master, false),
    decision: {
      summary: `switch the master from ${master.name} to ${nm.name} (${reasonOfTarget}); re-point ${[...replicas.filter((r) => r !== target).map((r) => r.server.name), ...(oldMasterFollows ? [`${master.name} (the old master)`] : [])].join(', ') || 'nobody'}`,
      replicationMode: gtid ? 'gtid' : 'file',
      // A switchover's master is alive: it is the old master, never a dead one.
      deadMaster: null,
      oldMaster: master.name,
      newMaster: nm.name,
      latest: latest.map((r) => r.server.name),
      oldest: [],
      candidates,
      dataLoss: {none: true, statement: `none: ${master.name} stops taking writes and ${nm.name} executes everything it wrote before taking over`, lostAfter: null, lostGtids: null, abandoned: []},
      notes: [
        `if a step fails before ${writable} or in it, the rollback steps run, each only if the step it undoes began (done, or failed part way): ${master.name} takes writes again, ${nm.name} replicates from it, and is read_only again if ${writable} began`,
        `the other servers are re-pointed only after ${writable}: a failure then leaves ${nm.name} writable with every write ${master.name} took, and "mha apply" again re-points the rest`,
        ...(standby === nm ? [`${master.name} and ${nm.name} are a master-master pair: after the switch ${nm.name} is the writable master and ${master.name} its read_only standby, replicating from it`] : []),
        ...(standby && standby !== nm ? [`${master.name} replicated from ${standby.name} (a master-master pair); after the switch both replicate from ${nm.name}`] : []),
        ...topologyNotes(cluster, topology, null).map((n) => n.message),
      ],
    },
    steps,
    rollback: rollbackOf({steps, decision: {oldMaster: master.name, newMaster: nm.name, replicationMode: gtid ? 'gtid' : 'file'}}, cluster),
  }
}

/** The planner's own rollback: every step before the promotion has its undo, or the planner is wrong. */
function rollbackOf(plan: Parameters<typeof switchoverRollback>[0], cluster: ClusterConfig): NonNullable<Plan['rollback']> {
  const {rollback, withoutUndo} = switchoverRollback(plan, cluster)
  if (!rollback || withoutUndo.length > 0) throw new Error(`switchover planner: no undo for ${withoutUndo.join(', ') || 'its promotion'}`)
  return rollback
}

/** Steps that read and wait only: nothing to undo. */
const effectFree: ReadonlySet<Step['type']> = new Set(['check_switchover', 'wait_caught_up', 'record_position'])

/**
 * A switchover's rollback, derived from its own steps: the undo of every step that can run before the promotion
 * (each step that does not wait for the new master's enable_writes, that step included), each undo run after a
 * failure only if the step it undoes began: done, or failed part way (its undo's check finds what is left to undo). The planner writes it, and apply's validation derives it again from the
 * plan's steps and the cluster file, so a plan whose rollback leaves a step undone is refused. Steps with an effect
 * and no undo here are named in withoutUndo.
 */
export function switchoverRollback(
  plan: {steps: Step[]; decision: Pick<Plan['decision'], 'oldMaster' | 'newMaster' | 'replicationMode'>},
  cluster: ClusterConfig,
): {rollback: NonNullable<Plan['rollback']> | undefined; withoutUndo: string[]} {
  const {oldMaster, newMaster, replicationMode} = plan.decision
  const writable = plan.steps.find((s) => s.type === 'enable_writes' && s.server === newMaster)
  const old = cluster.servers.find((s) => s.name === oldMaster)
  if (!writable || !oldMaster || !newMaster || !old) return {rollback: undefined, withoutUndo: []}
  const byId = new Map(plan.steps.map((s) => [s.id, s]))
  const waitsForPromotion = (step: Step): boolean => {
    const seen = new Set<string>()
    const stack = [...step.after, ...(step.settledAfter ?? [])]
    while (stack.length > 0) {
      const id = stack.pop()!
      if (id === writable.id) return true
      if (seen.has(id)) continue
      seen.add(id)
      const s = byId.get(id)
      if (s) stack.push(...s.after, ...(s.settledAfter ?? []))
    }
    return false
  }
  const block = plan.steps.find((s) => s.type === 'block_writes' && s.server === oldMaster)?.id ?? `block_writes:${oldMaster}`
  const gtid = replicationMode === 'gtid'
  // Ranked so that a failure stops the rollback where it is safest: the target read_only before the old master takes
  // writes again (never two writable servers), the old master writable before a proxy sends it writes or its address
  // comes back, and the
  // target's re-point, which every later write reaches anyway (it starts at the final position), last.
  const undoOf = (step: Step): {rank: number; undo: Step} | null => {
    const after = [step.id]
    if (step.type === 'enable_writes' && step === writable)
      return {
        rank: 0,
        undo: {
          id: `set_read_only:${newMaster}`,
          type: 'set_read_only',
          server: newMaster,
          params: {},
          after,
          outputs: [],
          reason: `undo: ${newMaster} is read_only again (${step.id} failed, perhaps after it took effect) before ${oldMaster} takes writes again`,
        },
      }
    // A plan made before record_position detached its new master before the promotion.
    if (step.type === 'detach_replication' && step.server === newMaster)
      return {
        rank: 4,
        undo: {
          id: `repoint_replica:${newMaster}`,
          type: 'repoint_replica',
          server: newMaster,
          params: {
            source: oldMaster,
            host: old.hostname,
            port: old.port,
            user: cluster.replUser,
            gtid,
            coordinates: gtid ? null : {fromStep: block, output: 'binlog'},
            preview: `${newMaster} replicates from ${oldMaster} again, from ${oldMaster}'s final position`,
          },
          after,
          outputs: [],
          reason: `undo: ${newMaster} goes back to replicating from ${oldMaster}`,
        },
      }
    if (step.type === 'block_writes' && step.server === oldMaster)
      return {
        rank: 1,
        undo: {
          id: `unblock_writes:${oldMaster}`,
          type: 'unblock_writes',
          server: oldMaster,
          params: step.params.stopReplication ? {startReplication: true} : {},
          after,
          outputs: [],
          reason: `undo: mha's lock goes and ${oldMaster} takes writes again${step.params.stopReplication ? ', replicating from its standby again' : ''}`,
        },
      }
    // The drain's undo puts the old master back in the writer backend, after it takes writes again (ranked after
    // unblock_writes: a proxy never sends writes to a read_only server), every other server in maint first.
    if (step.type === 'route_drain' && step.server === oldMaster) {
      const proxy = cluster.proxies.find((p) => p.name === step.params.proxy)
      if (!proxy) return null
      return {
        rank: 2,
        undo: {
          id: `route_writer_back:${step.params.proxy}`,
          type: 'route_writer',
          server: oldMaster,
          params: writerParams(cluster, proxy, oldMaster),
          after,
          outputs: [],
          reason: `undo: proxy ${proxy.name} sends writes to ${oldMaster} again, now that it takes them again (every other server in maint first); a new connection through ${proxy.frontend.host}:${proxy.frontend.port} must reach it`,
        },
      }
    }
    // MHA 0.58 has no rollback: the inverse of --command=stop is the call that gives the address to a master,
    // --command=start, here with the old master as its new_master (the switch reversed).
    if (step.type === 'run_hook' && step.params.hook === 'master_ip_online_change' && step.params.command === 'stop' && step.params.origMaster === undefined && step.params.newMaster === undefined)
      return {
        rank: 3,
        undo: {
          id: `run_hook:online_change_start_${oldMaster}`,
          type: 'run_hook',
          server: oldMaster,
          params: {hook: 'master_ip_online_change', command: 'start', path: step.params.path, origMaster: newMaster, newMaster: oldMaster},
          after,
          outputs: [],
          reason: `undo: the online-change hook gives the writer address back to ${oldMaster} (--command=start with ${oldMaster} as MHA's new_master, ${newMaster} as its orig_master)`,
        },
      }
    return null
  }
  const undos: {rank: number; undo: Step}[] = []
  const withoutUndo: string[] = []
  for (const step of plan.steps) {
    if (step !== writable && waitsForPromotion(step)) continue
    const found = undoOf(step)
    if (found) undos.push(found)
    else if (!effectFree.has(step.type)) withoutUndo.push(step.id)
  }
  return {rollback: {ifFailedBefore: writable.id, steps: undos.sort((a, b) => a.rank - b.rank).map((u) => u.undo)}, withoutUndo}
}
