import {spawn, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {acknowledge, withFenced, type WatchState} from '../../src/store/cluster-state.js'
import {readWatchState, updateWatchState} from '../../src/store/files.js'
import {processStartTime} from '../../src/store/lock.js'

const dir = mkdtempSync(join(tmpdir(), 'mha-state-file-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

/** A real process that records `count` fence entries named `<name>-<i>`, one read-modify-write each. */
function writer(name: string, count: number): Promise<number | null> {
  const body = `import {withFenced} from './src/store/cluster-state.ts'; import {updateWatchState} from './src/store/files.ts'; for (let i = 0; i < ${count}; i++) updateWatchState(${JSON.stringify(dir)}, 'c1', withFenced({server: '${name}-' + i, master: 'db1', at: 'now', reason: 'test'}))`
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', body], {cwd: resolve(import.meta.dirname, '../..'), stdio: 'inherit'})
  return new Promise((done) => child.on('exit', (code) => done(code)))
}

describe('the state file: every update one read-modify-write, none lost', () => {
  it('four processes updating the same state file at once: every update is there', async () => {
    const codes = await Promise.all(['a', 'b', 'c', 'd'].map((name) => writer(name, 60)))
    expect(codes).toEqual([0, 0, 0, 0])
    const names = (readWatchState(dir, 'c1').fenced ?? []).map((f) => f.server)
    expect(names).toHaveLength(240)
    for (const name of ['a', 'b', 'c', 'd']) for (let i = 0; i < 60; i++) expect(names).toContain(`${name}-${i}`)
  }, 60_000)

  it('a change that returns null writes nothing; a lock left by a killed process is taken over, a live holder\'s is waited for', () => {
    const before = readWatchState(dir, 'c1')
    expect(updateWatchState(dir, 'c1', () => null)).toEqual(before)
    // The lock of a process killed inside an update: its pid is gone.
    const lock = join(dir, 'c2', 'watch-state.json.lock')
    mkdirSync(join(dir, 'c2'), {recursive: true})
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {encoding: 'utf8'})
    writeFileSync(lock, JSON.stringify({pid: Number(dead.stdout), started: '1', purpose: 'killed inside an update', since: 'then'}))
    updateWatchState(dir, 'c2', withFenced({server: 'x', master: 'db1', at: 'now', reason: 'test'}))
    expect(existsSync(lock)).toBe(false)
    expect(readWatchState(dir, 'c2').fenced?.map((f) => f.server)).toEqual(['x'])
    // A live holder (this process), however old its lock, is never displaced: another process gives up, naming it.
    writeFileSync(lock, JSON.stringify({pid: process.pid, started: processStartTime(process.pid), purpose: 'a slow update', since: 'long ago'}))
    const past = new Date(Date.now() - 60_000)
    utimesSync(lock, past, past)
    const other = spawnSync(process.execPath, ['--import', 'tsx', '-e', `import {updateWatchState} from './src/store/files.ts'; try { updateWatchState(${JSON.stringify(dir)}, 'c2', (s) => ({...s, acknowledged: true})); console.log('updated') } catch (e) { console.log(e.message) }`], {cwd: join(import.meta.dirname, '../..'), encoding: 'utf8', timeout: 30_000})
    expect(other.stdout.trim()).toBe(`${lock} is held by pid ${process.pid} (a slow update, since long ago) for more than 10 s; wait for it to finish, or remove ${lock} if that process is not an mha process`)
    expect(readWatchState(dir, 'c2').fenced?.map((f) => f.server)).toEqual(['x'])
    rmSync(lock)
  }, 40_000)
})

describe('acknowledge: mha ack acknowledges the failover it showed, never a newer one', () => {
  const failover = (at: string, plan: string): WatchState => ({lastFailover: {at, plan, report: `${plan}.report.json`, status: 'applied', deadMaster: 'db1', newMaster: 'db2'}, acknowledged: false, fenced: [{server: 'db1', master: 'db2', at, reason: 'test'}]})
  const seen = '2026-12-01T10:00:00.000Z'

  it('the failover shown, unacknowledged: acknowledged, the rest of the state kept', () => {
    const state = failover(seen, 'plans/app1/a-failover.json')
    expect(acknowledge(seen)(state)).toEqual({...state, acknowledged: true})
  })

  it('a newer failover recorded since it was shown: no change, it stays unacknowledged', () => {
    expect(acknowledge(seen)(failover('2026-12-01T10:05:00.000Z', 'plans/app1/b-failover.json'))).toBeNull()
    // Through the state file, as mha ack writes it: the newer failover is still there, unacknowledged.
    updateWatchState(dir, 'c3', () => failover('2026-12-01T10:05:00.000Z', 'plans/app1/b-failover.json'))
    const after = updateWatchState(dir, 'c3', acknowledge(seen))
    expect([after.lastFailover?.at, after.acknowledged]).toEqual(['2026-12-01T10:05:00.000Z', false])
    expect(readWatchState(dir, 'c3').acknowledged).toBe(false)
  })

  it('already acknowledged (another mha ack), or no failover at all: no change', () => {
    expect(acknowledge(seen)({...failover(seen, 'plans/app1/a-failover.json'), acknowledged: true})).toBeNull()
    expect(acknowledge(seen)({lastFailover: null, acknowledged: true})).toBeNull()
  })
})
