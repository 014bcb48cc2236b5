import {readdirSync, readFileSync, statSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'
import {parseClusterConfig} from '../../src/config/load.js'
import {effectOf} from '../../src/plan/effects.js'
import {planDigest} from '../../src/plan/plan-file.js'
import type {Plan, Step} from '../../src/plan/types.js'
import {planProblems} from '../../src/plan/validate.js'

const goldenDir = join(dirname(fileURLToPath(import.meta.url)), '../golden')
const scenarios = readdirSync(goldenDir).filter((d) => statSync(join(goldenDir, d)).isDirectory())

function golden(name: string) {
  const dir = join(goldenDir, name)
  const cluster = parseClusterConfig(readFileSync(join(dir, 'cluster.yaml'), 'utf8'), join(dir, 'cluster.yaml'), {})
  const plan = JSON.parse(readFileSync(join(dir, 'expected-plan.json'), 'utf8')) as Plan
  return {cluster, plan}
}

const edit = (plan: Plan, id: string, change: (step: Step & {params: Record<string, unknown>}) => void): Plan => {
  const copy = structuredClone(plan)
  const step = copy.steps.find((s) => s.id === id)
  if (!step) throw new Error(`no step ${id}`)
  change(step)
  return copy
}

describe('a plan is checked against its cluster file before apply changes anything', () => {
  it.each(scenarios)('the plan the planner wrote for %s agrees with its cluster file', (name) => {
    const {cluster, plan} = golden(name)
    expect(planProblems(plan, cluster)).toEqual([])
    // mha show derives an effect for every step.
    for (const step of plan.steps) expect(effectOf(step, plan, cluster).join('\n')).not.toBe('')
  })

  const {cluster, plan} = golden('mariadb-file-lagging')
  const cases: Array<[string, Plan, RegExp]> = [
    ['a shell command as the fencing hook', edit(plan, 'fence_master:db1', (s) => ((s.params.method = 'hook'), (s.params.hook = 'touch /tmp/x; exit 0 #'))), /step fence_master:db1 params\.hook: the plan says "touch \/tmp\/x; exit 0 #", the cluster file's hooks\.shutdown is none/],
    ['another host for a replica', edit(plan, 'repoint_replica:db3', (s) => (s.params.host = '10.9.9.9')), /step repoint_replica:db3 params\.host: the plan says 10\.9\.9\.9, the cluster file gives db2 the hostname 127\.0\.0\.12/],
    ['another port', edit(plan, 'repoint_replica:db3', (s) => (s.params.port = 3307)), /step repoint_replica:db3 params\.port: the plan says 3307/],
    ['another replication user', edit(plan, 'repoint_replica:db3', (s) => (s.params.user = 'root')), /step repoint_replica:db3 params\.user: the plan says root, the cluster file's repl_user is repl/],
    ['a preview that hides the real statement', edit(plan, 'repoint_replica:db3', (s) => (s.params.preview = 'CHANGE MASTER TO MASTER_HOST = \'10.0.0.1\'')), /step repoint_replica:db3 params\.preview: the plan shows "CHANGE MASTER TO MASTER_HOST = '10\.0\.0\.1'", apply would run "CHANGE MASTER TO MASTER_HOST = '127\.0\.0\.12'/],
    ['an unknown server', edit(plan, 'stop_replica_io:db3', (s) => (s.server = 'db9')), /step stop_replica_io:db3 server: db9 is not in /],
    ['no steps', {...structuredClone(plan), steps: []}, /a failover plan without steps/],
    ['steps reordered', {...structuredClone(plan), steps: [...plan.steps].reverse()}, /depends on .*, which is listed after it \(steps reordered\?\)/],
    ['no promotion', {...structuredClone(plan), steps: plan.steps.filter((s) => s.type !== 'enable_writes' && s.type !== 'verify_replication')}, /must make exactly one server writable, its new master db2; this one has no enable_writes step/],
    [
      'a rollback in a failover',
      {...structuredClone(plan), rollback: {ifFailedBefore: 'enable_writes:db2', steps: [{id: 'unblock_writes:db2', type: 'unblock_writes', server: 'db2', params: {}, after: ['fence_master:db1'], outputs: [], reason: 'x'}]}},
      /^a failover plan has no rollback; this one lists unblock_writes:db2$/m,
    ],
  ]
  it.each(cases)('refuses %s, naming the step and field', (_what, tampered, expected) => {
    const problems = planProblems(tampered, cluster)
    expect(problems.join('\n')).toMatch(expected)
  })

  it("refuses a binlog folder or file name the cluster file does not give the dead master", () => {
    const gtid = golden('mariadb-gtid-lagging-tail')
    const folder = edit(gtid.plan, 'save_master_binlog:db1', (s) => (s.params.dir = '/etc'))
    expect(planProblems(folder, gtid.cluster).join('\n')).toMatch(/step save_master_binlog:db1 params\.dir: \/etc is not one of db1's master_binlog_dir in the cluster file/)
    const name = edit(gtid.plan, 'save_master_binlog:db1', (s) => (s.params.files = ['../../etc/shadow']))
    expect(planProblems(name, gtid.cluster).join('\n')).toMatch(/params\.files: "\.\.\/\.\.\/etc\/shadow" is not a binlog file name/)
  })

  it('gives every change of any field another digest, and the same plan the same digest however it is laid out', () => {
    const reorder = (value: unknown): unknown =>
      Array.isArray(value) ? value.map(reorder) : value !== null && typeof value === 'object' ? Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reorder(v)])) : value
    const again = reorder(plan) as Plan
    expect(JSON.stringify(again)).not.toBe(JSON.stringify(plan))
    expect(planDigest(again)).toBe(planDigest(plan))
    expect(planDigest(plan)).toMatch(/^[0-9a-f]{64}$/)
    expect(planDigest(edit(plan, 'repoint_replica:db3', (s) => (s.reason += ' ')))).not.toBe(planDigest(plan))
    expect(planDigest({...plan, header: {...plan.header, createdAt: '2030-01-01T00:00:00.000Z'}})).not.toBe(planDigest(plan))
  })
})
