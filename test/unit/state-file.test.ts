import {spawn} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {withFenced} from '../../src/store/cluster-state.js'
import {readWatchState, updateWatchState} from '../../src/store/files.js'

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

  it('a change that returns null writes nothing; a lock left by a killed process is taken over once stale', () => {
    const before = readWatchState(dir, 'c1')
    expect(updateWatchState(dir, 'c1', () => null)).toEqual(before)
    // The lock folder of a process killed inside an update, 20 s ago.
    const lock = join(dir, 'c2', 'watch-state.json.lock')
    mkdirSync(lock, {recursive: true})
    const past = new Date(Date.now() - 20_000)
    utimesSync(lock, past, past)
    updateWatchState(dir, 'c2', withFenced({server: 'x', master: 'db1', at: 'now', reason: 'test'}))
    expect(existsSync(lock)).toBe(false)
    expect(readWatchState(dir, 'c2').fenced?.map((f) => f.server)).toEqual(['x'])
  })
})
