import {describe, expect, it} from 'vitest'
import {bufferSource} from '../../src/binlog/index.js'
import type {RelayDiff} from '../../src/plan/types.js'
import {relayDiffProblem} from '../../src/recovery/index.js'
import {fixtureBytes, fixtureNames, recorded} from '../fixtures/binlog/fixtures.js'

// save_relay_diff derives again, from the source's relay logs as they are at apply, where the events after the
// target's read position start: a plan's offset (data anyone can edit) that disagrees is refused before a byte is
// copied. The relay logs a MariaDB replica wrote (test/fixtures/binlog/relay), as if under /data.

const live = fixtureNames('relay').map((name) => `/data/${name}`)
const open = (path: string) => bufferSource(path.slice('/data/'.length), fixtureBytes('relay', path.slice('/data/'.length)))
const files = (first: number, end = live.length) => live.slice(first, end)
// The lagging replica read up to the end of the transaction that relay-bin.000002 ends with; the replica reconnected
// there, so its missing events start at relay-bin.000003:303, and the relay logs end at recorded.final.
const genuine: RelayDiff = {source: 'db2', files: files(2), offset: 303, after: recorded.laggingRead, until: recorded.final}
const problem = (diff: RelayDiff) => relayDiffProblem({id: 'save_relay_diff:db3', target: 'db3', diff}, live, open, recorded.replicaServerId)
const start = `the events after ${recorded.laggingRead.file}:${recorded.laggingRead.pos} (db3's read position)`

describe('relayDiffProblem: the range a save_relay_diff step copies, derived again at apply', () => {
  it('the planner\'s own range passes', async () => {
    expect(await problem(genuine)).toBeNull()
  })

  it('an offset at an earlier event (the GTID event that starts the last transaction db3 has) is refused, naming both offsets', async () => {
    expect(await problem({...genuine, files: files(1), offset: 2774})).toBe(
      `step save_relay_diff:db3 params.diff.offset: the plan says /data/relay-bin.000002:2774, db2's relay log gives /data/relay-bin.000003:303 for ${start}; nothing was copied`,
    )
  })

  it('an offset inside an event, or at a later event (transactions skipped), is refused', async () => {
    expect(await problem({...genuine, offset: 304})).toMatch(/^step save_relay_diff:db3 params\.diff\.offset: the plan says \/data\/relay-bin\.000003:304, db2's relay log gives \/data\/relay-bin\.000003:303 /)
    expect(await problem({...genuine, offset: 832})).toMatch(/^step save_relay_diff:db3 params\.diff\.offset: the plan says \/data\/relay-bin\.000003:832, db2's relay log gives \/data\/relay-bin\.000003:303 /)
  })

  it('files that are not a run of the relay logs, or that stop before diff.until, are refused', async () => {
    expect(await problem({...genuine, files: [live[2]!, ...live.slice(4)]})).toMatch(/^step save_relay_diff:db3 params\.diff\.files: the plan lists \/data\/relay-bin\.000003, \/data\/relay-bin\.000005, .*which is not a run of db2's relay logs now \(\/data\/relay-bin\.000001, /)
    expect(await problem({...genuine, files: ['/elsewhere/relay-bin.000003', ...live.slice(3)]})).toMatch(/^step save_relay_diff:db3 params\.diff\.files: /)
    expect(await problem({...genuine, files: files(2, live.length - 1)})).toMatch(
      new RegExp(`^step save_relay_diff:db3 params\\.diff\\.until: the plan copies up to ${recorded.final.file}:${recorded.final.pos}, db2's relay logs through /data/relay-bin\\.000010 end at mysql-bin\\.000004:\\d+; nothing was copied$`),
    )
  })

  it('a start the relay logs do not hold is refused with what the lookup says', async () => {
    expect(await problem({...genuine, after: {file: recorded.laggingRead.file, pos: recorded.laggingRead.pos + 1}})).toMatch(/^step save_relay_diff:db3 params\.diff\.offset: the plan says \/data\/relay-bin\.000003:303, but db2's relay logs give no start for the events after mysql-bin\.000001:3671 .*: no master event in the relay logs ends at mysql-bin\.000001:3671/)
  })
})
