import {spawnSync} from 'node:child_process'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'

// The lock directory is read once at import, so each case runs in a fresh process.
const dir = mkdtempSync(join(tmpdir(), 'mha-lock-'))
const script = (body: string) =>
  spawnSync(process.execPath, ['--import', 'tsx', '-e', `import {lockCluster} from './src/apply/lock.ts'; ${body}`], {
    cwd: join(import.meta.dirname, '../..'),
    env: {...process.env, MHA_LOCK_DIR: dir},
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
})
