import {formatCoordinates} from '../binlog/coordinates.js'
import type {Plan, Step} from '../plan/types.js'

/** The plan as a reviewer reads it in a pull request: decision, why, data loss, steps in order. */
export function renderPlan(plan: Plan): string {
  const d = plan.decision
  const lines: string[] = [`${plan.kind === 'noop' ? 'No changes' : `${capitalise(plan.kind)} plan`} for cluster ${plan.cluster}`, `  ${d.summary}`, '']
  if (plan.kind === 'noop') {
    for (const note of d.notes) lines.push(`  note: ${note}`)
    return lines.join('\n').trimEnd()
  }
  lines.push(`Replication: ${d.replicationMode === 'gtid' ? 'GTID' : 'binlog file/position'}; latest: ${d.latest.join(', ') || '-'}; oldest: ${d.oldest.join(', ') || '-'}`, '')
  if (d.newMaster) lines.push(`New master: ${d.newMaster}`)
  lines.push('Candidates:')
  for (const c of d.candidates) lines.push(`  ${c.chosen ? '*' : c.eligible ? '+' : '-'} ${c.server}: ${c.reason}`)
  lines.push('', `Data loss: ${d.dataLoss.statement}`)
  for (const note of d.notes) lines.push(`Note: ${note}`)
  for (const warning of d.warnings ?? []) lines.push(`WARNING: ${warning}`)
  for (const todo of d.leftToOperator?.todo ?? []) lines.push(`LEFT TO YOU (on request): ${todo}`)
  lines.push('', 'Steps:')
  if (plan.steps.some((s) => s.group === 'master')) lines.push('  [master] steps are required for the new master; a failed [replica:NAME] step leaves only that replica out; [optional]: recovery goes on without it, the loss stated')
  if (plan.steps.some((s) => s.group?.startsWith('routing:'))) lines.push("  a failed [routing:PROXY] step leaves the promotion standing: that proxy's writes are moved by applying again")
  plan.steps.forEach((step, i) => lines.push(`  ${String(i + 1).padStart(2)}. ${step.group ? `[${step.group}] ` : ''}${describeStep(step)}`, `      ${step.reason}`))
  if (plan.rollback) {
    lines.push('', `Rollback, if the plan fails before ${plan.rollback.ifFailedBefore} is done (each undo only if the step it undoes began):`)
    plan.rollback.steps.forEach((step, i) => lines.push(`  ${String(i + 1).padStart(2)}. ${describeStep(step)}`, `      ${step.reason}`))
  }
  return lines.join('\n')
}

function describeStep(step: Step): string {
  switch (step.type) {
    case 'stop_replica_io':
      return `${step.server}: STOP SLAVE IO_THREAD`
    case 'fence_master':
      return step.params.method === 'hook' ? `${step.server}: fence with ${step.params.hook}` : `${step.server}: fence (read_only, kill client connections) if it answers`
    case 'save_master_binlog':
      return `${step.server}: save binlog after ${formatCoordinates(step.params.from)} from ${step.params.binlogServer !== undefined ? `binlog server ${step.params.binlogServer}:` : ''}${step.params.dir} (${step.params.files.join(', ')})`
    case 'wait_relay_log_applied':
      return `${step.server}: wait until the SQL thread has executed up to ${formatCoordinates(step.params.until)}`
    case 'catch_up_from':
      return `${step.server}: catch up from ${step.params.source} by GTID`
    case 'save_relay_diff':
      return `${step.server}: copy relay log ${step.params.diff.files[0]}:${step.params.diff.offset} on, for ${step.params.target}`
    case 'apply_logs':
      return `${step.server}: apply ${[step.params.relayDiff ? 'the relay-log diff' : '', step.params.masterTail ? 'the saved binlog tail' : ''].filter(Boolean).join(' + ')} as one stream`
    case 'detach_replication':
      return `${step.server}: STOP SLAVE${step.params.resetSlaveAll ? ', RESET SLAVE ALL' : ''}${step.outputs.includes('binlog') ? ', record binlog coordinates' : ''}`
    case 'record_position':
      return `${step.server}: record binlog coordinates (SHOW MASTER STATUS), a read`
    case 'run_hook':
      return `${step.server}: run ${step.params.hook} hook --command=${step.params.command}${step.params.newMaster !== undefined || step.params.origMaster !== undefined ? ` (new_master ${step.params.newMaster ?? '-'}, orig_master ${step.params.origMaster ?? '-'})` : ''}`
    case 'enable_writes':
      return `${step.server}: SET GLOBAL read_only=0`
    case 'set_read_only':
      return `${step.server}: SET GLOBAL read_only=1`
    case 'flashback_binlog':
      return `${step.server}: rewind ${step.params.transactions} extra transaction(s) (${step.params.gtids ?? `${formatCoordinates(step.params.from)} to ${formatCoordinates(step.params.end)}`}) with mariadb-binlog --flashback${step.params.resetBinlog ? ', then RESET MASTER' : ''}`
    case 'repoint_replica':
      return `${step.server}: ${step.params.preview}; START SLAVE`
    case 'check_switchover':
      return `${step.server}: check replication health, ${step.params.target}'s lag (<= ${step.params.maxLagSeconds} s) long updates (< ${step.params.runningUpdatesLimit} s), filters, a busy target, held table locks and what re-pointing needs`
    case 'block_writes':
      return `${step.server}: ${step.params.stopReplication ? 'STOP SLAVE (its replication from its standby), ' : ''}SET GLOBAL read_only=1, kill client connections, FLUSH TABLES WITH READ LOCK held by mha where super_read_only is missing, record the final position once it settles`
    case 'release_write_block':
      return `${step.server}: check its position is still the final one, kill client connections, UNLOCK TABLES (read_only stays on)`
    case 'unblock_writes':
      return `${step.server}: UNLOCK TABLES (mha's lock, if held), SET GLOBAL read_only=0${step.params.startReplication ? ', START SLAVE (its replication from its standby again)' : ''}`
    case 'copy_backup':
      return `${step.server}: copy ${step.params.source} with mariadb-backup (streamed through mha) into ${step.params.dir}, then prepare it`
    case 'stop_server':
      return `${step.server}: ${step.params.command ? `stop mariadbd (${step.params.command})` : 'check that mariadbd is down'}`
    case 'install_backup':
      return `${step.server}: move the prepared copy into ${step.params.datadir} (old files kept as ${step.params.datadir}.before-rebuild)`
    case 'start_server':
      return `${step.server}: start mariadbd (${step.params.command})`
    case 'replicate_from_copy':
      return `${step.server}: RESET SLAVE ALL; ${step.params.gtid ? 'SET GLOBAL gtid_slave_pos from the copy; CHANGE MASTER ... MASTER_USE_GTID=slave_pos' : "CHANGE MASTER to the copy's master coordinates"} (${step.params.source} at ${step.params.host}:${step.params.port}); START SLAVE`
    case 'mark_out_of_service':
      return `${step.server}: list it out of service (${step.params.reason})`
    case 'route_drain':
      return `proxy ${step.params.proxy}: set server ${step.params.backend}/${step.params.backendServer} state maint; shutdown sessions server ${step.params.backend}/${step.params.backendServer}`
    case 'route_writer':
      return `proxy ${step.params.proxy}: ${step.params.others.map((o) => `set server ${step.params.backend}/${o} state maint`).join('; ')}${step.params.others.length ? '; ' : ''}set server ${step.params.backend}/${step.params.writer} state ready; verify a new connection to ${step.params.frontend} reaches ${step.server}`
    case 'wait_caught_up':
      return `${step.server}: wait until it has executed ${step.params.source}'s final ${step.params.gtid ? 'GTID position' : 'coordinates'}`
    case 'verify_replication':
      return `verify ${step.params.master} is writable and ${step.params.replicas.join(', ') || 'no replica'} replicate from it`
  }
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1)
}
