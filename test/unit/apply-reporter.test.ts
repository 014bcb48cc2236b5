import {afterEach, describe, expect, it, vi} from 'vitest'
import type {ApplyReport} from '../../src/apply/events.js'
import {lineReporter, listrReporter} from '../../src/cli/apply-reporter.js'
import type {Plan, Step} from '../../src/plan/types.js'

const step = {id: 'copy_backup:db4', type: 'copy_backup', server: 'db4', params: {source: 'db2', dir: '/data.mha-rebuild'}, after: [], outputs: ['copy'], reason: 'copy db2 to db4'} as unknown as Step
const plan = {steps: [step]} as unknown as Plan
const report = {status: 'applied', message: 'rebuild applied', dataLoss: null, newMaster: null} as unknown as ApplyReport

afterEach(() => {
  vi.restoreAllMocks()
})

describe('apply reporters show a running step’s progress', () => {
  it('without a TTY: one timestamped line per progress event, between the step’s begin and its end', () => {
    const lines: string[] = []
    const listener = lineReporter((line) => lines.push(line))
    listener({kind: 'begin', step})
    listener({kind: 'progress', step, message: '12.0 MiB copied from db2 to db4 so far (10 s)'})
    listener({kind: 'progress', step, message: '24.0 MiB copied from db2 to db4 so far (20 s)'})
    listener({kind: 'end', step, outputs: {}})
    expect(lines).toHaveLength(4)
    expect(lines[1]).toMatch(/^\d{4}-\d\d-\d\dT\S+ \.\.\. +copy_backup:db4 \(\d+\.\d\d s\): 12\.0 MiB copied from db2 to db4 so far \(10 s\)$/)
    expect(lines[2]).toMatch(/24\.0 MiB copied/)
    expect(lines[3]).toMatch(/ done +copy_backup:db4/)
  })

  it('with listr2: the message becomes the running task’s output (a line of its own with the simple renderer)', async () => {
    const written: string[] = []
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk))
      return true
    })
    const listr = await listrReporter(plan, 0)
    listr.listener({kind: 'begin', step})
    // The task runs (and registers itself) on the next ticks.
    await new Promise((r) => setTimeout(r, 50))
    listr.listener({kind: 'progress', step, message: '12.0 MiB copied from db2 to db4 so far (10 s)'})
    listr.listener({kind: 'end', step, outputs: {}})
    listr.listener({kind: 'finish', report})
    await listr.run
    vi.restoreAllMocks()
    const text = written.join('')
    expect(text).toMatch(/12\.0 MiB copied from db2 to db4 so far \(10 s\) \(\d+\.\d\d s\)/)
    expect(text.indexOf('12.0 MiB')).toBeLessThan(text.lastIndexOf('copy_backup:db4'))
  })
})
