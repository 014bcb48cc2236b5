import {execFileSync, type ChildProcess} from 'node:child_process'
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import {parse, stringify} from 'yaml'
import {WriteLoad} from '../../src/sandbox/load.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {loadClusterFile} from '../../src/config/load.js'
import {inspectCluster, sshTargetOf} from '../../src/inspect/inspect.js'
import {readPlan} from '../../src/plan/plan-file.js'
import {planFor} from '../../src/plan/planner.js'
import {SshPool} from '../../src/remote/session-pool.js'
import {expectConsistent, killMasterAndWait, runMha, spawnWatch, startSandbox, type TestSandbox, type WatchLogLine} from './harness.js'

let sandbox: TestSandbox | undefined
let watch: ChildProcess | undefined

afterEach(async () => {
  if (watch && watch.exitCode === null) watch.kill('SIGKILL')
  watch = undefined
  await sandbox?.down()
  sandbox = undefined
})

/** The watch process's established TCP connections to port 22 of the sandbox's hosts, by address. */
function sshConnectionsOf(pid: number, s: TestSandbox): string[] {
  const lines = execFileSync('ss', ['-Htnp', 'state', 'established', '( dport = :22 )']).toString().split('\n')
  const addresses = new Set(s.state.hosts.map((h) => h.ip))
  return lines.filter((l) => l.includes(`pid=${pid},`)).map((l) => /\s(\d+\.\d+\.\d+\.\d+):22\s/.exec(l)?.[1] ?? '').filter((ip) => addresses.has(ip)).sort()
}

function withMonitor(configFile: string, monitor: Record<string, unknown>): void {
  const doc = parse(readFileSync(configFile, 'utf8')) as {monitor?: Record<string, unknown>}
  writeFileSync(configFile, stringify({...doc, monitor: {...doc.monitor, ...monitor}}))
}

const eventOf = (lines: WatchLogLine[], event: string) => lines.find((l) => l.event === event)

describe('mha watch reacts to the crash, not to the next ping', () => {
  it("a master's crash is judged at once (the kept connection is reset), with pings a minute apart; SSH sessions are kept open to every host", async () => {
    sandbox = await startSandbox('itevents', 241)
    // A ping a minute: only the reset of the kept connection can start the judgement within the wait below.
    withMonitor(sandbox.configFile, {ping_interval: 60})
    await WriteLoad.prepare(sandbox.state, 'db1')
    const load = new WriteLoad(sandbox.state)
    load.start()
    const running = spawnWatch(['--config-dir', dirname(sandbox.configFile), '--plans-dir', mkdtempSync(join(tmpdir(), 'mha-it-events-plans-'))])
    watch = running.child
    await waitFor('watch to see db1', 30_000, () => running.lines.some((l) => l.event === 'healthy'))
    await waitFor('an SSH session to each host', 10_000, () => sshConnectionsOf(watch!.pid!, sandbox!).length === 3)
    expect(sshConnectionsOf(watch.pid!, sandbox)).toEqual(sandbox.state.hosts.map((h) => h.ip).sort())
    await new Promise((r) => setTimeout(r, 500))

    process.kill(sandbox.state.hosts[0]!.mariadbdPid!, 'SIGKILL')
    await waitFor('the failover to end', 30_000, () => running.lines.some((l) => l.event.startsWith('failover done') || l.event === 'failover failed'))
    expect(eventOf(running.lines, 'failover done')?.message).toMatch(/promote db2/)
    // Death still needed the replicas' word, never the lost connection alone.
    expect(eventOf(running.lines, 'dead')?.message).toMatch(/lost it too/)
    await new Promise((r) => setTimeout(r, 500))
    await load.stop()
    await expectConsistent(sandbox, 'db2', load.acked)
  })

  it('keep_ssh_open: false opens no SSH session while the cluster is healthy', async () => {
    sandbox = await startSandbox('itevents2', 241)
    withMonitor(sandbox.configFile, {keep_ssh_open: false})
    const running = spawnWatch(['--config-dir', dirname(sandbox.configFile), '--plans-dir', mkdtempSync(join(tmpdir(), 'mha-it-events-plans-'))])
    watch = running.child
    await waitFor('watch to see db1', 30_000, () => running.lines.some((l) => l.event === 'healthy'))
    await new Promise((r) => setTimeout(r, 2000))
    expect(sshConnectionsOf(watch.pid!, sandbox)).toEqual([])
  })

  it('plans from kept SSH sessions exactly what "mha plan" plans from a fresh inspection (a lagging replica, a dead master)', async () => {
    sandbox = await startSandbox('itevents3', 241)
    const s = sandbox
    await WriteLoad.prepare(s.state, 'db1')
    // db3 misses some writes, so the plan has a relay diff and the dead master's binlog to read.
    await s.sql('db3', (c) => c.execute('STOP SLAVE IO_THREAD'))
    const load = new WriteLoad(s.state)
    load.start()
    await new Promise((r) => setTimeout(r, 800))
    await load.stop()
    const cluster = loadClusterFile(s.configFile)
    const pool = new SshPool()
    try {
      for (const server of cluster.servers) pool.warm(sshTargetOf(cluster, server))
      await killMasterAndWait(s)
      const header = {tool: 'mha test', createdAt: '2026-12-01T00:00:00.000Z', configFile: cluster.file}
      const warm = planFor(cluster, await inspectCluster(cluster, {sshRunner: pool.run}), header)
      expect(pool.size).toBe(3)
      const file = join(mkdtempSync(join(tmpdir(), 'mha-it-events-plan-')), 'fresh.json')
      const fresh = await runMha(['plan', '--config', s.configFile, '-o', file])
      expect(fresh.code, fresh.stderr).toBe(2)
      const cli = readPlan(file)
      expect(warm.kind).toBe('failover')
      expect(warm.steps.map((step) => step.id)).toContain('save_relay_diff:db3')
      expect(warm.decision).toEqual(cli.decision)
      expect(warm.steps).toEqual(cli.steps)
      expect(warm.observed).toEqual(cli.observed)
    } finally {
      await pool.close()
    }
  })
})
