import {describe, expect, it} from 'vitest'
import {writeProblems} from '../../bench/common.js'

// bench:failover prints its lost and duplicated counts and must fail (exit non-zero) when any is not 0.
describe('writeProblems (the verdict of a failover bench)', () => {
  it('is empty when every run kept every acknowledged write once', () => {
    expect(writeProblems([{label: 'plain crash, run 1', lost: 0, duplicated: 0, acked: 120}])).toEqual([])
  })

  it('names each run that lost a write or applied one twice', () => {
    expect(
      writeProblems([
        {label: 'plain crash, run 1', lost: 0, duplicated: 0, acked: 120},
        {label: 'relay-log diff, run 2', lost: 3, duplicated: 0, acked: 118},
        {label: 'parallel replication, run 1', lost: 0, duplicated: 2, acked: 121},
      ]),
    ).toEqual(['relay-log diff, run 2: 3 of 118 acknowledged writes lost, 0 applied twice', 'parallel replication, run 1: 0 of 121 acknowledged writes lost, 2 applied twice'])
  })
})
