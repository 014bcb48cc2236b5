import type {BinlogCoordinates} from '../dialect/types.js'
import {UserError} from '../util/errors.js'

export type {BinlogCoordinates}

const numbered = /^(.*)\.(\d+)$/

function split(name: string): {base: string; digits: string} {
  const m = numbered.exec(name)
  if (!m) throw new UserError(`"${name}" is not a binlog or relay log file name (expected NAME.NNNNNN)`)
  return {base: m[1]!, digits: m[2]!}
}

/** The numeric suffix of "mysql-bin.000123" (123), whatever its digit width. */
export function binlogSequence(name: string): number {
  return Number(split(name).digits)
}

/** "mysql-bin" for "mysql-bin.000123". */
export function binlogBaseName(name: string): string {
  return split(name).base
}

/** The file `delta` places after (or before, if negative) `name`, keeping its zero padding. */
export function siblingBinlogName(name: string, delta: number): string {
  const {base, digits} = split(name)
  const sequence = Number(digits) + delta
  if (sequence < 0) throw new UserError(`no binlog file ${delta} away from ${name}`)
  return `${base}.${String(sequence).padStart(digits.length, '0')}`
}

/** Compares binlog file names by sequence number, never as strings (mysql-bin.999999 < mysql-bin.1000000). */
export function compareBinlogNames(a: string, b: string): number {
  return Math.sign(binlogSequence(a) - binlogSequence(b))
}

/** -1, 0 or 1: file sequence first, then position. */
export function compareCoordinates(a: BinlogCoordinates, b: BinlogCoordinates): number {
  return compareBinlogNames(a.file, b.file) || Math.sign(a.pos - b.pos)
}

export function formatCoordinates(c: BinlogCoordinates): string {
  return `${c.file}:${c.pos}`
}

/** The items whose coordinates are the greatest (direction 1) or the least (-1), and those coordinates. */
export function extremeCoordinates<T>(items: readonly T[], at: (item: T) => BinlogCoordinates, direction: 1 | -1): {coordinates: BinlogCoordinates; items: T[]} {
  const first = items[0]
  if (first === undefined) throw new Error('no coordinates to compare')
  const coordinates = items.reduce((best, item) => (compareCoordinates(at(item), best) * direction > 0 ? at(item) : best), at(first))
  return {coordinates, items: items.filter((item) => compareCoordinates(at(item), coordinates) === 0)}
}
