import {formatCoordinates} from '../binlog/coordinates.js'
import type {ClusterConfig} from '../config/types.js'
import {dialectFor} from '../dialect/index.js'
import type {Dialect} from '../dialect/types.js'
import {parseServerVersion} from '../dialect/version.js'
import type {Plan, Step} from './types.js'
import {hookPath} from './validate.js'
import {describePasswords, stepHookPasswords} from '../hooks/run.js'
import {runtimeApiText} from '../routing/haproxy.js'

/**
 * What a step does when apply runs it, derived the way apply derives it: hosts and ports from the cluster
 * file, hook commands from the cluster file, statements from the server's dialect; values only known at
 * apply time (coordinates a step records) are named by the step that records them. For `mha show`.
 */
export function effectOf(step: Step, plan: Plan, cluster: ClusterConfig): string[] {
  const server = (name: string) => cluster.servers.find((s) => s.name === name)
  const at = (name: string) => {
    const s = server(name)
    return s ? `${name} (${s.hostname}:${s.port})` : `${name} (not in ${cluster.file})`
  }
  const ssh = (name: string) => {
    const s = server(name)
    return s ? `ssh ${s.sshUser}@${s.ip}:${s.sshPort}` : `ssh to ${name} (not in ${cluster.file})`
  }
  const binlogSsh = (name: string) => {
    const b = cluster.binlogServers.find((x) => x.name === name)
    return b ? `ssh ${b.sshUser}@${b.sshHost}:${b.sshPort} (binlog server ${name})` : `ssh to binlog server ${name} (not in ${cluster.file})`
  }
  const dialect = (name: string): Dialect | null => {
    const version = plan.observed.servers.find((s) => s.name === name)?.version
    return version ? dialectFor(parseServerVersion(version)) : null
  }
  const sql = (name: string, statements: string[]) => statements.map((statement) => `${at(name)}: ${statement}`)
  const d = dialect(step.server)
  switch (step.type) {
    case 'stop_replica_io':
      return sql(step.server, [d?.stopReplicaIoThread ?? 'STOP SLAVE IO_THREAD'])
    case 'fence_master': {
      const lines: string[] = []
      const dead = server(step.server)
      if (cluster.hooks.masterIpFailover) lines.push(`run ${cluster.hooks.masterIpFailover} --command=stopssh|stop --ssh_user=${dead?.sshUser} --orig_master_host=${dead?.hostname} --orig_master_ip=${dead?.ip} --orig_master_port=${dead?.port}`)
      if (cluster.hooks.shutdown) lines.push(`run ${cluster.hooks.shutdown} --command=stopssh|stop --ssh_user=${dead?.sshUser} --host=${dead?.hostname} --ip=${dead?.ip} --port=${dead?.port}`)
      else lines.push(...sql(step.server, [...(d?.setReadOnly(true) ?? ['SET GLOBAL read_only = ON']), 'KILL every client connection (only if it answers within the connect timeout)']))
      return lines
    }
    case 'save_master_binlog':
      return [`${step.params.binlogServer !== undefined ? binlogSsh(step.params.binlogServer) : ssh(step.server)}: read ${step.params.dir}/${step.params.from.file} from byte ${step.params.from.pos}${step.params.files.length > 1 ? ` and ${step.params.files.slice(1).join(', ')} whole` : ''}; write the complete transactions to the plan's work folder`]
    case 'save_relay_diff':
      return [`${ssh(step.params.diff.source)}: read ${step.params.diff.files[0]} from byte ${step.params.diff.offset}${step.params.diff.files.length > 1 ? ` and ${step.params.diff.files.slice(1).join(', ')} whole` : ''}; keep the master's events for ${step.params.target}`]
    case 'wait_relay_log_applied':
      return sql(step.server, [`${d?.startReplica ?? 'START SLAVE'} SQL_THREAD if stopped; wait until executed ${formatCoordinates(step.params.until)} or idle with no busy parallel worker; ${d?.stopReplica ?? 'STOP SLAVE'} SQL_THREAD`])
    case 'catch_up_from': {
      const source = server(step.params.source)
      const change = d?.changeSource({host: source?.hostname ?? '?', port: source?.port ?? 0, user: cluster.replUser, ...(cluster.replPassword ? {password: 'x'} : {}), gtid: true}).display
      return sql(step.server, [d?.stopReplica ?? 'STOP SLAVE', change ?? '', d?.startReplica ?? 'START SLAVE', `wait for ${step.params.source}'s executed GTID position`, d?.stopReplica ?? 'STOP SLAVE'])
    }
    case 'apply_logs': {
      const pieces = [step.params.ownRelay ? `its own relay log beyond the position ${step.params.ownRelay.fromStep} records` : '', step.params.relayDiff ? `the file ${step.params.relayDiff.fromStep} saves` : '', step.params.masterTail ? `the file ${step.params.masterTail.fromStep} saves (if it was saved)` : '']
      return [`mariadb-binlog | mariadb --host=${server(step.server)?.hostname} --port=${server(step.server)?.port} --user=${server(step.server)?.user} (login through a descriptor): ${pieces.filter(Boolean).join(', then ')}, skipping the transactions ${step.server} has already`]
    }
    case 'detach_replication':
      return sql(step.server, [d?.stopReplica ?? 'STOP SLAVE', ...(step.params.resetSlaveAll ? [d?.resetReplicaAll ?? 'RESET SLAVE ALL'] : []), ...(step.outputs.includes('binlog') ? [`${d?.showBinaryLogStatus ?? 'SHOW MASTER STATUS'} (recorded)`] : [])])
    case 'record_position':
      return sql(step.server, [`${d?.showBinaryLogStatus ?? 'SHOW MASTER STATUS'} and its GTID position (recorded; refused if it takes writes already)`])
    case 'enable_writes':
    case 'unblock_writes':
      return sql(step.server, [
        ...(step.type === 'unblock_writes' ? ["UNLOCK TABLES (on mha's own connection, if it holds the write block's lock)"] : []),
        ...(d?.setReadOnly(false) ?? ['SET GLOBAL read_only = OFF']),
        ...(step.type === 'unblock_writes' && step.params.startReplication ? [d?.startReplica ?? 'START SLAVE'] : []),
      ])
    case 'block_writes':
      return sql(step.server, [
        ...(step.params.stopReplication ? [d?.stopReplica ?? 'STOP SLAVE'] : []),
        ...(d?.setReadOnly(true) ?? ['SET GLOBAL read_only = ON']),
        ...(d?.version.flavor === 'mariadb'
          ? [
              'FLUSH TABLES WITH READ LOCK on its own connection (held until release_write_block; that connection flushes the tables before read_only), beside it KILL every client connection',
              `${d.showBinaryLogStatus} once under the lock (recorded)`,
            ]
          : ['KILL every client connection', `${d?.showBinaryLogStatus ?? 'SHOW MASTER STATUS'} until two reads 100 ms apart agree (recorded)`]),
      ])
    case 'run_hook': {
      const passwords = stepHookPasswords(step.params.hook)
      // The online change names both masters; a rollback's call names them reversed, so they are shown.
      const orig = server(step.params.origMaster ?? plan.decision.oldMaster ?? '')
      const neu = server(step.params.newMaster ?? plan.decision.newMaster ?? '')
      const masters = step.params.hook === 'master_ip_online_change' ? ` --orig_master_host=${orig?.hostname ?? '?'} --new_master_host=${neu?.hostname ?? '?'}` : ''
      return [`run ${hookPath(cluster.hooks, step.params.hook) ?? `(no ${step.params.hook} hook in ${cluster.file})`} --command=${step.params.command}${masters} with MHA's arguments${passwords.length ? describePasswords(cluster, passwords) : ''}`]
    }
    case 'repoint_replica': {
      const source = server(step.params.source)
      const coordinates = step.params.coordinates ? {file: `<${step.params.coordinates.fromStep}.${step.params.coordinates.output} file>`, pos: 0} : step.params.at
      const change = d?.changeSource({host: source?.hostname ?? '?', port: source?.port ?? 0, user: cluster.replUser, ...(cluster.replPassword ? {password: 'x'} : {}), ...(step.params.gtid || !coordinates ? {gtid: true} : {coordinates})})
      const slavePos = step.params.formerMaster && step.params.gtid && d?.version.flavor === 'mariadb' ? [`SET GLOBAL gtid_slave_pos = ${step.params.gtidSlavePos !== undefined ? `'${step.params.gtidSlavePos}'` : '@@global.gtid_binlog_pos'}`] : []
      return sql(step.server, [d?.stopReplica ?? 'STOP SLAVE', ...slavePos, (change?.display ?? '').replace(/_LOG_POS = 0\b/, `_LOG_POS = <${step.params.coordinates?.fromStep}.${step.params.coordinates?.output} pos>`), d?.startReplica ?? 'START SLAVE'])
    }
    case 'check_switchover':
      return [`check on every server: replication healthy, ${step.params.target} at most ${cluster.switchover.maxLagSeconds} s behind, no update running ${cluster.switchover.runningUpdatesLimit} s or more, no errant transaction; the same replication filters everywhere, no statement running ${cluster.switchover.runningSecondsLimit} s or more on ${step.params.target}, no table-lock wait that long on either side, what re-pointing needs (repl_password, the replication user on ${step.params.target})`]
    case 'wait_caught_up':
      return sql(step.server, [`wait until it has executed ${step.params.source}'s final ${step.params.gtid ? 'GTID position' : 'coordinates'} (recorded by ${step.params.position.fromStep})`])
    case 'release_write_block':
      return sql(step.server, [`check that nothing was written past the final position (${step.params.finalPosition.fromStep}), KILL the clients still waiting on the lock, UNLOCK TABLES (read_only stays on)`])
    case 'set_read_only':
      return sql(step.server, d?.setReadOnly(true) ?? ['SET GLOBAL read_only = ON'])
    case 'flashback_binlog':
      return [
        `mariadb-binlog --flashback <the file ${step.params.saved.fromStep} saves> | mariadb --host=${server(step.server)?.hostname} --port=${server(step.server)?.port} --user=${server(step.server)?.user} --init-command='SET SESSION sql_log_bin=0' (login through a descriptor): rewind ${step.params.transactions} transaction(s), ${step.params.gtids ?? `${formatCoordinates(step.params.from)} to ${formatCoordinates(step.params.end)}`}; refused if the saved range does not end at ${formatCoordinates(step.params.end)}`,
        ...(step.params.resetBinlog ? sql(step.server, ['RESET MASTER']) : []),
      ]
    case 'copy_backup': {
      const source = server(step.params.source)
      return [
        `${ssh(step.params.source)}: mariadb-backup --backup --slave-info --stream=xbstream --host=${source?.ip ?? '?'} --port=${source?.port ?? '?'} (login through a private option file removed when it ends), relayed by mha into`,
        `${ssh(step.server)}: mbstream -x -C ${step.params.dir}; then mariadb-backup --prepare --target-dir=${step.params.dir}`,
      ]
    }
    case 'stop_server':
      return [step.params.command ? `${ssh(step.server)}: ${step.params.command} (rebuild.stop_command); wait until ${at(step.server)} is closed` : `check that ${at(step.server)} is down (no rebuild.stop_command in ${cluster.file})`]
    case 'install_backup':
      return [`${ssh(step.server)}: move ${step.params.datadir} aside to ${step.params.datadir}.before-rebuild if it has files, then mv ${step.params.dir} ${step.params.datadir} (owner kept)`]
    case 'start_server':
      return [`${ssh(step.server)}: ${step.params.command} (rebuild.start_command); wait until ${at(step.server)} answers SQL`]
    case 'replicate_from_copy': {
      const source = server(step.params.source)
      const change = d?.changeSource({host: source?.hostname ?? '?', port: source?.port ?? 0, user: cluster.replUser, ...(cluster.replPassword ? {password: 'x'} : {}), ...(step.params.gtid ? {gtid: true} : {coordinates: {file: `<${step.params.copy.fromStep} master file>`, pos: 0}})})
      return sql(step.server, [
        d?.stopReplica ?? 'STOP SLAVE',
        d?.resetReplicaAll ?? 'RESET SLAVE ALL',
        ...(step.params.gtid ? [`SET GLOBAL gtid_slave_pos = '<the GTID position ${step.params.copy.fromStep} records>'`] : []),
        (change?.display ?? `CHANGE MASTER TO ${source?.hostname ?? '?'}`).replace(/_LOG_POS = 0\b/, `_LOG_POS = <${step.params.copy.fromStep} master pos>`),
        d?.startReplica ?? 'START SLAVE',
      ])
    }
    case 'mark_out_of_service':
      return [`list ${step.server} out of service in the watch state beside the plan (${step.params.reason})`]
    case 'route_drain':
    case 'route_writer': {
      const proxy = cluster.proxies.find((p) => p.name === step.params.proxy)
      if (!proxy) return [`proxy ${step.params.proxy}: not in ${cluster.file}`]
      const api = `haproxy ${proxy.name} runtime API ${runtimeApiText(proxy.runtimeApi)}`
      const b = step.params.backend
      if (step.type === 'route_drain') return [`${api}: set server ${b}/${step.params.backendServer} state maint`, `${api}: shutdown sessions server ${b}/${step.params.backendServer}`]
      return [
        ...step.params.others.map((o) => `${api}: set server ${b}/${o} state maint`),
        `${api}: set server ${b}/${step.params.writer} state ready`,
        `${proxy.frontend.host}:${proxy.frontend.port} as ${proxy.verifyUser}: SELECT @@server_id (must be ${step.server}'s)`,
      ]
    }
    case 'verify_replication':
      return [`check ${at(step.params.master)} is writable and ${step.params.replicas.join(', ') || 'no replica'} replicate from it with both threads running`]
  }
}
