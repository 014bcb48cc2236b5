import {execFileSync, spawn} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parse, stringify} from 'yaml'
import {withConnection} from '../../src/inspect/mysql.js'
import type {Plan} from '../../src/plan/types.js'
import {HaproxyRuntime} from '../../src/routing/haproxy.js'
import {WriteLoad} from '../../src/sandbox/load.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {startLocalHaproxy, stopLocalHaproxy, type LocalHaproxy} from '../../src/sandbox/haproxy.js'
import {secretsOf} from '../../src/sandbox/sandbox.js'
import {expectConsistent, killMasterAndWait, root, runMha, startSandbox, watchWriters, type TestSandbox} from './harness.js'

// Failovers of a sandbox on 127.0.0.166-168 behind a real haproxy on 127.0.0.169, the write load connected only
// through the proxy's frontend (127.0.0.169:3306), as an application is.
let sandbox: TestSandbox
let plans: string
const backend = 'mysql_writer'
const frontend = {host: '127.0.0.169', port: 3306}
const api = () => new HaproxyRuntime({name: 'haproxy1', runtimeApi: {kind: 'tcp', host: '127.0.0.169', port: 9999}, timeoutMs: 3000})
/** The nftables table that blackholes the master while the test that made it runs. */
let blackhole: string | undefined
/** A haproxy the test stopped (SIGSTOP), continued whatever happens. */
let frozen: number | undefined

const throughProxy = () =>
  withConnection({name: 'frontend', host: frontend.host, port: frontend.port, user: 'app', password: secretsOf(sandbox.state.dir).app}, 5000, async (c) => Number((await c.queryOne('SELECT @@server_id AS id'))?.id))

/** A write load through the frontend only, already acknowledged a few times through the proxy. */
async function loadThroughProxy(): Promise<WriteLoad> {
  await WriteLoad.prepare(sandbox.state, 'db1')
  const load = new WriteLoad(sandbox.state, 20, {through: frontend})
  load.start()
  await waitFor('writes acknowledged through the proxy', 20_000, () => load.acked.length >= 20)
  return load
}

/** Once the new master is in, the load writes through the proxy again; then it stops. What it saw, printed: how many writes were acknowledged and the longest gap between two. */
async function stopLoad(load: WriteLoad, what: string): Promise<void> {
  const before = load.acked.length
  await waitFor('writes acknowledged through the proxy after the failover', 20_000, () => load.acked.length >= before + 20)
  await load.stop()
  let gap = 0
  let after = 0
  for (let i = 1; i < load.ackedAt.length; i++)
    if (load.ackedAt[i]! - load.ackedAt[i - 1]! > gap) {
      gap = load.ackedAt[i]! - load.ackedAt[i - 1]!
      after = load.acked[i - 1]!
    }
  console.log(`${what}: ${load.acked.length} writes acknowledged through the proxy, ${load.errors} failed; longest gap between two acknowledgements ${(gap / 1000).toFixed(2)} s (after id ${after})`)
}

/** No acknowledged write missing on the new master nor, once replicated, on any survivor; survivors equal and replicating from it. */
async function expectNothingLost(load: WriteLoad, master: string): Promise<void> {
  await expectConsistent(sandbox, master, load.acked)
  for (const host of sandbox.state.hosts.slice(1).map((h) => h.name)) expect(await load.missingOn(host), `acknowledged ids missing on ${host}`).toEqual([])
}

/** Only the new master enabled in the writer backend, and a new connection through the frontend lands on it. */
async function expectRoutedTo(serverId: number, name: string): Promise<void> {
  const servers = await api().showServersState(backend)
  expect(servers.map((s) => [s.name, s.enabled])).toEqual(sandbox.state.hosts.map((h) => [h.name, h.name === name]))
  expect(await throughProxy()).toBe(serverId)
}

/**
 * After the failover to db2: the load writes through the proxy again (then stops, its counts printed), the backend
 * never enabled two servers while polled (and always answered, unless the test stopped the proxy), only db2 is
 * enabled and a new connection through the frontend reaches it, no acknowledged write lost.
 */
async function expectFailedOverToDb2(load: WriteLoad, watcher: ReturnType<typeof watchWriters>, what: string, proxyStopped = false): Promise<void> {
  await stopLoad(load, what)
  const seen = await watcher.stop()
  console.log(`${what}: the writer backend read ${seen.reads} times, never more than ${seen.most} enabled; ${seen.unanswered} reads unanswered`)
  expect(seen.reads).toBeGreaterThan(0)
  if (!proxyStopped) expect(seen.unanswered).toBe(0)
  expect(seen.most).toBeLessThanOrEqual(1)
  await expectRoutedTo(2, 'db2')
  await expectNothingLost(load, 'db2')
}

describe('failover through a haproxy', () => {
  beforeAll(async () => {
    sandbox = await startSandbox('itfopx', 166, {haproxyAddress: '127.0.0.169'})
    plans = mkdtempSync(join(tmpdir(), 'mha-fopx-'))
  })
  afterAll(async () => {
    if (frozen !== undefined) process.kill(frozen, 'SIGCONT')
    if (blackhole) execFileSync('nft', ['delete', 'table', 'inet', blackhole])
    await sandbox?.down()
    rmSync(plans, {recursive: true, force: true})
  })

  it('takes the dead master out early, puts the new master in after it takes writes, never two writers, a new connection lands on it, no write acknowledged through the proxy lost', async () => {
    expect(await throughProxy()).toBe(1)
    const load = await loadThroughProxy()
    // Polled from before the crash until the load stops: through the crash, the plan and the apply.
    const watcher = watchWriters(api(), backend)
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

    const apply = await runMha(['apply', file, '--config', sandbox.configFile])
    expect(apply.code, apply.stderr + apply.stdout).toBe(0)
    await expectFailedOverToDb2(load, watcher, 'crash failover')

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
  it('a blackholed master (no reset, every packet dropped) is failed over with --force-dead: the writes through the proxy move to the new master, never two writers, none lost', async () => {
    await sandbox.down()
    sandbox = await startSandbox('itfopx', 166, {haproxyAddress: '127.0.0.169'})
    const load = await loadThroughProxy()
    const watcher = watchWriters(api(), backend)
    // The master's address goes silent both ways: the proxy's connections to it, the replicas', mha's all hang.
    const master = sandbox.state.hosts[0]!.ip
    blackhole = `mha_it_fopx_blackhole_${process.pid}`
    try {
      execFileSync('nft', ['add', 'table', 'inet', blackhole])
      execFileSync('nft', ['add', 'chain', 'inet', blackhole, 'out', '{ type filter hook output priority 0 ; }'])
      execFileSync('nft', ['add', 'rule', 'inet', blackhole, 'out', 'ip', 'daddr', master, 'drop'])
      execFileSync('nft', ['add', 'rule', 'inet', blackhole, 'out', 'ip', 'saddr', master, 'drop'])
      // The replicas' IO threads still say Yes: mha plans a failover of a master they stream from only when told it is dead.
      const file = join(plans, 'itfopx', 'blackhole.json')
      const planned = await runMha(['plan', '--config', sandbox.configFile, '--plans-dir', plans, '-o', file, '--force-dead', 'test: db1 blackholed'])
      expect(planned.code, planned.stderr + planned.stdout).toBe(2)
      const plan = JSON.parse(readFileSync(file, 'utf8')) as Plan
      expect(plan.decision.newMaster).toBe('db2')
      expect(plan.steps.map((s) => s.id)).toEqual(expect.arrayContaining(['route_drain:haproxy1', 'route_writer:haproxy1']))
      const apply = await runMha(['apply', file, '--config', sandbox.configFile, '--json'])
      const report = JSON.parse(apply.stdout) as {status: string; message: string}
      expect(apply.code, apply.stderr + apply.stdout).toBe(0)
      expect(report.status, report.message).toBe('applied')
      await expectFailedOverToDb2(load, watcher, 'blackholed master')
    } finally {
      await watcher.stop()
      await load.stop()
      execFileSync('nft', ['delete', 'table', 'inet', blackhole])
      blackhole = undefined
    }
  })
  it('resumes after a kill between promotion and routing: the proxy stopped (SIGSTOP) holds route_writer, apply killed there, the proxy continued, apply again finishes the routing', async () => {
    await sandbox.down()
    sandbox = await startSandbox('itfopx', 166, {haproxyAddress: '127.0.0.169'})
    // Each runtime API command waits at most this long for an answer (HaproxyRuntime: the socket's idle timeout):
    // with the proxy stopped, route_drain's and route_writer's checks each wait that long before they fail, which
    // leaves this long to kill apply while route_writer waits.
    const config = parse(readFileSync(sandbox.configFile, 'utf8')) as {routing: {haproxy: {timeout?: number}[]}}
    config.routing.haproxy[0]!.timeout = 8
    writeFileSync(sandbox.configFile, stringify(config))
    const load = await loadThroughProxy()
    const watcher = watchWriters(api(), backend)
    await killMasterAndWait(sandbox)
    const file = join(plans, 'itfopx', 'resume.json')
    const planned = await runMha(['plan', '--config', sandbox.configFile, '--plans-dir', plans, '-o', file])
    expect(planned.code, planned.stderr + planned.stdout).toBe(2)
    const journal = file.replace(/\.json$/, '.journal.ndjson')
    // Whole lines only: apply may be writing the last one.
    const records = () =>
      (existsSync(journal) ? readFileSync(journal, 'utf8') : '')
        .split('\n')
        .filter((l) => l.endsWith('}'))
        .map((l) => JSON.parse(l) as {step: string; event: string})
    const has = (step: string, event: string) => records().some((r) => r.step === step && r.event === event)

    frozen = sandbox.state.haproxy!.pid
    process.kill(frozen, 'SIGSTOP')
    const child = spawn(process.execPath, [join(root, 'bin/run.js'), 'apply', file, '--config', sandbox.configFile], {cwd: root, env: {...process.env, NODE_ENV: 'production'}, stdio: 'ignore'})
    let exit: number | null | undefined
    const exited = new Promise<void>((resolve) => child.on('close', (code) => ((exit = code), resolve())))
    try {
      // db2 promoted, the drain given up (no answer), route_writer waiting on the stopped proxy: kill apply there.
      await waitFor('db2 promoted and route_drain given up', 60_000, () => exit !== undefined || (has('enable_writes:db2', 'end') && has('route_drain:haproxy1', 'fail')), 10)
      expect(exit, 'apply still running when killed').toBeUndefined()
      child.kill('SIGKILL')
      await exited
      expect(has('route_writer:haproxy1', 'end') || has('route_writer:haproxy1', 'skip')).toBe(false)
      expect(await sandbox.sql('db2', async (c) => Number((await c.queryOne('SELECT @@global.read_only+0 AS ro'))?.ro))).toBe(0)
    } finally {
      if (exit === undefined) {
        child.kill('SIGKILL')
        await exited
      }
      process.kill(frozen, 'SIGCONT')
      frozen = undefined
    }

    const again = await runMha(['apply', file, '--config', sandbox.configFile, '--json'])
    expect(again.code, again.stderr + again.stdout).toBe(0)
    const report = JSON.parse(again.stdout) as {status: string; message: string; steps: {id: string; status: string; reason: string | null}[]}
    expect(report.status, report.message).toBe('applied')
    // Resumed from the journal: the promotion is not done again, the routing is.
    const step = (id: string) => report.steps.find((s) => s.id === id)
    expect(step('enable_writes:db2')).toMatchObject({status: 'skipped', reason: 'done in an earlier run (journal)'})
    expect(step('route_writer:haproxy1')?.status).toBe('applied')
    expect(has('route_writer:haproxy1', 'end')).toBe(true)
    await expectFailedOverToDb2(load, watcher, 'kill between promotion and routing', true)
  })
})
