import {mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {beforeEach, describe, expect, it, vi} from 'vitest'
import type {ApplyEvent} from '../../src/apply/events.js'
import {applyPlan} from '../../src/apply/executor.js'
import {parseClusterConfig} from '../../src/config/load.js'
import type {Snapshot} from '../../src/inspect/types.js'
import {planSwitchover} from '../../src/plan/switchover.js'
import {acts, fates, type Fate} from './fake-steps.js'

// The executor with step handlers that touch nothing: each acts or fails as a test says, so that which undo runs
// after which failure is seen exactly (the real steps are tried on a sandbox in test/integration/switchover.test.ts).
vi.mock('../../src/steps/index.js', () => import('./fake-steps.js'))

const dir = join(dirname(fileURLToPath(import.meta.url)), '../golden/mariadb-gtid-switchover')
const file = join(dir, 'cluster.yaml')
const cluster = parseClusterConfig(readFileSync(file, 'utf8') + 'hooks:\n  master_ip_online_change: /etc/mha/online_change\n', file, {})
const snapshot = JSON.parse(readFileSync(join(dir, 'snapshot.json'), 'utf8')) as Snapshot
const plan = planSwitchover(cluster, snapshot, {tool: 'mha test', createdAt: '2026-01-01T00:00:00.000Z', configFile: file}, 'db2')

async function applyWith(failures: Record<string, Fate>) {
  fates.clear()
  for (const [id, fate] of Object.entries(failures)) fates.set(id, fate)
  acts.length = 0
  const events: ApplyEvent[] = []
  const report = await applyPlan({planFile: join(mkdtempSync(join(tmpdir(), 'mha-rollback-')), 'plan.json'), plan, cluster, snapshot, listener: (e) => events.push(e)})
  const undone = acts.filter((id) => plan.rollback!.steps.some((s) => s.id === id) && events.some((e) => e.kind === 'begin' && e.step.id === `rollback/${id}`))
  return {report, undone}
}

describe('a switchover rollback undoes every step that began, in the plan\'s order', () => {
  beforeEach(() => fates.clear())

  it("the target's position that could not be read: the write block and the hook's stop undone; the target still replicates from db1, the promotion never began", async () => {
    const {report, undone} = await applyWith({'record_position:db2': 'fails in act'})
    expect(undone).toEqual(['unblock_writes:db1', 'run_hook:online_change_start_db1'])
    expect(report.status).toBe('failed')
    expect(report.message).toMatch(/; rolled back \(unblock_writes:db1, run_hook:online_change_start_db1\): db1 takes writes again$/)
  })

  it('a promotion that failed part way: the target is read_only again first, then the rest', async () => {
    const {undone} = await applyWith({'enable_writes:db2': 'fails in act'})
    expect(undone).toEqual(['set_read_only:db2', 'unblock_writes:db1', 'run_hook:online_change_start_db1'])
  })

  it("a detach that fails after the promotion rolls nothing back, and the old master's lock is not let go: db2 may still replicate from it", async () => {
    const {report, undone} = await applyWith({'detach_replication:db2': 'fails in act'})
    expect(undone).toEqual([])
    expect(report.status).toBe('failed')
    expect(report.steps.find((s) => s.id === 'enable_writes:db2')?.status).toBe('applied')
    expect(report.steps.find((s) => s.id === 'release_write_block:db1')?.status).toMatch(/^(blocked|not_run)$/)
    expect(report.nextAction).toMatch(/then run "mha apply .*" again: it resumes from detach_replication:db2$/)
  })

  it('stops when the target cannot be made read_only again: the old master is not given writes beside a target that may take them', async () => {
    const {report, undone} = await applyWith({'enable_writes:db2': 'fails in act', 'set_read_only:db2': 'fails in act'})
    expect(undone).toEqual(['set_read_only:db2'])
    expect(report.message).toMatch(/; the rollback failed at set_read_only:db2: set_read_only:db2 failed part way$/)
  })

  it("a stop hook that failed part way is undone by the start for the old master; nothing else had begun", async () => {
    const {undone} = await applyWith({'run_hook:online_change_stop': 'fails in act'})
    expect(undone).toEqual(['run_hook:online_change_start_db1'])
  })

  it('a failure before any effect rolls nothing back', async () => {
    const {report, undone} = await applyWith({'check_switchover:db1': 'fails in act'})
    expect(undone).toEqual([])
    expect(report.message).toMatch(/; nothing had changed, so nothing was rolled back$/)
  })
})
