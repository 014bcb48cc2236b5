import {compareCoordinates, formatCoordinates} from '../binlog/coordinates.js'
import type {BinlogCoordinates} from '../dialect/types.js'
import {formatMariadbGtid, formatMysqlGtidSet, mysqlGtidCount, mysqlGtidSubtract, parseMariadbGtidPos, parseMysqlGtidSet, type MariadbGtid} from '../gtid/index.js'
import {markedExecuted, mariadbExecuted} from './exactly-once.js'

/**
 * The final word of a failover is a comparison of data positions, not of thread states: every survivor must
 * hold what the new master held when it was promoted. Pure: the servers' recorded GTIDs (and the dead master's
 * binlog coordinates the recovery steps reached) in, what a survivor lacks out.
 */

/** What the new master held when it was detached (detach_replication reads it with its coordinates). */
export type HeldAtPromotion =
  | {flavor: 'mariadb'; serverId: number; binlogState: string; slavePos: string}
  | {flavor: 'mysql'; uuid: string; gtidMode: string; executed: string}

/** What a survivor records of the transactions it holds, read from the server itself. */
export type SurvivorRecord =
  | {flavor: 'mariadb'; logBin: boolean; binlogState: string; slavePos: string; marks: string | null}
  | {flavor: 'mysql'; gtidMode: string; executed: string}

export interface Shortfall {
  /** The GTIDs the survivor lacks, as the servers print them; empty when it lacks none. */
  lacking: string
  /** How many transactions that is, where the GTIDs tell (MariaDB: the seq gap per domain and server). */
  transactions: bigint | null
}

/** Whether the two records can be compared by GTID at all (MySQL with gtid_mode OFF records none). */
export function comparableByGtid(held: HeldAtPromotion, survivor: SurvivorRecord): boolean {
  if (held.flavor !== survivor.flavor) return false
  if (held.flavor === 'mysql' && survivor.flavor === 'mysql') return /^ON/i.test(held.gtidMode) && /^ON/i.test(survivor.gtidMode)
  return true
}

/**
 * The new master's transactions the survivor lacks. The new master's own server id (MariaDB) or uuid (MySQL)
 * is left out: before its promotion it wrote nothing a survivor must have (writes there would be errant, which
 * the plan judges), and after it its writes reach the survivors by replication.
 * MariaDB: for each (domain, server) the new master's last GTID; the survivor has it when its binlog state has
 * that server at that seq or later, or its gtid_slave_pos that domain at that seq or later (seq grows within a
 * domain). A survivor without a binlog counts mha's progress marks instead.
 */
export function shortfall(held: HeldAtPromotion, survivor: SurvivorRecord): Shortfall {
  if (held.flavor === 'mysql' && survivor.flavor === 'mysql') {
    const own = held.uuid.toLowerCase()
    const needed = parseMysqlGtidSet(held.executed).filter((s) => s.uuid !== own)
    const lacking = mysqlGtidSubtract(needed, survivor.executed)
    return {lacking: formatMysqlGtidSet(lacking), transactions: mysqlGtidCount(lacking)}
  }
  if (held.flavor !== 'mariadb' || survivor.flavor !== 'mariadb') throw new Error('the new master and the survivor are of different flavors')
  const has =
    survivor.logBin || survivor.marks === null
      ? mariadbExecuted({logBin: true, binlogState: survivor.binlogState, slavePos: survivor.slavePos})!
      : markedExecuted({marks: survivor.marks, slavePos: survivor.slavePos})
  const lastOf = new Map<string, MariadbGtid>()
  for (const g of [...parseMariadbGtidPos(held.binlogState).filter((g) => g.serverId !== held.serverId), ...parseMariadbGtidPos(held.slavePos)]) {
    const key = `${g.domain}-${g.serverId}`
    if ((lastOf.get(key)?.seq ?? -1n) < g.seq) lastOf.set(key, g)
  }
  const lacking = [...lastOf.values()].filter((g) => !has!({flavor: 'mariadb', domain: g.domain, serverId: g.serverId, seq: g.seq}))
  // The survivor's own last seq in the same domain tells how far behind it is; the gap counts the transactions.
  const survivorSeq = (domain: number): bigint => {
    const seqs = [...parseMariadbGtidPos(survivor.binlogState), ...parseMariadbGtidPos(survivor.slavePos), ...parseMariadbGtidPos(survivor.marks ?? '')].filter((g) => g.domain === domain).map((g) => g.seq)
    return seqs.reduce((a, b) => (a > b ? a : b), 0n)
  }
  const transactions = lacking.reduce((sum, g) => sum + (g.seq - survivorSeq(g.domain)), 0n)
  return {lacking: lacking.map(formatMariadbGtid).join(','), transactions: lacking.length ? transactions : 0n}
}

/** One line saying what the survivor lacks, for the step's failure and the loss statement. */
export function describeShortfall(survivor: string, newMaster: string, gap: Shortfall): string {
  const count = gap.transactions !== null && gap.transactions > 0n ? `${gap.transactions} transaction${gap.transactions === 1n ? '' : 's'}, ` : ''
  return `${survivor} lacks ${count}up to ${gap.lacking}, that ${newMaster} held when it was promoted`
}

/**
 * File/position: how far into the dead master's binlog each server's recovery reached (its own executed
 * position, a relay diff's end, the saved tail's end). A survivor that stops short of the new master lacks
 * what lies between; null when it reached as far.
 */
export function coordinatesShortfall(survivor: string, reached: BinlogCoordinates, newMaster: string, newMasterReached: BinlogCoordinates, deadMaster: string): string | null {
  if (compareCoordinates(reached, newMasterReached) >= 0) return null
  return `${survivor} holds ${deadMaster}'s binlog up to ${formatCoordinates(reached)} only, ${newMaster} up to ${formatCoordinates(newMasterReached)}: ${survivor} lacks the events between`
}
