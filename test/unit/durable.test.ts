import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'

// What reaches the disk is seen as the kernel sees it: the fsync calls of a real process, traced by strace.
const strace = spawnSync('strace', ['-V']).status === 0
const dir = mkdtempSync(join(tmpdir(), 'mha-durable-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

/** The paths fsync'ed by a script (in order), as strace -y names their descriptors. */
function fsynced(body: string, env: NodeJS.ProcessEnv = {}): string[] {
  const trace = join(dir, `trace-${Math.random().toString(16).slice(2)}`)
  const run = spawnSync('strace', ['-f', '-y', '-e', 'trace=fsync', '-o', trace, process.execPath, '--import', 'tsx', '-e', body], {
    cwd: join(import.meta.dirname, '../..'),
    env: {...process.env, ...env},
    encoding: 'utf8',
  })
  expect(run.status, run.stderr).toBe(0)
  const calls = [...readFileSync(trace, 'utf8').matchAll(/fsync\(\d+<([^>]+)>\) = 0/g)].map((m) => m[1]!)
  rmSync(trace)
  return calls
}

describe.skipIf(!strace)('synced to disk (strace on this machine)', () => {
  it('each journal line before write() returns, and the journal folder when the first line creates the file', () => {
    const journal = join(dir, 'plan.journal.ndjson')
    const calls = fsynced(`import {Journal} from './src/store/journal.ts'; const j = new Journal(${JSON.stringify(journal)}); await j.write({step: 's1', event: 'begin'}); await j.write({step: 's1', event: 'end'})`)
    expect(calls).toEqual([journal, dir, journal])
    expect(readFileSync(journal, 'utf8').trim().split('\n')).toHaveLength(2)
  })

  it("a deferred line (a step's end or skip) goes to disk with the next durable line, or with sync()", () => {
    const journal = join(dir, 'deferred.journal.ndjson')
    const script = [
      `import {Journal} from './src/store/journal.ts'`,
      `const j = new Journal(${JSON.stringify(journal)})`,
      `await j.write({step: 's1', event: 'begin'})`,
      `await j.write({step: 's1', event: 'end'}, {deferSync: true})`,
      `await j.write({step: 's2', event: 'skip'}, {deferSync: true})`,
      `await j.write({step: 's3', event: 'begin'})`,
      `await j.write({step: 's3', event: 'end'}, {deferSync: true})`,
      `await j.sync()`,
      `await j.sync()`,
    ].join('; ')
    // begin (with the folder: it created the file), the next begin (s1's end and s2's skip with it), sync (s3's end); the second sync has nothing to do.
    expect(fsynced(script)).toEqual([journal, dir, journal, journal])
    expect(readFileSync(journal, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as {event: string}).event)).toEqual(['begin', 'end', 'skip', 'begin', 'end'])
  })

  it('the flashback done-mark (replaced whole): its content, then its folder', () => {
    const mark = join(dir, 'binlog.000001.flashback.json')
    const calls = fsynced(`import {replaceDurably} from './src/util/durable.ts'; replaceDurably(${JSON.stringify(mark)}, '{}\\n')`)
    expect(calls).toEqual([`${mark}.partial`, dir])
    expect(readFileSync(mark, 'utf8')).toBe('{}\n')
  })

  it('the cluster lock: the holder record before it becomes the lock, then the lock folder', () => {
    const locks = join(dir, 'locks')
    const calls = fsynced(`import {lockCluster} from './src/store/lock.ts'; lockCluster('c1', 'traced')`, {MHA_LOCK_DIR: locks})
    expect(calls).toEqual([expect.stringMatching(new RegExp(`^${join(locks, 'c1.lock')}\\.\\d+\\.[0-9a-f]{12}$`)), locks])
  })
})
