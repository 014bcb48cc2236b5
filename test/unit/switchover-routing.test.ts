import {mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {beforeEach, describe, expect, it, vi} from 'vitest'
import type {ApplyEvent} from '../../src/apply/events.js'
import {applyPlan} from '../../src/apply/executor.js'
import {renderPlan} from '../../src/cli/render-plan.js'
import {parseClusterConfig} from '../../src/config/load.js'
import type {Snapshot} from '../../src/inspect/types.js'
import {effectOf} from '../../src/plan/effects.js'
import {validatePlan} from '../../src/plan/plan-file.js'
import {planSwitchover} from '../../src/plan/switchover.js'
import type {Plan} from '../../src/plan/types.js'
import {planProblems} from '../../src/plan/validate.js'
import {acts, fates, type Fate} from './fake-steps.js'

// A switchover of the recorded GTID cluster behind two proxies: its shape, its validation, and (with step handlers
// that touch nothing) which steps run after a failure before and after the promotion.
vi.mock('../../src/steps/index.js', () => import('./fake-steps.js'))

const dir = join(dirname(fileURLToPath(import.meta.url)), '../golden/mariadb-gtid-switchover')
const file = join(dir, 'cluster.yaml')
const routing = `routing:
  haproxy:
    - name: haproxy1
      runtime_api: 10.0.0.9:9999
      writer_backend: mysql_writer
      frontend: 10.0.0.9:3306
      servers: {db1: mysql1, db2: mysql2, db3: mysql3}
    - name: haproxy2
      runtime_api: 10.0.0.10:9999
      writer_backend: writers
      frontend: 10.0.0.10:3306
`
const cluster = parseClusterConfig(readFileSync(file, 'utf8') + routing, file, {})
const snapshot = JSON.parse(readFileSync(join(dir, 'snapshot.json'), 'utf8')) as Snapshot
const plan = planSwitchover(cluster, snapshot, {tool: 'mha test', createdAt: '2026-01-01T00:00:00.000Z', configFile: file}, 'db2')
const ids = plan.steps.map((s) => s.id)
const clone = (): Plan => JSON.parse(JSON.stringify(plan)) as Plan

describe('a switchover behind proxies: its plan', () => {
  it('drains the old master in each proxy before the write block, and sends writes to the new master after its promotion', () => {
    expect(ids.slice(0, 4)).toEqual(['check_switchover:db1', 'route_drain:haproxy1', 'route_drain:haproxy2', 'block_writes:db1'])
    expect(plan.steps.find((s) => s.id === 'route_drain:haproxy1')).toMatchObject({server: 'db1', after: ['check_switchover:db1'], params: {proxy: 'haproxy1', backend: 'mysql_writer', backendServer: 'mysql1'}})
    expect(plan.steps.find((s) => s.id === 'block_writes:db1')!.after).toEqual(['route_drain:haproxy1', 'route_drain:haproxy2'])
    expect(plan.steps.find((s) => s.id === 'route_writer:haproxy1')).toMatchObject({
      server: 'db2',
      group: 'routing:haproxy1',
      after: ['enable_writes:db2'],
      params: {proxy: 'haproxy1', backend: 'mysql_writer', writer: 'mysql2', others: ['mysql1', 'mysql3'], frontend: '10.0.0.9:3306'},
    })
    expect(plan.steps.find((s) => s.id === 'route_writer:haproxy2')!.params).toMatchObject({backend: 'writers', writer: 'db2', others: ['db1', 'db3']})
    expect(ids.indexOf('route_writer:haproxy1')).toBeGreaterThan(ids.indexOf('enable_writes:db2'))
    expect(planProblems(plan, cluster)).toEqual([])
    // The plan schema takes both step kinds, in the steps and in the rollback.
    validatePlan(JSON.parse(JSON.stringify(plan)), 'switchover.json')
  })

  it("rolls the drains back after the old master takes writes again: it alone in each writer backend, verified through the frontend", () => {
    expect(plan.rollback!.steps.map((s) => s.id)).toEqual(['set_read_only:db2', 'unblock_writes:db1', 'route_writer_back:haproxy1', 'route_writer_back:haproxy2'])
    expect(plan.rollback!.steps[2]).toMatchObject({
      type: 'route_writer',
      server: 'db1',
      after: ['route_drain:haproxy1'],
      params: {proxy: 'haproxy1', backend: 'mysql_writer', writer: 'mysql1', others: ['mysql2', 'mysql3'], frontend: '10.0.0.9:3306'},
    })
    // mha show and mha plan show what the undo does.
    expect(effectOf(plan.rollback!.steps[2]!, plan, cluster)).toEqual([
      'haproxy haproxy1 runtime API 10.0.0.9:9999: set server mysql_writer/mysql2 state maint',
      'haproxy haproxy1 runtime API 10.0.0.9:9999: set server mysql_writer/mysql3 state maint',
      'haproxy haproxy1 runtime API 10.0.0.9:9999: set server mysql_writer/mysql1 state ready',
      "10.0.0.9:3306 as mha: SELECT @@server_id (must be db1's)",
    ])
    const shown = renderPlan(plan)
    expect(shown).toContain('proxy haproxy1: set server mysql_writer/mysql2 state maint; set server mysql_writer/mysql3 state maint; set server mysql_writer/mysql1 state ready; verify a new connection to 10.0.0.9:3306 reaches db1')
    expect(shown).toContain('[routing:haproxy1] proxy haproxy1:')
  })

  it('apply refuses a plan whose routing or its undo was edited out or reordered', () => {
    const noDrain = clone()
    noDrain.steps = noDrain.steps.filter((s) => s.id !== 'route_drain:haproxy2')
    noDrain.steps.find((s) => s.id === 'block_writes:db1')!.after = ['route_drain:haproxy1']
    expect(planProblems(noDrain, cluster)).toContain('a switchover plan must drain its old master db1 in proxy haproxy2 (routing.haproxy of ' + file + ') exactly once')
    expect(planProblems(noDrain, cluster).some((p) => p.startsWith('rollback.steps[3]: the plan has route_writer_back:haproxy2'))).toBe(true)

    const early = clone()
    early.steps.find((s) => s.id === 'block_writes:db1')!.after = ['check_switchover:db1']
    early.steps.find((s) => s.id === 'route_drain:haproxy1')!.after = ['check_switchover:db1']
    expect(planProblems(early, cluster)).toContain('block_writes:db1 must come after route_drain:haproxy1: no client through proxy haproxy1 meets the write block')

    const soon = clone()
    soon.steps.find((s) => s.id === 'route_writer:haproxy1')!.after = ['record_position:db2']
    expect(planProblems(soon, cluster)).toContain('route_writer:haproxy1 must come after enable_writes:db2: a proxy sends writes only to a server that takes them')

    const noUndo = clone()
    noUndo.rollback!.steps = noUndo.rollback!.steps.filter((s) => s.type !== 'route_writer')
    expect(planProblems(noUndo, cluster).some((p) => p.startsWith('rollback.steps[2]: the plan has nothing, undoing the steps before the promotion gives route_writer_back:haproxy1'))).toBe(true)

    // A forward route_writer goes to the new master only; the undo's server is the old master.
    const elsewhere = clone()
    const writer = elsewhere.steps.find((s) => s.id === 'route_writer:haproxy1')!
    writer.server = 'db3'
    expect(planProblems(elsewhere, cluster)).toContain('step route_writer:haproxy1 server: db3; writes are routed to the new master db2')
  })
})

async function applyWith(failures: Record<string, Fate>) {
  fates.clear()
  for (const [id, fate] of Object.entries(failures)) fates.set(id, fate)
  acts.length = 0
  const events: ApplyEvent[] = []
  const report = await applyPlan({planFile: join(mkdtempSync(join(tmpdir(), 'mha-swroute-')), 'plan.json'), plan, cluster, snapshot, listener: (e) => events.push(e)})
  const undone = events.filter((e) => e.kind === 'begin' && e.step.id.startsWith('rollback/')).map((e) => (e.kind === 'begin' ? e.step.id.slice('rollback/'.length) : ''))
  return {report, undone}
}

describe('a switchover behind proxies: apply', () => {
  beforeEach(() => fates.clear())

  it('a failure before the promotion gives the writes back: the old master takes writes, then each proxy sends them to it', async () => {
    const {report, undone} = await applyWith({'wait_caught_up:db2': 'fails in act'})
    expect(undone).toEqual(['unblock_writes:db1', 'route_writer_back:haproxy1', 'route_writer_back:haproxy2'])
    expect(report.status).toBe('failed')
    expect(report.message).toMatch(/; rolled back \(unblock_writes:db1, route_writer_back:haproxy1, route_writer_back:haproxy2\): db1 takes writes again$/)
    expect(acts).not.toContain('route_writer:haproxy1')
  })

  it('a drain that fails part way is undone; nothing else began, and the write block never starts', async () => {
    const {undone} = await applyWith({'route_drain:haproxy2': 'fails in act'})
    expect(acts).not.toContain('block_writes:db1')
    // haproxy1's drain may have run beside it: each undo runs only if its drain began.
    expect(undone).toEqual(acts.includes('route_drain:haproxy1') ? ['route_writer_back:haproxy1', 'route_writer_back:haproxy2'] : ['route_writer_back:haproxy2'])
  })

  it('the old master is never given to a proxy while it is still read_only: a failed unblock stops the rollback', async () => {
    const {undone, report} = await applyWith({'wait_caught_up:db2': 'fails in act', 'unblock_writes:db1': 'fails in act'})
    expect(undone).toEqual(['unblock_writes:db1'])
    expect(report.message).toMatch(/the rollback failed at unblock_writes:db1/)
  })

  it('a proxy that fails after the promotion leaves it standing and stops nothing else: partial', async () => {
    const {report, undone} = await applyWith({'route_writer:haproxy1': 'fails in act'})
    expect(undone).toEqual([])
    expect(acts).toEqual(expect.arrayContaining(['route_writer:haproxy2', 'release_write_block:db1', 'repoint_replica:db3', 'repoint_replica:db1', 'verify_replication:db2']))
    expect(report.status).toBe('partial')
    expect(report.message).toBe('db2 is the writable master; writes not moved on proxy haproxy1 (route_writer:haproxy1 failed part way)')
    expect(report.nextAction).toMatch(/^proxy haproxy1: once its runtime API answers, run "mha apply .*plan\.json" again: only its routing steps run/)
  })

  it('any other failure after the promotion still stops the switchover as before', async () => {
    const {report} = await applyWith({'release_write_block:db1': 'fails in act'})
    expect(report.status).toBe('failed')
  })
})
