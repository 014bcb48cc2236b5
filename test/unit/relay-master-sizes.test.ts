import {describe, expect, it} from 'vitest'
import {masterFileSizesInRelayLogs} from '../../src/binlog/index.js'
import {fixtureBytes, fixtureNames, fixtureSources, recorded} from '../fixtures/binlog/fixtures.js'

// The fixture relay logs hold three master rotations (for size, then for a binlog_checksum change, then for
// size again); the master's own files, next to them, give the true sizes.
const masterSizes = fixtureNames('master').map((file) => ({file, size: fixtureBytes('master', file).length}))
const replicaServerId = recorded.replicaServerId

describe('masterFileSizesInRelayLogs on relay logs made by a MariaDB replica', () => {
  it('gives the size of every master file the replica read to its end, and none of the open last one', async () => {
    const sizes = await masterFileSizesInRelayLogs(fixtureSources('relay'), {replicaServerId})
    // The last master file has no Rotate yet: its size is not known from relay logs.
    expect(sizes).toEqual(masterSizes.slice(0, -1))
    expect(sizes.map((s) => s.file)).toEqual(['mysql-bin.000001', 'mysql-bin.000002', 'mysql-bin.000003'])
  })

  it('reads the writer from each relay file when no replica server_id is given', async () => {
    expect(await masterFileSizesInRelayLogs(fixtureSources('relay'))).toEqual(masterSizes.slice(0, -1))
  })

  it('with `from`, skips relay files that end before that master file and still finds its size', async () => {
    const sizes = await masterFileSizesInRelayLogs(fixtureSources('relay'), {replicaServerId, from: 'mysql-bin.000002'})
    expect(sizes).toEqual(masterSizes.slice(1, -1))
    // A relay file in the middle of a master file, with no fake Rotate naming it, still names the file right.
    const fromMiddle = await masterFileSizesInRelayLogs(fixtureSources('relay').slice(8), {replicaServerId})
    expect(fromMiddle).toEqual([masterSizes[2]])
  })

  it('refuses relay logs written by another server than the replica named', async () => {
    await expect(masterFileSizesInRelayLogs(fixtureSources('relay'), {replicaServerId: 7})).rejects.toThrow(/server_id 2, not by the replica \(server_id 7\)/)
  })
})
