import {execFileSync, type ChildProcess} from 'node:child_process'
import {mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import {WriteLoad} from '../../src/sandbox/load.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {validator} from '../../src/schema/validator.js'
import type {WatchStatus} from '../../src/watch/status-api.js'
import {expectConsistent, freePort, runMha, spawnWatch, startSandbox, type TestSandbox, type WatchLogLine} from './harness.js'

// mha watch unattended: loud when it cannot see, following the topology others change, failing over again
// after an acknowledged failover, and finding a host gone without a TCP reset in seconds.

type LogLine = WatchLogLine

const OCTET = 161
let sandbox: TestSandbox | undefined
let watch: ChildProcess | undefined
let blackhole: string | undefined

afterEach(async () => {
  if (blackhole) execFileSync('nft', ['delete', 'table', 'inet', blackhole])
  blackhole = undefined
  if (watch && watch.exitCode === null) {
    const exited = new Promise((resolve) => watch!.on('exit', resolve))
    watch.kill('SIGTERM')
    await exited
  }
  watch = undefined
  await sandbox?.down()
  sandbox = undefined
})

function startWatch(configDir: string, plansDir: string, extra: string[] = []): {lines: LogLine[]; exited: Promise<number | null>} {
  const started = spawnWatch(['--config-dir', configDir, '--plans-dir', plansDir, ...extra])
  watch = started.child
  return started
}

/** On a timeout the error lists every line seen by then, with its message: a wording that does not match shows. */
const waitForLine = (lines: LogLine[], what: string, test: (l: LogLine) => boolean, timeoutMs = 30_000) =>
  waitFor(what, timeoutMs, () => Promise.resolve(lines.some(test))).then(
    () => lines.find(test)!,
    (error: unknown) => {
      throw new Error(`${error instanceof Error ? error.message : String(error)}; got: ${lines.map((l) => `${l.cluster}:${l.event}: ${l.message}`).join(' | ')}`)
    },
  )

const readOnly = async (s: TestSandbox, host: string) => Number((await s.sql(host, (c) => c.queryOne('SELECT @@global.read_only+0 AS ro')))!.ro)

describe('mha watch at 3 a.m.', () => {
  it('says at once, and again later, that a cluster cannot be monitored (a wrong password, a file that does not load) while it watches the others, and exits 1 when no cluster can be', async () => {
    sandbox = await startSandbox('it3am1', OCTET)
    const dir = mkdtempSync(join(tmpdir(), 'mha-it-3am-'))
    const good = readFileSync(sandbox.configFile, 'utf8')
    const wrong = good.replace('name: it3am1', 'name: rotated').replace(/password:\n\s+file: .*mha\.password/, 'password: NotTheRightOne')
    mkdirSync(join(dir, 'both'))
    writeFileSync(join(dir, 'both', 'it3am1.yaml'), good)
    writeFileSync(join(dir, 'both', 'rotated.yaml'), wrong)
    // A cluster file broken by a bad edit: that cluster is not monitored, the others are.
    const broken = 'name: broken\nservers:\n  - name: db1\n    hostname: [unclosed\n'
    writeFileSync(join(dir, 'both', 'broken.yaml'), broken)
    const started = Date.now()
    const port = await freePort()
    const {lines} = startWatch(join(dir, 'both'), join(dir, 'plans'), ['--listen', `127.0.0.1:${port}`, '--heartbeat', '1'])
    const first = await waitForLine(lines, 'the first complaint', (l) => l.cluster === 'rotated' && l.event === 'unmonitored', 10_000)
    console.log(`unmonitored cluster reported ${((Date.parse(first.at) - started) / 1000).toFixed(2)} s after watch started`)
    expect(first.message).toMatch(/^rotated cannot be monitored: every server refuses the login of mha .*; fix user\/password in .*rotated\.yaml; no automatic failover until this is fixed/)
    expect(first.message).not.toContain('NotTheRightOne')
    await waitForLine(lines, 'the healthy cluster', (l) => l.cluster === 'it3am1' && l.event === 'healthy')
    // Said again later, with a pause: not once and then silence.
    await waitFor('the second complaint', 15_000, () => lines.filter((l) => l.cluster === 'rotated' && l.event === 'unmonitored').length >= 2)
    const complaints = lines.filter((l) => l.cluster === 'rotated' && l.event === 'unmonitored')
    expect(Date.parse(complaints[1]!.at) - Date.parse(complaints[0]!.at)).toBeGreaterThanOrEqual(4000)
    // The broken file: said at once and again with a pause, like any cluster that cannot be monitored.
    const unloaded = lines.filter((l) => l.cluster === 'broken' && l.event === 'unmonitored')
    expect(unloaded.length).toBeGreaterThanOrEqual(2)
    expect(unloaded[0]!.message).toMatch(/^broken cannot be monitored: cannot load .*broken\.yaml: .*broken\.yaml:\d+:\d+ YAML syntax error.*; no automatic failover until this is fixed/)
    expect(Date.parse(unloaded[0]!.at) - started).toBeLessThan(5000)
    expect(Date.parse(unloaded[1]!.at) - Date.parse(unloaded[0]!.at)).toBeGreaterThanOrEqual(4000)
    // --heartbeat 1: a line every second summing up every cluster.
    const beats = lines.filter((l) => l.event === 'heartbeat')
    expect(beats.length).toBeGreaterThanOrEqual(3)
    expect(beats.at(-1)!.message).toMatch(/^3 cluster\(s\): 1 healthy; cannot be monitored: (rotated, broken|broken, rotated)$/)
    // /status (valid against its schema) and the metrics say it too.
    const doc = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as WatchStatus
    expect(validator('watch-status.schema.json')(doc)).toBe(true)
    expect(doc.clusters.map((c) => [c.name, c.monitored]).sort()).toEqual([['broken', false], ['it3am1', true], ['rotated', false]])
    expect(doc.clusters.find((c) => c.name === 'broken')!.notMonitoredReason).toMatch(/^cannot load .*broken\.yaml: .*YAML syntax error/)
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
    for (const [name, value] of [['broken', 0], ['rotated', 0], ['it3am1', 1]]) expect(metrics).toContain(`mha_cluster_monitored{cluster="${name}"} ${value}\n`)
    // mha status, asking the running watch, says which cluster it cannot see and why.
    const status = await runMha(['status', '--config-dir', join(dir, 'both'), '--plans-dir', join(dir, 'plans')])
    expect(status.stdout).toMatch(/rotated: .*cannot monitor it: every server refuses the login of mha .*automatic failover is OFF/)
    expect(status.stdout).not.toContain('NotTheRightOne')
    expect(status.stdout).toMatch(/broken: cannot load .*broken\.yaml: /)
    expect(status.stdout).toMatch(/broken: .*cannot monitor it: cannot load .*broken\.yaml: .*automatic failover is OFF/)
    // Fixed: read again within seconds, and watched from then on.
    writeFileSync(join(dir, 'both', 'broken.yaml'), good.replace('name: it3am1', 'name: broken'))
    await waitForLine(lines, 'the fixed file to load', (l) => l.cluster === 'broken' && l.event === 'monitored', 15_000)
    await waitForLine(lines, 'the fixed cluster healthy', (l) => l.cluster === 'broken' && l.event === 'healthy', 10_000)
    const fixed = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as WatchStatus
    expect(fixed.clusters.find((c) => c.name === 'broken')).toMatchObject({monitored: true, master: 'db1'})
    watch!.kill('SIGTERM')

    // Only clusters that cannot be monitored: watch says so and exits non-zero.
    mkdirSync(join(dir, 'bad'))
    writeFileSync(join(dir, 'bad', 'rotated.yaml'), wrong)
    writeFileSync(join(dir, 'bad', 'broken.yaml'), broken)
    const alone = startWatch(join(dir, 'bad'), join(dir, 'plans'))
    expect(await alone.exited).toBe(1)
    expect(alone.lines.some((l) => l.event === 'error' && /no cluster can be monitored: rotated: .*; broken: cannot load /.test(l.message))).toBe(true)
  })

  it('follows an external switchover, then fails over the new master; after an acknowledged failover it fails over again without waiting for the first dead server', async () => {
    sandbox = await startSandbox('it3am2', OCTET, {replicas: 3})
    const s = sandbox
    const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-3am-plans-'))
    const configDir = join(plansDir, '..', `${plansDir.split('/').pop()}-clusters`)
    mkdirSync(configDir)
    writeFileSync(join(configDir, 'it3am2.yaml'), readFileSync(s.configFile, 'utf8'))
    const config = join(configDir, 'it3am2.yaml')
    await WriteLoad.prepare(s.state, 'db1')
    const load = new WriteLoad(s.state)
    load.start()
    const {lines} = startWatch(configDir, plansDir)
    await waitForLine(lines, 'healthy', (l) => l.event === 'healthy')

    // Someone switches db1 -> db2 with mha itself, outside watch.
    const switchPlan = join(plansDir, 'switch.json')
    expect((await runMha(['plan', '--config', config, '--switchover', '--to', 'db2', '-o', switchPlan])).code).toBe(2)
    const switched = await runMha(['apply', switchPlan, '--config', config])
    expect(switched.code, switched.stderr).toBe(0)
    await waitForLine(lines, 'watch to follow db2', (l) => l.event === 'master' && l.message.startsWith('monitoring db2'), 20_000)

    // The new master dies: watch fails it over.
    process.kill(s.state.hosts[1]!.mariadbdPid!, 'SIGKILL')
    await waitForLine(lines, 'the failover of db2', (l) => l.event === 'failover done', 40_000)
    expect(lines.find((l) => l.event === 'dead')!.message).toMatch(/^db2 /)
    const newMaster = (await Promise.all(['db1', 'db3', 'db4'].map(async (h) => [h, await readOnly(s, h)] as const))).find(([, ro]) => ro === 0)![0]

    // Acknowledged; the next master dies too: a second failover, with the first dead server (db2) out of service.
    expect((await runMha(['ack', '--cluster', 'it3am2', '--plans-dir', plansDir])).code).toBe(0)
    const host = s.state.hosts.find((h) => h.name === newMaster)!
    const before = lines.length
    process.kill(host.mariadbdPid!, 'SIGKILL')
    await waitForLine(lines, 'the second failover', (l) => lines.indexOf(l) >= before && l.event === 'failover done', 40_000)
    const since = lines.slice(before)
    expect(since.filter((l) => l.event === 'error'), JSON.stringify(since.filter((l) => l.event === 'error'))).toEqual([])
    expect(since.filter((l) => l.event === 'failover').length).toBe(1)
    const plan = JSON.parse(readFileSync(lines.slice(before).find((l) => l.event === 'plan')!.plan!, 'utf8')) as {decision: {notes: string[]; deadMaster: string}}
    expect(plan.decision.deadMaster).toBe(newMaster)
    expect(plan.decision.notes).toContain('db2 is out of service since an earlier failover: it is left out')
    await new Promise((r) => setTimeout(r, 1000))
    await load.stop()
    const last = (await Promise.all(['db1', 'db3', 'db4'].filter((h) => h !== newMaster).map(async (h) => [h, await readOnly(s, h)] as const))).find(([, ro]) => ro === 0)![0]
    const present = new Set((await s.sql(last, (c) => c.query('SELECT id FROM mhatest.acked'))).map((r) => Number(r.id)))
    expect(load.acked.filter((id) => !present.has(id))).toEqual([])
  })

  it('follows a failover done by hand while its own is blocked: the replicas\' new source is seen while the old master fails, and the new master is watched', async () => {
    sandbox = await startSandbox('it3am4', OCTET)
    const s = sandbox
    const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-3am-plans-'))
    // An earlier failover not yet acknowledged: anti-flapping blocks the next automatic one.
    mkdirSync(join(plansDir, 'it3am4'))
    const earlier = {at: new Date().toISOString(), plan: 'earlier.json', report: 'earlier.report.json', status: 'applied', deadMaster: 'db0', newMaster: 'db1'}
    writeFileSync(join(plansDir, 'it3am4', 'watch-state.json'), JSON.stringify({lastFailover: earlier, acknowledged: false}))
    const {lines} = startWatch(join(s.configFile, '..'), plansDir)
    await waitForLine(lines, 'healthy', (l) => l.event === 'healthy')
    process.kill(s.state.hosts[0]!.mariadbdPid!, 'SIGKILL')
    await waitForLine(lines, 'the failover blocked', (l) => l.event === 'blocked')

    // Someone fails over by hand, with mha itself.
    const plan = join(plansDir, 'it3am4', 'by-hand-failover.json')
    expect((await runMha(['plan', '--config', s.configFile, '-o', plan])).code).toBe(2)
    const applied = await runMha(['apply', plan, '--config', s.configFile])
    expect(applied.code, applied.stderr).toBe(0)
    const newMaster = (JSON.parse(readFileSync(plan, 'utf8')) as {decision: {newMaster: string}}).decision.newMaster
    const other = newMaster === 'db2' ? 'db3' : 'db2'

    // Watch, still judging the dead db1, sees the replica's new source and follows the new master.
    // Which change it sees first depends on when its look falls: the new master detached, or the other re-pointed.
    const seen = await waitForLine(lines, 'the new source seen', (l) => l.event === 'topology' && (l.message.includes(`${other} now replicates from ${newMaster} (it replicated from db1)`) || l.message.includes(`${newMaster} now replicates from nobody (it replicated from db1)`)), 20_000)
    expect(seen.message).toMatch(/: looking at the topology again$/)
    const followed = await waitForLine(lines, 'the new master followed', (l) => l.event === 'master' && l.message.startsWith(`monitoring ${newMaster} `), 20_000)
    expect(followed.message).toMatch(/, which replaced db1$/)
    await waitForLine(lines, 'the new master healthy', (l) => lines.indexOf(l) > lines.indexOf(followed) && l.event === 'healthy', 10_000)
    // No failover of its own, and no error.
    expect(lines.filter((l) => l.event === 'error' || l.event.startsWith('failover'))).toEqual([])
  })

  it('finds a master host gone without a TCP reset (every packet dropped) on the other routes, before the replicas notice, and fails over with nothing lost', async () => {
    sandbox = await startSandbox('it3am3', OCTET)
    const s = sandbox
    const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-3am-plans-'))
    await WriteLoad.prepare(s.state, 'db1')
    const load = new WriteLoad(s.state)
    load.start()
    const {lines} = startWatch(join(s.configFile, '..'), plansDir)
    await waitForLine(lines, 'healthy', (l) => l.event === 'healthy')
    await new Promise((r) => setTimeout(r, 1500))

    // The master's address goes silent both ways: no reset, no refusal; the replicas' IO threads still say Yes.
    const master = s.state.hosts[0]!.ip
    blackhole = `mha_it_blackhole_${process.pid}`
    execFileSync('nft', ['add', 'table', 'inet', blackhole])
    execFileSync('nft', ['add', 'chain', 'inet', blackhole, 'out', '{ type filter hook output priority 0 ; }'])
    const cutAt = Date.now()
    execFileSync('nft', ['add', 'rule', 'inet', blackhole, 'out', 'ip', 'daddr', master, 'drop'])
    execFileSync('nft', ['add', 'rule', 'inet', blackhole, 'out', 'ip', 'saddr', master, 'drop'])
    const dead = await waitForLine(lines, 'the master declared dead', (l) => l.event === 'dead', 30_000)
    const deadAt = Date.parse(dead.at)
    let writableAt = 0
    await waitFor('db2 writable', 30_000, async () => {
      if ((await readOnly(s, 'db2')) === 0) writableAt = Date.now()
      return writableAt > 0
    }, 20)
    const db2 = (await s.sql('db2', (c) => c.queryOne('SELECT 1 AS one')))!
    expect(db2.one).toBe(1)
    console.log(`blackholed master: declared dead ${((deadAt - cutAt) / 1000).toFixed(2)} s after the cut, db2 writable ${((writableAt - deadAt) / 1000).toFixed(2)} s after that`)
    expect(dead.message).toMatch(/still show an IO thread, but no route reaches it/)
    // Speed is the benches' business (bench:vs-mha, blackhole scenario); this asserts the mechanism: death was
    // judged on the other routes while the replicas still showed their IO threads running.
    await waitForLine(lines, 'failover done', (l) => l.event === 'failover done', 30_000)
    // The fence took watch's last silent ping, a moment old, as its look at db1 instead of waiting out another timeout.
    const reports = readdirSync(join(plansDir, s.state.cluster)).filter((f) => f.endsWith('-failover.report.json'))
    expect(reports).toHaveLength(1)
    const report = JSON.parse(readFileSync(join(plansDir, s.state.cluster, reports[0]!), 'utf8')) as {steps: {id: string; status: string; reason: string | null}[]}
    expect(report.steps.find((x) => x.id === 'fence_master:db1')).toMatchObject({status: 'skipped', reason: expect.stringMatching(/^db1 did not answer SQL to mha watch \d+ ms ago \(.+\), so it takes no writes$/) as unknown})
    await new Promise((r) => setTimeout(r, 1000))
    await load.stop()
    await expectConsistent(s, 'db2', load.acked)
  })
})
