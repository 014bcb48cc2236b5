import {posix} from 'node:path'
import {EventType} from '../binlog/constants.js'
import {compareCoordinates, formatCoordinates} from '../binlog/coordinates.js'
import {findRelayDiffStart} from '../binlog/relay-diff.js'
import type {BinlogSource} from '../binlog/source.js'
import type {RelayDiff} from '../plan/types.js'
import {BinlogError} from '../binlog/scanner.js'
import {shellQuote, type SshSession} from '../remote/ssh.js'
import {UserError} from '../util/errors.js'
import {FILE_BOOKKEEPING_TYPES} from './binlog-tail.js'
import {readAgainOnBadCopy, remoteRangeSource, scanRange, type RangeSource} from './range-source.js'
import {writeSynthetic} from './synthetic-writer.js'

export interface CopiedRelayDiff {
  bytes: number
  /** Master events copied (FORMAT_DESCRIPTION events not counted). */
  events: number
  /** Partial events at relay file ends (the replica crashed mid-write); they are not copied. */
  torn: Array<{file: string; offset: number; bytesPresent: number}>
}

export interface RelayDiffCopyOptions {
  /** The replica that wrote the relay logs; default: each file's writer, from its first FDE. */
  replicaServerId?: number
  verifyChecksums?: boolean
}

/**
 * The events a lagging replica misses, from a latest replica's relay logs, as one synthetic binlog: magic,
 * the master's FORMAT_DESCRIPTION_EVENT in force at `offset` (so mysqlbinlog knows the master's checksum
 * setting), then every master event from `offset` in the first file and from the top of later files. Left
 * out: the replica's own events (its FDE, its Rotate to the next relay file), artificial events (log_pos 0:
 * the fake Rotate, MariaDB's fake GTID list) and per-file bookkeeping. The master's FDE copies at the head of
 * each relay file are kept: they are artificial (no ROLLBACK in mysqlbinlog's output) and follow checksum
 * changes. The diff may end inside a transaction; its rest is in the dead master's saved tail, which is why
 * both are applied as one stream.
 */
export async function assembleRelayDiff(
  files: readonly RangeSource[],
  offset: number,
  localFile: string,
  options: RelayDiffCopyOptions = {},
): Promise<CopiedRelayDiff> {
  if (files.length === 0) throw new UserError('no relay log files to copy a diff from')
  return await writeSynthetic(localFile, async (writer) => {
    let formatWritten = false
    let formatInForce: Buffer | null = null
    let events = 0
    const torn: CopiedRelayDiff['torn'] = []
    for (const [index, source] of files.entries()) {
      const start = index === 0 ? offset : 0
      const summary = await scanRange(
        source,
        start,
        (event, at) => {
          const fromMaster = options.replicaServerId === undefined ? event.upstream : event.serverId !== options.replicaServerId
          if (!fromMaster) return
          if (at < start) {
            if (event.format) formatInForce = Buffer.from(event.data!)
            return
          }
          if (event.format) {
            writer.append(event.data!)
            formatWritten = true
            return
          }
          if (event.logPos === 0 || FILE_BOOKKEEPING_TYPES.has(event.type)) return
          if (!formatWritten) {
            const format = formatInForce
            if (format) {
              writer.append(format)
              formatWritten = true
            } else if (event.type === EventType.ROTATE) {
              // The master's Rotate alone in a relay file opened without the master's FDE: nothing to apply.
              return
            } else {
              throw new BinlogError(source.name, at, "a master event comes before any master FORMAT_DESCRIPTION_EVENT; start the diff at an earlier relay file")
            }
          }
          writer.append(event.data!)
          events++
        },
        {...(options.verifyChecksums === undefined ? {} : {verifyChecksums: options.verifyChecksums}), afterChunk: () => writer.flush()},
      )
      if (summary.torn) torn.push({file: source.name, ...summary.torn})
    }
    if (!formatWritten) {
      const format = formatInForce as Buffer | null
      if (!format) throw new BinlogError(files[0]!.name, offset, "no master FORMAT_DESCRIPTION_EVENT in the relay logs' heads: cannot write a diff mysqlbinlog can read")
      writer.append(format)
    }
    return {events, torn}
  })
}

/**
 * Copies a latest replica's relay logs, over SSH, from `offset` in `files[0]` (as found by findRelayDiffStart)
 * through the last of `files`, into `localFile`. `files` are full paths, oldest first.
 */
export async function copyRelayDiff(
  session: SshSession,
  files: readonly string[],
  offset: number,
  localFile: string,
  options: RelayDiffCopyOptions = {},
): Promise<CopiedRelayDiff> {
  return await readAgainOnBadCopy(() =>
    assembleRelayDiff(
      files.map((path) => remoteRangeSource(session, path)),
      offset,
      localFile,
      options,
    ),
  )
}

/**
 * The relay-log range a plan copies, derived again from the source's relay logs as they are now, with the planner's
 * own lookup (findRelayDiffStart): the offset is plan data anyone can edit, and one at an earlier event would apply
 * transactions twice on the lagging replica, one inside an event garbage. `live`: the source's relay log files now
 * (full paths, oldest first, from its relay log index); `open` reads one. The plan's files must be a run of them; the
 * lookup reads from the newest file that starts at or before `diff.after` through the plan's last file (a file
 * the source began after the plan was made is not copied, so it is not read), the range must start at the plan's
 * offset and reach `diff.until`. Returns the disagreement in one line naming the step and field, or null.
 */
export async function relayDiffProblem(step: {id: string; target: string; diff: RelayDiff}, live: readonly string[], open: (path: string) => BinlogSource, replicaServerId: number): Promise<string | null> {
  const {diff} = step
  const field = (name: string) => `step ${step.id} params.diff.${name}`
  const at = live.indexOf(diff.files[0] ?? '')
  const run = at < 0 ? [] : live.slice(at, at + diff.files.length)
  if (diff.files.length === 0 || run.length !== diff.files.length || run.some((file, i) => file !== diff.files[i]))
    return `${field('files')}: the plan lists ${diff.files.join(', ') || 'none'}, which is not a run of ${diff.source}'s relay logs now (${live.join(', ') || 'none'}); nothing was copied`
  const paths = live.slice(0, at + diff.files.length)
  const sources = paths.map(open)
  const start = await findRelayDiffStart(sources, diff.after, {replicaServerId})
  const planned = `the plan says ${diff.files[0]}:${diff.offset}`
  const after = `the events after ${formatCoordinates(diff.after)} (${step.target}'s read position)`
  if (!start.found) return `${field('offset')}: ${planned}, but ${diff.source}'s relay logs give no start for ${after}: ${start.message}; nothing was copied`
  const derived = `${paths[sources.findIndex((s) => s.name === start.relayFile)] ?? start.relayFile}:${start.offset}`
  if (derived !== `${diff.files[0]}:${diff.offset}`) return `${field('offset')}: ${planned}, ${diff.source}'s relay log gives ${derived} for ${after}; nothing was copied`
  if (start.relayEnd === null || compareCoordinates(start.relayEnd, diff.until) < 0)
    return `${field('until')}: the plan copies up to ${formatCoordinates(diff.until)}, ${diff.source}'s relay logs through ${diff.files.at(-1)!} end at ${start.relayEnd ? formatCoordinates(start.relayEnd) : 'no master event'}; nothing was copied`
  return null
}

/** The relay log files listed in a replica's relay log index (@@relay_log_index), as full paths, oldest first. */
export async function listRemoteRelayLogs(session: SshSession, relayLogIndex: string, timeoutMs = 30_000): Promise<string[]> {
  const result = await session.exec(`cat -- ${shellQuote(relayLogIndex)}`, timeoutMs)
  if (result.code !== 0) throw new UserError(`${session.target.name}: cannot read ${relayLogIndex}: ${result.stderr.trim() || `exit ${result.code}`}`)
  const dir = posix.dirname(relayLogIndex)
  return result.stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => posix.normalize(line.startsWith('/') ? line : posix.join(dir, line)))
}
