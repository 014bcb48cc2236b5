import {posix} from 'node:path'
import {sourceServer, sqlFacts, topologyOf} from '../analysis/topology.js'
import {formatCoordinates} from '../binlog/coordinates.js'
import {settingsDigest} from '../config/digest.js'
import type {ClusterConfig, HookConfig} from '../config/types.js'
import {dialectFor} from '../dialect/index.js'
import {parseServerVersion} from '../dialect/version.js'
import type {ServerSnapshot, Snapshot} from '../inspect/types.js'
import {changePreview, failoverWarnings} from './planner.js'
import {canonical} from './plan-file.js'
import {rebuildDir} from './service.js'
import {switchoverRollback} from './switchover.js'
import type {OutputRef, Plan, Step} from './types.js'
import {drainParams, writerParams} from './routing-params.js'

/**
 * A plan is data reviewed by people, not code: before the first step, apply checks that every step's
 * parameters are what the cluster file and the plan's own decisions give, so that what was reviewed is what
 * runs. Each problem names the step and the field. Pure: the cluster file and the plan only.
 */
export function planProblems(plan: Plan, cluster: ClusterConfig): string[] {
  const problems: string[] = []
  const where = (step: Step, field: string) => `step ${step.id} ${field}`
  const known = new Set(cluster.servers.map((s) => s.name))
  const server = (name: string) => cluster.servers.find((s) => s.name === name)
  const hooks = cluster.hooks
  const all = [...plan.steps, ...(plan.rollback?.steps ?? [])]
  const settings = settingsDigest(cluster)

  if (plan.cluster !== cluster.name) problems.push(`the plan is for cluster ${plan.cluster}, ${cluster.file} describes ${cluster.name}`)
  // A plan is checked against the operator's cluster file only, never one it names itself: the settings it was
  // made from must be that file's (a copy with other hooks, left in another folder, is not).
  else if (plan.observed.settings !== settings)
    problems.push(`it was made from ${plan.header.configFile} with other settings than ${cluster.file} holds (settings ${plan.observed.settings.slice(0, 19)}…, the file's ${settings.slice(0, 19)}…); plan again from ${cluster.file}, or name the file it was made from with --config after reviewing it`)
  for (const name of [plan.decision.deadMaster, plan.decision.oldMaster ?? null, plan.decision.newMaster]) if (name !== null && !known.has(name)) problems.push(`decision names server ${name}, which is not in ${cluster.file}`)

  // The warnings the reviewer read are the ones the cluster file gives now.
  if (plan.kind === 'failover') {
    const expected = failoverWarnings(cluster).warnings ?? []
    const shown = plan.decision.warnings ?? []
    if (JSON.stringify(shown) !== JSON.stringify(expected)) problems.push(`decision.warnings: the plan says ${show(shown.join(' / ') || null)}, the hooks of ${cluster.file} give ${show(expected.join(' / ') || null)}`)
  }

  // What the plan says it leaves to the operator is what its steps leave undone, no more and no less.
  const left = plan.decision.leftToOperator
  if (left && plan.kind !== 'failover') problems.push(`decision.leftToOperator: only a failover leaves work to the operator (MHA's --skip_change_master, --skip_disable_read_only), this is a ${plan.kind}`)
  for (const name of left?.repoint ?? [])
    if (plan.steps.some((s) => s.type === 'repoint_replica' && s.server === name)) problems.push(`decision.leftToOperator.repoint: the plan says re-pointing ${name} is left to you, yet it has a repoint_replica step for it`)

  // Ids, references, order.
  const seen = new Map<string, number>()
  plan.steps.forEach((step, index) => {
    if (seen.has(step.id)) problems.push(`step ${step.id} appears twice (steps[${seen.get(step.id)}] and steps[${index}])`)
    seen.set(step.id, index)
  })
  plan.steps.forEach((step, index) => {
    for (const dependency of [...step.after, ...(step.settledAfter ?? []), ...refsOf(step).map((r) => r.fromStep)]) {
      const at = seen.get(dependency)
      if (at === undefined) problems.push(`${where(step, 'after')}: ${dependency} is not a step of this plan`)
      // Listed in the order they can run: a dependency after its dependant is a reordered (or cyclic) plan.
      else if (at >= index) problems.push(`${where(step, 'after')}: it depends on ${dependency}, which is listed after it (steps reordered?)`)
    }
  })
  for (const step of plan.rollback?.steps ?? []) for (const dependency of step.after) if (!seen.has(dependency)) problems.push(`rollback ${where(step, 'after')}: ${dependency} is not a step of this plan`)
  if (plan.rollback && !seen.has(plan.rollback.ifFailedBefore)) problems.push(`rollback.ifFailedBefore: ${plan.rollback.ifFailedBefore} is not a step of this plan`)

  // Every server a step acts on or reads from is in the cluster file.
  for (const step of all) {
    if (!known.has(step.server)) problems.push(`${where(step, 'server')}: ${step.server} is not in ${cluster.file}`)
    for (const [field, name] of namedServers(step)) if (!known.has(name)) problems.push(`${where(step, field)}: ${name} is not in ${cluster.file}`)
  }

  // What each step would do, derived again from the cluster file.
  for (const step of all) {
    switch (step.type) {
      case 'fence_master': {
        const method = hooks.shutdown ? 'hook' : 'read_only_and_kill'
        if (step.params.method !== method) problems.push(`${where(step, 'params.method')}: the plan says ${step.params.method}, the cluster file gives ${method}`)
        if ((step.params.hook ?? null) !== (hooks.shutdown ?? null)) problems.push(`${where(step, 'params.hook')}: the plan says ${show(step.params.hook)}, the cluster file's hooks.shutdown is ${show(hooks.shutdown)}`)
        if ((step.params.ipHook ?? null) !== (hooks.masterIpFailover ?? null)) problems.push(`${where(step, 'params.ipHook')}: the plan says ${show(step.params.ipHook)}, the cluster file's hooks.master_ip_failover is ${show(hooks.masterIpFailover)}`)
        break
      }
      case 'run_hook': {
        const configured = hookPath(hooks, step.params.hook)
        if (step.params.path !== configured) problems.push(`${where(step, 'params.path')}: the plan says ${show(step.params.path)}, the cluster file's ${step.params.hook} hook is ${show(configured)}`)
        // Only a rollback reverses a switch; a forward call takes its servers from the decision (the rollback is checked whole below).
        for (const field of ['origMaster', 'newMaster'] as const)
          if (step.params[field] !== undefined && !(plan.rollback?.steps.includes(step) ?? false)) problems.push(`${where(step, `params.${field}`)}: ${step.params[field]}; a hook call among the plan's steps takes its servers from the decision`)
        break
      }
      case 'repoint_replica': {
        const source = server(step.params.source)
        if (!source) break
        if (step.params.host !== source.hostname) problems.push(`${where(step, 'params.host')}: the plan says ${step.params.host}, the cluster file gives ${step.params.source} the hostname ${source.hostname}`)
        if (step.params.port !== source.port) problems.push(`${where(step, 'params.port')}: the plan says ${step.params.port}, the cluster file gives ${step.params.source} port ${source.port}`)
        if (step.params.user !== cluster.replUser) problems.push(`${where(step, 'params.user')}: the plan says ${step.params.user}, the cluster file's repl_user is ${cluster.replUser}`)
        const version = plan.observed.servers.find((s) => s.name === step.server)?.version
        // A rollback re-point describes itself in words; a forward one shows the statement apply runs.
        if (version && !(plan.rollback?.steps.includes(step) ?? false)) {
          const target = {host: source.hostname, port: source.port, user: cluster.replUser}
          const at = step.params.at
          // Coordinates already known (a rejoin's, from the failover's journal) are shown as they are.
          const expected = at
            ? dialectFor(parseServerVersion(version)).changeSource({...target, ...(cluster.replPassword ? {password: 'x'} : {}), coordinates: at}).display
            : changePreview(cluster, parseServerVersion(version), target, step.params.gtid, step.params.coordinates?.fromStep ?? '')
          if (at && (step.params.gtid || step.params.coordinates)) problems.push(`${where(step, 'params.at')}: coordinates given with ${step.params.gtid ? 'gtid' : 'params.coordinates'} too`)
          if (step.params.preview !== expected) problems.push(`${where(step, 'params.preview')}: the plan shows "${step.params.preview}", apply would run "${expected}"`)
        }
        break
      }
      case 'save_master_binlog': {
        const dead = server(step.server)
        const copy = step.params.binlogServer
        const binlogServer = copy === undefined ? undefined : cluster.binlogServers.find((b) => b.name === copy)
        if (copy !== undefined && !binlogServer) problems.push(`${where(step, 'params.binlogServer')}: ${copy} is not one of binlog_servers in the cluster file (${cluster.binlogServers.map((b) => b.name).join(', ') || 'none'})`)
        else if (binlogServer && step.params.dir !== null && !binlogServer.masterBinlogDirs.includes(step.params.dir))
          problems.push(`${where(step, 'params.dir')}: ${step.params.dir} is not one of binlog server ${binlogServer.name}'s master_binlog_dir in the cluster file (${binlogServer.masterBinlogDirs.join(', ')})`)
        else if (copy === undefined && dead && step.params.dir !== null && !dead.masterBinlogDirs.includes(step.params.dir))
          problems.push(`${where(step, 'params.dir')}: ${step.params.dir} is not one of ${step.server}'s master_binlog_dir in the cluster file (${dead.masterBinlogDirs.join(', ')})`)
        for (const file of [step.params.from.file, ...step.params.files]) if (!/^[A-Za-z0-9_.-]+\.\d+$/.test(file)) problems.push(`${where(step, 'params.files')}: ${JSON.stringify(file)} is not a binlog file name`)
        break
      }
      case 'save_relay_diff': {
        const diff = step.params.diff
        for (const file of diff.files)
          if (!posix.isAbsolute(file) || posix.normalize(file) !== file || file.includes('\n')) problems.push(`${where(step, 'params.diff.files')}: ${JSON.stringify(file)} is not a plain absolute path`)
        if (step.server !== diff.source) problems.push(`${where(step, 'server')}: ${step.server}; the step reads the relay logs of params.diff.source ${diff.source}`)
        // The range lies between the target's and the source's read positions: facts apply checks on the live servers
        // before the first step. Where it starts in the relay log (files, offset) is derived again by the step itself.
        const read = (name: string) => plan.observed.facts.find((f) => f.server === name && f.fact === 'read')?.value ?? 'none'
        for (const [field, name, at] of [['after', step.params.target, diff.after], ['until', diff.source, diff.until]] as const)
          if (read(name) !== formatCoordinates(at)) problems.push(`${where(step, `params.diff.${field}`)}: the plan says ${formatCoordinates(at)}, its observed facts give ${name} the read position ${read(name)}`)
        break
      }
      case 'check_switchover':
        if (step.params.maxLagSeconds !== cluster.switchover.maxLagSeconds) problems.push(`${where(step, 'params.maxLagSeconds')}: the plan says ${step.params.maxLagSeconds}, the cluster file's switchover.max_lag_seconds is ${cluster.switchover.maxLagSeconds}`)
        if (step.params.runningUpdatesLimit !== cluster.switchover.runningUpdatesLimit)
          problems.push(`${where(step, 'params.runningUpdatesLimit')}: the plan says ${step.params.runningUpdatesLimit}, the cluster file's switchover.running_updates_limit is ${cluster.switchover.runningUpdatesLimit}`)
        break
      case 'copy_backup':
      case 'install_backup': {
        const datadir = server(step.server)?.rebuild?.datadir
        const dir = datadir ? rebuildDir(datadir) : null
        if (step.params.dir !== dir) problems.push(`${where(step, 'params.dir')}: the plan says ${step.params.dir}, the cluster file's ${step.server} rebuild.datadir gives ${show(dir)}`)
        if (step.type === 'install_backup' && step.params.datadir !== datadir) problems.push(`${where(step, 'params.datadir')}: the plan says ${step.params.datadir}, the cluster file's ${step.server} rebuild.datadir is ${show(datadir)}`)
        break
      }
      case 'stop_server':
      case 'start_server': {
        const configured = step.type === 'stop_server' ? (server(step.server)?.rebuild?.stopCommand ?? null) : server(step.server)?.rebuild?.startCommand
        if (step.params.command !== configured) problems.push(`${where(step, 'params.command')}: the plan says ${show(step.params.command)}, the cluster file's ${step.server} rebuild.${step.type === 'stop_server' ? 'stop' : 'start'}_command is ${show(configured)}`)
        break
      }
      case 'replicate_from_copy': {
        const source = server(step.params.source)
        if (!source) break
        if (step.params.host !== source.hostname) problems.push(`${where(step, 'params.host')}: the plan says ${step.params.host}, the cluster file gives ${step.params.source} the hostname ${source.hostname}`)
        if (step.params.port !== source.port) problems.push(`${where(step, 'params.port')}: the plan says ${step.params.port}, the cluster file gives ${step.params.source} port ${source.port}`)
        if (step.params.user !== cluster.replUser) problems.push(`${where(step, 'params.user')}: the plan says ${step.params.user}, the cluster file's repl_user is ${cluster.replUser}`)
        break
      }
      case 'detach_replication': {
        // A failover and a switchover follow failover.skip_reset_slave (as MHA's); a removal always forgets the old source.
        const follows = plan.kind === 'failover' || plan.kind === 'switchover'
        const reset = follows ? !cluster.failover.skipResetSlave : true
        if (step.params.resetSlaveAll !== reset)
          problems.push(`${where(step, 'params.resetSlaveAll')}: the plan says ${step.params.resetSlaveAll}, ${follows ? `the cluster file's failover.skip_reset_slave (${cluster.failover.skipResetSlave}) gives` : `a ${plan.kind} always runs RESET SLAVE ALL:`} ${reset}`)
        break
      }
      case 'wait_relay_log_applied': {
        // A replica executes the relay log it had when the plan was made: its read position in the plan's observed
        // facts, which apply checks on the live servers (an edit of the step and of observed.servers together is caught).
        const read = plan.observed.facts.find((f) => f.server === step.server && f.fact === 'read')?.value ?? 'none'
        if (read !== formatCoordinates(step.params.until))
          problems.push(`${where(step, 'params.until')}: the plan says ${formatCoordinates(step.params.until)}, its observed facts give ${step.server} the read position ${read}`)
        break
      }
      case 'route_drain':
      case 'route_writer': {
        const proxy = cluster.proxies.find((p) => p.name === step.params.proxy)
        if (!proxy) {
          problems.push(`${where(step, 'params.proxy')}: ${step.params.proxy} is not a proxy of ${cluster.file} (routing.haproxy: ${cluster.proxies.map((p) => p.name).join(', ') || 'none'})`)
          break
        }
        const same = (field: string, planned: unknown, given: unknown) => {
          if (JSON.stringify(planned) !== JSON.stringify(given)) problems.push(`${where(step, `params.${field}`)}: the plan says ${JSON.stringify(planned)}, ${cluster.file} gives ${JSON.stringify(given)} for proxy ${proxy.name}`)
        }
        const derived: Record<string, unknown> = step.type === 'route_drain' ? drainParams(proxy, step.server) : writerParams(cluster, proxy, step.server)
        for (const field of step.type === 'route_drain' ? ['backend', 'backendServer'] : ['backend', 'writer', 'others', 'frontend']) same(field, (step.params as Record<string, unknown>)[field], derived[field])
        if (step.type === 'route_writer') {
          // A switchover's rollback gives the writes back to the old master (the rollback is checked whole below).
          if (plan.decision.newMaster !== step.server && !(plan.rollback?.steps.includes(step) ?? false)) problems.push(`${where(step, 'server')}: ${step.server}; writes are routed to the new master ${plan.decision.newMaster ?? '(none)'}`)
        }
        break
      }
      case 'mark_out_of_service':
      case 'stop_replica_io':
      case 'catch_up_from':
      case 'apply_logs':
      case 'enable_writes':
      case 'record_position':
      case 'block_writes':
      case 'unblock_writes':
      case 'wait_caught_up':
      case 'verify_replication':
      case 'release_write_block':
      case 'set_read_only':
      case 'flashback_binlog':
        // No parameter with an effect of its own: servers are checked above, references below.
        break
    }
  }
  problems.push(...shapeProblems(plan), ...switchoverRoutingProblems(plan, cluster), ...serviceRoutingProblems(plan, cluster), ...rollbackProblems(plan, cluster))
  return problems
}

/**
 * A switchover's rollback is derived again from its steps and the cluster file: the undo of every step that can run
 * before the promotion, no more and no less. Only a switchover has one.
 */
function rollbackProblems(plan: Plan, cluster: ClusterConfig): string[] {
  if (plan.kind !== 'switchover') return plan.rollback ? [`a ${plan.kind} plan has no rollback; this one lists ${plan.rollback.steps.map((s) => s.id).join(', ') || 'no step'}`] : []
  const {rollback, withoutUndo} = switchoverRollback(plan, cluster)
  const problems = withoutUndo.map((id) => `step ${id} can run before the promotion, and a switchover has no undo for it`)
  if (!rollback) return problems
  if (!plan.rollback) return [...problems, `the plan has no rollback; it must list the undos ${rollback.steps.map((s) => s.id).join(', ')}, run if a step fails before ${rollback.ifFailedBefore}`]
  if (plan.rollback.ifFailedBefore !== rollback.ifFailedBefore) problems.push(`rollback.ifFailedBefore: the plan says ${plan.rollback.ifFailedBefore}, the promotion is ${rollback.ifFailedBefore}`)
  const count = Math.max(plan.rollback.steps.length, rollback.steps.length)
  for (let i = 0; i < count; i++) {
    const shown = plan.rollback.steps[i]
    const expected = rollback.steps[i]
    if (JSON.stringify(canonical(shown)) === JSON.stringify(canonical(expected))) continue
    problems.push(
      `rollback.steps[${i}]: the plan has ${shown ? shown.id : 'nothing'}${shown && expected && shown.id === expected.id ? ' with other fields' : ''}, undoing the steps before the promotion gives ${expected ? `${expected.id} (${JSON.stringify(expected.params)}, after ${expected.after.join(', ')})` : 'nothing'}`,
    )
  }
  return problems
}

/** Whether a step of the plan needs another to have succeeded first, directly or through the steps it needs. */
function needsIn(plan: Plan): (from: Step, target: Step) => boolean {
  const byId = new Map(plan.steps.map((s) => [s.id, s]))
  return (from, target) => {
    const seen = new Set<string>()
    const stack = [...from.after]
    while (stack.length > 0) {
      const id = stack.pop()!
      if (id === target.id) return true
      if (seen.has(id)) continue
      seen.add(id)
      stack.push(...(byId.get(id)?.after ?? []))
    }
    return false
  }
}

/**
 * A switchover behind proxies: each proxy drains the old master before its write block (no client through the proxy
 * meets a read_only server) and sends writes to the new master only after its promotion (never to a server that does
 * not take writes), once each.
 */
function switchoverRoutingProblems(plan: Plan, cluster: ClusterConfig): string[] {
  if (plan.kind !== 'switchover') return []
  const problems: string[] = []
  const {oldMaster, newMaster} = plan.decision
  const needs = needsIn(plan)
  const block = plan.steps.find((s) => s.type === 'block_writes')
  const writable = plan.steps.find((s) => s.type === 'enable_writes')
  for (const proxy of cluster.proxies) {
    const drains = plan.steps.filter((s) => s.type === 'route_drain' && s.params.proxy === proxy.name)
    const writers = plan.steps.filter((s) => s.type === 'route_writer' && s.params.proxy === proxy.name)
    if (drains.length !== 1 || drains[0]!.server !== oldMaster) problems.push(`a switchover plan must drain its old master ${oldMaster ?? '(none)'} in proxy ${proxy.name} (routing.haproxy of ${cluster.file}) exactly once`)
    else if (block && !needs(block, drains[0]!)) problems.push(`${block.id} must come after ${drains[0]!.id}: no client through proxy ${proxy.name} meets the write block`)
    if (writers.length !== 1 || writers[0]!.server !== newMaster) problems.push(`a switchover plan must send proxy ${proxy.name}'s writes to its new master ${newMaster ?? '(none)'} exactly once`)
    else if (writable && !needs(writers[0]!, writable)) problems.push(`${writers[0]!.id} must come after ${writable.id}: a proxy sends writes only to a server that takes them`)
  }
  return problems
}

/**
 * A rejoin, rebuild or removal behind proxies takes its server out of every writer backend, once per proxy, before
 * it changes the server: a replica, a server being rebuilt or one leaving never takes writes through a proxy.
 */
function serviceRoutingProblems(plan: Plan, cluster: ClusterConfig): string[] {
  const firstChange: Partial<Record<Plan['kind'], Step['type']>> = {rejoin: 'repoint_replica', rebuild: 'stop_server', remove: 'mark_out_of_service'}
  const type = firstChange[plan.kind]
  const change = plan.steps.find((s) => s.type === type)
  if (!change) return []
  const needs = needsIn(plan)
  const problems: string[] = []
  for (const proxy of cluster.proxies) {
    const drains = plan.steps.filter((s) => s.type === 'route_drain' && s.params.proxy === proxy.name)
    if (drains.length !== 1 || drains[0]!.server !== change.server) problems.push(`a ${plan.kind} plan must take ${change.server} out of proxy ${proxy.name}'s writer backend (routing.haproxy of ${cluster.file}) exactly once`)
    else if (!needs(change, drains[0]!)) problems.push(`${change.id} must come after ${drains[0]!.id}: no proxy sends writes to ${change.server} once it changes`)
  }
  return problems
}

/** The steps a plan of its kind cannot do without: a failover that never promotes is no failover. */
function shapeProblems(plan: Plan): string[] {
  const {kind, decision} = plan
  if (kind === 'noop') return plan.steps.length > 0 ? [`a noop plan has ${plan.steps.length} steps; it must have none`] : []
  if (plan.steps.length === 0) return [`a ${kind} plan without steps; make a new plan with "mha plan"`]
  if (kind === 'rejoin') return rejoinShapeProblems(plan)
  if (kind === 'rebuild' || kind === 'remove') return serviceShapeProblems(plan)
  const problems: string[] = []
  const nm = decision.newMaster
  const of = (type: Step['type'], server?: string | null) => plan.steps.filter((s) => s.type === type && (server === undefined || s.server === server))
  const needs = needsIn(plan)
  const writable = of('enable_writes')
  // A failover may leave its new master read_only on the operator's request (MHA's --skip_disable_read_only), said in the decision.
  const leftReadOnly = kind === 'failover' && decision.leftToOperator?.disableReadOnly === true
  if (leftReadOnly && writable.length > 0) problems.push(`decision.leftToOperator.disableReadOnly: the plan leaves its new master ${nm ?? '(none)'} read_only, yet it has ${writable.map((s) => s.id).join(', ')}`)
  if (!leftReadOnly && (writable.length !== 1 || writable[0]!.server !== nm))
    problems.push(`a ${kind} plan must make exactly one server writable, its new master ${nm ?? '(none)'}; this one has ${writable.map((s) => s.id).join(', ') || 'no enable_writes step'}`)
  const detach = of('detach_replication', nm)
  if (detach.length !== 1) problems.push(`a ${kind} plan must detach its new master ${nm ?? '(none)'} from replication exactly once`)
  // Where the new master's coordinates are recorded before it takes writes: by record_position (a switchover, which
  // detaches after the promotion), else by the detach itself.
  const recorded = of('record_position')
  if (recorded.length > 1 || (recorded.length === 1 && (kind !== 'switchover' || recorded[0]!.server !== nm)))
    problems.push(`only a switchover records its new master's position (record_position), once, on ${nm ?? '(none)'}; this plan has ${recorded.map((s) => s.id).join(', ')}`)
  const positionStep = recorded.length === 1 ? recorded[0]! : detach.length === 1 ? detach[0]! : undefined
  if (writable.length === 1 && positionStep && !needs(writable[0]!, positionStep)) problems.push(`${writable[0]!.id} must come after ${positionStep.id}`)
  if (kind === 'failover') {
    const fence = of('fence_master', decision.deadMaster)
    if (fence.length !== 1) problems.push(`a failover plan must fence its dead master ${decision.deadMaster ?? '(none)'} exactly once`)
    else if (writable.length === 1 && !needs(writable[0]!, fence[0]!)) problems.push(`${writable[0]!.id} must come after ${fence[0]!.id}: the new master takes writes only once the old one is fenced`)
  }
  if (kind === 'switchover') {
    if (decision.deadMaster !== null) problems.push(`a switchover plan names a dead master (${decision.deadMaster}); its master is alive: decision.oldMaster`)
    const block = of('block_writes', decision.oldMaster ?? null)
    if (block.length !== 1) problems.push(`a switchover plan must block writes on its old master ${decision.oldMaster ?? '(none)'} exactly once`)
    else if (writable.length === 1 && !needs(writable[0]!, block[0]!)) problems.push(`${writable[0]!.id} must come after ${block[0]!.id}`)
    // The coordinates are read once the new master has everything the old one wrote, and its replication from the
    // old master stops before the old master's lock goes (whatever is written there afterwards stays off it).
    const caughtUp = of('wait_caught_up', nm)
    if (positionStep && caughtUp.length === 1 && !needs(positionStep, caughtUp[0]!)) problems.push(`${positionStep.id} must come after ${caughtUp[0]!.id}`)
    const release = of('release_write_block', decision.oldMaster ?? null)
    if (release.length === 1 && detach.length === 1 && !needs(release[0]!, detach[0]!)) problems.push(`${release[0]!.id} must come after ${detach[0]!.id}: ${nm ?? 'the new master'} stops replicating from ${decision.oldMaster ?? 'the old master'} before its lock goes`)
  }
  for (const repoint of of('repoint_replica')) if (repoint.type === 'repoint_replica' && repoint.params.source !== nm) problems.push(`step ${repoint.id} params.source: ${repoint.params.source}; every replica of this plan follows the new master ${nm ?? '(none)'}`)
  return problems
}

/**
 * A rejoin re-points one server to the master and changes no other server: no promotion, nothing writable; a
 * rewind of its extra transactions comes only after they are saved, and before the re-point.
 */
function rejoinShapeProblems(plan: Plan): string[] {
  const problems: string[] = []
  const repoints = plan.steps.filter((s) => s.type === 'repoint_replica')
  if (repoints.length !== 1) return [`a rejoin plan must re-point exactly one server; this one has ${repoints.length}`]
  const repoint = repoints[0]!
  const name = repoint.server
  if (repoint.type === 'repoint_replica' && repoint.params.source !== plan.decision.newMaster) problems.push(`step ${repoint.id} params.source: ${repoint.params.source}; a rejoin follows the master ${plan.decision.newMaster ?? '(none)'}`)
  for (const step of plan.steps) {
    if (['enable_writes', 'unblock_writes', 'detach_replication', 'fence_master', 'block_writes', 'apply_logs', 'run_hook'].includes(step.type)) problems.push(`step ${step.id}: a rejoin plan has no ${step.type} step`)
    if (step.type !== 'verify_replication' && step.server !== name) problems.push(`step ${step.id}: a rejoin of ${name} acts on ${name} only, not ${step.server}`)
  }
  const index = (id: string) => plan.steps.findIndex((s) => s.id === id)
  const readOnly = plan.steps.find((s) => s.type === 'set_read_only')
  if (!readOnly) problems.push(`a rejoin plan must set ${name} read_only first`)
  const flashback = plan.steps.find((s) => s.type === 'flashback_binlog')
  if (flashback?.type === 'flashback_binlog') {
    const save = plan.steps.find((s) => s.id === flashback.params.saved.fromStep)
    if (save?.type !== 'save_master_binlog' || save.server !== name) problems.push(`step ${flashback.id} params.saved: the rewound transactions must first be saved from ${name}'s binlog`)
    else if (save.params.from.file !== flashback.params.from.file || save.params.from.pos !== flashback.params.from.pos) problems.push(`step ${flashback.id} params.from: ${flashback.params.from.file}:${flashback.params.from.pos} is not where ${save.id} saves from`)
    if (index(flashback.id) > index(repoint.id) || !repoint.after.includes(flashback.id)) problems.push(`step ${repoint.id} must come after ${flashback.id}: a diverged server is never re-pointed`)
  } else if (plan.steps.some((s) => s.type === 'save_master_binlog')) problems.push('a rejoin plan that saves extra transactions must rewind them before re-pointing')
  if (!plan.decision.dataLoss.none && !flashback) problems.push(`the plan states extra transactions on ${name} but does not rewind them`)
  return problems
}

/**
 * What only the live servers can tell: relay log files a step copies must lie where the source server keeps
 * its relay logs now (beside @@relay_log_index), so a plan cannot make mha read another file over SSH.
 */
export function liveProblems(plan: Plan, servers: readonly ServerSnapshot[]): string[] {
  const problems: string[] = []
  for (const step of plan.steps) {
    if (step.type !== 'save_relay_diff') continue
    const sql = servers.find((s) => s.name === step.params.diff.source)?.sql
    const index = sql?.reachable ? sql.relayLogIndex : null
    if (!index) continue
    const dir = posix.dirname(index)
    for (const file of step.params.diff.files) if (posix.dirname(file) !== dir) problems.push(`step ${step.id} params.diff.files: ${file} is not in ${step.params.diff.source}'s relay log folder ${dir}`)
  }
  return problems
}

/** The server a rebuild or remove plan acts on (its steps', less the check of replication), or null for other plans. */
export function confirmedTargetOf(plan: Plan): string | null {
  if (plan.kind !== 'rebuild' && plan.kind !== 'remove') return null
  const targets = [...new Set(plan.steps.filter((s) => s.type !== 'verify_replication').map((s) => s.server))]
  return targets.join(', ') || '(none)'
}

/**
 * A rebuild replaces a server's datadir and a removal takes it out of service: apply runs either only on the server
 * the operator names again at apply (mha apply --target NAME), never on a server the plan file alone names. Other
 * plans take no --target: given, it is refused rather than ignored. Null when the plan may run.
 */
export function targetProblem(plan: Plan, planFile: string, named: string | undefined): {problem: string; next: string} | null {
  const target = confirmedTargetOf(plan)
  if (target === null)
    return named === undefined ? null : {problem: `--target ${named}: ${planFile} is a ${plan.kind} plan; --target confirms the server of a rebuild or remove plan only; nothing was changed`, next: `apply ${planFile} without --target`}
  const what = plan.kind === 'rebuild' ? `rebuilds ${target} (its datadir is replaced)` : `removes ${target} (its replication is reset and it is listed out of service)`
  const command = `mha apply ${planFile} --target ${target}`
  if (named === undefined) return {problem: `${planFile} ${what}: name it with --target ${target} to confirm; nothing was changed`, next: `review it ("mha show ${planFile}"), then "${command}"`}
  if (named !== target) return {problem: `${planFile} ${what}, not ${named} as --target says; nothing was changed`, next: `to ${plan.kind} ${named}, plan it ("mha plan --cluster ${plan.cluster} --${plan.kind} ${named}") and apply that plan; to ${plan.kind} ${target}, "${command}"`}
  return null
}

/** What the manager's state says of the servers a failover took out, for a rejoin (null: no state to ask). */
export interface RoleState {
  /** Servers the state lists out of service. */
  outOfService: readonly string[]
  /** The dead master of the last failover the state records. */
  lastDeadMaster: string | null
}

/**
 * Roles re-derived from the live servers, never taken from the plan's own word (its observed section and decision
 * are data anyone can edit, and only sources, server ids and reachability are re-observed as facts): a rejoin,
 * rebuild or removal never acts on the live master (the topology's master, or a writable server others replicate
 * from); a rejoin follows the live writable master and puts back a server the state says a failover took out; a
 * rebuild copies the master or one of its replicas and replicates from the master; a removal takes away no one's
 * source; a switchover (not `resuming`) moves the live master to one of its replicas. Pure: the plan, a snapshot
 * taken at apply, the cluster file and the state.
 */
export function roleProblems(plan: Plan, snapshot: Snapshot, cluster: ClusterConfig, state: RoleState | null = null, resuming = false): string[] {
  const problems: string[] = []
  const roles = liveRoles(cluster, snapshot)
  const kind = plan.kind
  if (kind === 'rejoin' || kind === 'rebuild' || kind === 'remove') {
    const targets = [...new Set(plan.steps.filter((s) => s.type !== 'verify_replication').map((s) => s.server))]
    for (const name of targets) if (roles.isMaster(name)) problems.push(`step ${plan.steps.find((s) => s.server === name)!.id}: ${roles.describe(name)}; a ${kind} plan never acts on the master`)
    const master = roles.master
    if (kind === 'rejoin') {
      // Like the planner: the master is told without the server that rejoins (a former master may come back writable).
      const others = liveRoles({...cluster, servers: cluster.servers.filter((s) => !targets.includes(s.name))}, {...snapshot, servers: snapshot.servers.filter((s) => !targets.includes(s.name))})
      const wanted = plan.decision.newMaster
      if (wanted === null || others.master !== wanted) problems.push(`decision.newMaster: the plan rejoins ${targets.join(', ')} to ${wanted ?? '(none)'}; ${wanted ? roles.describe(wanted) : 'no master named'}${others.master ? `, the live master is ${others.master}` : ', and no live master can be told'}`)
      else if (roles.facts(wanted)?.readOnly !== false) problems.push(`decision.newMaster: ${roles.describe(wanted)}; a server rejoins a master that takes writes`)
      // A server a failover took out: listed out of service, or the last failover's dead master, where the state says either.
      const known = state !== null && (state.outOfService.length > 0 || state.lastDeadMaster !== null)
      for (const name of targets)
        if (known && !state.outOfService.includes(name) && state.lastDeadMaster !== name)
          problems.push(`${name} is not listed out of service (${state.outOfService.join(', ') || 'none'}) nor the dead master of the last failover (${state.lastDeadMaster ?? 'none'}): a rejoin puts back a server a failover took out`)
      for (const step of plan.steps) {
        if (step.type !== 'flashback_binlog') continue
        const facts = roles.facts(step.server)
        // The planner resets a MariaDB server's binlog after the rewind, no other.
        if (facts && step.params.resetBinlog !== (facts.version.flavor === 'mariadb'))
          problems.push(`step ${step.id} params.resetBinlog: the plan says ${step.params.resetBinlog}, ${step.server} runs ${facts.version.flavor}, which gives ${facts.version.flavor === 'mariadb'}`)
      }
    }
    if (kind === 'rebuild')
      for (const step of plan.steps) {
        if (step.type === 'replicate_from_copy' && step.params.source !== master) problems.push(`step ${step.id} params.source: ${roles.describe(step.params.source)}; a rebuilt server replicates from the live master ${master ?? '(none can be told)'}`)
        if (step.type === 'verify_replication' && step.params.master !== master) problems.push(`step ${step.id} params.master: ${roles.describe(step.params.master)}; the live master is ${master ?? '(none can be told)'}`)
        if (step.type === 'copy_backup' && (targets.includes(step.params.source) || (step.params.source !== master && roles.sourceOf(step.params.source) !== master)))
          problems.push(`step ${step.id} params.source: ${roles.describe(step.params.source)}; a copy comes from the live master ${master ?? '(none can be told)'} or one of its replicas, never from the server rebuilt`)
      }
    if (kind === 'remove')
      for (const name of targets) {
        const downstream = roles.replicasOf(name)
        if (downstream.length > 0 && !roles.isMaster(name)) problems.push(`${name}: ${downstream.join(', ')} replicate${downstream.length === 1 ? 's' : ''} from it now; a removal takes away no one's source`)
      }
  }
  if (kind === 'switchover' && !resuming) {
    const old = plan.decision.oldMaster ?? null
    const next = plan.decision.newMaster
    if (old === null || old !== roles.master) problems.push(`decision.oldMaster: the plan switches over from ${old ?? '(none)'}; ${old ? roles.describe(old) : 'no old master named'}${roles.master ? `, the live master is ${roles.master}` : ''}`)
    else if (next === null || roles.sourceOf(next) !== old) problems.push(`decision.newMaster: the plan promotes ${next ?? '(none)'}; ${next ? roles.describe(next) : 'no new master named'}, not a replica of the live master ${old}`)
  }
  return problems
}

/** Each server's role now, from one snapshot: the master (topology, or writable with replicas), whom it replicates from. */
function liveRoles(cluster: ClusterConfig, snapshot: Snapshot) {
  const facts = (name: string) => {
    const snap = snapshot.servers.find((s) => s.name === name)
    return snap ? sqlFacts(snap) : undefined
  }
  const sourceOf = (name: string): string | null => {
    const replica = facts(name)?.replica
    return replica ? (sourceServer(cluster, replica)?.name ?? `${replica.sourceHost}:${replica.sourcePort}`) : null
  }
  const replicasOf = (name: string) => cluster.servers.filter((s) => s.name !== name && sourceOf(s.name) === name).map((s) => s.name)
  const master = topologyOf(cluster, snapshot).master?.name
  const isMaster = (name: string) => name === master || (facts(name)?.readOnly === false && replicasOf(name).length > 0)
  const describe = (name: string): string => {
    const f = facts(name)
    if (!f) return `${name} does not answer SQL now`
    const readOnly = `read_only=${f.readOnly ? 1 : 0}`
    const replicas = replicasOf(name)
    if (isMaster(name)) return `${name} is the live master (${replicas.length > 0 ? `${replicas.join(', ')} replicate${replicas.length === 1 ? 's' : ''} from it` : 'no replica'}, ${readOnly})`
    const source = sourceOf(name)
    return `${name} is ${source ? `a replica of ${source}` : 'a server that replicates from nobody'} now (${readOnly})`
  }
  return {master, facts, isMaster, sourceOf, replicasOf, describe}
}

export function refsOf(step: Step): OutputRef[] {
  switch (step.type) {
    case 'apply_logs':
      return [step.params.ownRelay, step.params.relayDiff, step.params.masterTail].filter((r): r is OutputRef => r !== null)
    case 'repoint_replica':
      return step.params.coordinates ? [step.params.coordinates] : []
    case 'wait_caught_up':
      return [step.params.position]
    case 'release_write_block':
      return [step.params.finalPosition]
    case 'flashback_binlog':
      return [step.params.saved]
    case 'install_backup':
    case 'replicate_from_copy':
      return [step.params.copy]
    case 'set_read_only':
    case 'copy_backup':
    case 'stop_server':
    case 'start_server':
    case 'mark_out_of_service':
    case 'route_drain':
    case 'route_writer':
      return []
    case 'stop_replica_io':
    case 'fence_master':
    case 'save_master_binlog':
    case 'wait_relay_log_applied':
    case 'catch_up_from':
    case 'save_relay_diff':
    case 'detach_replication':
    case 'run_hook':
    case 'check_switchover':
    case 'block_writes':
    case 'unblock_writes':
    case 'enable_writes':
    case 'record_position':
    case 'verify_replication':
      return []
  }
}

function namedServers(step: Step): Array<[string, string]> {
  switch (step.type) {
    case 'repoint_replica':
      return [['params.source', step.params.source]]
    case 'catch_up_from':
      return [['params.source', step.params.source]]
    case 'save_relay_diff':
      return [
        ['params.target', step.params.target],
        ['params.diff.source', step.params.diff.source],
      ]
    case 'check_switchover':
      return [['params.target', step.params.target]]
    case 'wait_caught_up':
      return [['params.source', step.params.source]]
    case 'run_hook':
      return [
        ...(step.params.origMaster !== undefined ? [['params.origMaster', step.params.origMaster] as [string, string]] : []),
        ...(step.params.newMaster !== undefined ? [['params.newMaster', step.params.newMaster] as [string, string]] : []),
      ]
    case 'verify_replication':
      return [['params.master', step.params.master], ...step.params.replicas.map((r): [string, string] => ['params.replicas', r])]
    case 'route_drain':
    case 'route_writer':
    case 'stop_replica_io':
    case 'fence_master':
    case 'save_master_binlog':
    case 'wait_relay_log_applied':
    case 'apply_logs':
    case 'detach_replication':
    case 'block_writes':
    case 'unblock_writes':
    case 'enable_writes':
    case 'record_position':
    case 'set_read_only':
    case 'flashback_binlog':
      return []
    case 'release_write_block':
      return [['params.newMaster', step.params.newMaster]]
    case 'copy_backup':
    case 'replicate_from_copy':
      return [['params.source', step.params.source]]
    case 'stop_server':
    case 'install_backup':
    case 'start_server':
    case 'mark_out_of_service':
      return []
  }
}

export function hookPath(hooks: HookConfig, hook: 'master_ip_failover' | 'master_ip_online_change' | 'report'): string | undefined {
  return hook === 'master_ip_failover' ? hooks.masterIpFailover : hook === 'master_ip_online_change' ? hooks.masterIpOnlineChange : hooks.report
}

const show = (value: string | undefined | null) => (value ? JSON.stringify(value) : 'none')

/** A rebuild and a removal leave the master alone: no step may make a server writable or act on the master. */
function serviceShapeProblems(plan: Plan): string[] {
  const problems: string[] = []
  const master = plan.observed.servers.find((s) => s.role === 'master')?.name
  const targets = [...new Set(plan.steps.filter((s) => s.type !== 'verify_replication').map((s) => s.server))]
  if (targets.length !== 1) problems.push(`a ${plan.kind} plan acts on exactly one server; this one acts on ${targets.join(', ') || 'none'}`)
  if (master && targets.includes(master)) problems.push(`a ${plan.kind} plan never acts on the master ${master}`)
  const allowed: Record<'rebuild' | 'remove', Step['type'][]> = {
    rebuild: ['route_drain', 'copy_backup', 'stop_server', 'install_backup', 'start_server', 'replicate_from_copy', 'verify_replication'],
    remove: ['route_drain', 'detach_replication', 'mark_out_of_service'],
  }
  const kind = plan.kind as 'rebuild' | 'remove'
  for (const step of plan.steps) if (!allowed[kind].includes(step.type)) problems.push(`step ${step.id}: a ${kind} plan has no ${step.type} step`)
  for (const step of plan.steps) if (step.type === 'replicate_from_copy' && master && step.params.source !== master) problems.push(`step ${step.id} params.source: ${step.params.source}; a rebuilt server replicates from the master ${master}`)
  if (kind === 'remove' && plan.steps.filter((s) => s.type === 'mark_out_of_service').length !== 1) problems.push('a remove plan lists its server out of service exactly once')
  if (kind === 'rebuild') {
    const stop = plan.steps.findIndex((s) => s.type === 'stop_server')
    const install = plan.steps.findIndex((s) => s.type === 'install_backup')
    if (stop === -1 || install === -1 || !plan.steps[install]!.after.includes(plan.steps[stop]!.id)) problems.push('a rebuild plan installs the copy only after its stop_server step')
  }
  return problems
}
