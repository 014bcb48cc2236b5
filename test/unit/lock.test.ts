import {spawnSync} from 'node:child_process'
import {chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'

// The lock directory is read once at import, so each case runs in a fresh process.
const dir = mkdtempSync(join(tmpdir(), 'mha-lock-'))
const script = (body: string, lockDir = dir) =>
  spawnSync(process.execPath, ['--import', 'tsx', '-e', `import {lockCluster} from './src/apply/lock.ts'; ${body}`], {
    cwd: join(import.meta.dirname, '../..'),
    env: {...process.env, MHA_LOCK_DIR: lockDir},
    encoding: 'utf8',
  })

describe('per-cluster lock', () => {
  it('refuses a second holder while the first lives, and takes over a dead one', () => {
    const held = script(`lockCluster('c1', 'first'); try { lockCluster('c1', 'second'); console.log('taken twice') } catch (e) { console.log(e.message) }`)
    expect(held.stdout).toMatch(/^cluster c1 is locked by pid \d+ \(first, since .*\); wait for it to finish/)
    writeFileSync(join(dir, 'c2.lock'), JSON.stringify({pid: 999999, purpose: 'crashed apply', since: 'then'}))
    const stale = script(`const unlock = lockCluster('c2', 'after a crash'); console.log('locked'); unlock(); lockCluster('c2', 'again'); console.log('relocked')`)
    expect(stale.stdout.trim().split('\n')).toEqual(['locked', 'relocked'])
  })

  it('does not honour a lock whose pid now belongs to another program', () => {
    // Pid 1 lives, but it is not the process that wrote this lock (its start time differs).
    writeFileSync(join(dir, 'c3.lock'), JSON.stringify({pid: 1, started: '1', purpose: 'an apply long gone', since: 'then'}))
    const taken = script(`lockCluster('c3', 'now'); console.log('locked')`)
    expect(taken.stdout.trim()).toBe('locked')
    // The same pid with its real start time does hold it.
    const started = readFileSync('/proc/1/stat', 'utf8').split(') ')[1]!.split(' ')[19]
    writeFileSync(join(dir, 'c4.lock'), JSON.stringify({pid: 1, started, purpose: 'pid one', since: 'then'}))
    expect(script(`try { lockCluster('c4', 'now'); console.log('taken') } catch (e) { console.log(e.message) }`).stdout).toMatch(/^cluster c4 is locked by pid 1 \(pid one/)
  })

  it('refuses a lock folder other users can write', () => {
    const shared = mkdtempSync(join(tmpdir(), 'mha-lock-shared-'))
    chmodSync(shared, 0o777)
    const result = script(`try { lockCluster('c5', 'now'); console.log('locked') } catch (e) { console.log(e.message) }`, shared)
    expect(result.stdout.trim()).toBe(`lock folder ${shared} can be written by other users (mode 777); run chmod 700 ${shared} or set MHA_LOCK_DIR`)
    expect(existsSync(join(shared, 'c5.lock'))).toBe(false)
  })
})
