import {existsSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {acknowledge, type FailoverRecord} from '../../src/store/cluster-state.js'
import {FileStore, readWatchState, stateFile} from '../../src/store/files.js'

const dir = mkdtempSync(join(tmpdir(), 'mha-file-store-'))
const lockDir = process.env.MHA_LOCK_DIR
beforeAll(() => (process.env.MHA_LOCK_DIR = join(dir, 'locks')))
afterAll(() => {
  if (lockDir === undefined) delete process.env.MHA_LOCK_DIR
  else process.env.MHA_LOCK_DIR = lockDir
  rmSync(dir, {recursive: true, force: true})
})

describe('the files store', () => {
  const store = new FileStore(join(dir, 'plans'), 'c1')

  it('refuses its lock while it is held (a rejection, as etcd refuses), and gives it once released', async () => {
    const held = await store.lock('first')
    await expect(store.lock('second')).rejects.toThrow(/cluster c1 is locked by pid \d+ \(first/)
    await held.release()
    const again = await store.lock('third')
    // Nothing to fence: the guard never throws.
    expect(() => again.guard()).not.toThrow()
    await again.release()
  })

  it('writes no state for a change that changes nothing, and keeps the failover record beside the plans', async () => {
    expect(await store.updateState(acknowledge('2026-12-01T10:00:00.000Z'))).toEqual({lastFailover: null, acknowledged: true})
    expect(existsSync(stateFile(join(dir, 'plans'), 'c1'))).toBe(false)
    expect(readWatchState(join(dir, 'plans'), 'c1').lastFailover).toBeNull()
    const record: FailoverRecord = {digest: 'd1', planName: 'p.json', plan: {}, by: 'test', startedAt: '2026-12-01T10:00:00.000Z', finished: false}
    const lock = await store.lock('record')
    await store.writeFailoverRecord(lock, record)
    await lock.release()
    expect(await store.failoverRecord()).toEqual(record)
    expect(store.workFiles()).toBeUndefined()
  })
})
