import {spawn, type ChildProcess} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {parse, stringify} from 'yaml'
import {validator} from '../../src/schema/validator.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {adminEndpoint} from '../../src/sandbox/sandbox.js'
import {presenceFile} from '../../src/watch/presence.js'
import type {WatchStatus} from '../../src/watch/status-api.js'
import {freePort, killMasterAndWait, runMha, spawnWatch, startSandbox, type TestSandbox, type WatchLogLine} from './harness.js'

// A real Prometheus server (Debian's prometheus package, scripts/setup.sh) scrapes the watch.
const PROMETHEUS = '/usr/bin/prometheus'
const cluster = 'itlisten'


let sandbox: TestSandbox | undefined
let watch: ChildProcess | undefined
let prometheus: ChildProcess | undefined
let lines: WatchLogLine[] = []
const work = mkdtempSync(join(tmpdir(), 'mha-it-listen-'))
const plansDir = join(work, 'plans')

afterAll(async () => {
  for (const child of [watch, prometheus]) if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  await sandbox?.down()
})


/** One instant query through Prometheus's HTTP API: the value of the single series, or null when there is none. */
async function promQuery(port: number, query: string): Promise<number | null> {
  const response = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(query)}`)
  const body = (await response.json()) as {status: string; data: {result: {metric: Record<string, string>; value: [number, string]}[]}}
  expect(body.status).toBe('success')
  if (body.data.result.length === 0) return null
  expect(body.data.result, query).toHaveLength(1)
  return Number(body.data.result[0]!.value[1])
}

const waitForProm = (port: number, query: string, wanted: number, timeoutMs = 30_000) => {
  let last: number | null | string = null
  return waitFor(`Prometheus to see ${query} == ${wanted}`, timeoutMs, async () => {
    try {
      last = await promQuery(port, query)
    } catch (error) {
      last = String(error)
    }
    return last === wanted
  }).catch((error: Error) => {
    throw new Error(`${error.message} (last: ${String(last)})`)
  })
}

const waitForEvent = (event: string, timeoutMs = 30_000) => waitFor(`watch to log "${event}" (got: ${lines.map((l) => l.event).join(', ')})`, timeoutMs, () => lines.some((l) => l.event === event))

describe('mha watch --listen, scraped by a real Prometheus; mha status tells the truth', () => {
  it('no watch: status says automatic failover is OFF', async () => {
    sandbox = await startSandbox(cluster, 151)
    const status = await runMha(['status', '--config-dir', dirname(sandbox.configFile), '--plans-dir', plansDir])
    expect(status.code).toBe(0)
    expect(status.stdout).toMatch(new RegExp(`${cluster}\\s+db1\\s+db2,db3\\s+ok\\s+-\\s+OFF: no mha watch`))
    expect(status.stdout).toContain(`no mha watch is running for ${cluster}: automatic failover is OFF`)
    expect(status.stdout).not.toMatch(/allowed/)
  })

  it('refuses a malformed --listen with one line', async () => {
    const result = await runMha(['watch', '--config-dir', dirname(sandbox!.configFile), '--plans-dir', plansDir, '--listen', '127.0.0.151'])
    expect(result.code).not.toBe(0)
    expect(result.stderr.trim()).toMatch(/^mha: --listen "127\.0\.0\.151": give ADDR:PORT, for example 127\.0\.0\.1:9104/)
    expect(result.stderr.trim().split('\n')).toHaveLength(1)
  })

  it('Prometheus sees the master up, the failover watch runs, then a dead master it may not fail over; status shows the watch view', async () => {
    const s = sandbox!
    const watchPort = await freePort()
    const running = spawnWatch(['--config-dir', dirname(s.configFile), '--plans-dir', plansDir, '--listen', `127.0.0.1:${watchPort}`])
    watch = running.child
    lines = running.lines
    await waitForEvent('healthy')
    expect(lines[0]!.message).toContain(`/metrics and /status on http://127.0.0.1:${watchPort}`)

    // Its own /status, valid against the schema; the replicas are looked at within seconds.
    await waitFor('the watch to see both replicas', 15_000, async () => {
      const doc = (await (await fetch(`http://127.0.0.1:${watchPort}/status`)).json()) as WatchStatus
      return doc.clusters[0]!.replicas?.filter((r) => r.up).length === 2
    })
    const doc = (await (await fetch(`http://127.0.0.1:${watchPort}/status`)).json()) as WatchStatus
    expect(validator('watch-status.schema.json')(doc)).toBe(true)
    expect(doc.clusters[0]).toMatchObject({name: cluster, monitored: true, master: 'db1', verdict: {state: 'healthy'}, failoverBlocked: false, lastFailover: null})
    const secret = adminEndpoint(s.state, s.state.hosts[0]!).password.reveal()
    expect(secret.length).toBeGreaterThan(8)
    expect(JSON.stringify(doc)).not.toContain(secret)
    expect(await (await fetch(`http://127.0.0.1:${watchPort}/metrics`)).text()).not.toContain(secret)

    const status = await runMha(['status', '--config-dir', dirname(s.configFile), '--plans-dir', plansDir])
    expect(status.stdout).toMatch(new RegExp(`${cluster}\\s+db1\\s+db2,db3\\s+ok\\s+-\\s+on \\(watch pid ${watch.pid}\\)`))
    expect(status.stdout).toMatch(new RegExp(`${cluster}: mha watch pid ${watch.pid} .* sees master db1 healthy, last successful ping \\d+\\.\\d s ago; replicas up 2/2: db2 \\(lag 0 s\\), db3 \\(lag 0 s\\)`))

    const promPort = await freePort()
    const promDir = join(work, 'prometheus')
    mkdirSync(promDir)
    writeFileSync(
      join(promDir, 'prometheus.yml'),
      `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: mha\n    scrape_interval: 1s\n    scrape_timeout: 900ms\n    static_configs:\n      - targets: ['127.0.0.1:${watchPort}']\n`,
    )
    prometheus = spawn(PROMETHEUS, [`--config.file=${join(promDir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(promDir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'], {stdio: ['ignore', 'ignore', 'pipe']})
    let promErr = ''
    prometheus.stderr!.on('data', (c: Buffer) => (promErr += c.toString()))
    try {
      await waitForProm(promPort, `up{job="mha"}`, 1)
      await waitForProm(promPort, `mha_master_up{cluster="${cluster}"}`, 1)
      expect(await promQuery(promPort, `mha_cluster_monitored{cluster="${cluster}"}`)).toBe(1)
      expect(await promQuery(promPort, 'mha_watcher_up')).toBe(1)
      await waitForProm(promPort, `mha_replicas_up{cluster="${cluster}"}`, 2)
      expect(await promQuery(promPort, `mha_failovers_total{cluster="${cluster}",status="applied"}`)).toBe(0)

      // The master dies: watch fails over, and Prometheus sees the counter move and anti-flapping engage.
      await killMasterAndWait(s)
      await waitForEvent('failover done')
      await waitForProm(promPort, `mha_failovers_total{cluster="${cluster}",status="applied"}`, 1)
      await waitForProm(promPort, `mha_failover_blocked{cluster="${cluster}"}`, 1)
      expect(await promQuery(promPort, `mha_last_failover_duration_seconds{cluster="${cluster}"} > 0`)).toBeGreaterThan(0)
      await waitForProm(promPort, `mha_master_up{cluster="${cluster}"}`, 1)

      // The new master dies within last_failover_minute: no failover; the gauge stays at 0 for Prometheus.
      process.kill(s.state.hosts[1]!.mariadbdPid!, 'SIGKILL')
      await waitForEvent('blocked')
      await waitForProm(promPort, `mha_master_up{cluster="${cluster}"}`, 0)
      expect(await promQuery(promPort, `mha_seconds_since_last_successful_ping{cluster="${cluster}"} > 1`)).toBeGreaterThan(1)
      expect(await promQuery(promPort, `mha_failovers_total{cluster="${cluster}",status="applied"}`)).toBe(1)
    } catch (error) {
      throw new Error(`${(error as Error).message}\nprometheus stderr: ${promErr.slice(-2000)}`)
    } finally {
      prometheus.kill('SIGTERM')
      await waitFor('prometheus to exit', 20_000, () => prometheus!.exitCode !== null || prometheus!.signalCode !== null)
    }

    const blocked = await runMha(['status', '--config-dir', dirname(s.configFile), '--plans-dir', plansDir])
    expect(blocked.stdout).toMatch(new RegExp(`${cluster}\\s+.*db1->db2 applied\\s+blocked until mha ack`))
    expect(blocked.stdout).toMatch(new RegExp(`${cluster}: mha watch pid ${watch.pid} .* sees master db2 dead: .*; failover blocked: the last failover \\(db1 -> db2`))

    // SIGTERM: the server closes with the watch, and the watch file goes.
    watch.kill('SIGTERM')
    await waitFor('watch to exit', 20_000, () => watch!.exitCode !== null)
    expect(watch.exitCode).toBe(0)
    await expect(fetch(`http://127.0.0.1:${watchPort}/metrics`)).rejects.toThrow()
    expect(existsSync(presenceFile(plansDir))).toBe(false)
  })

  it('a failover applied by hand is the last failover status shows, and no watch means OFF', async () => {
    const s = sandbox!
    // db1 died first and stays dead: the operator marks it ignore_fail, in a copy of the cluster file.
    const doc = parse(readFileSync(s.configFile, 'utf8')) as {servers: Record<string, unknown>[]}
    doc.servers[0]!.ignore_fail = true
    const config = join(work, 'manual', `${cluster}.yaml`)
    mkdirSync(dirname(config))
    writeFileSync(config, stringify(doc))
    const file = join(plansDir, cluster, 'manual-failover.json')
    const plan = await runMha(['plan', '--config', config, '-o', file])
    expect(plan.code, plan.stderr).toBe(2)
    const applied = await runMha(['apply', file, '--config', config])
    expect(applied.code, applied.stderr).toBe(0)
    const status = await runMha(['status', '--config-dir', dirname(s.configFile), '--plans-dir', plansDir])
    expect(status.stdout).toMatch(new RegExp(`${cluster}\\s+db3\\s+-\\s+.*\\d{4}-\\d\\d-\\d\\dT\\S+ db2->db3 applied\\s+OFF: no mha watch`))
    expect(status.stdout).toContain(`no mha watch is running for ${cluster}: automatic failover is OFF`)
    expect(existsSync(join(plansDir, cluster, 'manual-failover.report.json'))).toBe(true)
  })
})
