import {sqlFacts, topologyOf} from '../analysis/topology.js'
import {compareCoordinates, extremeCoordinates, formatCoordinates} from '../binlog/coordinates.js'
import {findRelayDiffStart} from '../binlog/relay-diff.js'
import type {BinlogSource} from '../binlog/source.js'
import type {ClusterConfig} from '../config/types.js'
import {shellQuote, withSsh, type SshSession} from '../remote/ssh.js'
import {oneLine} from '../util/errors.js'
import {sshTargetOf} from './inspect.js'
import type {RelayLookup, Snapshot} from './types.js'

/** A relay log on a remote host, streamed with cat over an open SSH session each time it is read. */
export function remoteSource(session: SshSession, path: string): BinlogSource {
  return {name: path.slice(path.lastIndexOf('/') + 1), open: () => session.readStream(`cat ${shellQuote(path)}`)}
}

/**
 * When the master is down: for every replica that has received less than the latest ones, where its
 * missing events start in a latest replica's relay logs (MHA's apply_diff_relay_logs --command=find).
 * Reads relay logs over SSH; changes nothing.
 */
export async function findRelayLookups(cluster: ClusterConfig, snapshot: Snapshot): Promise<RelayLookup[]> {
  const topology = topologyOf(cluster, snapshot)
  const master = topology.master
  if (!master || snapshot.servers.find((s) => s.name === master.name)!.sql.reachable) return []
  const replicas = topology.replicas.flatMap((server) => {
    const snap = snapshot.servers.find((s) => s.name === server.name)!
    const facts = sqlFacts(snap)
    return facts?.replica ? [{server, snap, facts, read: facts.replica.read}] : []
  })
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
        const start = await withSsh(sshTargetOf(cluster, source.server), (session) =>
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
