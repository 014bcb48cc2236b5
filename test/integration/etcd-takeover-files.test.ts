import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Etcd3} from 'etcd3'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'
import type {ApplyReport} from '../../src/apply/events.js'
import type {ServerConnection} from '../../src/inspect/mysql.js'
import type {WriteLoad} from '../../src/sandbox/load.js'
import {portOpen, waitFor} from '../../src/sandbox/processes.js'
import {etcdEndpoints, startEtcdCluster, stopEtcdCluster} from '../../src/sandbox/etcd.js'
import {expectConsistent, holdReplica, sandboxUnderLoad, spawnWatch, type TestSandbox, type WatchManager} from './harness.js'

/**
 * A takeover by a manager on another host: the leader SIGKILLed after it saved the dead master's binlog tail
 * and a relay diff, and its home folder (plans, work files) removed at the kill, as if its disk went with it.
 * Real parts only: a 3-member etcd on 127.0.0.247-249, a MariaDB sandbox on 127.0.0.225-227, three mha watch
 * processes, each with its own home folder.
 */
const etcdAddresses = ['127.0.0.247', '127.0.0.248', '127.0.0.249']
const ttl = 3
const etcdDir = mkdtempSync(join(tmpdir(), 'mha-it-etcdfiles-'))
const artifactLimitBytes = 64 * 1024 * 1024
let endpoints = ''
let client: Etcd3 | undefined
let sandbox: TestSandbox | undefined
let holder: ServerConnection | undefined

interface Manager extends WatchManager {
  /** Its home folder: cluster files, plans, work files. */
  home: string
}
let managers: Manager[] = []

beforeAll(async () => {
  await startEtcdCluster({dir: etcdDir, addresses: etcdAddresses})
  endpoints = etcdEndpoints(etcdDir)
  client = new Etcd3({hosts: endpoints.split(',')})
}, 60_000)

afterEach(async (context) => {
  if (context.task.result?.state === 'fail') for (const m of managers) writeFileSync(join(tmpdir(), `mha-it-etcdfiles-${m.id}.log`), m.lines.map((l) => JSON.stringify(l)).join('\n') + '\n')
  for (const m of managers) if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill('SIGKILL')
  for (const m of managers) rmSync(m.home, {recursive: true, force: true})
  managers = []
  await holder?.close().catch(() => undefined)
  holder = undefined
  await sandbox?.down()
  sandbox = undefined
})

afterAll(async () => {
  client?.close()
  await stopEtcdCluster(etcdDir)
  rmSync(etcdDir, {recursive: true, force: true})
})

function startManagers(s: TestSandbox, prefix: string): Manager[] {
  const name = s.state.cluster
  return [1, 2, 3].map((n) => {
    const home = mkdtempSync(join(tmpdir(), `mha-it-etcdfiles-w${n}-`))
    mkdirSync(join(home, 'clusters'))
    writeFileSync(join(home, 'clusters', `${name}.yaml`), readFileSync(s.configFile, 'utf8'))
    const id = `w${n}`
    const running = spawnWatch(['--config-dir', join(home, 'clusters'), '--plans-dir', join(home, 'plans'), '--etcd', endpoints, '--etcd-prefix', prefix, '--etcd-lease-ttl', String(ttl), '--watcher-id', id, '--heartbeat', '0'])
    return {id, home, plansDir: join(home, 'plans'), child: running.child, lines: running.lines}
  })
}

const said = (m: Manager, event: string) => m.lines.filter((l) => l.event === event)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const lastWord = (m: Manager) => m.lines.filter((l) => l.event === 'leading' || l.event === 'following').at(-1)

/** One manager leads the cluster (and found it healthy), the two others follow it. */
async function settled(cluster: string): Promise<void> {
  await waitFor(`one manager to lead ${cluster} and the others to follow (seen: ${managers.map((m) => `${m.id}: ${m.lines.map((l) => l.event).join(',')}`).join(' | ')})`, 60_000, () => {
    const leaders = managers.filter((m) => lastWord(m)?.event === 'leading')
    return leaders.length === 1 && leaders[0]!.lines.some((l) => l.event === 'healthy') && managers.filter((m) => m !== leaders[0]).every((m) => lastWord(m)?.message.startsWith(`${leaders[0]!.id} leads ${cluster}`))
  }, 100)
}

interface Line {
  step: string
  event: string
  by: string
  outputs?: Record<string, unknown>
  message?: string
}
async function journalOf(prefix: string, cluster: string): Promise<Line[]> {
  return Object.values(await client!.getAll().prefix(`${prefix}/journal/${cluster}/`).sort('Create', 'Ascend').strings()).map((l) => JSON.parse(l) as Line)
}
const ended = (journal: Line[], step: string) => journal.filter((e) => e.step === step && e.event === 'end')

/**
 * A cluster under write load watched by three managers. db2 (the new master to be) is held on a row lock, so
 * the failover's leader waits in wait_relay_log_applied:db2 before it applies anything to it; db3 stops reading
 * first (it will need a relay diff from db2), then db2 (what only the master has is its binlog tail, saved over
 * SSH); `beforeKill` may write more on the master alone. The master is killed; once the leader journaled both
 * saves, it is SIGKILLed and its home folder removed. Returns the manager that finished, and its report.
 */
async function takeoverAfterSaves(cluster: string, prefix: string, beforeKill: (s: TestSandbox) => Promise<void>, afterLeaderKilled: (s: TestSandbox) => Promise<void> = () => Promise.resolve()): Promise<{s: TestSandbox; load: WriteLoad; victim: Manager; heir: Manager; report: ApplyReport; journal: Line[]}> {
  const {s, load} = await sandboxUnderLoad(cluster, 225)
  sandbox = s
  managers = startManagers(s, prefix)
  await settled(cluster)
  holder = await holdReplica(s, 'db2')
  await s.sql('db3', (c) => c.execute('STOP SLAVE IO_THREAD'))
  await sleep(500)
  await s.sql('db2', (c) => c.execute('STOP SLAVE IO_THREAD'))
  await sleep(500)
  await beforeKill(s)
  process.kill(s.state.hosts[0]!.mariadbdPid!, 'SIGKILL')
  let by = ''
  await waitFor('a manager to journal both saves and wait for db2', 120_000, async () => {
    const journal = await journalOf(prefix, cluster)
    by = journal.find((e) => e.step === 'wait_relay_log_applied:db2' && e.event === 'begin')?.by ?? ''
    return by !== '' && ended(journal, 'save_master_binlog:db1').length === 1 && ended(journal, 'save_relay_diff:db3').length === 1
  }, 20)
  const victim = managers.find((m) => m.id === by)!
  victim.child.kill('SIGKILL')
  rmSync(victim.home, {recursive: true, force: true})
  await afterLeaderKilled(s)
  // The fault is in place: what the victim saved is nowhere on disk but where its journal says (gone).
  expect(existsSync(victim.home)).toBe(false)
  const before = await journalOf(prefix, cluster)
  for (const step of ['save_master_binlog:db1', 'save_relay_diff:db3']) expect(String(ended(before, step)[0]!.outputs?.file)).not.toBe('')
  expect(before.some((e) => e.step.startsWith('apply_logs:') && e.event === 'begin')).toBe(false)
  await holder.execute('ROLLBACK')
  await holder.close()
  holder = undefined
  let heir: Manager | undefined
  await waitFor(`another manager to end the failover (seen: ${managers.map((m) => `${m.id}: ${m.lines.slice(-6).map((l) => `${l.event}: ${l.message}`).join(' / ')}`).join(' | ')})`, 180_000, () => {
    heir = managers.find((m) => m !== victim && m.lines.some((l) => l.event.startsWith('failover done') || l.event === 'failover failed' || (l.event === 'error' && l.message.includes('cannot finish'))))
    return heir !== undefined
  })
  const end = heir!.lines.find((l) => l.event.startsWith('failover done') || l.event === 'failover failed' || l.event === 'error')!
  expect(end.event, `${heir!.id}: ${end.message}; ${heir!.lines.filter((l) => l.event === 'step fail').map((l) => l.message).join(' | ')}`).toBe('failover done')
  const report = JSON.parse(readFileSync(end.report!, 'utf8')) as ApplyReport
  expect(report.status).toBe('applied')
  return {s, load, victim, heir: heir!, report, journal: await journalOf(prefix, cluster)}
}

/** A process and all its descendants, parents first. */
function processTree(pid: number): number[] {
  let children = ''
  try {
    children = execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], {encoding: 'utf8'})
  } catch {
    // ps exits 1 when there is none.
  }
  return [pid, ...children.split('\n').filter((l) => l.trim() !== '').flatMap((l) => processTree(Number(l)))]
}

/** A transaction on the master alone (no replica reads any more), larger than what goes to etcd: about 73 MB of row events. */
async function bigTransaction(s: TestSandbox): Promise<void> {
  await s.sql('db1', async (c) => {
    await c.execute('CREATE TABLE mhatest.big (id INT AUTO_INCREMENT PRIMARY KEY, pad MEDIUMBLOB)')
    await c.execute("INSERT INTO mhatest.big (pad) SELECT REPEAT(CONCAT('x', seq), 1048576 DIV (1 + LENGTH(seq))) FROM mhatest.seq_1_to_70")
  })
}

const bigRows = (s: TestSandbox, host: string) => s.sql(host, async (c) => Number((await c.queryOne("SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'mhatest' AND TABLE_NAME = 'big'"))!.n) === 0 ? 0 : Number((await c.queryOne('SELECT COUNT(*) AS n FROM mhatest.big'))!.n))

describe('a takeover on another host finds the files the dead leader saved', () => {
  it('tail and relay diff saved, the leader SIGKILLed and its folder removed: the next leader finishes from the copies in etcd', async () => {
    const {s, load, victim, heir, report, journal} = await takeoverAfterSaves('itfiles1', '/itf1', () => Promise.resolve())
    expect(said(heir, 'takeover').length).toBeGreaterThan(0)
    // The saves were the victim's, done once: the heir used the copies in etcd, not a second read.
    for (const step of ['save_master_binlog:db1', 'save_relay_diff:db3']) expect(ended(journal, step).map((e) => e.by)).toEqual([victim.id])
    expect(Number(ended(journal, 'save_master_binlog:db1')[0]!.outputs?.bytes)).toBeGreaterThan(0)
    for (const step of ['apply_logs:db2', 'apply_logs:db3']) expect(ended(journal, step).map((e) => e.by)).toEqual([heir.id])
    expect(report.newMaster?.server).toBe('db2')
    await load.stop()
    await expectConsistent(s, 'db2', load.acked)
  }, 300_000)

  it('a saved tail over 64 MiB (never in etcd), the leader SIGKILLed and its folder removed: the next leader saves it again and finishes', async () => {
    const {s, load, victim, heir, report, journal} = await takeoverAfterSaves('itfiles2', '/itf2', bigTransaction)
    const saves = ended(journal, 'save_master_binlog:db1')
    expect(Number(saves[0]!.outputs?.bytes)).toBeGreaterThan(artifactLimitBytes)
    expect(saves[0]!.by).toBe(victim.id)
    // Never in etcd: the heir read it again from the dead master's host (its sshd still answers).
    expect((await client!.getAll().prefix('/itf2/work/itfiles2/').keys()).filter((k) => /saved-db1-.*\.binlog\/index$/.test(k))).toEqual([])
    expect(saves.map((e) => e.by)).toEqual([victim.id, heir.id])
    expect(ended(journal, 'save_relay_diff:db3').map((e) => e.by)).toEqual([victim.id])
    expect(report.newMaster?.server).toBe('db2')
    await load.stop()
    await expectConsistent(s, 'db2', load.acked)
    for (const host of ['db2', 'db3']) expect(await bigRows(s, host)).toBe(70)
  }, 300_000)

  it('a saved tail over 64 MiB and the dead master host gone too: the save cannot be repeated, said plainly, and the failover finishes with the loss stated', async () => {
    const {s, load, heir, report, journal} = await takeoverAfterSaves('itfiles3', '/itf3', bigTransaction, async (s) => {
      // The dead master's host goes away as well: its sshd and every session it serves (a manager may keep one
      // open from before) killed, by pid.
      // A session's short-lived child (a command's pipeline) may have exited since the tree was listed.
      for (const pid of processTree(s.state.hosts[0]!.sshdPid!))
        try {
          process.kill(pid, 'SIGKILL')
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error
        }
      await waitFor("db1's sshd to be gone", 5000, async () => !(await portOpen(s.state.hosts[0]!.ip, 22)))
    })
    expect(Number(ended(journal, 'save_master_binlog:db1')[0]!.outputs?.bytes)).toBeGreaterThan(artifactLimitBytes)
    const failed = journal.find((e) => e.step === 'save_master_binlog:db1' && e.event === 'fail' && e.by === heir.id)
    expect(failed?.message).toMatch(/^saved-db1-mysql-bin\.\d+-\d+\.binlog, saved by save_master_binlog:db1 in an earlier run, is not in this manager's work folder nor in the shared store \(it was on the manager that saved it, which died; .*\), and it could not be saved again from db1: /)
    expect(failed?.message).not.toMatch(/mha-it-etcdfiles-w/)
    // The new master went on without the tail, and the report says what is lost.
    expect(report.newMaster?.server).toBe('db2')
    expect(report.dataLoss).toMatch(/events after mysql-bin\.\d+:\d+ in db1's binlog are lost: it could not be saved/)
    await load.stop()
    for (const host of ['db2', 'db3']) expect(await bigRows(s, host)).toBe(0)
    const status = (await s.sql('db3', (c) => c.queryOne('SHOW SLAVE STATUS')))!
    expect([status.Master_Host, status.Slave_IO_Running, status.Slave_SQL_Running]).toEqual([s.state.hosts[1]!.ip, 'Yes', 'Yes'])
  }, 300_000)
})
