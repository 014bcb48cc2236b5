import {existsSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, expect, it, vi} from 'vitest'
import {parseClusterConfig} from '../../src/config/load.js'
import type {Snapshot} from '../../src/inspect/types.js'
import {planDigest, serializePlan, validatePlan} from '../../src/plan/plan-file.js'
import {planFor} from '../../src/plan/planner.js'
import {planSwitchover} from '../../src/plan/switchover.js'

// Each folder of test/golden holds a cluster file and a recorded snapshot; the plan they give is compared
// byte for byte with expected-plan.json. UPDATE_GOLDEN=1 (re)writes the expected plans: review the diff.
const goldenDir = join(dirname(fileURLToPath(import.meta.url)), '../golden')
const scenarios = readdirSync(goldenDir).filter((d) => statSync(join(goldenDir, d)).isDirectory())
const header = {tool: 'mha golden', createdAt: '2026-01-01T00:00:00.000Z', configFile: 'cluster.yaml'}

function planOf(scenario: string, planHeader = header) {
  const dir = join(goldenDir, scenario)
  const cluster = parseClusterConfig(readFileSync(join(dir, 'cluster.yaml'), 'utf8'), join(dir, 'cluster.yaml'), {})
  const snapshot = JSON.parse(readFileSync(join(dir, 'snapshot.json'), 'utf8')) as Snapshot
  // A scenario with a switchover-to file plans an online switchover to that server instead.
  const switchTo = join(dir, 'switchover-to')
  return existsSync(switchTo) ? planSwitchover(cluster, snapshot, planHeader, readFileSync(switchTo, 'utf8').trim()) : planFor(cluster, snapshot, planHeader)
}

describe('golden plans from recorded snapshots', () => {
  it.each(scenarios)('%s', (scenario) => {
    const plan = planOf(scenario)
    validatePlan(plan, scenario)
    const text = serializePlan(plan)
    const expectedFile = join(goldenDir, scenario, 'expected-plan.json')
    // A new scenario is blessed explicitly (and its expected plan reviewed), never written by the test itself.
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(expectedFile, text)
    expect(existsSync(expectedFile), `${expectedFile} is missing: write it with UPDATE_GOLDEN=1, then review it`).toBe(true)
    expect(text).toBe(readFileSync(expectedFile, 'utf8'))
    expect(text).not.toContain('unused-in-golden-tests')
  })

  it('gives the same plan for the same inputs, whatever the time', () => {
    // The clock moves years between the two plans: a planner that read it (or anything else that varies)
    // would give another text; only the header, which the caller passes in, may differ.
    const later = {...header, createdAt: '2030-06-01T12:00:00.000Z'}
    try {
      for (const scenario of scenarios) {
        vi.setSystemTime(new Date('2026-01-01T00:00:00.000Z'))
        const a = planOf(scenario)
        vi.setSystemTime(new Date('2031-07-15T08:30:00.000Z'))
        const b = planOf(scenario, later)
        expect(serializePlan(b), scenario).not.toBe(serializePlan(a))
        expect(serializePlan({...b, header}), scenario).toBe(serializePlan(a))
        expect(planDigest({...b, header}), scenario).toBe(planDigest(a))
      }
    } finally {
      vi.useRealTimers()
    }
  })
})
