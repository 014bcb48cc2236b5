import {UserError} from '../util/errors.js'
import {ChecksumAlg, EventType} from './constants.js'
import {compareBinlogNames, compareCoordinates, formatCoordinates, siblingBinlogName, type BinlogCoordinates} from './coordinates.js'
import {BinlogScanner, type ScannedEvent, type TornEvent} from './scanner.js'
import {feedSource, scanBinlog, type BinlogSource} from './source.js'

export interface RelayDiffOptions {
  /**
   * server_id of the replica that wrote the relay logs; events with it (the replica's own FDE and Rotate
   * events) are skipped. Default: the writer of each relay file, from its first FDE.
   */
  replicaServerId?: number
  /** Default true. */
  verifyChecksums?: boolean
  /**
   * Default true: read the head of each relay file, newest first, to find the one to scan from (as MHA does).
   * False: scan every source from the first, which one-shot streams need.
   */
  probeHeads?: boolean
}

/** What the start of one relay file says about the master binlog events it holds. */
export interface RelayHead {
  relayFile: string
  /** Master binlog of the file's first master event; null when the head does not name it. */
  masterFile: string | null
  /** Master position where the file's master events start; null when it holds none. */
  masterPos: number | null
  /**
   * The lowest Read_Master_Log_Pos this file can answer for: the fake Rotate's position, else where the
   * first master event ends (a position equal to where it starts is answered by the file before, as in MHA).
   */
  firstMatchPos: number | null
  /** A fake Rotate to position 4: the file begins a new master binlog. */
  startsMasterFile: boolean
  /** The first master event is the master's own Rotate to this file (so it lies in the file before). */
  rotatesTo: string | null
  /** The master's FDE in the head: whether master events carry CRC32. */
  upstreamChecksum: boolean | null
}

/** Skips the replica's own events, and refuses a file some other server wrote. */
function isOwn(event: ScannedEvent, replicaServerId: number | undefined): boolean {
  if (replicaServerId === undefined) return !event.upstream
  if (event.offset === 4 && event.format && event.serverId !== replicaServerId) {
    throw new UserError(`${event.file} was written by server_id ${event.serverId}, not by the replica (server_id ${replicaServerId}): not its relay log`)
  }
  return event.serverId === replicaServerId
}

/** Reads a relay file only up to its first master event. */
export async function probeRelayHead(source: BinlogSource, options: RelayDiffOptions = {}): Promise<RelayHead> {
  const head: RelayHead = {
    relayFile: source.name,
    masterFile: null,
    masterPos: null,
    firstMatchPos: null,
    startsMasterFile: false,
    rotatesTo: null,
    upstreamChecksum: null,
  }
  const scanner = new BinlogScanner(
    (e) => {
      if (isOwn(e, options.replicaServerId)) return
      if (e.format) {
        head.upstreamChecksum = e.format.checksumAlg === ChecksumAlg.CRC32
        return
      }
      if (e.rotate && e.logPos === 0) {
        head.masterFile = e.rotate.nextFile
        head.masterPos = e.rotate.position
        head.firstMatchPos = e.rotate.position
        head.startsMasterFile = e.rotate.position <= 4
        return
      }
      if (e.logPos === 0) return
      if (head.masterPos === null) {
        head.masterPos = e.logPos - e.size
        head.firstMatchPos = e.logPos
        if (e.rotate) head.rotatesTo = e.rotate.nextFile
      }
      scanner.stop()
    },
    {verifyChecksums: options.verifyChecksums ?? true},
  )
  if (await feedSource(scanner, source)) scanner.endFile()
  return head
}

export type RelayDiffMiss = 'no-master-events' | 'older-than-relay-logs' | 'newer-than-relay-logs' | 'not-an-event-end'

export type RelayDiffStart =
  | {
      found: true
      /** The diff is this file from `offset` to its end, then every later relay file whole. */
      relayFile: string
      offset: number
      diffBytes: number
      /** Master events in the diff: 0 means the lagging replica already has all the relay logs hold. */
      masterEventsAfter: number
      /** How far the relay logs reach in the master's binlog. */
      relayEnd: BinlogCoordinates | null
      /** Partial events at the end of relay files scanned (a replica that crashed mid-write). */
      torn: Array<TornEvent & {file: string}>
    }
  | {
      found: false
      reason: RelayDiffMiss
      message: string
      /** The oldest master coordinate found in the relay logs examined. */
      relayStart: BinlogCoordinates | null
      relayEnd: BinlogCoordinates | null
    }

interface StartChoice {
  index: number
  masterFile: string | null
  upstreamChecksum: boolean | null
}

/** MHA's find_target_relay_log: the newest relay file whose master events start at or before the target. */
async function chooseStartFile(
  sources: readonly BinlogSource[],
  target: BinlogCoordinates,
  options: RelayDiffOptions,
): Promise<StartChoice | {oldest: BinlogCoordinates | null}> {
  let upper: {masterFile: string | null; startsMasterFile: boolean} | null = null
  let oldest: BinlogCoordinates | null = null
  for (let i = sources.length - 1; i >= 0; i--) {
    const head = await probeRelayHead(sources[i]!, options)
    if (head.masterPos === null || head.firstMatchPos === null) continue
    let masterFile = head.masterFile
    if (masterFile === null) {
      if (head.rotatesTo !== null) masterFile = siblingBinlogName(head.rotatesTo, -1)
      else if (upper?.masterFile) masterFile = upper.startsMasterFile ? siblingBinlogName(upper.masterFile, -1) : upper.masterFile
    }
    upper = {masterFile, startsMasterFile: head.startsMasterFile}
    if (masterFile === null) continue
    oldest = {file: masterFile, pos: head.masterPos}
    if (compareCoordinates({file: masterFile, pos: head.firstMatchPos}, target) <= 0) return {index: i, masterFile, upstreamChecksum: head.upstreamChecksum}
  }
  return {oldest}
}

/**
 * MHA's apply_diff_relay_logs position finder (BinlogPosFinderElp): where, in the latest replica's relay
 * logs, the events a lagging replica has not read begin. `target` is the lagging replica's
 * Master_Log_File/Read_Master_Log_Pos; the answer is the offset just after the master event whose
 * end_log_pos equals it in that master file. Relay files must be given oldest first.
 */
export async function findRelayDiffStart(
  sources: readonly BinlogSource[],
  target: BinlogCoordinates,
  options: RelayDiffOptions = {},
): Promise<RelayDiffStart> {
  let choice: StartChoice = {index: 0, masterFile: null, upstreamChecksum: null}
  if (options.probeHeads ?? true) {
    const chosen = await chooseStartFile(sources, target, options)
    if (!('index' in chosen)) {
      const oldest = chosen.oldest
      return oldest === null
        ? miss('no-master-events', 'the relay logs hold no events from the master', null, null)
        : miss(
            'older-than-relay-logs',
            `${formatCoordinates(target)} is older than the oldest relay log kept (it starts at ${formatCoordinates(oldest)}); ` +
              'the lagging replica cannot be recovered from these relay logs',
            oldest,
            null,
          )
    }
    choice = chosen
  }

  const replicaServerId = options.replicaServerId
  let masterFile = choice.masterFile
  let relayStart: BinlogCoordinates | null = null
  let relayEnd: BinlogCoordinates | null = null
  let found: {relayFile: string; offset: number; index: number} | null = null
  let masterEventsAfter = 0
  let fileIndex = choice.index - 1
  const sameFile = (file: string | null): boolean => file !== null && compareBinlogNames(file, target.file) === 0
  const reached = (file: string | null, pos: number): void => {
    if (file === null) return
    relayStart ??= {file, pos}
    relayEnd = {file, pos}
  }

  const scanned = sources.slice(choice.index)
  const trackedSources = scanned.map((source) => ({
    name: source.name,
    open: () => {
      fileIndex++
      return source.open()
    },
  }))
  const {files} = await scanBinlog(
    trackedSources,
    (e) => {
      if (isOwn(e, replicaServerId)) return
      if (found) {
        if (e.logPos !== 0 && e.type !== EventType.FORMAT_DESCRIPTION) masterEventsAfter++
        if (e.rotate) {
          masterFile = e.rotate.nextFile
          reached(masterFile, e.rotate.position)
        } else if (e.logPos !== 0) {
          reached(masterFile, e.logPos)
        }
        return
      }
      let match = false
      if (e.rotate) {
        // A real Rotate ends at log_pos in the old file; either way, next come events of nextFile from position.
        if (e.logPos !== 0) {
          if (masterFile === null) masterFile = siblingBinlogName(e.rotate.nextFile, -1)
          relayStart ??= {file: masterFile, pos: e.logPos - e.size}
          match = sameFile(masterFile) && e.logPos === target.pos
        }
        masterFile = e.rotate.nextFile
        reached(masterFile, e.rotate.position)
        match ||= sameFile(masterFile) && e.rotate.position === target.pos
      } else if (e.logPos !== 0) {
        if (masterFile !== null) relayStart ??= {file: masterFile, pos: e.logPos - e.size}
        reached(masterFile, e.logPos)
        match = sameFile(masterFile) && e.logPos === target.pos
      }
      if (match) found = {relayFile: e.file, offset: e.offset + e.size, index: fileIndex}
    },
    {verifyChecksums: options.verifyChecksums ?? true, ...(choice.upstreamChecksum === null ? {} : {upstreamChecksum: choice.upstreamChecksum})},
  )

  const torn = files.flatMap((f) => (f.torn ? [{file: f.file, ...f.torn}] : []))
  const result = found as {relayFile: string; offset: number; index: number} | null
  if (result === null) {
    const end = relayEnd as BinlogCoordinates | null
    if (end !== null && compareCoordinates(target, end) > 0) {
      return miss(
        'newer-than-relay-logs',
        `${formatCoordinates(target)} is beyond the relay logs, which end at ${formatCoordinates(end)}`,
        relayStart,
        end,
      )
    }
    if (relayStart !== null && compareCoordinates(target, relayStart) < 0) {
      return miss(
        'older-than-relay-logs',
        `${formatCoordinates(target)} is older than the oldest relay log kept (it starts at ${formatCoordinates(relayStart)})`,
        relayStart,
        end,
      )
    }
    return miss(
      relayStart === null ? 'no-master-events' : 'not-an-event-end',
      relayStart === null
        ? 'the relay logs hold no events from the master'
        : `no master event in the relay logs ends at ${formatCoordinates(target)} (the relay logs hold ${formatCoordinates(relayStart)} to ${end ? formatCoordinates(end) : '?'})`,
      relayStart,
      end,
    )
  }

  const local = result.index - choice.index
  let relayFile = result.relayFile
  let offset = result.offset
  let diffBytes = files[local]!.size - offset
  for (let i = local + 1; i < files.length; i++) diffBytes += files[i]!.size
  // As MHA: a start at the very end of one relay file is the start of the next.
  if (offset === files[local]!.size && local + 1 < files.length) {
    relayFile = files[local + 1]!.file
    offset = 4
    diffBytes -= 4
  }
  return {found: true, relayFile, offset, diffBytes, masterEventsAfter, relayEnd, torn}
}

function miss(reason: RelayDiffMiss, message: string, relayStart: BinlogCoordinates | null, relayEnd: BinlogCoordinates | null): RelayDiffStart {
  return {found: false, reason, message, relayStart, relayEnd}
}

/** The size of one master binlog file, as its final Rotate event states it. */
export interface MasterFileSize {
  file: string
  size: number
}

/**
 * Sizes of the master's binlog files, read from its Rotate events as copied into relay logs: the Rotate
 * that ends master file N is its last event, so its end_log_pos is the size of file N, and it names file
 * N+1. The replica's own events and the artificial Rotates (log_pos 0) that name where the IO thread
 * (re)started say nothing about a size and are skipped. `from`: the oldest master file whose size is
 * wanted; the relay files before the newest one that starts at or before it are not read.
 * Relay files must be given oldest first. Sizes in master file order.
 */
export async function masterFileSizesInRelayLogs(sources: readonly BinlogSource[], options: RelayDiffOptions & {from?: string} = {}): Promise<MasterFileSize[]> {
  let choice: StartChoice = {index: 0, masterFile: null, upstreamChecksum: null}
  if (options.from !== undefined && (options.probeHeads ?? true)) {
    const chosen = await chooseStartFile(sources, {file: options.from, pos: Number.MAX_SAFE_INTEGER}, options)
    if ('index' in chosen) choice = chosen
  }
  let masterFile = choice.masterFile
  const sizes = new Map<string, number>()
  await scanBinlog(
    sources.slice(choice.index),
    (e) => {
      if (isOwn(e, options.replicaServerId) || !e.rotate) return
      if (e.logPos !== 0) sizes.set(masterFile ?? siblingBinlogName(e.rotate.nextFile, -1), e.logPos)
      masterFile = e.rotate.nextFile
    },
    {verifyChecksums: options.verifyChecksums ?? true, ...(choice.upstreamChecksum === null ? {} : {upstreamChecksum: choice.upstreamChecksum})},
  )
  return [...sizes].map(([file, size]) => ({file, size})).sort((a, b) => compareBinlogNames(a.file, b.file))
}
