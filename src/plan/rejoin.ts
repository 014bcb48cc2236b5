import {replicatesFrom, sqlFacts, topologyOf} from '../analysis/topology.js'
import {compareCoordinates, formatCoordinates} from '../binlog/coordinates.js'
import type {ClusterConfig} from '../config/types.js'
import type {BinlogCoordinates} from '../dialect/types.js'
import {dialectFor} from '../dialect/index.js'
import {formatMariadbGtidPos, parseMariadbGtidPos, type MariadbGtid} from '../gtid/index.js'
import type {Snapshot} from '../inspect/types.js'
import {UserError} from '../util/errors.js'
import {observe, type PlanHeader} from './planner.js'
import type {Plan, Step} from './types.js'
import {drainSteps} from './routing-params.js'

/** What the failover that took the server out of service recorded (its plan and journal). */
export interface FailoverRecord {
  plan: string
  newMaster: string
  /** The dead master's binlog position the new master holds data up to, and where that figure comes from. */
  held: BinlogCoordinates
  heldFrom: 'saved binlog end' | 'stated loss' | 'latest read position'
  /** The new master's binlog coordinates when it was promoted (detach_replication's output), if journaled. */
  promotion: BinlogCoordinates | null
}

/** The server's own binlog from `from` to its end, read over SSH at plan time. */
export interface BinlogRange {
  from: BinlogCoordinates
  end: BinlogCoordinates
  files: string[]
  dir: string
  /** Whole transactions in the range, in order, with their GTID (MariaDB d-s-n) where they carry one. */
  transactions: {gtid: string | null}[]
  rowEvents: number
}

export interface RejoinInput {
  server: string
  flashback: boolean
  failover: FailoverRecord | null
  /**
   * From failover.held to the server's binlog end, or from the start of the transaction failover.held lies in (the
   * new master received part of it only); null when it could not be read, with why.
   */
  range: BinlogRange | null
  rangeProblem?: string
}

export type RejoinComparison =
  | {kind: 'not_ahead'; why: string}
  | {kind: 'ahead'; transactions: number; rowEvents: number; gtids: string | null; from: BinlogCoordinates; end: BinlogCoordinates; why: string}
  | {kind: 'diverged'; why: string}

/**
 * File/position: the server's binlog beyond what the new master holds of it is its extra transactions, from the
 * start of the transaction that position lies in (a transaction received in part is not held). A binlog that ends
 * before that position lost what the new master has: rejoining it would skip those transactions.
 */
export function compareFilePosition(server: string, ownEnd: BinlogCoordinates, failover: FailoverRecord, range: BinlogRange | null, rangeProblem?: string): RejoinComparison {
  if (compareCoordinates(ownEnd, failover.held) < 0)
    return {kind: 'diverged', why: `${server}'s binlog ends at ${formatCoordinates(ownEnd)}, before ${formatCoordinates(failover.held)} that ${failover.newMaster} holds (${failover.heldFrom}): ${server} lost transactions that ${failover.newMaster} has`}
  if (compareCoordinates(ownEnd, failover.held) === 0) return {kind: 'not_ahead', why: `${server}'s binlog ends at ${formatCoordinates(ownEnd)}, where ${failover.newMaster}'s data ends (${failover.heldFrom})`}
  if (!range) return {kind: 'diverged', why: `${server}'s binlog goes on after ${formatCoordinates(failover.held)} (to ${formatCoordinates(ownEnd)}) and it could not be read to tell what is there: ${rangeProblem ?? 'not read'}`}
  const cut = compareCoordinates(range.from, failover.held)
  if (cut > 0) return {kind: 'diverged', why: `${server}'s binlog was read from ${formatCoordinates(range.from)}, after ${formatCoordinates(failover.held)} where ${failover.newMaster}'s data ends: what lies between is unknown`}
  if (range.transactions.length === 0) return {kind: 'not_ahead', why: `${server}'s binlog after ${formatCoordinates(failover.held)} holds no transaction (to ${formatCoordinates(range.end)})`}
  // The recorded position inside a transaction: the new master received part of it and never applied it.
  const partly = cut < 0 ? `; the first one contains ${formatCoordinates(failover.held)}, where ${failover.newMaster}'s data ends (${failover.heldFrom}): ${failover.newMaster} received only part of it and never committed it` : ''
  return {
    kind: 'ahead',
    transactions: range.transactions.length,
    rowEvents: range.rowEvents,
    gtids: null,
    from: range.from,
    end: range.end,
    why: `${server}'s binlog holds ${range.transactions.length} transaction(s) (${range.rowEvents} row event(s)) after ${formatCoordinates(range.from)} up to ${formatCoordinates(range.end)} that ${failover.newMaster} never received${cut < 0 ? ' whole' : ''}${partly}`,
  }
}

const gtidText = (g: MariadbGtid) => `${g.domain}-${g.serverId}-${g.seq}`

/** A GTID d-s-n the new master lacks: its gtid_binlog_state has no server s in domain d at seq n or more. */
function lacks(newMasterState: MariadbGtid[], gtid: MariadbGtid): boolean {
  return !newMasterState.some((o) => o.domain === gtid.domain && o.serverId === gtid.serverId && o.seq >= gtid.seq)
}

/**
 * MariaDB GTID: the server's transactions the new master lacks, by gtid_binlog_state (per domain and server, so
 * that the new master's own later writes in the same domain hide nothing). They must be exactly the transactions
 * at the end of the server's binlog (the range read over SSH) to be rewound.
 */
export function compareMariadbGtid(server: string, newMaster: string, ownState: string, newMasterState: string, range: BinlogRange | null, rangeProblem?: string): RejoinComparison {
  // Per domain and server, with no excuse for a server that wrote last in the domain elsewhere (mariadbErrant's).
  const errant = parseMariadbGtidPos(ownState).filter((g) => lacks(parseMariadbGtidPos(newMasterState), g))
  if (errant.length === 0) return {kind: 'not_ahead', why: `${newMaster} has every transaction ${server} has (${server}: ${ownState || 'empty'}; ${newMaster}: ${newMasterState || 'empty'})`}
  const summary = formatMariadbGtidPos(errant)
  if (!range) return {kind: 'diverged', why: `${server} has transactions ${newMaster} lacks (up to ${summary}) and its binlog could not be read to list them: ${rangeProblem ?? 'not read'}`}
  const theirs = parseMariadbGtidPos(newMasterState)
  const parsed = range.transactions.map((t) => (t.gtid ? parseMariadbGtidPos(t.gtid)[0]! : null))
  const shared = parsed.filter((g) => g === null || !lacks(theirs, g))
  if (shared.length > 0)
    return {kind: 'diverged', why: `${server}'s binlog after ${formatCoordinates(range.from)} mixes transactions ${newMaster} has (${shared.map((g) => (g ? gtidText(g) : 'no GTID')).join(', ')}) with ones it lacks (up to ${summary}): they cannot be rewound alone`}
  const listed = parsed as MariadbGtid[]
  // Every extra GTID is in the range: its last one per domain and server, and (a master writes its own sequence
  // without gaps) its first one follows the new master's last GTID of that server.
  const missing = errant.filter((e) => {
    const ofServer = listed.filter((g) => g.domain === e.domain && g.serverId === e.serverId)
    const known = theirs.find((t) => t.domain === e.domain && t.serverId === e.serverId)
    return !ofServer.some((g) => g.seq === e.seq) || (known !== undefined && ofServer[0]!.seq !== known.seq + 1n)
  })
  if (missing.length > 0) return {kind: 'diverged', why: `${server} has transactions ${newMaster} lacks (${formatMariadbGtidPos(missing)}) before ${formatCoordinates(range.from)}, where the failover's record says ${newMaster}'s data ends`}
  return {
    kind: 'ahead',
    transactions: listed.length,
    rowEvents: range.rowEvents,
    gtids: gtidRanges(listed),
    from: range.from,
    end: range.end,
    why: `${server} has ${listed.length} transaction(s) (${range.rowEvents} row event(s)) that ${newMaster} lacks: ${gtidRanges(listed)} (${server}'s binlog ${formatCoordinates(range.from)} to ${formatCoordinates(range.end)})`,
  }
}

/** "0-1-5..0-1-9, 1-1-3": consecutive sequence numbers of one domain and server as one range. */
export function gtidRanges(gtids: readonly MariadbGtid[]): string {
  const parts: string[] = []
  let start: MariadbGtid | null = null
  let last: MariadbGtid | null = null
  const flush = () => {
    if (start && last) parts.push(start === last ? gtidText(start) : `${gtidText(start)}..${gtidText(last)}`)
  }
  for (const g of gtids) {
    if (last && g.domain === last.domain && g.serverId === last.serverId && g.seq === last.seq + 1n) last = g
    else {
      flush()
      start = g
      last = g
    }
  }
  flush()
  return parts.join(', ')
}

/**
 * After the extra transactions are rewound, the GTID position the server matches: per domain, its own last GTID
 * where it has no extra one, else the new master's last GTID before the first extra one.
 */
export function positionAfterRewind(ownPos: string, newMasterState: string, extras: readonly MariadbGtid[]): string {
  const theirs = parseMariadbGtidPos(newMasterState)
  const out: MariadbGtid[] = []
  for (const own of parseMariadbGtidPos(ownPos)) {
    const inDomain = extras.filter((e) => e.domain === own.domain)
    if (inDomain.length === 0) {
      out.push(own)
      continue
    }
    const first = inDomain.reduce((a, b) => (b.seq < a.seq ? b : a))
    const before = theirs.filter((t) => t.domain === own.domain && t.seq < first.seq).sort((a, b) => (a.seq < b.seq ? 1 : -1))[0]
    if (before) out.push(before)
  }
  return formatMariadbGtidPos(out)
}

/** Pure: put a former master back as a replica of the current master; its extra transactions are never silently lost. */
export function planRejoin(cluster: ClusterConfig, snapshot: Snapshot, header: PlanHeader, input: RejoinInput): Plan {
  const name = input.server
  const server = cluster.servers.find((s) => s.name === name)
  if (!server) throw new UserError(`--rejoin ${name}: not a server of ${cluster.file}`)
  const byName = new Map(snapshot.servers.map((s) => [s.name, s]))
  const snap = byName.get(name)!
  const facts = sqlFacts(snap)
  if (!facts) throw new UserError(`${name} does not answer SQL (${snap.sql.reachable ? '' : snap.sql.message}); start it, then plan the rejoin again`)
  const others = cluster.servers.filter((s) => s !== server)
  const topology = topologyOf({...cluster, servers: others}, {...snapshot, servers: snapshot.servers.filter((s) => s.name !== name)})
  const master = topology.master
  const masterFacts = master ? sqlFacts(byName.get(master.name)!) : undefined
  if (!master || !masterFacts) throw new UserError(`${cluster.name}: no live master besides ${name} to rejoin it to; run "mha check" for details`)
  if (masterFacts.readOnly) throw new UserError(`${master.name}, the master, is read_only; rejoin ${name} once ${master.name} takes writes`)
  if (facts.replica && replicatesFrom(facts.replica, master) && facts.replica.ioThread === 'running' && facts.replica.sqlThread === 'running')
    throw new UserError(`${name} already replicates from ${master.name} with both threads running: nothing to rejoin`)
  if (!facts.logBin || !facts.binaryLog) throw new UserError(`${name} has log_bin off: its history cannot be compared with ${master.name}'s; rebuild it from ${master.name}`)

  const gtid = cluster.gtid !== 'off' && facts.version.flavor === 'mariadb' && masterFacts.version.flavor === 'mariadb' && (cluster.gtid === 'on' || (masterFacts.gtid.binlogPos !== '' && facts.gtid.binlogPos !== ''))
  const failover = input.failover
  if (failover && failover.newMaster !== master.name && !gtid)
    throw new UserError(`the failover that took ${name} out (${failover.plan}) promoted ${failover.newMaster}, but the master is now ${master.name}: its recorded coordinates do not apply; rebuild ${name} from ${master.name}`)
  if (!gtid && !failover) throw new UserError(`no failover plan with ${name} as dead master (and its journal) was found for ${cluster.name}: without it the position ${name} would start from is unknown; rebuild ${name} from ${master.name}`)
  const ownEnd = {file: facts.binaryLog.file, pos: facts.binaryLog.pos}
  const comparison = gtid
    ? compareMariadbGtid(name, master.name, facts.gtid.binlogState ?? facts.gtid.binlogPos, masterFacts.gtid.binlogState ?? masterFacts.gtid.binlogPos, input.range, input.rangeProblem ?? (failover ? undefined : `no failover plan with ${name} as dead master was found, so where its extra transactions start is unknown`))
    : compareFilePosition(name, ownEnd, failover!, input.range, input.rangeProblem)
  const rebuild = `rebuild ${name} from ${master.name}`
  if (comparison.kind === 'diverged') throw new UserError(`${name} cannot rejoin ${master.name}: ${comparison.why}; ${rebuild}`)
  if (comparison.kind === 'ahead' && !input.flashback)
    throw new UserError(`${name} has ${comparison.transactions} extra transaction(s) ${master.name} lacks (${comparison.gtids ?? `binlog ${formatCoordinates(comparison.from)} to ${formatCoordinates(comparison.end)}`}, ${comparison.rowEvents} row event(s)); re-pointing it would keep them silently: plan again with --flashback to save and rewind them, or ${rebuild}`)
  if (!gtid && !failover!.promotion) throw new UserError(`the journal of ${failover!.plan} records no binlog coordinates of ${failover!.newMaster} at promotion (detach_replication); ${rebuild}`)

  const steps: Step[] = []
  const id = (type: string) => `${type}:${name}`
  steps.push({id: id('set_read_only'), type: 'set_read_only', server: name, params: {}, after: [], outputs: [], reason: `${name} takes no writes from now on: it becomes a replica of ${master.name}`})
  // Behind proxies, a rejoining server is out of every writer backend (someone may have put it back) before it
  // replicates: a replica never takes writes through a proxy.
  const drains = drainSteps(cluster, name, `${name} becomes a replica`)
  steps.push(...drains)
  let ready = id('set_read_only')
  let gtidSlavePos: string | undefined
  if (comparison.kind === 'ahead') {
    const range = input.range!
    const save = id('save_master_binlog')
    steps.push({
      id: save,
      type: 'save_master_binlog',
      server: name,
      params: {dir: range.dir, from: range.from, files: range.files},
      after: [ready],
      outputs: ['file', 'end'],
      reason: `keep ${name}'s ${comparison.transactions} extra transaction(s) for the operator: copy its binlog after ${formatCoordinates(range.from)} over SSH into a file beside the plan`,
    })
    // MariaDB writes a GTID for every transaction, in file/position mode too: the rewound ones stay in its
    // gtid_binlog_state, ahead of the new master's later ones in the same domain (out of order under strict mode).
    const resetBinlog = facts.version.flavor === 'mariadb'
    steps.push({
      id: id('flashback_binlog'),
      type: 'flashback_binlog',
      server: name,
      params: {saved: {fromStep: save, output: 'file'}, from: range.from, end: range.end, transactions: comparison.transactions, gtids: comparison.gtids, resetBinlog},
      after: [save],
      outputs: [],
      reason: `rewind exactly those ${comparison.transactions} transaction(s) on ${name} (mariadb-binlog --flashback of the saved file, sql_log_bin=0)${resetBinlog ? `, then RESET MASTER: ${name}'s binlog would still name the rewound GTIDs` : ''}`,
    })
    ready = id('flashback_binlog')
    if (gtid) gtidSlavePos = positionAfterRewind(facts.gtid.binlogPos, masterFacts.gtid.binlogState ?? masterFacts.gtid.binlogPos, range.transactions.flatMap((t) => parseMariadbGtidPos(t.gtid!)))
  }
  const target = {host: master.hostname, port: master.port, user: cluster.replUser}
  const at = gtid ? undefined : failover!.promotion!
  const preview = dialectFor(facts.version).changeSource({...target, ...(cluster.replPassword ? {password: 'x'} : {}), ...(at ? {coordinates: at} : {gtid: true})}).display
  steps.push({
    id: id('repoint_replica'),
    type: 'repoint_replica',
    server: name,
    params: {source: master.name, ...target, gtid, coordinates: null, preview, formerMaster: true, ...(at ? {at} : {}), ...(gtidSlavePos !== undefined ? {gtidSlavePos} : {})},
    after: [ready, ...drains.map((d) => d.id)],
    outputs: [],
    reason: gtid
      ? `${name} replicates from ${master.name} by GTID from ${gtidSlavePos !== undefined ? `the position it matches after the rewind (${gtidSlavePos || 'empty'})` : `its own binlog position (${facts.gtid.binlogPos})`}`
      : `${name} replicates from ${master.name}'s coordinates at its promotion (${formatCoordinates(at!)}, journal of ${failover!.plan})`,
  })
  steps.push({id: `verify_replication:${name}`, type: 'verify_replication', server: master.name, params: {master: master.name, replicas: [name]}, after: [id('repoint_replica')], outputs: [], reason: `${name} replicates from ${master.name} with both threads running`})

  const notes = [comparison.why]
  if (failover) notes.push(`the failover that took ${name} out: ${failover.plan}; ${failover.newMaster} holds ${name}'s binlog up to ${formatCoordinates(failover.held)} (${failover.heldFrom})`)
  const ahead = comparison.kind === 'ahead' ? comparison : null
  return {
    format: 1,
    header,
    cluster: cluster.name,
    kind: 'rejoin',
    observed: observe(cluster, snapshot, master, false),
    decision: {
      summary: ahead
        ? `${name} rejoins ${master.name} as a replica after its ${ahead.transactions} extra transaction(s) are saved and rewound`
        : `${name} rejoins ${master.name} as a replica (${gtid ? 'GTID' : `from ${formatCoordinates(at!)}`})`,
      replicationMode: gtid ? 'gtid' : 'file',
      deadMaster: null,
      newMaster: master.name,
      latest: [],
      oldest: [],
      candidates: [],
      dataLoss: ahead
        ? {
            none: false,
            statement: `${name}'s ${ahead.transactions} extra transaction(s) (${ahead.rowEvents} row event(s); ${ahead.gtids ?? `binlog ${formatCoordinates(ahead.from)} to ${formatCoordinates(ahead.end)}`}) are rewound on ${name}; they are kept in the saved file beside the plan`,
            lostAfter: ahead.from,
            lostGtids: ahead.gtids,
            abandoned: [],
          }
        : {none: true, statement: 'none', lostAfter: null, lostGtids: null, abandoned: []},
      notes,
    },
    steps: steps.map((s) => ({...s, group: `replica:${name}`})),
  }
}
