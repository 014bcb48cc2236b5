import type {ClusterConfig, ServerConfig} from '../config/types.js'
import type {BinlogCoordinates} from '../dialect/types.js'
import type {SqlFacts} from '../inspect/types.js'
import {compareCoordinates, formatCoordinates} from '../binlog/coordinates.js'
import type {Candidate, RuleVerdict} from './types.js'
import {filterDifferences, filtersOf} from '../analysis/filters.js'

export interface ReplicaView {
  server: ServerConfig
  facts: SqlFacts
  read: BinlogCoordinates
  executed: BinlogCoordinates
}

/** Master binlog bytes between two coordinates, across files when the file sizes are known. */
export function bytesBetween(from: BinlogCoordinates, to: BinlogCoordinates, fileSizes: ReadonlyMap<string, number>, sequenceOf: (file: string) => number): number | null {
  if (compareCoordinates(from, to) >= 0) return 0
  if (from.file === to.file) return to.pos - from.pos
  let total = 0
  const first = fileSizes.get(from.file)
  if (first === undefined) return null
  total += first - from.pos
  for (let seq = sequenceOf(from.file) + 1; seq < sequenceOf(to.file); seq++) {
    const name = [...fileSizes.keys()].find((f) => sequenceOf(f) === seq)
    if (name === undefined) return null
    total += fileSizes.get(name)!
  }
  return total + to.pos
}

export interface CandidateInputs {
  cluster: ClusterConfig
  replicas: ReplicaView[]
  latest: ReplicaView[]
  /** Servers that cannot be recovered (their missing relay logs are nowhere): never promoted. */
  unrecoverable: ReadonlySet<string>
  /** Servers holding transactions no other server has: never promoted. */
  errant: ReadonlyMap<string, string>
  masterFileSizes: ReadonlyMap<string, number>
  sequenceOf: (file: string) => number
}

/** MHA's "bad candidate" rules and its selection order (candidate_master, latest_priority), each verdict kept. */
export function rankCandidates(inputs: CandidateInputs): {candidates: Candidate[]; chosen: ReplicaView | undefined} {
  const {cluster, replicas, latest} = inputs
  const oldestMinor = Math.min(...replicas.map((r) => r.facts.version.major * 1000 + r.facts.version.minor))
  const latestRead = latest[0]?.read
  const usualFilters = mostCommonFilters(replicas)
  const verdicts = new Map<string, RuleVerdict[]>()
  for (const r of replicas) {
    const rules: RuleVerdict[] = []
    const rule = (name: string, passed: boolean, detail: string) => rules.push({rule: name, passed, detail})
    rule('no_master', !r.server.noMaster, r.server.noMaster ? 'no_master is set in the cluster file' : 'no_master is not set')
    rule('log_bin', r.facts.logBin, r.facts.logBin ? 'log_bin is on' : 'log_bin is off, so replicas could not follow it')
    const versionKey = r.facts.version.major * 1000 + r.facts.version.minor
    rule('oldest_version', versionKey === oldestMinor, versionKey === oldestMinor ? `${r.facts.version.major}.${r.facts.version.minor} is the oldest version among the replicas` : `${r.facts.version.text} is newer than another replica; the older ones could not replicate from it`)
    rule('sql_thread', r.facts.replica?.lastSqlErrno === 0, r.facts.replica?.lastSqlErrno === 0 ? 'no SQL thread error' : `SQL thread error ${r.facts.replica?.lastSqlErrno}: ${r.facts.replica?.lastSqlError}`)
    if (inputs.unrecoverable.has(r.server.name)) rule('recoverable', false, 'the events it lacks are in no relay log that mha can read')
    const errant = inputs.errant.get(r.server.name)
    if (errant !== undefined) rule('no_errant_transactions', false, `it holds transactions no other server has: ${errant}`)
    if (cluster.failover.checkReplDelay && latestRead) {
      const behind = bytesBetween(r.executed, latestRead, inputs.masterFileSizes, inputs.sequenceOf)
      const limit = cluster.failover.maxLagBytes
      if (behind === null) rule('replication_delay', false, `executed ${formatCoordinates(r.executed)} is in an older master file than ${formatCoordinates(latestRead)} and the file sizes in between are unknown`)
      else rule('replication_delay', behind <= limit, `${behind} bytes behind the latest replica (limit max_lag_bytes=${limit})`)
    }
    if (cluster.failover.checkReplFilter) {
      const odd = usualFilters ? filterDifferences([filtersOf(r.server.name, r.facts), usualFilters]) : []
      rule('same_filters', odd.length === 0, odd.length === 0 ? 'its replication and binlog filters are those of the other replicas' : `${odd.join('; ')}: as the master it would log, or skip, other writes than the rest replicate`)
    }
    verdicts.set(r.server.name, rules)
  }
  const good = (r: ReplicaView) => verdicts.get(r.server.name)!.every((v) => v.passed)
  const isLatest = (r: ReplicaView) => latest.includes(r)
  const priority = cluster.failover.latestPriority
  // MHA's order: a latest candidate, then any candidate in config order, then a latest replica, then any.
  const orders: [string, (r: ReplicaView) => boolean][] = [
    ['a candidate_master that has the newest data', (r) => priority && r.server.candidateMaster && isLatest(r)],
    ['the first candidate_master in config order', (r) => r.server.candidateMaster],
    ['a replica that has the newest data (no candidate_master is eligible)', (r) => priority && isLatest(r)],
    ['the first eligible replica in config order', () => true],
  ]
  let chosen: ReplicaView | undefined
  let chosenBy = ''
  for (const [why, test] of orders) {
    chosen = replicas.find((r) => good(r) && test(r))
    if (chosen) {
      chosenBy = why
      break
    }
  }
  const candidates = replicas.map((r): Candidate => {
    const rules = verdicts.get(r.server.name)!
    const failed = rules.find((v) => !v.passed)
    const isChosen = r === chosen
    return {
      server: r.server.name,
      eligible: failed === undefined,
      chosen: isChosen,
      reason: failed ? `rejected (${failed.rule}): ${failed.detail}` : isChosen ? `chosen: ${chosenBy}` : `eligible, not chosen: ${chosen!.server.name} comes first as ${chosenBy}`,
      rules,
    }
  })
  return {candidates, chosen}
}

/**
 * The filters most replicas share (ties go to a replica without any, else to the first in config order): a replica
 * whose own differ is not promoted, since the others would then follow a master that logs other writes than theirs.
 */
function mostCommonFilters(replicas: readonly ReplicaView[]): ReturnType<typeof filtersOf> | undefined {
  const all = replicas.map((r) => filtersOf(r.server.name, r.facts))
  const same = (a: ReturnType<typeof filtersOf>, b: ReturnType<typeof filtersOf>) => filterDifferences([a, b]).length === 0
  const unfiltered = (f: ReturnType<typeof filtersOf>) => filterDifferences([f, {name: '', replicate: noFilters, binlog: {doDb: '', ignoreDb: ''}}]).length === 0
  let best: {filters: ReturnType<typeof filtersOf>; count: number} | undefined
  for (const f of all) {
    const count = all.filter((g) => same(f, g)).length
    if (!best || count > best.count || (count === best.count && unfiltered(f) && !unfiltered(best.filters))) best = {filters: f, count}
  }
  return best?.filters
}

const noFilters = {doDb: '', ignoreDb: '', doTable: '', ignoreTable: '', wildDoTable: '', wildIgnoreTable: ''}
