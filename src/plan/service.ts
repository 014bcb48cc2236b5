import {replicatesFrom, sqlFacts, topologyOf} from '../analysis/topology.js'
import type {ClusterConfig, ServerConfig} from '../config/types.js'
import type {Snapshot} from '../inspect/types.js'
import {UserError} from '../util/errors.js'
import {observe, type PlanHeader} from './planner.js'
import {drainSteps} from './routing-params.js'
import type {Plan, Step} from './types.js'

/** Where the copy is unpacked on the target: beside its datadir, so that installing it is a rename on one file system. */
export const rebuildDir = (datadir: string): string => `${datadir.replace(/\/+$/, '')}.mha-rebuild`

const noLoss: Plan['decision']['dataLoss'] = {none: true, statement: 'none', lostAfter: null, lostGtids: null, abandoned: []}

function serviceTopology(cluster: ClusterConfig, snapshot: Snapshot, name: string, what: string) {
  const target = cluster.servers.find((s) => s.name === name)
  if (!target) throw new UserError(`--${what} ${name}: no such server in ${cluster.file}; add its block under servers first (servers are ${cluster.servers.map((s) => s.name).join(', ')})`)
  const topology = topologyOf(cluster, snapshot)
  const master = topology.master
  const byName = new Map(snapshot.servers.map((s) => [s.name, s]))
  const masterFacts = master ? sqlFacts(byName.get(master.name)!) : undefined
  if (!master || !masterFacts) throw new UserError(`${cluster.name}: no live master (${master ? `${master.name} does not answer` : 'none found'}); run "mha check --cluster ${cluster.name}", fail over first, then ${what} ${name}`)
  // Who replicates from the target: a server others depend on is never taken away from them.
  const downstream = cluster.servers.filter((s) => {
    const r = sqlFacts(byName.get(s.name)!)?.replica
    return s !== target && r && replicatesFrom(r, target)
  })
  return {target, master, masterFacts, byName, downstream}
}

/**
 * Rebuild a replica from scratch (empty, new or diverged): a physical copy of a healthy replica (the master
 * only when no replica can give one), streamed through the manager, installed as the target's datadir, and
 * replication from the master started from the position recorded in the copy. Pure, like the other planners.
 */
export function planRebuild(cluster: ClusterConfig, snapshot: Snapshot, header: PlanHeader, name: string): Plan {
  const {target, master, masterFacts, byName, downstream} = serviceTopology(cluster, snapshot, name, 'rebuild')
  if (target === master) throw new UserError(`${name} is the master; a master is not rebuilt: switch over or fail over first, then rebuild it as a replica`)
  if (masterFacts.version.flavor !== 'mariadb') throw new UserError(`${name}: rebuild needs mariadb-backup; for MySQL use xtrabackup or the CLONE plugin: not supported by mha yet`)
  if (downstream.length > 0) throw new UserError(`${name} cannot be rebuilt: ${downstream.map((s) => s.name).join(', ')} replicate${downstream.length === 1 ? 's' : ''} from it; re-point ${downstream.length === 1 ? 'it' : 'them'} first`)
  const targetSnap = byName.get(name)!
  const targetFacts = sqlFacts(targetSnap)
  const r = targetFacts?.replica
  if (r && replicatesFrom(r, master) && r.ioThread === 'running' && r.sqlThread === 'running' && !r.lastIoErrno && !r.lastSqlErrno)
    throw new UserError(`${name} replicates from ${master.name} with both threads running; rebuild is for an empty, new or broken server (stop its replication first if it has diverged)`)
  const where = `${cluster.file} servers[${name}].rebuild`
  const datadir = target.rebuild?.datadir
  if (!datadir) throw new UserError(`${name}: ${where}.datadir is not set; give the datadir of ${name}'s mariadbd there`)
  const startCommand = target.rebuild?.startCommand
  if (!startCommand) throw new UserError(`${name}: ${where}.start_command is not set; mha cannot start a server by itself: give the command that starts ${name}'s mariadbd over SSH (e.g. "systemctl start mariadb")`)
  const stopCommand = target.rebuild?.stopCommand ?? null
  if (targetFacts && !stopCommand) throw new UserError(`${name}'s mariadbd is running and ${where}.stop_command is not set; give the command that stops it over SSH (e.g. "systemctl stop mariadb"), or stop it yourself`)
  if (!targetSnap.ssh.reachable) throw new UserError(`${name}: SSH to ${target.sshHost}:${target.sshPort} fails (${targetSnap.ssh.message}); the copy is written there over SSH`)

  // The source: a healthy replica of the master, least behind, in config order; the master only if there is none.
  const healthy = cluster.servers.flatMap((s): {server: ServerConfig; lag: number}[] => {
    if (s === target || s === master) return []
    const snap = byName.get(s.name)!
    const rep = sqlFacts(snap)?.replica
    if (!rep || !snap.ssh.reachable) return []
    if (!replicatesFrom(rep, master)) return []
    if (rep.ioThread !== 'running' || rep.sqlThread !== 'running' || rep.lastIoErrno || rep.lastSqlErrno) return []
    return [{server: s, lag: rep.secondsBehind ?? Number.MAX_SAFE_INTEGER}]
  })
  const best = [...healthy].sort((a, b) => a.lag - b.lag)[0]
  const notes: string[] = []
  let source: ServerConfig
  let why: string
  if (best) {
    source = best.server
    why = `${source.name} is a healthy replica of ${master.name} (both threads running, ${best.lag} s behind${healthy.length > 1 ? `, the least behind of ${healthy.map((h) => h.server.name).join(', ')}` : ''}): the copy loads it, not the master`
  } else {
    if (!byName.get(master.name)!.ssh.reachable) throw new UserError(`${name}: no healthy replica to copy from and SSH to the master ${master.name} fails; fix a replica or SSH first`)
    source = master
    why = `no healthy replica of ${master.name} can give a copy (none replicates with both threads running and answers SSH): the master itself is copied, which loads it while the copy runs`
    notes.push(why)
  }
  const sourceRep = sqlFacts(byName.get(source.name)!)?.replica
  // Like the source replicates; a copy of the master follows replication.gtid (auto: file/position, as its replicas cannot be asked).
  const gtid = cluster.gtid === 'on' || (cluster.gtid === 'auto' && source !== master && sourceRep !== null && sourceRep !== undefined && sourceRep.gtidMode !== 'no')
  const dir = rebuildDir(datadir)
  notes.push(`the copy is made by mariadb-backup --backup --slave-info --stream=xbstream on ${source.name}, relayed by mha into mbstream -x in ${dir} on ${name}, then prepared there; ${name}'s datadir ${datadir} is kept aside as ${datadir}.before-rebuild if it has files`)
  notes.push(
    gtid
      ? `${name} replicates from ${master.name} by GTID (MASTER_USE_GTID=slave_pos) from the GTID position recorded in the copy`
      : `${name} replicates from ${master.name} by file/position from ${source === master ? `the master binlog coordinates recorded in the copy (xtrabackup_binlog_info)` : `${source.name}'s executed master coordinates recorded in the copy (xtrabackup_slave_info, --slave-info): the copy's own binlog coordinates are ${source.name}'s, not ${master.name}'s`}`,
  )
  if (!stopCommand) notes.push(`${name}'s mariadbd does not answer now and no rebuild.stop_command is set: apply checks that it is down before installing the copy`)

  const base = {outputs: [] as string[]}
  const copyId = `copy_backup:${name}`
  const drains = drainSteps(cluster, name, `${name} is rebuilt as a replica`)
  const steps: Step[] = [
    ...drains,
    {...base, id: copyId, type: 'copy_backup', server: name, params: {source: source.name, dir}, after: [], outputs: ['copy'], reason: `a consistent physical copy of ${source.name} for ${name}: ${why}`},
    {...base, id: `stop_server:${name}`, type: 'stop_server', server: name, params: {command: stopCommand}, after: [copyId, ...drains.map((d) => d.id)], reason: `${name}'s datadir is replaced only while its mariadbd is down`},
    {...base, id: `install_backup:${name}`, type: 'install_backup', server: name, params: {dir, datadir, copy: {fromStep: copyId, output: 'copy'}}, after: [`stop_server:${name}`], reason: `the prepared copy becomes ${name}'s datadir`},
    {...base, id: `start_server:${name}`, type: 'start_server', server: name, params: {command: startCommand}, after: [`install_backup:${name}`], reason: `${name} starts on the copied data`},
    {
      ...base,
      id: `replicate_from_copy:${name}`,
      type: 'replicate_from_copy',
      server: name,
      params: {source: master.name, host: master.hostname, port: master.port, user: cluster.replUser, gtid, copy: {fromStep: copyId, output: 'copy'}},
      after: [`start_server:${name}`],
      reason: `${name} continues from where the copy ends, replicating from the master ${master.name}`,
    },
    {...base, id: `verify_replication:${name}`, type: 'verify_replication', server: name, params: {master: master.name, replicas: [name]}, after: [`replicate_from_copy:${name}`], reason: `${name} replicates from ${master.name} with both threads running`},
  ]
  return {
    format: 1,
    header,
    cluster: cluster.name,
    kind: 'rebuild',
    observed: observe(cluster, snapshot, master, false),
    decision: {
      summary: `rebuild ${name} from a copy of ${source.name}, then replicate from ${master.name} (${gtid ? 'GTID' : 'file/position'})`,
      replicationMode: gtid ? 'gtid' : 'file',
      deadMaster: null,
      newMaster: null,
      latest: [],
      oldest: [],
      candidates: [],
      dataLoss: {...noLoss, statement: `none on the cluster; whatever ${name}'s datadir held is replaced (kept aside as ${datadir}.before-rebuild)`},
      notes,
    },
    steps,
  }
}

/** The block to delete from the cluster file, for the plan and the command's output. */
export function removalNote(cluster: ClusterConfig, name: string): string {
  const s = cluster.servers.find((x) => x.name === name)
  return `then delete ${name}'s block (- name: ${name}, hostname: ${s?.hostname ?? '?'}) from servers in ${cluster.file}; until then mha check lists it as out of service`
}

/** Take a server out of the active topology: its replication stopped and reset, and it is listed out of service. */
export function planRemove(cluster: ClusterConfig, snapshot: Snapshot, header: PlanHeader, name: string): Plan {
  const {target, master, byName, downstream} = serviceTopology(cluster, snapshot, name, 'remove')
  if (target === master) throw new UserError(`${name} is the master and cannot be removed; switch over first (mha plan --switchover --to <replica>), then remove ${name}`)
  if (downstream.length > 0) throw new UserError(`${name} cannot be removed: ${downstream.map((s) => s.name).join(', ')} replicate${downstream.length === 1 ? 's' : ''} from it; re-point ${downstream.length === 1 ? 'it' : 'them'} first`)
  const facts = sqlFacts(byName.get(name)!)
  const steps: Step[] = drainSteps(cluster, name, `${name} leaves the active topology`)
  const notes: string[] = []
  if (facts?.replica)
    steps.push({id: `detach_replication:${name}`, type: 'detach_replication', server: name, params: {resetSlaveAll: true}, after: steps.map((s) => s.id), outputs: ['binlog', 'gtid'], reason: `${name} stops replicating and forgets its source (STOP SLAVE; RESET SLAVE ALL)`})
  else notes.push(facts ? `${name} replicates from nobody already` : `${name} does not answer SQL: its replication is left as it is`)
  const reason = `removed from the active topology (mha plan --remove ${name})`
  steps.push({id: `mark_out_of_service:${name}`, type: 'mark_out_of_service', server: name, params: {reason}, after: steps.map((s) => s.id), outputs: [], reason: `mha check, plan and watch leave ${name} out from now on`})
  notes.push(removalNote(cluster, name))
  return {
    format: 1,
    header,
    cluster: cluster.name,
    kind: 'remove',
    observed: observe(cluster, snapshot, master, false),
    decision: {
      summary: `take ${name} out of the active topology (the master stays ${master.name})`,
      replicationMode: cluster.gtid === 'on' ? 'gtid' : 'file',
      deadMaster: null,
      newMaster: null,
      latest: [],
      oldest: [],
      candidates: [],
      dataLoss: noLoss,
      notes,
    },
    steps,
  }
}
