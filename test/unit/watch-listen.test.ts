import {execFileSync, spawn} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import parsePrometheusTextFormat, {type MetricFamily} from 'parse-prometheus-text-format'
import {afterAll, describe, expect, it} from 'vitest'
import {processStartTime} from '../../src/store/lock.js'
import type {ApplyReport} from '../../src/apply/events.js'
import {parseClusterConfig} from '../../src/config/load.js'
import type {Plan} from '../../src/plan/types.js'
import {problemsOf, validator} from '../../src/schema/validator.js'
import {StatusServer} from '../../src/watch/http.js'
import {parseListenAddress} from '../../src/watch/listen-address.js'
import {WatchMetrics} from '../../src/watch/metrics.js'
import {watchViewOf, writePresence} from '../../src/watch/presence.js'
import {plansDirOf, recordManualApply} from '../../src/store/manual-apply.js'
import {failoverBlocked} from '../../src/store/cluster-state.js'
import {FileStore, readWatchState, writeWatchState} from '../../src/store/files.js'
import {clusterStatus, ReplicaMonitor, type WatchStatus} from '../../src/watch/status-api.js'
import {automaticFailoverCell, watchLine} from '../../src/watch/status-text.js'
import {ClusterWatcher} from '../../src/watch/watcher.js'

const secret = 's3cret-mha-pw'
const clusterYaml = (name: string) => `name: ${name}
user: mha
password: ${secret}
repl_user: repl
repl_password: s3cret-repl-pw
servers:
  - {name: db1, hostname: db1.example, ip: 10.0.0.1}
  - {name: db2, hostname: db2.example, ip: 10.0.0.2}
  - {name: db3, hostname: db3.example, ip: 10.0.0.3}
`
const plansDir = mkdtempSync(join(tmpdir(), 'mha-unit-listen-'))
const quiet = () => undefined

/** Watchers in known states, as the loop leaves them; nothing is started, nothing is contacted. */
function fixture() {
  const app1 = new ClusterWatcher(parseClusterConfig(clusterYaml('app1'), 'clusters/app1.yaml'), {plansDir, git: false, log: quiet})
  const app2 = new ClusterWatcher(parseClusterConfig(clusterYaml('app2'), 'clusters/app2.yaml'), {plansDir, git: false, log: quiet})
  const now = Date.parse('2026-12-01T10:00:10Z')
  app1.master = app1.cluster.servers[0]
  app1.verdict = {state: 'healthy'}
  Object.assign(app1.health, {lastPingAt: now - 500, lastPingOk: true, lastSuccessfulPingAt: now - 2500})
  app1.health.failovers.push({at: '2026-12-01T09:59:00.000Z', status: 'applied', durationMs: 2040})
  writeWatchState(plansDir, 'app1', {
    lastFailover: {at: '2026-12-01T09:58:59.000Z', plan: join(plansDir, 'app1/x-failover.json'), report: join(plansDir, 'app1/x-failover.report.json'), status: 'applied', deadMaster: 'db0', newMaster: 'db1'},
    acknowledged: false,
  })
  const monitor = new ReplicaMonitor(app1)
  monitor.checkedAt = now - 1000
  monitor.replicas = [
    {name: 'db2', up: true, reachable: true, ioThread: 'running', sqlThread: 'running', lagSeconds: 3, problem: null},
    {name: 'db3', up: false, reachable: true, ioThread: 'connecting', sqlThread: 'running', lagSeconds: null, problem: 'IO thread connecting'},
  ]
  // app2: access denied on its master: alive, but mha cannot judge it.
  app2.master = app2.cluster.servers[0]
  app2.verdict = {state: 'refusing', reason: "db1 (10.0.0.1:3306): access denied for user 'mha': it answers, so it is alive"}
  Object.assign(app2.health, {lastPingAt: now - 500, lastPingOk: false, lastSuccessfulPingAt: null})
  const status: WatchStatus = {
    format: 1,
    watch: {pid: process.pid, startedAt: '2026-12-01T10:00:00.000Z', listen: '127.0.0.1:9104', version: 'mha 0.1.0'},
    generatedAt: new Date(now).toISOString(),
    clusters: [clusterStatus(app1.cluster, app1, monitor, plansDir, now), clusterStatus(app2.cluster, app2, undefined, plansDir, now)],
  }
  return {app1, app2, monitor, status, now}
}

const family = (families: MetricFamily[], name: string) => {
  const f = families.find((x) => x.name === name)
  if (!f) throw new Error(`no metric ${name} in: ${families.map((x) => x.name).join(', ')}`)
  return f
}
const value = (families: MetricFamily[], name: string, labels: Record<string, string>) => {
  const samples = family(families, name).metrics.filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
  expect(samples, `${name}${JSON.stringify(labels)}`).toHaveLength(1)
  return Number(samples[0]!.value)
}

describe('mha watch --listen: /metrics', () => {
  it('exposes per-cluster gauges and counters in the Prometheus text format, with names, labels and types an operator relies on', async () => {
    const {status, now} = fixture()
    const text = await new WatchMetrics().render(status, now)
    const families = parsePrometheusTextFormat(text)
    const types = Object.fromEntries(families.map((f) => [f.name, f.type]))
    expect(types).toMatchObject({
      mha_watcher_up: 'GAUGE',
      mha_master_up: 'GAUGE',
      mha_replicas_up: 'GAUGE',
      mha_replica_lag_seconds: 'GAUGE',
      mha_seconds_since_last_successful_ping: 'GAUGE',
      mha_failovers_total: 'COUNTER',
      mha_last_failover_duration_seconds: 'GAUGE',
      mha_failover_blocked: 'GAUGE',
      mha_cluster_monitored: 'GAUGE',
    })
    for (const f of families) expect(f.help.length, `${f.name} has a help text`).toBeGreaterThan(20)
    expect(value(families, 'mha_watcher_up', {})).toBe(1)
    expect(value(families, 'mha_master_up', {cluster: 'app1'})).toBe(1)
    expect(value(families, 'mha_master_up', {cluster: 'app2'})).toBe(0)
    expect(value(families, 'mha_cluster_monitored', {cluster: 'app1'})).toBe(1)
    expect(value(families, 'mha_cluster_monitored', {cluster: 'app2'})).toBe(0)
    expect(value(families, 'mha_replicas_up', {cluster: 'app1'})).toBe(1)
    expect(value(families, 'mha_replica_lag_seconds', {cluster: 'app1', server: 'db2'})).toBe(3)
    // db3 reports no lag, app2's replicas were never looked at: absent, not a made-up 0.
    expect(family(families, 'mha_replica_lag_seconds').metrics).toHaveLength(1)
    expect(family(families, 'mha_replicas_up').metrics.map((m) => m.labels?.cluster)).toEqual(['app1'])
    expect(value(families, 'mha_seconds_since_last_successful_ping', {cluster: 'app1'})).toBe(2.5)
    expect(family(families, 'mha_seconds_since_last_successful_ping').metrics).toHaveLength(1)
    expect(value(families, 'mha_failovers_total', {cluster: 'app1', status: 'applied'})).toBe(1)
    expect(value(families, 'mha_failovers_total', {cluster: 'app1', status: 'failed'})).toBe(0)
    expect(value(families, 'mha_failovers_total', {cluster: 'app2', status: 'applied'})).toBe(0)
    expect(value(families, 'mha_last_failover_duration_seconds', {cluster: 'app1'})).toBe(2.04)
    expect(value(families, 'mha_failover_blocked', {cluster: 'app1'})).toBe(1)
    expect(value(families, 'mha_failover_blocked', {cluster: 'app2'})).toBe(0)
    expect(text).not.toContain(secret)
    expect(text).not.toContain('s3cret-repl-pw')
  })

  it.skipIf(!existsSync('/usr/bin/promtool'))("passes Prometheus's own parser and linter (promtool check metrics)", async () => {
    const {status, now} = fixture()
    const text = await new WatchMetrics().render(status, now)
    // Exit 0 and no output: parsed, and no naming or help problem found.
    expect(execFileSync('promtool', ['check', 'metrics'], {input: text, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe']})).toBe('')
  })
})

describe('mha watch --listen: /status', () => {
  it('says per cluster what the watch sees, valid against schemas/watch-status.schema.json, without secrets', () => {
    const {status} = fixture()
    const validate = validator('watch-status.schema.json')
    expect(validate(status), JSON.stringify(problemsOf(validate.errors))).toBe(true)
    const [app1, app2] = status.clusters
    expect(app1).toMatchObject({name: 'app1', monitored: true, master: 'db1', verdict: {state: 'healthy', reason: null}, lastSuccessfulPingAt: '2026-12-01T10:00:07.500Z', failoverBlocked: true})
    expect(app1!.failoverBlockedReason).toMatch(/db0 -> db1 .*"mha ack --cluster app1"/)
    expect(app1!.lastFailover).toMatchObject({deadMaster: 'db0', newMaster: 'db1', acknowledged: false})
    expect(app2).toMatchObject({monitored: false, replicas: null, failoverBlocked: false, lastFailover: null})
    expect(app2!.notMonitoredReason).toMatch(/refuses mha's connections .*access denied/)
    expect(JSON.stringify(status)).not.toMatch(/s3cret/)
    // The schema is not a rubber stamp.
    expect(validate({...status, clusters: [{...app1, monitored: 'yes'}]})).toBe(false)
    expect(validate({...status, clusters: [{...app1, password: secret}]})).toBe(false)
  })

  it('a cluster without a master found is not monitored, and says why', () => {
    const {app1} = fixture()
    app1.master = undefined
    app1.health.notMonitored = 'no master found among the servers of the cluster file'
    const s = clusterStatus(app1.cluster, app1, undefined, plansDir)
    expect(s).toMatchObject({monitored: false, master: null, notMonitoredReason: 'no master found among the servers of the cluster file'})
  })
})

describe('mha watch --listen: the server', () => {
  const server = (() => {
    const {app1, app2} = fixture()
    return new StatusServer({watchers: [app1, app2], plansDir, address: {host: '127.0.0.1', port: 0}, version: 'mha test', startedAt: new Date().toISOString()})
  })()
  afterAll(() => server.stop())

  it('binds only the given address and serves /metrics and /status; other paths are 404', async () => {
    const bound = await server.start()
    expect(bound.host).toBe('127.0.0.1')
    expect(bound.port).toBeGreaterThan(0)
    const metrics = await fetch(`http://127.0.0.1:${bound.port}/metrics`)
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    expect(value(parsePrometheusTextFormat(await metrics.text()), 'mha_master_up', {cluster: 'app1'})).toBe(1)
    const status = (await (await fetch(`http://127.0.0.1:${bound.port}/status`)).json()) as WatchStatus
    expect(validator('watch-status.schema.json')(status)).toBe(true)
    expect(status.watch.listen).toBe(`127.0.0.1:${bound.port}`)
    expect(status.clusters.map((c) => c.name)).toEqual(['app1', 'app2'])
    expect((await fetch(`http://127.0.0.1:${bound.port}/nope`)).status).toBe(404)
    // Not on another loopback address.
    await expect(fetch(`http://127.0.0.2:${bound.port}/metrics`)).rejects.toThrow()
  })

  it('refuses a port in use with one line', async () => {
    const {app1} = fixture()
    const second = new StatusServer({watchers: [app1], plansDir, address: server.address, version: 'x', startedAt: ''})
    await expect(second.start()).rejects.toThrow(/^--listen 127\.0\.0\.1:\d+: cannot listen there \(the port is in use\)$/)
  })
})

describe('--listen ADDR:PORT', () => {
  it('accepts IPv4, [IPv6] and host names; refuses anything else', () => {
    expect(parseListenAddress('127.0.0.1:9104')).toEqual({host: '127.0.0.1', port: 9104})
    expect(parseListenAddress('[::1]:9104')).toEqual({host: '::1', port: 9104})
    expect(parseListenAddress('localhost:9104')).toEqual({host: 'localhost', port: 9104})
    for (const bad of ['9104', '127.0.0.1', '127.0.0.1:', '127.0.0.1:99999', '127.0.0.1:91a', '::1:9104', 'http://127.0.0.1:9104', '300.1.1.1:80', ':9104'])
      expect(() => parseListenAddress(bad), bad).toThrow(/^--listen ".*": give ADDR:PORT, for example 127\.0\.0\.1:9104/)
  })
})

describe('mha status without and with a watch', () => {
  it('no watch file, or one whose pid is gone or reused: no watch, automatic failover OFF', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mha-unit-presence-'))
    expect(await watchViewOf(dir, 'app1')).toEqual({running: false})
    expect(watchLine('app1', {running: false})).toBe('no mha watch is running for app1: automatic failover is OFF')
    expect(automaticFailoverCell({running: false}, false)).toBe('OFF: no mha watch')
    // pid 1 lives, but it is not the watch that wrote this file.
    writePresence(dir, {pid: 1, started: '1', startedAt: 'then', clusters: ['app1'], listen: null})
    expect(await watchViewOf(dir, 'app1')).toEqual({running: false})
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'])
    try {
      await new Promise((r) => setTimeout(r, 100))
      writePresence(dir, {pid: child.pid!, started: processStartTime(child.pid!), startedAt: 'now', clusters: ['app1'], listen: null})
      expect(await watchViewOf(dir, 'app1')).toMatchObject({running: true, pid: child.pid, listen: null})
      expect(await watchViewOf(dir, 'app2')).toEqual({running: false})
      expect(automaticFailoverCell({running: true, pid: 7, startedAt: 'now', listen: null}, false)).toBe('on (watch pid 7)')
      expect(automaticFailoverCell({running: true, pid: 7, startedAt: 'now', listen: null}, true)).toBe('blocked until mha ack')
    } finally {
      child.kill('SIGKILL')
    }
  })
})

describe('a failover applied by hand is recorded for anti-flapping and status', () => {
  const plan = (kind: string) => ({cluster: 'app1', kind, decision: {deadMaster: kind === 'failover' ? 'db1' : null, newMaster: 'db2'}}) as unknown as Plan
  const report = (status: string) => ({status, durationMs: 1234}) as unknown as ApplyReport

  it('finds the plans folder from the plan file, records a failover as unacknowledged and writes its report', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mha-unit-record-'))
    mkdirSync(join(dir, 'app1'))
    expect(plansDirOf(join(dir, 'app1', '20261201T100000Z-failover.json'), 'app1')).toBe(dir)
    expect(plansDirOf(join(dir, 'elsewhere', 'f.json'), 'app1')).toBe('plans')
    const planFile = join(dir, 'app1', '20261201T100000Z-failover.json')
    expect(await recordManualApply(new FileStore(dir, 'app1'), planFile, plan('failover'), report('applied'), {now: new Date('2026-12-01T10:00:05Z')})).not.toBeNull()
    const state = readWatchState(dir, 'app1')
    expect(state).toEqual({
      lastFailover: {at: '2026-12-01T10:00:05.000Z', plan: planFile, report: planFile.replace(/\.json$/, '.report.json'), status: 'applied', deadMaster: 'db1', newMaster: 'db2', kind: 'failover', by: 'apply'},
      acknowledged: false,
      // The failed-over master leaves the active topology: the next failover does not wait for it.
      outOfService: [{server: 'db1', since: '2026-12-01T10:00:05.000Z', reason: 'failed over to db2 (mha apply)', plan: planFile}],
    })
    expect(JSON.parse(readFileSync(state.lastFailover!.report, 'utf8'))).toMatchObject({status: 'applied'})
    expect(failoverBlocked(state, 480, Date.parse('2026-12-01T10:30:00Z'))).toMatch(/db1 -> db2/)
  })

  it('ignores refused and failed applies and other kinds; a switchover is recorded but blocks nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mha-unit-record-'))
    mkdirSync(join(dir, 'app1'))
    const planFile = join(dir, 'app1', 'p.json')
    const store = new FileStore(dir, 'app1')
    expect(await recordManualApply(store, planFile, plan('failover'), report('failed'))).toBeNull()
    expect(await recordManualApply(store, planFile, plan('failover'), report('refused'))).toBeNull()
    expect(await recordManualApply(store, planFile, plan('repair'), report('applied'))).toBeNull()
    expect(readWatchState(dir, 'app1').lastFailover).toBeNull()
    await recordManualApply(store, planFile, plan('switchover'), report('applied'))
    const state = readWatchState(dir, 'app1')
    expect(state.lastFailover).toMatchObject({kind: 'switchover', newMaster: 'db2'})
    expect(failoverBlocked(state, 480)).toBeNull()
  })
})
