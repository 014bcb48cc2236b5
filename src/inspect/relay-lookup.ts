import {sqlFacts, topologyOf} from '../analysis/topology.js'
import {binlogSequence, compareBinlogNames, compareCoordinates, extremeCoordinates, formatCoordinates} from '../binlog/coordinates.js'
import {findRelayDiffStart, masterFileSizesInRelayLogs} from '../binlog/relay-diff.js'
import type {BinlogSource} from '../binlog/source.js'
import type {ClusterConfig} from '../config/types.js'
import {freshSsh, type SshRunner} from '../remote/session-pool.js'
import {shellQuote, type SshSession} from '../remote/ssh.js'
import {oneLine} from '../util/errors.js'
import {sshTargetOf} from './targets.js'
import type {RelayLookup, RelayMasterFileSizes, Snapshot} from './types.js'

/** A relay log on a remote host, streamed with cat over an open SSH session each time it is read. */
export function remoteSource(session: SshSession, path: string): BinlogSource {
  return {name: path.slice(path.lastIndexOf('/') + 1), open: () => session.readStream(`cat ${shellQuote(path)}`, undefined, undefined, {counted: true})}
}

/**
 * When the master is down: for every replica that has received less than the latest ones, where its
 * missing events start in a latest replica's relay logs (MHA's apply_diff_relay_logs --command=find).
 * Reads relay logs over SSH; changes nothing.
 */
export async function findRelayLookups(cluster: ClusterConfig, snapshot: Snapshot, ssh: SshRunner = freshSsh): Promise<RelayLookup[]> {
  const replicas = replicasOfDeadMaster(cluster, snapshot)
  if (replicas.length < 2) return []
  const {coordinates: maxRead, items: latest} = extremeCoordinates(replicas, (r) => r.read, 1)
  const lagging = replicas.filter((r) => compareCoordinates(r.read, maxRead) < 0)
  const lookups: RelayLookup[] = []
  for (const target of lagging) {
    let problem = 'no latest replica can be read over SSH'
    let found: RelayLookup | undefined
    for (const source of latest) {
      if (!source.snap.ssh.reachable || source.snap.ssh.relayLogs.length === 0) {
        problem = `${source.server.name}'s relay logs cannot be listed over SSH`
        continue
      }
      const files = source.snap.ssh.relayLogs.map((r) => r.file)
      try {
        const start = await ssh(sshTargetOf(cluster, source.server), (session) =>
          findRelayDiffStart(
            files.map((f) => remoteSource(session, f)),
            target.read,
            {replicaServerId: source.facts.serverId},
          ),
        )
        if (start.found) {
          const first = files.findIndex((f) => f.endsWith(`/${start.relayFile}`) || f === start.relayFile)
          found = {target: target.server.name, source: source.server.name, after: target.read, found: {files: files.slice(first), offset: start.offset}, problem: null}
          break
        }
        problem = `${source.server.name}: ${start.message}`
      } catch (error) {
        problem = `${source.server.name}: reading relay logs for ${formatCoordinates(target.read)} failed: ${oneLine(error)}`
      }
    }
    lookups.push(found ?? {target: target.server.name, source: latest[0]!.server.name, after: target.read, found: null, problem})
  }
  return lookups
}

/** The replicas of the master with what they said over SQL, when the master does not answer SQL; else none. */
function replicasOfDeadMaster(cluster: ClusterConfig, snapshot: Snapshot) {
  const topology = topologyOf(cluster, snapshot)
  const master = topology.master
  if (!master || snapshot.servers.find((s) => s.name === master.name)!.sql.reachable) return []
  return topology.replicas.flatMap((server) => {
    const snap = snapshot.servers.find((s) => s.name === server.name)!
    const facts = sqlFacts(snap)
    return facts?.replica ? [{server, snap, facts, read: facts.replica.read, executed: facts.replica.executed}] : []
  })
}

/**
 * When the master is down and a replica has executed less than a whole master file behind the newest read
 * position: the sizes of the master files in between, from the master's Rotate events in the latest replicas'
 * relay logs (the lag rule counts bytes across files; the master's own host may not answer SSH). Not read when
 * the master's host listed them all over SSH. Reads relay logs over SSH; changes nothing.
 */
export async function findMasterFileSizes(cluster: ClusterConfig, snapshot: Snapshot, ssh: SshRunner = freshSsh): Promise<RelayMasterFileSizes[]> {
  const replicas = replicasOfDeadMaster(cluster, snapshot)
  if (replicas.length === 0) return []
  const {coordinates: maxRead, items: latest} = extremeCoordinates(replicas, (r) => r.read, 1)
  const oldest = replicas.map((r) => r.executed.file).filter((f) => f !== '' && compareBinlogNames(f, maxRead.file) < 0)
  if (oldest.length === 0) return []
  const from = oldest.sort(compareBinlogNames)[0]!
  const needed = (sizes: {file: string}[]) => {
    const have = new Set(sizes.map((s) => binlogSequence(s.file)))
    for (let seq = binlogSequence(from); seq < binlogSequence(maxRead.file); seq++) if (!have.has(seq)) return true
    return false
  }
  const master = snapshot.servers.find((s) => s.name === topologyOf(cluster, snapshot).master!.name)!
  if (master.ssh.reachable && !needed(master.ssh.binlogs)) return []
  const found: RelayMasterFileSizes[] = []
  for (const source of latest) {
    if (!source.snap.ssh.reachable || source.snap.ssh.relayLogs.length === 0) {
      found.push({source: source.server.name, files: [], problem: `${source.server.name}'s relay logs cannot be listed over SSH`})
      continue
    }
    const files = source.snap.ssh.relayLogs.map((r) => r.file)
    try {
      const sizes = await ssh(sshTargetOf(cluster, source.server), (session) =>
        masterFileSizesInRelayLogs(
          files.map((f) => remoteSource(session, f)),
          {replicaServerId: source.facts.serverId, from},
        ),
      )
      found.push({source: source.server.name, files: sizes, problem: null})
      if (!needed(found.flatMap((f) => f.files))) break
    } catch (error) {
      found.push({source: source.server.name, files: [], problem: `${source.server.name}: reading the master's file sizes from its relay logs failed: ${oneLine(error)}`})
    }
  }
  return found
}
