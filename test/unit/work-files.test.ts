import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'
import type {Plan} from '../../src/plan/types.js'
import {repeatFailed, savesToRepeat, workFileIn, workFileName} from '../../src/steps/work-files.js'

const plan = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../golden/mysql-8.0-file-lagging/expected-plan.json'), 'utf8')) as Plan
const tail = 'saved-db1-mysql-bin.000004-1294.binlog'
const diff = 'relay-diff-db2-for-db3.binlog'
const here = '/var/lib/mha/plans/app1/x-failover.work'
/** Journaled outputs as a dead leader on another host wrote them (absolute paths, as before names were journaled). */
const theirs: Record<string, Record<string, unknown>> = {
  'save_master_binlog:db1': {file: `/home/other/plans/app1/x-failover.work/${tail}`, end: {file: 'mysql-bin.000004', pos: 2000}, bytes: 706},
  'save_relay_diff:db3': {file: diff, bytes: 300},
}
const outputsOf = (id: string) => theirs[id]
const doneUpTo = (...ids: string[]) => new Set(ids)
const savesDone = ['stop_replica_io:db2', 'stop_replica_io:db3', 'fence_master:db1', 'save_master_binlog:db1', 'save_relay_diff:db3']

describe('work files are named, never placed', () => {
  it('a journaled path from another host resolves to its name in this work folder', () => {
    expect(workFileName(theirs['save_master_binlog:db1']!.file)).toBe(tail)
    expect(workFileIn(here, theirs['save_master_binlog:db1']!.file)).toBe(join(here, tail))
    expect(workFileIn(here, diff)).toBe(join(here, diff))
    for (const nothing of [undefined, null, 3, '', '/', '..']) expect(workFileIn(here, nothing)).toBeNull()
  })

  it('a done save whose file is missing here is repeated only while a step still to run reads it', () => {
    const present = (...names: string[]) => (file: string) => names.some((n) => file === join(here, n))
    // Both files here (restored from etcd): nothing is repeated.
    expect(savesToRepeat(plan, doneUpTo(...savesDone), outputsOf, here, present(tail, diff))).toEqual([])
    // The tail stayed on the dead leader's disk (over the upload limit): its save runs again, the diff's does not.
    expect(savesToRepeat(plan, doneUpTo(...savesDone), outputsOf, here, present(diff))).toEqual(['save_master_binlog:db1'])
    expect(savesToRepeat(plan, doneUpTo(...savesDone), outputsOf, here, present())).toEqual(['save_master_binlog:db1', 'save_relay_diff:db3'])
    // Every step that reads the tail and the diff is done: nothing needs the files, nothing is repeated.
    const all = doneUpTo(...plan.steps.map((s) => s.id))
    expect(savesToRepeat(plan, all, outputsOf, here, present())).toEqual([])
    // The new master applied the tail already; db3 still needs both.
    const masterDone = doneUpTo(...savesDone, 'wait_relay_log_applied:db2', 'apply_logs:db2', 'detach_replication:db2', 'enable_writes:db2')
    expect(savesToRepeat(plan, masterDone, outputsOf, here, present())).toEqual(['save_master_binlog:db1', 'save_relay_diff:db3'])
    // A save not journaled done is not the repeater's business: the executor runs it anyway.
    expect(savesToRepeat(plan, doneUpTo('stop_replica_io:db2'), outputsOf, here, present())).toEqual([])
  })

  it('a done save without a recorded file name is repeated', () => {
    expect(savesToRepeat(plan, doneUpTo(...savesDone), (id) => (id === 'save_relay_diff:db3' ? {} : outputsOf(id)), here, () => true)).toEqual(['save_relay_diff:db3'])
  })

  it('a repeat that fails says the file was on the manager that died and could not be saved again', () => {
    const save = plan.steps.find((s) => s.id === 'save_master_binlog:db1')!
    const message = repeatFailed(save, theirs['save_master_binlog:db1']!.file, 'db1: ssh: connect ECONNREFUSED')
    expect(message).toContain(tail)
    expect(message).not.toContain('/home/other')
    expect(message).toMatch(/on the manager that saved it, which died/)
    expect(message).toMatch(/could not be saved again from db1: db1: ssh: connect ECONNREFUSED$/)
  })
})
