import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'
import {parseClusterConfig} from '../../src/config/load.js'
import type {Snapshot, SqlFacts} from '../../src/inspect/types.js'
import {planRejoin, type FailoverRecord} from '../../src/plan/rejoin.js'
import {planRebuild, planRemove} from '../../src/plan/service.js'
import {planSwitchover} from '../../src/plan/switchover.js'
import type {Plan, Step} from '../../src/plan/types.js'
import {planProblems, roleProblems, targetProblem} from '../../src/plan/validate.js'

const golden = join(dirname(fileURLToPath(import.meta.url)), '../golden')
const header = {tool: 'test', createdAt: '2026-12-01T00:00:00.000Z', configFile: 'cluster.yaml'}
const db4 = '  - name: db4\n    hostname: 127.0.0.14\n    rebuild: {datadir: /data4, stop_command: stop-db, start_command: start-db}\n'

/** The healthy MariaDB cluster (db1 the writable master, db2 and db3 its replicas) and db4, an empty server. */
function healthy(scenario = 'mariadb-healthy') {
  const cluster = parseClusterConfig(readFileSync(join(golden, scenario, 'cluster.yaml'), 'utf8') + (scenario === 'mariadb-healthy' ? db4 : ''), join(golden, scenario, 'cluster.yaml'), {})
  const snapshot = JSON.parse(readFileSync(join(golden, scenario, 'snapshot.json'), 'utf8')) as Snapshot
  if (scenario === 'mariadb-healthy') snapshot.servers.push({name: 'db4', address: '127.0.0.14:3306', sql: {reachable: false, kind: 'unreachable', message: 'refused'}, ssh: snapshot.servers[2]!.ssh} as unknown as Snapshot['servers'][number])
  const sql = (name: string) => snapshot.servers.find((s) => s.name === name)!.sql as SqlFacts
  return {cluster, snapshot, sql}
}

/** What a crafted plan does: its steps aimed at another server, and its observed section saying `master` is the master. */
function aimed(plan: Plan, from: string, to: string, master: string): Plan {
  const steps = JSON.parse(JSON.stringify(plan.steps).replaceAll(from, to)) as Step[]
  const observed = structuredClone(plan.observed)
  for (const s of observed.servers) if (s.reachable) s.role = s.name === master ? 'master' : 'replica'
  return {...plan, steps, observed}
}

const failover: FailoverRecord = {plan: 'plans/app1/x-failover.json', newMaster: 'db2', held: {file: 'mysql-bin.000001', pos: 1000}, heldFrom: 'saved binlog end', promotion: {file: 'mysql-bin.000001', pos: 2000}}

/** After a failover: db2 the writable master, db3 its replica, db1 back, writable, replicating from nobody. */
function afterFailover() {
  const c = healthy()
  c.sql('db1').gtid = {...c.sql('db1').gtid, binlogPos: '0-1-107', binlogState: '0-1-107'}
  c.sql('db2').replica = null
  c.sql('db2').readOnly = false
  c.sql('db2').gtid = {...c.sql('db2').gtid, binlogPos: '0-1-104,0-2-150', binlogState: '0-1-104,0-2-150'}
  c.sql('db3').replica = {...c.sql('db3').replica!, sourceHost: '127.0.0.12'}
  const range = {from: failover.held, end: {file: 'mysql-bin.000002', pos: 900}, files: ['mysql-bin.000001', 'mysql-bin.000002'], dir: '/var/tmp/mha-sandbox/app1/host1/data', transactions: ['0-1-105', '0-1-106', '0-1-107'].map((gtid) => ({gtid})), rowEvents: 6}
  const plan = planRejoin(c.cluster, c.snapshot, header, {server: 'db1', flashback: true, failover, range})
  return {...c, plan}
}

describe('roleProblems: roles re-derived from the live servers at apply', () => {
  it('remove: the plan made for a replica passes; aimed at the live master it is refused although its own word says db2 is the master', () => {
    const {cluster, snapshot, sql} = healthy()
    const plan = planRemove(cluster, snapshot, header, 'db3')
    expect(roleProblems(plan, snapshot, cluster)).toEqual([])
    const crafted = aimed(plan, 'db3', 'db1', 'db2')
    expect(planProblems(crafted, cluster)).toEqual([])
    expect(roleProblems(crafted, snapshot, cluster)).toEqual(['step detach_replication:db1: db1 is the live master (db2, db3 replicate from it, read_only=0); a remove plan never acts on the master'])
    // A server others replicate from now (db2 re-pointed to db3 since the plan) is not taken away from them.
    sql('db2').replica = {...sql('db2').replica!, sourceHost: '127.0.0.13'}
    expect(roleProblems(plan, snapshot, cluster)).toEqual(['db3: db2 replicates from it now; a removal takes away no one\'s source'])
  })

  it('remove: a writable server that others replicate from is a master too, whatever the topology says', () => {
    const {cluster, snapshot, sql} = healthy()
    const plan = planRemove(cluster, snapshot, header, 'db3')
    // db3 writable and db2 replicating from it: the replicas no longer agree on one master.
    sql('db3').readOnly = false
    sql('db2').replica = {...sql('db2').replica!, sourceHost: '127.0.0.13'}
    expect(roleProblems(plan, snapshot, cluster).join('\n')).toMatch(/^step detach_replication:db3: db3 is the live master \(db2 replicates from it, read_only=0\); a remove plan never acts on the master$/)
  })

  it('rebuild: never the master, a copy of the master or one of its replicas, replication from the live master', () => {
    const {cluster, snapshot} = healthy()
    const plan = planRebuild(cluster, snapshot, header, 'db4')
    expect(roleProblems(plan, snapshot, cluster)).toEqual([])
    const edit = (change: (step: Step & {params: Record<string, unknown>}) => void, type: Step['type']) => {
      const copy = structuredClone(plan)
      change(copy.steps.find((s): s is Step & {params: Record<string, unknown>} => s.type === type)!)
      return copy
    }
    expect(roleProblems(edit((s) => (s.params.source = 'db2'), 'replicate_from_copy'), snapshot, cluster)).toEqual([
      'step replicate_from_copy:db4 params.source: db2 is a replica of db1 now (read_only=1); a rebuilt server replicates from the live master db1',
    ])
    expect(roleProblems(edit((s) => (s.params.source = 'db4'), 'copy_backup'), snapshot, cluster).join('\n')).toMatch(/^step copy_backup:db4 params\.source: db4 does not answer SQL now; a copy comes from the live master db1 or one of its replicas, never from the server rebuilt$/)
    expect(roleProblems(edit((s) => (s.params.master = 'db3'), 'verify_replication'), snapshot, cluster)).toEqual(['step verify_replication:db4 params.master: db3 is a replica of db1 now (read_only=1); the live master is db1'])
  })

  it('rejoin: the plan of the former master passes; the same plan once db1 is the master again is refused', () => {
    const {cluster, snapshot, plan} = afterFailover()
    const state = {outOfService: ['db1'], lastDeadMaster: 'db1'}
    expect(roleProblems(plan, snapshot, cluster, state)).toEqual([])
    expect(roleProblems(plan, snapshot, cluster, null)).toEqual([])
    // The healthy cluster: db1 is the master its replicas follow, db2 one of them.
    const live = healthy()
    expect(roleProblems(plan, live.snapshot, live.cluster, state)).toEqual([
      'step set_read_only:db1: db1 is the live master (db2, db3 replicate from it, read_only=0); a rejoin plan never acts on the master',
      'decision.newMaster: the plan rejoins db1 to db2; db2 is a replica of db1 now (read_only=1), and no live master can be told',
    ])
  })

  it('rejoin: a master that does not take writes, and a server no failover took out, are refused', () => {
    const {cluster, snapshot, plan, sql} = afterFailover()
    expect(roleProblems(plan, snapshot, cluster, {outOfService: ['db3'], lastDeadMaster: 'db3'})).toEqual([
      'db1 is not listed out of service (db3) nor the dead master of the last failover (db3): a rejoin puts back a server a failover took out',
    ])
    // Where the state says nothing (no failover recorded), the live roles alone decide.
    expect(roleProblems(plan, snapshot, cluster, {outOfService: [], lastDeadMaster: null})).toEqual([])
    expect(roleProblems(plan, snapshot, cluster, {outOfService: [], lastDeadMaster: 'db1'})).toEqual([])
    sql('db2').readOnly = true
    expect(roleProblems(plan, snapshot, cluster)).toEqual(['decision.newMaster: db2 is the live master (db3 replicates from it, read_only=1); a server rejoins a master that takes writes'])
  })

  it('rejoin: flashback_binlog.resetBinlog is what the server\'s flavor gives (MariaDB: true)', () => {
    const {cluster, snapshot, plan} = afterFailover()
    const flipped = structuredClone(plan)
    const step = flipped.steps.find((s) => s.type === 'flashback_binlog')! as Step & {params: {resetBinlog: boolean}}
    step.params.resetBinlog = false
    expect(roleProblems(flipped, snapshot, cluster)).toEqual(['step flashback_binlog:db1 params.resetBinlog: the plan says false, db1 runs mariadb, which gives true'])
  })

  it('switchover: from the live master to one of its replicas; not checked on a resume (the roles move as it runs)', () => {
    const {cluster, snapshot, sql} = healthy('mariadb-gtid-switchover')
    const plan = planSwitchover(cluster, snapshot, header, 'db3')
    expect(roleProblems(plan, snapshot, cluster)).toEqual([])
    const swapped = {...plan, decision: {...plan.decision, oldMaster: 'db2', newMaster: 'db1'}}
    expect(roleProblems(swapped, snapshot, cluster).join('\n')).toMatch(/^decision\.oldMaster: the plan switches over from db2; db2 is a replica of db1 now \(read_only=1\), the live master is db1$/)
    sql('db3').replica = {...sql('db3').replica!, sourceHost: '127.0.0.12'}
    expect(roleProblems(plan, snapshot, cluster).join('\n')).toMatch(/^decision\.newMaster: the plan promotes db3; db3 is a replica of db2 now \(read_only=1\), not a replica of the live master db1$/)
    expect(roleProblems(plan, snapshot, cluster, null, true)).toEqual([])
  })
})

describe('plan parameters checked against the cluster file and the plan\'s own observation', () => {
  const load = (name: string, yaml: (text: string) => string = (t) => t) => {
    const cluster = parseClusterConfig(yaml(readFileSync(join(golden, name, 'cluster.yaml'), 'utf8')), join(golden, name, 'cluster.yaml'), {})
    const plan = JSON.parse(readFileSync(join(golden, name, 'expected-plan.json'), 'utf8')) as Plan
    return {cluster, plan}
  }
  const change = (plan: Plan, id: string, edit: (params: Record<string, unknown>) => void): Plan => {
    const copy = structuredClone(plan)
    edit(copy.steps.find((s) => s.id === id)!.params)
    return copy
  }

  it('detach_replication.resetSlaveAll follows failover.skip_reset_slave in a failover', () => {
    const {cluster, plan} = load('mariadb-file-lagging')
    expect(cluster.failover.skipResetSlave).toBe(false)
    expect(planProblems(change(plan, 'detach_replication:db2', (p) => (p.resetSlaveAll = false)), cluster)).toEqual([
      "step detach_replication:db2 params.resetSlaveAll: the plan says false, the cluster file's failover.skip_reset_slave (false) gives true",
    ])
  })

  it('detach_replication.resetSlaveAll follows failover.skip_reset_slave in a switchover (as MHA), and is always true in a removal', () => {
    const {cluster, plan} = load('mariadb-gtid-switchover')
    const detach = plan.steps.find((s) => s.type === 'detach_replication')!
    expect(planProblems(change(plan, detach.id, (p) => (p.resetSlaveAll = false)), cluster).join('\n')).toMatch(
      new RegExp(`^step ${detach.id} params\\.resetSlaveAll: the plan says false, the cluster file's failover.skip_reset_slave \\(false\\) gives true$`, 'm'),
    )
    const {cluster: c, snapshot} = healthy()
    const remove = planRemove(c, snapshot, header, 'db3')
    expect(planProblems(change(remove, 'detach_replication:db3', (p) => (p.resetSlaveAll = false)), c)).toEqual(['step detach_replication:db3 params.resetSlaveAll: the plan says false, a remove always runs RESET SLAVE ALL: true'])
  })

  it('save_relay_diff: diff.after and diff.until are the target\'s and the source\'s read positions in the observed facts apply checks live', () => {
    const {cluster, plan} = load('mariadb-file-lagging')
    const save = plan.steps.find((s) => s.type === 'save_relay_diff')! as Step & {type: 'save_relay_diff'}
    const {after, until} = save.params.diff
    expect(planProblems(plan, cluster)).toEqual([])
    expect(planProblems(change(plan, save.id, (p) => ((p.diff as {after: unknown}).after = {file: after.file, pos: 4})), cluster)).toEqual([
      `step ${save.id} params.diff.after: the plan says ${after.file}:4, its observed facts give db3 the read position ${after.file}:${after.pos}`,
    ])
    expect(planProblems(change(plan, save.id, (p) => ((p.diff as {until: unknown}).until = {file: until.file, pos: until.pos - 1})), cluster)).toEqual([
      `step ${save.id} params.diff.until: the plan says ${until.file}:${until.pos - 1}, its observed facts give db2 the read position ${until.file}:${until.pos}`,
    ])
  })

  it('wait_relay_log_applied.until is the server\'s read position in the plan\'s observed facts (which apply checks live)', () => {
    const {cluster, plan} = load('mariadb-file-lagging')
    const wait = plan.steps.find((s) => s.type === 'wait_relay_log_applied')!
    const read = plan.observed.servers.find((s) => s.name === wait.server)!.read!
    const expected = [`step ${wait.id} params.until: the plan says ${read.file}:${read.pos + 100}, its observed facts give ${wait.server} the read position ${read.file}:${read.pos}`]
    const edited = change(plan, wait.id, (p) => (p.until = {file: read.file, pos: read.pos + 100}))
    expect(planProblems(edited, cluster)).toEqual(expected)
    // The observed section edited along with the step does not pass it: the facts are what apply compares with the live servers.
    const both = {...edited, observed: {...edited.observed, servers: edited.observed.servers.map((s) => (s.name === wait.server ? {...s, read: {file: read.file, pos: read.pos + 100}} : s))}}
    expect(planProblems(both, cluster)).toEqual(expected)
  })
})

describe('targetProblem: a rebuild or removal runs only on the server the operator names at apply (--target)', () => {
  const file = 'plans/app1/x.json'
  it('rebuild: refused without --target or with another server, each naming the plan\'s server; the right one passes', () => {
    const {cluster, snapshot} = healthy()
    const plan = planRebuild(cluster, snapshot, header, 'db4')
    expect(targetProblem(plan, file, undefined)).toEqual({problem: `${file} rebuilds db4 (its datadir is replaced): name it with --target db4 to confirm; nothing was changed`, next: `review it ("mha show ${file}"), then "mha apply ${file} --target db4"`})
    expect(targetProblem(plan, file, 'db2')?.problem).toBe(`${file} rebuilds db4 (its datadir is replaced), not db2 as --target says; nothing was changed`)
    expect(targetProblem(plan, file, 'db2')?.next).toMatch(/^to rebuild db2, plan it \("mha plan --cluster \S+ --rebuild db2"\) and apply that plan; to rebuild db4, "mha apply plans\/app1\/x\.json --target db4"$/)
    expect(targetProblem(plan, file, 'db4')).toBeNull()
    // A plan whose steps were aimed at another server is refused by the name the operator gave, whatever its decision says.
    expect(targetProblem(aimed(plan, 'db4', 'db3', 'db1'), file, 'db4')?.problem).toBe(`${file} rebuilds db3 (its datadir is replaced), not db4 as --target says; nothing was changed`)
  })

  it('remove: the same; other plans take no --target (refused, not ignored)', () => {
    const {cluster, snapshot} = healthy()
    const plan = planRemove(cluster, snapshot, header, 'db3')
    expect(targetProblem(plan, file, undefined)?.problem).toBe(`${file} removes db3 (its replication is reset and it is listed out of service): name it with --target db3 to confirm; nothing was changed`)
    expect(targetProblem(plan, file, 'db2')?.problem).toBe(`${file} removes db3 (its replication is reset and it is listed out of service), not db2 as --target says; nothing was changed`)
    expect(targetProblem(plan, file, 'db3')).toBeNull()
    const live = healthy('mariadb-gtid-switchover')
    const switchover = planSwitchover(live.cluster, live.snapshot, header, 'db3')
    expect(targetProblem(switchover, file, undefined)).toBeNull()
    expect(targetProblem(switchover, file, 'db3')).toEqual({problem: `--target db3: ${file} is a switchover plan; --target confirms the server of a rebuild or remove plan only; nothing was changed`, next: `apply ${file} without --target`})
  })
})
