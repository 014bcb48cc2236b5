import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterAll, describe, expect, it} from 'vitest'
import {planDigest} from '../../src/plan/plan-file.js'
import type {Plan, Step} from '../../src/plan/types.js'
import {saveMasterBinlog, savedFile} from '../../src/steps/recovery.js'
import type {StepContext} from '../../src/steps/types.js'
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

describe('a saved file found by name in this work folder', () => {
  const work = mkdtempSync(join(tmpdir(), 'mha-work-files-'))
  afterAll(() => rmSync(work, {recursive: true, force: true}))
  const save = plan.steps.find((s) => s.id === 'save_master_binlog:db1') as Extract<Step, {type: 'save_master_binlog'}>
  const name = `saved-db1-${save.params.from.file}-${save.params.from.pos}.binlog`
  const journaled = new Map<string, Record<string, unknown>>()
  /** What the steps read of a run: its work folder, its plan and the journaled outputs; nothing live. */
  const ctx = {workDir: work, plan, output: (step: string, output: string) => journaled.get(step)?.[output]} as unknown as StepContext

  it('a copy restored with its record from another manager (an absolute path of that host in it) counts as saved, by name', async () => {
    writeFileSync(join(work, name), Buffer.alloc(706, 1))
    writeFileSync(join(work, `${name}.saved.json`), JSON.stringify({file: `/home/other/plans/app1/x-failover.work/${name}`, end: {file: 'mysql-bin.000004', pos: 2000}, bytes: 706, plan: planDigest(plan)}))
    const checked = await saveMasterBinlog.check(save, ctx)
    expect(checked).toMatchObject({done: true, outputs: {file: name, bytes: 706}})
    // Another plan's file of the same name is not this plan's.
    writeFileSync(join(work, `${name}.saved.json`), JSON.stringify({file: name, bytes: 706, plan: 'another'}))
    expect(await saveMasterBinlog.check(save, ctx)).toEqual({done: false})
  })

  it('apply_logs reads the journaled file in its own work folder, and says plainly when it is not there', () => {
    journaled.set('save_master_binlog:db1', {file: `/home/other/plans/app1/x-failover.work/${name}`})
    expect(savedFile(ctx, {fromStep: 'save_master_binlog:db1', output: 'file'})).toBe(join(work, name))
    journaled.set('save_relay_diff:db3', {file: diff})
    expect(() => savedFile(ctx, {fromStep: 'save_relay_diff:db3', output: 'file'})).toThrow(`${diff}, saved by save_relay_diff:db3, is not in this manager's work folder ${work} nor in the shared store: it was on the manager that saved it`)
  })
})
