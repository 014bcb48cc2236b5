import type {ChildProcess} from 'node:child_process'
import {existsSync, mkdtempSync, readdirSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import type {ApplyReport} from '../../src/apply/events.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {killMasterAndWait, leaveNothing, restartAndTimeFence, root, spawnWatch, startSandbox, type TestSandbox, type WatchLogLine} from './harness.js'

const cluster = 'itfence2'
let sandbox: TestSandbox | undefined
let watch: ChildProcess | undefined
let lines: WatchLogLine[] = []
const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-fence2-plans-'))
// The watch's cluster lock lives here, not in this user's lock folder: nothing is left behind.
const lockDir = mkdtempSync(join(tmpdir(), 'mha-it-fence2-locks-'))

afterAll(() => leaveNothing(watch, sandbox, [plansDir, lockDir, join(root, 'plans', cluster)]))

const waitForEvent = (event: string, timeoutMs = 30_000) =>
  waitFor(`watch to log "${event}" (got: ${lines.map((l) => `${l.event}: ${l.message}`).join(' | ')})`, timeoutMs, () => lines.some((l) => l.event === event)).then(
    () => lines.find((l) => l.event === event)!,
  )

const readOnlyOf = async (s: TestSandbox, host: string) => Number((await s.sql(host, (c) => c.queryOne('SELECT @@global.read_only+0 AS ro')))!.ro)

describe('a two-server cluster (one master, one replica)', () => {
  it('fences the old master when it comes back writable after a failover: no replica is left to tell, the state says who replaced it', async () => {
    sandbox = await startSandbox(cluster, 155, {replicas: 1})
    const s = sandbox
    process.env.MHA_LOCK_DIR = lockDir
    const running = spawnWatch(['--config-dir', dirname(s.configFile), '--plans-dir', plansDir])
    watch = running.child
    lines = running.lines
    await waitForEvent('healthy')

    await killMasterAndWait(s)
    const done = await waitForEvent('failover done', 60_000)
    expect((JSON.parse(readFileSync(done.report!, 'utf8')) as ApplyReport).status).toBe('applied')
    await waitFor('watch to monitor db2', 10_000, () => lines.some((l) => l.event === 'master' && l.message.startsWith('monitoring db2')))
    const state = JSON.parse(readFileSync(join(plansDir, cluster, 'watch-state.json'), 'utf8')) as {lastFailover: {deadMaster: string; newMaster: string}}
    expect([state.lastFailover.deadMaster, state.lastFailover.newMaster]).toEqual(['db1', 'db2'])

    // Someone starts db1 again from its my.cnf: writable, replicating from nobody, and db2 has no replica.
    const seconds = await restartAndTimeFence(s, 'db1', 30_000)
    console.log(`two-server returning master: db1 answered SQL, read_only=ON by watch ${seconds.toFixed(2)} s later`)
    // The watch looks at the other servers after each ping (every 1 s in the sandbox's cluster file), then
    // takes the lock and looks again: about 1 s at most plus two connects on loopback. 2 s leaves the
    // margin of one more ping for a busy 2-core machine; a watch that waits for a replica never fences.
    expect(seconds).toBeLessThan(2)

    const fenced = await waitForEvent('fenced returning master', 5000)
    expect(fenced.server).toBe('db1')
    expect(fenced.message).toBe(
      'db1 replicates from nobody and was writable (read_only=0) while db2 is the master (it replaced db1 at the last failover): set it read only; rejoin it as a replica of db2 or rebuild it',
    )
    expect(lines.filter((l) => l.event === 'fenced returning master')).toHaveLength(1)
    // The master is never touched.
    expect(await readOnlyOf(s, 'db2')).toBe(0)
    const record = JSON.parse(readFileSync(join(plansDir, cluster, 'watch-state.json'), 'utf8')) as {fenced?: {server: string; master: string}[]}
    expect(record.fenced?.map((f) => [f.server, f.master])).toEqual([['db1', 'db2']])

    const exited = new Promise<number | null>((resolve) => watch!.on('exit', (code) => resolve(code)))
    watch.kill('SIGTERM')
    expect(await exited).toBe(0)
    // The watch released its lock.
    expect(readdirSync(lockDir)).toEqual([])
    expect(existsSync(join(lockDir, `${cluster}.lock`))).toBe(false)
  })
})
