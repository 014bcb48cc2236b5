import {execFileSync, spawn, type ChildProcess} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, afterEach, describe, expect, it} from 'vitest'
import type {ApplyReport} from '../../src/apply/events.js'
import type {ServerConnection} from '../../src/inspect/mysql.js'
import {WriteLoad} from '../../src/sandbox/load.js'
import {stopOurProcess, waitFor} from '../../src/sandbox/processes.js'
import {expectRoles, holdReplica, root, runMha, spawnWatch, startOneEtcd, startSandbox, type TestSandbox, type WatchLogLine} from './harness.js'

/**
 * A switchover whose `mha apply` stops part-way, with the old master blocked and the target not yet promoted: the
 * manager that takes the cluster's lock next finishes it or rolls it back, never leaving the cluster without a
 * writable master. Sandbox on 127.0.0.56-58, one etcd member on 127.0.0.59.
 */
const etcdAddress = '127.0.0.59'
const endpoint = `http://${etcdAddress}:2379`
const dir = mkdtempSync(join(tmpdir(), 'mha-it-swtk-'))
let sandbox: TestSandbox | undefined
let load: WriteLoad | undefined
let holder: ServerConnection | undefined
let etcdPid: number | undefined
const children: ChildProcess[] = []

afterEach(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  children.length = 0
  await load?.stop().catch(() => undefined)
  load = undefined
  await holder?.close().catch(() => undefined)
  holder = undefined
  await sandbox?.down()
  sandbox = undefined
  await stopOurProcess(etcdPid, join(dir, 'etcd'))
  rmSync(join(dir, 'etcd'), {recursive: true, force: true})
  etcdPid = undefined
})

afterAll(() => rmSync(dir, {recursive: true, force: true}))

/**
 * A cluster under write load whose switchover to db2 is stopped at a known moment: the old master blocked, the
 * target held (its SQL thread on a row lock) so that apply waits for it, not yet promoted. The switchover waits
 * long for the held target (instead of failing in a second) and does not refuse its lag.
 */
async function switchoverWaitingOnTarget(name: string, watchArgs: string[], applyArgs: string[], watchStarts: 'before' | 'after') {
  const s = await startSandbox(name, 56)
  sandbox = s
  writeFileSync(s.configFile, readFileSync(s.configFile, 'utf8') + 'failover: {wait_timeout: 90}\nswitchover: {max_lag_seconds: 60}\n')
  const home = mkdtempSync(join(dir, `${name}-`))
  const configDir = join(home, 'clusters')
  const plansDir = join(home, 'plans')
  mkdirSync(configDir)
  writeFileSync(join(configDir, `${name}.yaml`), readFileSync(s.configFile, 'utf8'))
  await WriteLoad.prepare(s.state, 'db1')
  const startWatch = () => {
    const watch = spawnWatch(['--config-dir', configDir, '--plans-dir', plansDir, '--heartbeat', '0', ...watchArgs])
    children.push(watch.child)
    return watch
  }
  const early = watchStarts === 'before' ? startWatch() : undefined
  if (early) await waitFor('the watch to find the cluster healthy', 60_000, () => said(early.lines, 'healthy').length > 0, 100)
  load = new WriteLoad(s.state)
  load.start()
  const planFile = join(plansDir, name, 'switch-to-db2.json')
  const planned = await runMha(['plan', '--config', s.configFile, '--switchover', '--to', 'db2', '-o', planFile])
  expect(planned.code, planned.stderr + planned.stdout).toBe(2)
  holder = await holdReplica(s, 'db2')
  const apply = spawnApply([planFile, '--config', s.configFile, '--json', ...applyArgs])
  await waitFor('the switchover to wait on db2 for db1\'s final position', 30_000, async () => (await s.sql('db2', (c) => c.query("SELECT INFO FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT MASTER_%WAIT%'"))).length > 0, 50)
  expect(await readOnly(s, 'db1')).toBe(1)
  return {s, watch: early ?? startWatch(), apply, plansDir}
}

/** `mha apply` as a child process of its own (stopped or killed by its pid), its output collected. */
function spawnApply(args: string[]): {child: ChildProcess; out: () => string; exited: Promise<number | null>} {
  let out = ''
  const child = spawn(process.execPath, [join(root, 'bin/run.js'), 'apply', ...args], {cwd: root, env: {...process.env, NODE_ENV: 'production'}})
  children.push(child)
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return {child, out: () => out, exited}
}

/** `mha status --json` names an unfinished switchover of the cluster, started by `by`. */
async function expectUnfinished(s: TestSandbox, args: string[], by: RegExp): Promise<void> {
  const status = await runMha(['status', '--config', s.configFile, '--json', ...args])
  const [row] = JSON.parse(status.stdout) as {unfinished: {kind: string; by: string; plan: string} | null}[]
  expect(row?.unfinished?.kind, status.stdout + status.stderr).toBe('switchover')
  expect(row!.unfinished!.by).toMatch(by)
  expect(row!.unfinished!.plan).toBe('switch-to-db2.json')
}

const said = (lines: WatchLogLine[], event: string) => lines.filter((l) => l.event === event)
const readOnly = async (s: TestSandbox, name: string) => Number((await s.sql(name, (c) => c.queryOne('SELECT @@global.read_only+0 AS ro')))!.ro)

describe('a switchover stopped part-way is finished or rolled back by the next manager (octets 56-59)', () => {
  it('with etcd: a watch that comes to lead while the switchover is under way waits for its lock; the apply frozen (SIGSTOP) past its lease, the watch takes it over, finishes it, and the frozen apply does nothing more', async () => {
    etcdPid = await startOneEtcd(etcdAddress, join(dir, 'etcd'), 'swtk')
    const etcd = ['--etcd', endpoint, '--etcd-prefix', '/itswtk', '--etcd-lease-ttl', '3']
    const {s, watch, apply} = await switchoverWaitingOnTarget('itswtk', [...etcd, '--watcher-id', 'w1'], etcd, 'after')
    // It finds the switchover under way and its lock held (it hears of no change to the record after this).
    await waitFor(`the watch to find the switchover under way (said: ${watch.lines.map((l) => l.event).join(', ')})`, 60_000, () => said(watch.lines, 'locked').length > 0, 100)
    process.kill(apply.child.pid!, 'SIGSTOP')
    // mha status names the switchover under way as unfinished (from etcd's record), with who started it.
    await expectUnfinished(s, [...etcd], /^mha apply \(.* pid \d+\)$/)
    await waitFor(`the watch to take the switchover over (said: ${watch.lines.map((l) => l.event).join(', ')})`, 30_000, () => said(watch.lines, 'takeover').length > 0, 100)
    await holder!.execute('ROLLBACK')
    await waitFor(`the watch to finish the switchover (said: ${watch.lines.map((l) => `${l.event}: ${l.message}`).join(' | ')})`, 60_000, () => said(watch.lines, 'switchover done').length > 0, 100)

    process.kill(apply.child.pid!, 'SIGCONT')
    const code = await apply.exited
    expect(code, apply.out()).toBe(1)
    expect(apply.out()).toMatch(/fenced|lease/)
    // The record in etcd is the watch's: the frozen apply, run again, wrote nothing over it.
    const record = JSON.parse(execFileSync('etcdctl', ['--endpoints', endpoint, 'get', '/itswtk/failovers/itswtk', '--print-value-only'], {env: {...process.env, ETCDCTL_API: '3'}}).toString()) as {finished: boolean; finishedBy: string; status: string}
    expect([record.finished, record.finishedBy, record.status]).toEqual([true, 'w1', 'applied'])
    await load!.stop()
    await expectRoles(s, 'db2', load!.acked)
    expect(await readOnly(s, 'db1')).toBe(1)
  })

  it('alone (files): apply SIGKILLed while the target catches up, a write slips onto the old master; the watch takes the lock and rolls the switchover back', async () => {
    const {s, watch, apply, plansDir} = await switchoverWaitingOnTarget('itswtf', [], [], 'before')
    process.kill(apply.child.pid!, 'SIGKILL')
    await apply.exited
    await expectUnfinished(s, ['--plans-dir', plansDir], /^mha apply \(.* pid \d+\)$/)
    // The write block ended with apply's sessions; an account that ignores read_only writes on the old master.
    await waitFor('the write block to end with its session', 10_000, async () => {
      try {
        await s.sql('db1', (c) => c.execute('INSERT INTO mhatest.acked (id) VALUES (777777)'))
        return true
      } catch {
        return false
      }
    }, 100)
    await holder!.execute('ROLLBACK')
    await waitFor(`the watch to roll the switchover back (said: ${watch.lines.map((l) => `${l.event}: ${l.message}`).join(' | ')})`, 60_000, () => said(watch.lines, 'switchover rolled back').length > 0, 100)
    const line = said(watch.lines, 'switchover rolled back')[0]!
    expect(line.message).toMatch(/db1 wrote after its final position.*rolled back \(unblock_writes:db1\): db1 takes writes again/)
    const report = JSON.parse(readFileSync(line.report!, 'utf8')) as ApplyReport
    expect(report.status).toBe('failed')
    await load!.stop()
    await expectRoles(s, 'db1', [...load!.acked, 777777])
  })
})
