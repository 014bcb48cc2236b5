import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'
import {parseClusterConfig} from '../../src/config/load.js'
import type {SqlFacts, Snapshot} from '../../src/inspect/types.js'
import {whyNoFailover} from '../../src/watch/act.js'
import {outcomeOf} from '../../src/watch/follow.js'
import type {Observation} from '../../src/watch/judge.js'
import {followersToLook, nextPingDelayMs, replacedServers} from '../../src/watch/monitor.js'
import {failoverPlan, knownDown, type DeathFinding} from '../../src/watch/plan-failover.js'

// The pure parts of watch's phases (the judge's are in judge.test.ts): what each decides from plain data.

const goldenDir = join(dirname(fileURLToPath(import.meta.url)), '../golden')
const timeout = {ok: false as const, kind: 'timeout' as const, message: 'db1 (127.0.0.1:3306): timed out'}

describe('monitor: when the next ping comes', () => {
  it('each ping_interval while healthy; while failing, 50 ms after a prompt refusal and 250 ms after a silence, never later than the interval', () => {
    expect(nextPingDelayMs(1000, 0, 5, 7000)).toBe(1000)
    // A healthy master is pinged at the next multiple of the interval: start to start, whenever the last ping ended.
    expect(nextPingDelayMs(1000, 0, 5, 7003)).toBe(997)
    expect(nextPingDelayMs(1000, 0, 5, 7999.5)).toBe(0.5)
    expect(nextPingDelayMs(3000, 0, 5, 7003)).toBe(1997)
    expect(nextPingDelayMs(1000, 1, 5)).toBe(50)
    expect(nextPingDelayMs(1000, 1, 1000)).toBe(250)
    expect(nextPingDelayMs(100, 2, 1000)).toBe(100)
  })
})

describe('monitor: the topology followed from what the looks read', () => {
  const server = (name: string) => ({name}) as never
  it('a server answering with another server_id than at the discovery is another topology; one not answering or not seen then says nothing', () => {
    const discovered = new Map([['db1', 1], ['db2', 2]])
    expect(replacedServers(discovered, [{server: server('db1'), serverId: 1}, {server: server('db2'), serverId: 2}])).toBeNull()
    expect(replacedServers(discovered, [{server: server('db1'), serverId: null}, {server: server('db3'), serverId: 7}])).toBeNull()
    expect(replacedServers(discovered, [{server: server('db1'), serverId: 1}, {server: server('db2'), serverId: 12}])).toBe('db2 answers with server_id 12 (it was 2)')
  })
})

describe('monitor: the followers checked through the master', () => {
  const ids = new Map([['db2', 2], ['db3', 3]])
  it('a follower still registered with the master (by its server id) needs no look of its own; one gone, or unknown, does; all when the master cannot tell', () => {
    expect(followersToLook(['db2', 'db3'], ids, new Set([2, 3, 9]))).toEqual([])
    expect(followersToLook(['db2', 'db3'], ids, new Set([3]))).toEqual(['db2'])
    expect(followersToLook(['db2', 'db4'], ids, new Set([2, 4]))).toEqual(['db4'])
    expect(followersToLook(['db2', 'db3'], ids, undefined)).toEqual(['db2', 'db3'])
  })
})

describe('plan: what the failover is planned from', () => {
  const dead = parseClusterConfig(readFileSync(join(goldenDir, 'mariadb-file-lagging/cluster.yaml'), 'utf8'), 'cluster.yaml', {}).servers[0]!
  const finding = (observation: Partial<Observation>): DeathFinding => ({dead, reason: 'db1 dead after 2 tries', observation: {master: timeout, replicas: [], sshReachable: true, ...observation}, lastFailureAt: 1234})

  it("the dead master's failed ping is not waited for again, nor its SSH when its host did not answer either", () => {
    expect(knownDown(finding({}))).toEqual([{server: 'db1', sql: {reachable: false, kind: 'timeout', message: timeout.message, observedAt: 1234}}])
    expect(knownDown(finding({sshReachable: false}))[0]!.ssh).toMatchObject({reachable: false, kind: 'unreachable', message: "db1's host did not answer SSH when watch declared it dead"})
    // Not asked (no kept session, the probe not started): the inspection tries it.
    expect(knownDown(finding({sshReachable: null}))[0]!.ssh).toBeUndefined()
    expect(knownDown(finding({master: {ok: true}}))).toEqual([])
  })

  it('replicas that still showed an IO thread: the plan records the death as forced, with the judge\'s reason; otherwise not', () => {
    const dir = join(goldenDir, 'mariadb-file-lagging')
    const cluster = parseClusterConfig(readFileSync(join(dir, 'cluster.yaml'), 'utf8'), join(dir, 'cluster.yaml'), {})
    const snapshot = JSON.parse(readFileSync(join(dir, 'snapshot.json'), 'utf8')) as Snapshot
    expect(failoverPlan(cluster, snapshot, finding({replicas: [{name: 'db2', reachable: true, ioThread: 'connecting', lastIoError: ''}]}), []).decision.forcedDead).toBeUndefined()
    // A host gone without a reset: the replicas still say Yes, the other routes found it dead.
    for (const s of snapshot.servers.slice(1)) (s.sql as SqlFacts).replica!.ioThread = 'running'
    const plan = failoverPlan(cluster, snapshot, finding({replicas: [{name: 'db2', reachable: true, ioThread: 'running', lastIoError: ''}]}), [])
    expect(plan.decision.forcedDead).toBe('mha watch: db1 dead after 2 tries')
    expect(plan.decision.notes[0]).toBe('the operator declared db1 dead although db2, db3 still replicated from it: mha watch: db1 dead after 2 tries')
  })

  it('a server out of service (taken out by an earlier failover) that does not answer is left out, not a reason to refuse', () => {
    const dir = join(goldenDir, 'mariadb-file-lagging')
    const cluster = parseClusterConfig(readFileSync(join(dir, 'cluster.yaml'), 'utf8'), join(dir, 'cluster.yaml'), {})
    const snapshot = JSON.parse(readFileSync(join(dir, 'snapshot.json'), 'utf8')) as Snapshot
    snapshot.servers[2]!.sql = {reachable: false, kind: 'unreachable', message: 'db3: cannot connect (ECONNREFUSED)'}
    expect(() => failoverPlan(cluster, snapshot, finding({}), [])).toThrow(/db3 is unreachable too/)
    expect(failoverPlan(cluster, snapshot, finding({}), ['db3']).decision.notes).toContain('db3 is out of service since an earlier failover: it is left out')
  })
})

describe('act: whether a failover may start', () => {
  const acked = {lastFailover: null, acknowledged: true}
  const recent = {lastFailover: {at: '2026-01-01T10:00:00.000Z', plan: 'p.json', report: 'p.report.json', status: 'applied', deadMaster: 'db0', newMaster: 'db1'}, acknowledged: false}
  const now = Date.parse('2026-01-01T11:00:00.000Z')

  it('alone, unless a failover within last_failover_minute waits for mha ack', () => {
    expect(whyNoFailover('app1', 'db1', undefined, acked, 480, now)).toBeNull()
    expect(whyNoFailover('app1', 'db1', undefined, recent, 480, now)).toMatch(/^db1 is dead but no automatic failover: the last failover \(db0 -> db1 at .*\) is 60 min old, within last_failover_minute=480; review it, then run "mha ack --cluster app1" to allow another$/)
    expect(whyNoFailover('app1', 'db1', undefined, recent, 60, now)).toBeNull()
  })

  it('with etcd, only while this manager leads the cluster', () => {
    const coord = (leads: boolean, problem: string | null) => ({leads: () => leads, session: {problem}})
    expect(whyNoFailover('app1', 'db1', coord(true, null), acked, 480, now)).toBeNull()
    expect(whyNoFailover('app1', 'db1', coord(false, 'etcd unreachable'), acked, 480, now)).toBe('db1 is dead but no automatic failover: etcd unreachable; it starts once etcd answers again')
    expect(whyNoFailover('app1', 'db1', coord(false, null), null, 480, now)).toMatch(/this manager no longer leads the cluster/)
  })
})

describe('follow: the line that ends an apply', () => {
  it('says what was applied and how it ended', () => {
    expect(outcomeOf({kind: 'failover'}, {status: 'applied', message: ''})).toBe('failover done')
    expect(outcomeOf({kind: 'failover'}, {status: 'partial', message: ''})).toBe('failover done, replicas left out')
    expect(outcomeOf({kind: 'failover'}, {status: 'failed', message: 'x'})).toBe('failover failed')
    expect(outcomeOf({kind: 'switchover'}, {status: 'failed', message: 'refused; rolled back (db2 read only again)'})).toBe('switchover rolled back')
    expect(outcomeOf({kind: 'switchover'}, {status: 'applied', message: ''})).toBe('switchover done')
  })
})
