import {mkdirSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {withConnection} from '../../src/inspect/mysql.js'
import type {Plan} from '../../src/plan/types.js'
import {HaproxyRuntime} from '../../src/routing/haproxy.js'
import {startLocalHaproxy, stopLocalHaproxy, type LocalHaproxy} from '../../src/sandbox/haproxy.js'
import {secretsOf} from '../../src/sandbox/sandbox.js'
import {killMasterAndWait, runMha, startSandbox, watchWriters, type TestSandbox} from './harness.js'

// A crash failover of a sandbox on 127.0.0.166-168 behind a real haproxy on 127.0.0.169.
let sandbox: TestSandbox
let plans: string
const backend = 'mysql_writer'
const api = () => new HaproxyRuntime({name: 'haproxy1', runtimeApi: {kind: 'tcp', host: '127.0.0.169', port: 9999}, timeoutMs: 3000})

const throughProxy = () =>
  withConnection({name: 'frontend', host: '127.0.0.169', port: 3306, user: 'app', password: secretsOf(sandbox.state.dir).app}, 5000, async (c) => Number((await c.queryOne('SELECT @@server_id AS id'))?.id))

describe('failover through a haproxy', () => {
  beforeAll(async () => {
    sandbox = await startSandbox('itfopx', 166, {haproxyAddress: '127.0.0.169'})
    plans = mkdtempSync(join(tmpdir(), 'mha-fopx-'))
  })
  afterAll(async () => {
    await sandbox?.down()
    rmSync(plans, {recursive: true, force: true})
  })

  it('takes the dead master out early, puts the new master in after it takes writes, never two writers, and a new connection lands on it', async () => {
    expect(await throughProxy()).toBe(1)
    await killMasterAndWait(sandbox)
    mkdirSync(join(plans, 'itfopx'), {recursive: true})
    const file = join(plans, 'itfopx', 'failover.json')
    const planned = await runMha(['plan', '--config', sandbox.configFile, '--plans-dir', plans, '-o', file])
    expect(planned.code, planned.stderr + planned.stdout).toBe(2)
    const plan = JSON.parse(readFileSync(file, 'utf8')) as Plan
    const ids = plan.steps.map((s) => s.id)
    const drain = ids.indexOf('route_drain:haproxy1')
    const writer = ids.indexOf('route_writer:haproxy1')
    expect(drain).toBe(ids.indexOf('fence_master:db1') + 1)
    expect(writer).toBeGreaterThan(ids.indexOf('enable_writes:db2'))
    expect(plan.steps[writer]).toMatchObject({server: 'db2', group: 'routing:haproxy1', after: ['enable_writes:db2'], params: {proxy: 'haproxy1', backend, writer: 'db2', others: ['db1', 'db3'], frontend: '127.0.0.169:3306'}})
    const show = await runMha(['show', file, '--config', sandbox.configFile])
    expect(show.stdout).toMatch(/set server mysql_writer\/db1 state maint/)

    const watcher = watchWriters(api(), backend)
    const apply = await runMha(['apply', file, '--config', sandbox.configFile])
    const seen = await watcher.stop()
    expect(apply.code, apply.stderr + apply.stdout).toBe(0)
    expect(seen.reads).toBeGreaterThan(0)
    expect(seen.most).toBeLessThanOrEqual(1)
    const servers = await api().showServersState(backend)
    expect(servers.map((s) => [s.name, s.enabled])).toEqual([
      ['db1', false],
      ['db2', true],
      ['db3', false],
    ])
    expect(await throughProxy()).toBe(2)

    // Applied again: the proxy already routes right, nothing changes.
    const again = await runMha(['apply', file, '--config', sandbox.configFile])
    expect(again.code, again.stderr + again.stdout).toBe(0)
  })

  it('a proxy that cannot be reached never stops the promotion: partial (exit 10), then apply again moves it', async () => {
    await sandbox.down()
    sandbox = await startSandbox('itfopx', 166, {haproxyAddress: '127.0.0.169'})
    const proxy = sandbox.state.haproxy!
    let restarted: LocalHaproxy | undefined
    try {
      await killMasterAndWait(sandbox)
      const file = join(plans, 'itfopx', 'failover2.json')
      const planned = await runMha(['plan', '--config', sandbox.configFile, '--plans-dir', plans, '-o', file])
      expect(planned.code, planned.stderr + planned.stdout).toBe(2)
      await stopLocalHaproxy(proxy)
      const partial = await runMha(['apply', file, '--config', sandbox.configFile, '--json'])
      expect(partial.code, partial.stderr + partial.stdout).toBe(10)
      const report = JSON.parse(partial.stdout) as {status: string; message: string; nextAction: string | null}
      expect(report.status).toBe('partial')
      expect(report.message).toMatch(/db2 is the writable master; writes not moved on proxy haproxy1 \(/)
      expect(report.nextAction).toMatch(/proxy haproxy1: once its runtime API answers, run "mha apply .*failover2\.json" again/)
      // The promotion stood: db2 takes writes.
      expect(await sandbox.sql('db2', async (c) => Number((await c.queryOne('SELECT @@read_only AS ro'))?.ro))).toBe(0)

      // The proxy comes back as configured (db1 enabled): apply again finishes the routing.
      restarted = await startLocalHaproxy({dir: proxy.dir, address: proxy.address, servers: sandbox.state.hosts.map((h) => ({name: h.name, host: h.ip, port: 3306, enabled: h.index === 1}))})
      const again = await runMha(['apply', file, '--config', sandbox.configFile])
      expect(again.code, again.stderr + again.stdout).toBe(0)
      expect((await api().showServersState(backend)).map((s) => [s.name, s.enabled])).toEqual([
        ['db1', false],
        ['db2', true],
        ['db3', false],
      ])
      expect(await throughProxy()).toBe(2)
    } finally {
      if (restarted) await stopLocalHaproxy(restarted)
    }
  })
})
