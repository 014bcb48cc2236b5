import type {ReplicationFilters} from '../dialect/types.js'
import type {SqlFacts} from '../inspect/types.js'

/** One server's filters as mha compares them: unknown ones are null and compared with nothing. */
export interface ServerFilters {
  name: string
  /** replicate-* (what it would apply as a replica); null where the server does not tell them. */
  replicate: ReplicationFilters | null
  /** binlog-do-db / binlog-ignore-db (what it would log as a master); null with log_bin off. */
  binlog: {doDb: string; ignoreDb: string} | null
}

/**
 * A server's own filters: its global replicate-* settings (a master has them too, though no SHOW SLAVE STATUS
 * shows them), else those of its replication, and its binlog filters when it logs.
 */
export function filtersOf(name: string, facts: SqlFacts): ServerFilters {
  return {
    name,
    replicate: facts.filters ?? facts.replica?.filters ?? null,
    binlog: facts.logBin && facts.binaryLog ? {doDb: facts.binaryLog.doDb, ignoreDb: facts.binaryLog.ignoreDb} : null,
  }
}

const replicateKeys: [keyof ReplicationFilters, string][] = [
  ['doDb', 'replicate_do_db'],
  ['ignoreDb', 'replicate_ignore_db'],
  ['doTable', 'replicate_do_table'],
  ['ignoreTable', 'replicate_ignore_table'],
  ['wildDoTable', 'replicate_wild_do_table'],
  ['wildIgnoreTable', 'replicate_wild_ignore_table'],
]

/** The same list whatever its order, spacing or repeats. */
function normalised(value: string): string {
  return [...new Set(value.split(',').map((v) => v.trim()).filter(Boolean))].sort().join(',')
}

/**
 * Where servers' filters differ (MHA's check_repl and switch refuse it): a server that becomes the master, or a
 * replica of a new one, with other filters silently skips or logs other writes than the rest. One line per differing
 * setting, naming the first server that differs from the first one that tells it, and both values.
 */
export function filterDifferences(servers: readonly ServerFilters[]): string[] {
  const differences: string[] = []
  const compare = (variable: string, values: {name: string; value: string}[]) => {
    const first = values[0]
    const other = values.find((v) => v.value !== first?.value)
    if (first && other) differences.push(`${variable} differs: ${first.name} has "${first.value}", ${other.name} has "${other.value}"`)
  }
  for (const [key, variable] of replicateKeys)
    compare(variable, servers.flatMap((s) => (s.replicate ? [{name: s.name, value: normalised(s.replicate[key])}] : [])))
  compare('binlog_do_db', servers.flatMap((s) => (s.binlog ? [{name: s.name, value: normalised(s.binlog.doDb)}] : [])))
  compare('binlog_ignore_db', servers.flatMap((s) => (s.binlog ? [{name: s.name, value: normalised(s.binlog.ignoreDb)}] : [])))
  return differences
}

/** What to do about differing filters, said once after them. */
export const filtersAdvice = 'give every server the same replication and binlog filters (my.cnf, or SET GLOBAL replicate_... with replication stopped), or set failover.check_repl_filter: false'
