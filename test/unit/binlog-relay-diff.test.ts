import {Readable} from 'node:stream'
import {beforeAll, describe, expect, it} from 'vitest'
import {
  bufferSource,
  compareCoordinates,
  EventType,
  findRelayDiffStart,
  probeRelayHead,
  readBinlogEvents,
  streamSource,
  type BinlogCoordinates,
  type BinlogEventRecord,
  type BinlogSource,
} from '../../src/binlog/index.js'
import {fixtureBytes, fixtureNames, fixtureSources, recorded} from '../fixtures/binlog/fixtures.js'

const replicaServerId = recorded.replicaServerId
let masterEvents: BinlogEventRecord[]
let relayEvents: BinlogEventRecord[]
const relayBytes = new Map(fixtureNames('relay').map((name) => [name, fixtureBytes('relay', name)]))
const masterBytes = new Map(fixtureNames('master').map((name) => [name, fixtureBytes('master', name)]))

beforeAll(async () => {
  masterEvents = (await readBinlogEvents(fixtureSources('master'))).events
  relayEvents = (await readBinlogEvents(fixtureSources('relay'))).events
})

function bytesOf(e: BinlogEventRecord, files: Map<string, Buffer>): Buffer {
  return files.get(e.file)!.subarray(e.offset, e.offset + e.size)
}

/** The first relayed master event at or after a relay position, ignoring the replica's own events, FDEs and fake Rotates. */
function nextRelayedMasterEvent(relayFile: string, offset: number): BinlogEventRecord | undefined {
  const names = fixtureNames('relay')
  return relayEvents.find(
    (e) =>
      (e.file > relayFile || (e.file === relayFile && e.offset >= offset)) &&
      names.includes(e.file) &&
      e.serverId !== replicaServerId &&
      e.type !== EventType.FORMAT_DESCRIPTION &&
      e.logPos !== 0,
  )
}

/** The master event a replica positioned at `target` reads next (the replica never receives Annotate_rows here). */
function nextMasterEvent(target: BinlogCoordinates): BinlogEventRecord | undefined {
  return masterEvents.find(
    (e) =>
      compareCoordinates({file: e.file, pos: e.offset}, target) >= 0 &&
      e.type !== EventType.FORMAT_DESCRIPTION &&
      e.type !== EventType.MARIADB_ANNOTATE_ROWS,
  )
}

describe('findRelayDiffStart on relay logs made by a MariaDB replica', () => {
  it('finds, for every master event end a replica can report, the relay offset of exactly the next master event', async () => {
    let found = 0
    for (const m of masterEvents) {
      const target = {file: m.file, pos: m.logPos}
      const result = await findRelayDiffStart(fixtureSources('relay'), target, {replicaServerId})
      if (compareCoordinates(target, recorded.replicationStart) < 0) {
        expect(result, `${target.file}:${target.pos}`).toMatchObject({found: false, reason: 'older-than-relay-logs'})
        continue
      }
      if (m.type === EventType.MARIADB_ANNOTATE_ROWS) {
        // The replica did not ask for Annotate_rows, so no relayed event ends where one does.
        expect(result, `${target.file}:${target.pos}`).toMatchObject({found: false, reason: 'not-an-event-end'})
        continue
      }
      expect(result.found, `${target.file}:${target.pos}`).toBe(true)
      if (!result.found) continue
      found++
      const relayed = nextRelayedMasterEvent(result.relayFile, result.offset)
      const expected = nextMasterEvent(target)
      if (expected === undefined) {
        expect(relayed).toBeUndefined()
        expect(result.masterEventsAfter).toBe(0)
        continue
      }
      expect(relayed, `${target.file}:${target.pos}`).toBeDefined()
      expect(bytesOf(relayed!, relayBytes).equals(bytesOf(expected, masterBytes)), `${target.file}:${target.pos}`).toBe(true)
      // Nothing but the replica's own events, FDEs and fake Rotates between the offset and that event.
      const skipped = relayEvents.filter(
        (e) =>
          (e.file > result.relayFile || (e.file === result.relayFile && e.offset >= result.offset)) &&
          (e.file < relayed!.file || (e.file === relayed!.file && e.offset < relayed!.offset)),
      )
      expect(skipped.every((e) => e.serverId === replicaServerId || e.type === EventType.FORMAT_DESCRIPTION || e.logPos === 0)).toBe(true)
      // The offset is an event boundary of that relay file.
      expect(relayEvents.some((e) => e.file === result.relayFile && (e.offset === result.offset || e.offset + e.size === result.offset))).toBe(true)
    }
    expect(found).toBeGreaterThan(150)
  })

  it('finds the position the lagging replica really reported (Read_Master_Log_Pos) where MHA would', async () => {
    const result = await findRelayDiffStart(fixtureSources('relay'), recorded.laggingRead, {replicaServerId})
    // relay-bin.000003 begins at the reconnect: own FDE, the master's fake Rotate to this very position, master FDE.
    expect(result).toMatchObject({found: true, relayFile: 'relay-bin.000003', offset: 303})
    const sizes = fixtureNames('relay').map((name) => relayBytes.get(name)!.length)
    const expectedDiff = sizes.slice(2).reduce((a, b) => a + b, 0) - 303
    expect(result).toMatchObject({diffBytes: expectedDiff, relayEnd: recorded.final, torn: []})
  })

  it('says the lagging replica is up to date when it has read all the relay logs hold', async () => {
    const last = fixtureNames('relay').at(-1)!
    const result = await findRelayDiffStart(fixtureSources('relay'), recorded.final, {replicaServerId})
    expect(result).toEqual({
      found: true,
      relayFile: last,
      offset: relayBytes.get(last)!.length,
      diffBytes: 0,
      masterEventsAfter: 0,
      relayEnd: recorded.final,
      torn: [],
    })
  })

  it('gives the same answers scanning every file forward, from one-shot streams, and without the replica id', async () => {
    const streams = (): BinlogSource[] =>
      fixtureNames('relay').map((name) => {
        const bytes = relayBytes.get(name)!
        const chunks: Buffer[] = []
        for (let i = 0; i < bytes.length; i += 97) chunks.push(bytes.subarray(i, i + 97))
        return streamSource(name, Readable.from(chunks))
      })
    for (const target of [recorded.laggingRead, recorded.crcMid, recorded.crcEnd, recorded.noneMid, recorded.final]) {
      const probed = await findRelayDiffStart(fixtureSources('relay'), target, {replicaServerId})
      expect(probed.found).toBe(true)
      expect(await findRelayDiffStart(fixtureSources('relay'), target)).toEqual(probed)
      const forward = await findRelayDiffStart(streams(), target, {replicaServerId, probeHeads: false})
      if (!forward.found || !probed.found) throw new Error('not found')
      // Scanning from the oldest file may meet the position earlier (before the replica's own Rotate and the next
      // file's head), which is the same diff as far as master events go.
      expect(forward.masterEventsAfter).toBe(probed.masterEventsAfter)
      expect(nextRelayedMasterEvent(forward.relayFile, forward.offset)).toEqual(nextRelayedMasterEvent(probed.relayFile, probed.offset))
    }
  })

  it('starts at the next relay file when the position is the very end of one (as MHA does)', async () => {
    // relay-bin.000002 without its closing Rotate: the master's COMMIT at mysql-bin.000001:3670 is its last event.
    const names = fixtureNames('relay')
    const second = relayBytes.get(names[1]!)!
    const commit = relayEvents.filter((e) => e.file === names[1]).at(-2)!
    expect(commit).toMatchObject({type: EventType.QUERY, logPos: recorded.laggingRead.pos})
    const sources = [bufferSource(names[1]!, second.subarray(0, commit.offset + commit.size)), bufferSource(names[2]!, relayBytes.get(names[2]!)!)]
    const result = await findRelayDiffStart(sources, recorded.laggingRead, {replicaServerId, probeHeads: false})
    expect(result).toMatchObject({found: true, relayFile: names[2], offset: 4, diffBytes: relayBytes.get(names[2]!)!.length - 4})
  })

  it('reports positions it cannot find, and why', async () => {
    const relay = fixtureSources('relay')
    await expect(findRelayDiffStart(relay, {file: 'mysql-bin.000001', pos: 328}, {replicaServerId})).resolves.toMatchObject({
      found: false,
      reason: 'older-than-relay-logs',
      relayStart: recorded.replicationStart,
    })
    const annotate = masterEvents.find((e) => e.type === EventType.MARIADB_ANNOTATE_ROWS && e.file === 'mysql-bin.000003')!
    const miss = await findRelayDiffStart(relay, {file: annotate.file, pos: annotate.logPos}, {replicaServerId})
    expect(miss).toMatchObject({found: false, reason: 'not-an-event-end', relayEnd: recorded.final})
    if (!miss.found) expect(miss.message).toContain(`mysql-bin.000003:${annotate.logPos}`)
    await expect(findRelayDiffStart(relay, {file: 'mysql-bin.000005', pos: 4}, {replicaServerId})).resolves.toMatchObject({
      found: false,
      reason: 'newer-than-relay-logs',
    })
    await expect(findRelayDiffStart(relay, {file: recorded.final.file, pos: recorded.final.pos + 100}, {replicaServerId})).resolves.toMatchObject({
      found: false,
      reason: 'newer-than-relay-logs',
    })
    // The same position in another (shorter) master file is not a match.
    expect(masterBytes.get('mysql-bin.000002')!.length).toBeLessThan(recorded.noneMid.pos)
    const elsewhere = await findRelayDiffStart(relay, {file: 'mysql-bin.000002', pos: recorded.noneMid.pos}, {replicaServerId})
    expect(elsewhere).toMatchObject({found: false, reason: 'not-an-event-end'})
    await expect(findRelayDiffStart(relay.slice(0, 1), recorded.crcMid, {replicaServerId})).resolves.toMatchObject({
      found: false,
      reason: 'no-master-events',
    })
  })

  it('refuses relay logs another server wrote, and master binlogs', async () => {
    await expect(findRelayDiffStart(fixtureSources('relay'), recorded.crcMid, {replicaServerId: 3})).rejects.toThrow(
      /relay-bin\.000011 was written by server_id 2, not by the replica \(server_id 3\)/,
    )
    await expect(findRelayDiffStart(fixtureSources('master'), recorded.crcMid, {replicaServerId})).rejects.toThrow(/written by server_id 1/)
  })

  it('reports a torn last relay event (the replica died mid-write) and still finds the start', async () => {
    const names = fixtureNames('relay')
    const last = names.at(-1)!
    const lastEvent = relayEvents.filter((e) => e.file === last).at(-1)!
    const sources = names.map((name) => {
      const bytes = relayBytes.get(name)!
      return bufferSource(name, name === last ? bytes.subarray(0, lastEvent.offset + 10) : bytes)
    })
    const result = await findRelayDiffStart(sources, recorded.noneMid, {replicaServerId})
    expect(result).toMatchObject({found: true, torn: [{file: last, offset: lastEvent.offset, bytesPresent: 10}]})
  })

  it('reads each relay file head as MHA does to pick where to scan from', async () => {
    const heads = await Promise.all(fixtureSources('relay').map((s) => probeRelayHead(s, {replicaServerId})))
    const byName = new Map(heads.map((h) => [h.relayFile, h]))
    // Only the replica's own FDE and Rotate.
    expect(byName.get('relay-bin.000001')).toMatchObject({masterFile: null, masterPos: null})
    // Replication started with a fake Rotate naming the master file and position.
    expect(byName.get('relay-bin.000002')).toMatchObject({masterFile: 'mysql-bin.000001', masterPos: 653, startsMasterFile: false, upstreamChecksum: true})
    // A master rotation: the master's own Rotate first, then a new relay file starting at position 4.
    const rotated = heads.filter((h) => h.rotatesTo !== null)
    expect(rotated.map((h) => h.rotatesTo)).toEqual(['mysql-bin.000002', 'mysql-bin.000003', 'mysql-bin.000004'])
    expect(heads.filter((h) => h.startsMasterFile).map((h) => h.masterFile)).toEqual(['mysql-bin.000002', 'mysql-bin.000003', 'mysql-bin.000004'])
    // Rotated for size: no Rotate names the master file, the first event starts mid-transaction.
    const sized = heads.filter((h) => h.masterFile === null && h.rotatesTo === null && h.masterPos !== null)
    expect(sized.length).toBeGreaterThan(0)
    for (const head of sized) {
      const first = nextRelayedMasterEvent(head.relayFile, 0)!
      expect(head.masterPos).toBe(first.logPos - first.size)
    }
  })
})
