import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import {failoverRecordFile} from '../../src/store/files.js'
import type {ClusterContext} from '../../src/watch/context.js'
import {Follow} from '../../src/watch/follow.js'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, {recursive: true, force: true})
})

/** A Follow phase over a real plans folder; the store reads the record file as it is on disk. */
function followOf(): {follow: Follow; write: (finished: boolean, note: string) => void; reads: () => number} {
  const plansDir = mkdtempSync(join(tmpdir(), 'mha-unit-follow-'))
  dirs.push(plansDir)
  const file = failoverRecordFile(plansDir, 'app1')
  let reads = 0
  const ctx = {
    options: {plansDir},
    cluster: {name: 'app1'},
    store: {
      failoverRecord: async () => {
        reads++
        const {readFileSync} = await import('node:fs')
        return JSON.parse(readFileSync(file, 'utf8')) as {finished: boolean}
      },
    },
  } as unknown as ClusterContext
  const follow = new Follow(ctx, {} as ConstructorParameters<typeof Follow>[1])
  return {
    follow,
    write: (finished, note) => {
      mkdirSync(dirname(file), {recursive: true})
      writeFileSync(file, JSON.stringify({finished, note}))
    },
    reads: () => reads,
  }
}

describe('follow: the failover record of a cluster watched alone', () => {
  it('while the master answers as writable: looked at on the first tick, then every 5 s, and at every tick once unfinished', async () => {
    const {follow, write, reads} = followOf()
    expect(await follow.unfinishedPending(false, 0)).toBe(false)
    // An apply started (and killed) meanwhile: seen at the next look, 5 s after the last, not at each ping.
    write(false, 'under way')
    expect(await follow.unfinishedPending(false, 1000)).toBe(false)
    expect(await follow.unfinishedPending(false, 4999)).toBe(false)
    expect(await follow.unfinishedPending(false, 5000)).toBe(true)
    expect(reads()).toBe(1)
    // Unfinished: looked at each tick (read again only when the file changed) until it is finished.
    expect(await follow.unfinishedPending(false, 5001)).toBe(true)
    expect(reads()).toBe(1)
    write(true, 'finished by its apply run again')
    expect(await follow.unfinishedPending(false, 5002)).toBe(false)
    expect(reads()).toBe(2)
    expect(await follow.unfinishedPending(false, 6000)).toBe(false)
  })

  it('at every tick while the master is read_only or failing: a killed switchover is finished at once', async () => {
    const {follow, write} = followOf()
    expect(await follow.unfinishedPending(false, 0)).toBe(false)
    write(false, 'a switchover killed after its write block')
    expect(await follow.unfinishedPending(true, 1000)).toBe(true)
  })
})
