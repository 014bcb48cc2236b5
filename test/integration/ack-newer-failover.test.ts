import {execFileSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import type {WatchState} from '../../src/store/cluster-state.js'
import {readWatchState, stateFile} from '../../src/store/files.js'
import {processStartTime} from '../../src/store/lock.js'
import {runMha} from './harness.js'

// mha ack shows the last failover and acknowledges that one, in one read-modify-write of the state file: a newer
// failover recorded between its read and its write is never acknowledged by it. The race is forced, not hoped
// for: the state file is a named pipe, so mha ack's first read returns exactly when this test writes the older
// state into it, while the test holds the file's update lock; the newer failover is then written as the real file
// and the lock released, so mha ack's write sees it. No server: the file backend only.

const plans = mkdtempSync(join(tmpdir(), 'mha-it-ack-'))
afterAll(() => rmSync(plans, {recursive: true, force: true}))

const failover = (at: string, plan: string): WatchState => ({lastFailover: {at, plan, report: `${plan.replace(/\.json$/, '')}.report.json`, status: 'applied', deadMaster: 'db1', newMaster: 'db2'}, acknowledged: false})
const older = failover('2026-12-01T10:00:00.000Z', 'plans/itack/20261201T100000Z-failover.json')
const newer = failover('2026-12-01T10:07:00.000Z', 'plans/itack/20261201T100700Z-failover.json')

describe('mha ack never acknowledges a newer failover', () => {
  it('a newer failover recorded between mha ack\'s read and its write: exit 1, one line saying it was NOT acknowledged, the state keeps it unacknowledged', async () => {
    const file = stateFile(plans, 'itack')
    mkdirSync(join(plans, 'itack'), {recursive: true})
    execFileSync('mkfifo', [file])
    // The update lock held by this (live) process: mha ack waits for it before its write.
    const lock = `${file}.lock`
    writeFileSync(lock, JSON.stringify({pid: process.pid, started: processStartTime(process.pid), purpose: 'the test', since: new Date().toISOString()}))
    const acked = runMha(['ack', '--cluster', 'itack', '--plans-dir', plans])
    // Returns once mha ack has opened the pipe and read the older failover.
    await writeFile(file, JSON.stringify(older))
    rmSync(file)
    writeFileSync(file, JSON.stringify(newer, null, 2) + '\n')
    rmSync(lock)
    const result = await acked
    expect(result.code, result.stdout + result.stderr).toBe(1)
    expect(result.stdout).toBe('')
    expect(result.stderr.trim().split('\n')).toEqual([
      `mha: cluster itack: a newer failover (${newer.lastFailover!.at}, ${newer.lastFailover!.plan}) was recorded while acknowledging the one at ${older.lastFailover!.at}; the newer failover was NOT acknowledged, and automatic failover stays blocked: review it (mha status --cluster itack), then run mha ack again`,
    ])
    expect(readWatchState(plans, 'itack')).toEqual(newer)

    // Run again, it shows the newer failover and acknowledges it.
    const again = await runMha(['ack', '--cluster', 'itack', '--plans-dir', plans])
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toContain(`acknowledged the failover of itack at ${newer.lastFailover!.at}`)
    expect(readWatchState(plans, 'itack')).toEqual({...newer, acknowledged: true})
  })
})
