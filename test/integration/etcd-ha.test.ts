import {execFileSync, spawn} from 'node:child_process'
import {mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {basename, join} from 'node:path'
import {Etcd3} from 'etcd3'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'
import type {ApplyReport} from '../../src/apply/events.js'
import type {WriteLoad} from '../../src/sandbox/load.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {etcdEndpoints, startEtcdCluster, startEtcdMember, stopEtcdCluster, stopEtcdMember} from '../../src/sandbox/etcd.js'
import {deadMasterWithHeldReplica, expectConsistent, holdReplica, root, runMha, sandboxUnderLoad, spawnWatch, startSandbox, type TestSandbox, type WatchManager} from './harness.js'

/**
 * Several managers on etcd, with real parts only: a 3-member etcd on loopback (127.0.0.84-86), a MariaDB
 * sandbox (127.0.0.81-83) and three mha watch processes, each with its own cluster file copy bound to its
 * own source address (127.0.0.87-89), its own plans folder and its own name, as on three manager hosts.
 * Each manager reaches etcd on ports of its own (2379 + its number, on every member), so that a test can cut
 * one manager from etcd alone: the etcd client cannot bind a source address.
 */
const etcdAddresses = ['127.0.0.84', '127.0.0.85', '127.0.0.86']
const watcherAddresses = ['127.0.0.87', '127.0.0.88', '127.0.0.89']
const ttl = 3
const managerPorts = [23791, 23792, 23793]
/** The nftables table of a cut between a manager and etcd, while one is in place. */
let etcdCut: string | undefined
const etcdDir = mkdtempSync(join(tmpdir(), 'mha-it-etcd-'))
let endpoints = ''
let client: Etcd3 | undefined
let sandbox: TestSandbox | undefined

type Manager = WatchManager
let managers: Manager[] = []

beforeAll(async () => {
  await startEtcdCluster({dir: etcdDir, addresses: etcdAddresses, extraClientPorts: managerPorts})
  endpoints = etcdEndpoints(etcdDir)
  client = new Etcd3({hosts: endpoints.split(',')})
}, 60_000)

afterEach(async (context) => {
  // A failed test leaves every manager's log behind, to read what each one did.
  if (context.task.result?.state === 'fail') for (const m of managers) writeFileSync(join(tmpdir(), `mha-it-etcd-${m.id}.log`), m.lines.map((l) => JSON.stringify(l)).join('\n') + '\n')
  for (const m of managers) {
    if (m.child.exitCode !== null || m.child.signalCode !== null) continue
    m.child.kill('SIGCONT')
    m.child.kill('SIGKILL')
  }
  managers = []
  healEtcdCut()
  await sandbox?.down()
  sandbox = undefined
})

afterAll(async () => {
  healEtcdCut()
  client?.close()
  await stopEtcdCluster(etcdDir)
})

function startManagers(s: TestSandbox, prefix: string): Manager[] {
  const name = s.state.cluster
  return watcherAddresses.map((address, i) => {
    const home = mkdtempSync(join(tmpdir(), `mha-it-etcd-w${i + 1}-`))
    mkdirSync(join(home, 'clusters'))
    writeFileSync(join(home, 'clusters', `${name}.yaml`), readFileSync(s.configFile, 'utf8') + `source_address: ${address}\n`)
    const id = `w${i + 1}`
    const own = etcdAddresses.map((a) => `http://${a}:${managerPorts[i]!}`).join(',')
    const running = spawnWatch(['--config-dir', join(home, 'clusters'), '--plans-dir', join(home, 'plans'), '--etcd', own, '--etcd-prefix', prefix, '--etcd-lease-ttl', String(ttl), '--watcher-id', id, '--heartbeat', '0'])
    return {id, plansDir: join(home, 'plans'), child: running.child, lines: running.lines}
  })
}

/** Every packet between the manager and etcd dropped, both ways, no reset: a cable cut, as the manager sees it. */
function cutFromEtcd(m: Manager): void {
  const port = String(managerPorts[Number(m.id.slice(1)) - 1]!)
  etcdCut = 'mhaitetcdcut'
  execFileSync('nft', ['add', 'table', 'inet', etcdCut])
  execFileSync('nft', ['add', 'chain', 'inet', etcdCut, 'out', '{ type filter hook output priority 0 ; }'])
  for (const way of ['dport', 'sport']) execFileSync('nft', ['add', 'rule', 'inet', etcdCut, 'out', 'tcp', way, port, 'drop'])
}

function healEtcdCut(): void {
  if (etcdCut) execFileSync('nft', ['delete', 'table', 'inet', etcdCut])
  etcdCut = undefined
}

const said = (m: Manager, event: string) => m.lines.filter((l) => l.event === event)
const anyone = (event: string) => managers.flatMap((m) => said(m, event).map((line) => ({m, line})))
const waitForEvent = (event: string, timeoutMs = 60_000) =>
  waitFor(`a manager to log "${event}" (seen: ${managers.map((m) => `${m.id}: ${m.lines.map((l) => l.event).join(',')}`).join(' | ')})`, timeoutMs, () => anyone(event).length > 0).then(() => anyone(event)[0]!)
const plansOf = (m: Manager, cluster: string) => {
  try {
    return readdirSync(join(m.plansDir, cluster)).filter((f) => /-failover\.json$/.test(f))
  } catch {
    return []
  }
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The manager whose last word on the cluster was that it leads it, if exactly one, with the others following it. */
function currentLeader(cluster: string): Manager | undefined {
  const last = (m: Manager) => m.lines.filter((l) => l.event === 'leading' || l.event === 'following').at(-1)
  const leaders = managers.filter((m) => last(m)?.event === 'leading')
  if (leaders.length !== 1) return undefined
  const leader = leaders[0]!
  const othersFollow = managers.filter((m) => m !== leader).every((m) => last(m)?.message.startsWith(`${leader.id} leads ${cluster}`))
  const healthy = leader.lines.slice(leader.lines.lastIndexOf(last(leader)!)).some((l) => l.event === 'healthy')
  return othersFollow && healthy ? leader : undefined
}

/** Whether the manager's last word on leadership is that it leads. */
function currentLeaderAmong(m: Manager): boolean {
  return m.lines.filter((l) => l.event === 'leading' || l.event === 'following').at(-1)?.event === 'leading'
}

/** Everybody settled: one manager leads the cluster and pings it, the two others follow it, for a few seconds on end. */
async function settled(cluster: string): Promise<Manager> {
  let since = 0
  let leader: Manager | undefined
  await waitFor(`one manager to lead ${cluster} and the others to follow it (seen: ${managers.map((m) => `${m.id}: ${m.lines.map((l) => l.event).join(',')}`).join(' | ')})`, 60_000, () => {
    const now = currentLeader(cluster)
    if (now !== leader) since = Date.now()
    leader = now
    return leader !== undefined && Date.now() - since >= 3000
  }, 100)
  return leader!
}

/** The manager that began a step in the cluster's etcd journal, once it did. */
async function beganBy(prefix: string, cluster: string, step: string): Promise<string> {
  let by = ''
  await waitFor(`a manager to begin ${step}`, 60_000, async () => {
    const lines = Object.values(await client!.getAll().prefix(`${prefix}/journal/${cluster}/`).strings()).map((l) => JSON.parse(l) as {step: string; event: string; by: string})
    by = lines.find((l) => l.step === step && l.event === 'begin')?.by ?? ''
    return by !== ''
  }, 5)
  return by
}

/** A new cluster under write load, watched by the three managers until one leads it and the others follow. */
async function watchedUnderLoad(cluster: string, prefix: string): Promise<{s: TestSandbox; load: WriteLoad; leader: Manager}> {
  const {s, load} = await sandboxUnderLoad(cluster, 81)
  sandbox = s
  managers = startManagers(s, prefix)
  return {s, load, leader: await settled(cluster)}
}

/**
 * A cluster under write load watched by the three managers, its master killed while db3 is held by a row lock:
 * the failover's leader is inside wait_relay_log_applied:db3 when this returns, until the holder lets go.
 */
async function failoverHeldAtDb3(cluster: string, prefix: string): Promise<{load: WriteLoad; holder: Awaited<ReturnType<typeof holdReplica>>; leader: Manager}> {
  const {s, load} = await watchedUnderLoad(cluster, prefix)
  const holder = await holdReplica(s, 'db3')
  await sleep(500)
  process.kill(s.state.hosts[0]!.mariadbdPid!, 'SIGKILL')
  const by = await beganBy(prefix, cluster, 'wait_relay_log_applied:db3')
  return {load, holder, leader: managers.find((m) => m.id === by)!}
}

async function journalOf(prefix: string, cluster: string): Promise<{step: string; event: string; by: string; at: string}[]> {
  return Object.values(await client!.getAll().prefix(`${prefix}/journal/${cluster}/`).sort('Create', 'Ascend').strings()).map((l) => JSON.parse(l) as {step: string; event: string; by: string; at: string})
}

describe('several mha watch managers on a real 3-member etcd', () => {
  it('master killed under write load: exactly one manager fails over, the others say the leader acted', async () => {
    const {s, load, leader} = await watchedUnderLoad('itetcd1', '/it1')
    await sleep(1000)
    process.kill(s.state.hosts[0]!.mariadbdPid!, 'SIGKILL')
    const done = await waitForEvent('failover done')
    await waitFor('the two others to say that the leader acted', 20_000, () => managers.filter((m) => m !== done.m && said(m, 'leader acted').length > 0).length === 2)
    // Long enough for a second manager to act, if one would.
    await sleep(2 * ttl * 1000)
    expect(done.m).toBe(leader)
    expect(anyone('failover').length).toBe(1)
    expect(managers.map((m) => plansOf(m, 'itetcd1').length)).toEqual(managers.map((m) => (m === leader ? 1 : 0)))
    const report = JSON.parse(readFileSync(done.line.report!, 'utf8')) as ApplyReport
    expect(report.status).toBe('applied')
    await load.stop()
    await expectConsistent(s, report.newMaster!.server, load.acked)
    const status = await runMha(['status', '--config', s.configFile, '--etcd', endpoints, '--etcd-prefix', '/it1'])
    await waitFor('the managers to settle again', 30_000, () => currentLeader('itetcd1') !== undefined)
    expect(status.stdout).toMatch(/etcd: up; managers: w1 \(1 cluster\(s\)\), w2 \(1 cluster\(s\)\), w3 \(1 cluster\(s\)\)/)
    expect(status.stdout).toMatch(new RegExp(`itetcd1: led by ${currentLeader('itetcd1')!.id}`))
    // The acknowledgement goes where the managers read the state: etcd.
    expect(JSON.parse((await client!.get('/it1/state/itetcd1').string())!)).toMatchObject({acknowledged: false, lastFailover: {newMaster: report.newMaster!.server}})
    const ack = await runMha(['ack', '--config', s.configFile, '--plans-dir', mkdtempSync(join(tmpdir(), 'mha-it-etcd-ack-')), '--etcd', endpoints, '--etcd-prefix', '/it1'])
    expect(ack.code, ack.stderr).toBe(0)
    expect(JSON.parse((await client!.get('/it1/state/itetcd1').string())!)).toMatchObject({acknowledged: true})
    // Stopped politely, a manager revokes its lease: its keys are gone when it exits, not a TTL later.
    const stopping = currentLeader('itetcd1')!
    const exited = new Promise((resolve) => stopping.child.once('exit', resolve))
    stopping.child.kill('SIGTERM')
    await exited
    expect(await client!.get(`/it1/watchers/${stopping.id}`).string()).toBeNull()
    const leaderNow = await client!.get('/it1/leaders/itetcd1').string()
    expect(leaderNow === null || !leaderNow.includes(`"${stopping.id}"`)).toBe(true)
    await waitFor('another manager to lead itetcd1', 30_000, () => managers.some((m) => m !== stopping && said(m, 'leading').length > 0 && currentLeaderAmong(m)))
  }, 240_000)

  it('the leader SIGKILLed in the middle of the apply: another manager takes over and finishes from the journal in etcd', async () => {
    const {s, load} = await watchedUnderLoad('itetcd2', '/it2')
    const holder = await holdReplica(s, 'db3')
    // db3 also stops reading a moment before the crash: what it lacks is copied from db2's relay log by the
    // leader, to its own disk and to etcd, and applied by whoever finishes.
    await s.sql('db3', (c) => c.execute('STOP SLAVE IO_THREAD'))
    await sleep(500)
    process.kill(s.state.hosts[0]!.mariadbdPid!, 'SIGKILL')
    const by = await beganBy('/it2', 'itetcd2', 'wait_relay_log_applied:db3')
    await waitFor('the relay diff for db3 to be saved', 30_000, async () => (await journalOf('/it2', 'itetcd2')).some((e) => e.step.startsWith('save_relay_diff:') && e.step.endsWith('db3') && e.event === 'end'))
    const victim = managers.find((m) => m.id === by)!
    victim.child.kill('SIGKILL')
    const killedAt = Date.now()
    await holder.execute('ROLLBACK')
    await holder.close()
    const takeover = await waitForEvent('takeover')
    console.log(`takeover by ${takeover.m.id} ${((Date.parse(takeover.line.at) - killedAt) / 1000).toFixed(2)} s after ${victim.id} was killed (lease TTL ${ttl} s)`)
    expect(takeover.m).not.toBe(victim)
    await waitFor(`${takeover.m.id} to finish the failover`, 90_000, () => said(takeover.m, 'failover done').length > 0).catch((error: unknown) => {
      throw new Error(`${String(error)}; ${takeover.m.id} said: ${takeover.m.lines.slice(-12).map((l) => `${l.event}: ${l.message}`).join(' | ')}`)
    })
    const report = JSON.parse(readFileSync(said(takeover.m, 'failover done')[0]!.report!, 'utf8')) as ApplyReport
    expect(report.status).toBe('applied')
    // The victim's plan was finished, and no other was made: a new plan would ignore what the first one changed.
    expect(anyone('failover').map((f) => f.m.id)).toEqual([victim.id])
    expect(basename(said(takeover.m, 'failover done')[0]!.plan!)).toBe(basename(said(victim, 'plan')[0]!.plan!))
    // The steps the victim finished were not run again; the ones it had not were run by the new leader.
    const journal = await journalOf('/it2', 'itetcd2')
    expect(journal.filter((e) => e.by === victim.id).length).toBeGreaterThan(0)
    expect(journal.filter((e) => e.by === takeover.m.id && e.step === 'wait_relay_log_applied:db3').map((e) => e.event)).toContain('end')
    for (const step of new Set(journal.filter((e) => e.by === victim.id && e.event === 'end').map((e) => e.step))) expect(journal.filter((e) => e.step === step && e.event === 'end').length).toBe(1)
    // The diff the victim saved came to the new leader through etcd, and db3 got it applied.
    const diffs = (await client!.getAll().prefix('/it2/work/itetcd2/').keys()).filter((k) => /relay-diff-db2-for-db3\.binlog\/index$/.test(k))
    expect(diffs.length).toBe(1)
    expect(journal.filter((e) => e.by === takeover.m.id && e.step === 'apply_logs:db3').map((e) => e.event)).toContain('end')
    const restored = readdirSync(join(takeover.m.plansDir, 'itetcd2'), {recursive: true}).map(String).filter((f) => f.endsWith('relay-diff-db2-for-db3.binlog'))
    expect(restored.length).toBe(1)
    await load.stop()
    await expectConsistent(s, report.newMaster?.server ?? 'db2', load.acked)
  }, 240_000)

  it('one etcd member down: nothing changes; two down: no automatic failover, said loudly; back: the failover happens', async () => {
    const {s, load, leader} = await watchedUnderLoad('itetcd3', '/it3')
    await stopEtcdMember(etcdDir, 'm3', 'SIGKILL')
    await sleep(3 * ttl * 1000)
    expect(anyone('etcd down')).toEqual([])
    expect(anyone('following').length + said(leader, 'leading').length).toBeGreaterThanOrEqual(3)
    await stopEtcdMember(etcdDir, 'm2', 'SIGKILL')
    await waitFor('every manager to say that etcd is down', 30_000, () => managers.every((m) => said(m, 'etcd down').length > 0))
    process.kill(s.state.hosts[0]!.mariadbdPid!, 'SIGKILL')
    const blocked = await waitForEvent('blocked')
    expect(blocked.m).toBe(leader)
    expect(blocked.line.message).toMatch(/no automatic failover: etcd unreachable or without quorum/)
    await sleep(2 * ttl * 1000)
    expect(anyone('failover')).toEqual([])
    expect(anyone('plan')).toEqual([])
    // Back with a quorum (m3 still down): the failover that waited happens, once.
    await startEtcdMember(etcdDir, 'm2')
    await waitForEvent('etcd up')
    const done = await waitForEvent('failover done', 90_000)
    await sleep(2 * ttl * 1000)
    expect(anyone('failover').length).toBe(1)
    const report = JSON.parse(readFileSync(done.line.report!, 'utf8')) as ApplyReport
    expect(report.status).toBe('applied')
    await load.stop()
    await expectConsistent(s, report.newMaster!.server, load.acked)
    await startEtcdMember(etcdDir, 'm3')
  }, 300_000)

  it('a leader frozen (SIGSTOP) past its lease in the middle of a step does nothing more once it runs again', async () => {
    const {load, holder, leader: frozen} = await failoverHeldAtDb3('itetcd4', '/it4')
    frozen.child.kill('SIGSTOP')
    const takeover = await waitForEvent('takeover')
    expect(takeover.m).not.toBe(frozen)
    await holder.execute('ROLLBACK')
    await holder.close()
    await waitFor(`${takeover.m.id} to finish the failover`, 90_000, () => said(takeover.m, 'failover done').length > 0)
    const finishedAt = (await journalOf('/it4', 'itetcd4')).length
    frozen.child.kill('SIGCONT')
    await waitFor(`${frozen.id} to say it was fenced`, 30_000, () => said(frozen, 'fenced').length > 0)
    await sleep(2 * ttl * 1000)
    const journal = await journalOf('/it4', 'itetcd4')
    // Nothing written by the frozen manager once it ran again, and it never said it finished.
    expect(journal.length).toBe(finishedAt)
    expect(said(frozen, 'failover done')).toEqual([])
    expect(anyone('failover').map((f) => f.m.id)).toEqual([frozen.id])
    expect(basename(said(takeover.m, 'failover done')[0]!.plan!)).toBe(basename(said(frozen, 'plan')[0]!.plan!))
    const report = JSON.parse(readFileSync(said(takeover.m, 'failover done')[0]!.report!, 'utf8')) as ApplyReport
    expect(report.status).toBe('applied')
    await load.stop()
    await expectConsistent(sandbox!, report.newMaster?.server ?? 'db2', load.acked)
  }, 240_000)

  it('a leader cut from etcd (packets dropped, no reset) in the middle of a step stops acting while it runs on; healed, it follows', async () => {
    const {load, holder, leader: cut} = await failoverHeldAtDb3('itetcd6', '/it6')
    cutFromEtcd(cut)
    const takeover = await waitForEvent('takeover')
    expect(takeover.m).not.toBe(cut)
    // db3 catches up only now: the cut manager, still running, would go on with the failover if nothing stopped it.
    await holder.execute('ROLLBACK')
    await holder.close()
    await waitFor(`${takeover.m.id} to finish the failover`, 90_000, () => said(takeover.m, 'failover done').length > 0)
    await waitFor(`${cut.id} to say that etcd is down and that it was fenced`, 30_000, () => said(cut, 'etcd down').length > 0 && said(cut, 'fenced').length > 0)
    expect(said(cut, 'failover done')).toEqual([])
    expect(anyone('failover').map((f) => f.m.id)).toEqual([cut.id])
    expect(basename(said(takeover.m, 'failover done')[0]!.plan!)).toBe(basename(said(cut, 'plan')[0]!.plan!))
    const report = JSON.parse(readFileSync(said(takeover.m, 'failover done')[0]!.report!, 'utf8')) as ApplyReport
    expect(report.status).toBe('applied')
    // Healed: the cut manager gets a lease again and follows the one that finished; nothing fails over again.
    const upBefore = said(cut, 'etcd up').length
    healEtcdCut()
    await waitFor(`${cut.id} to get a lease again`, 30_000, () => said(cut, 'etcd up').length > upBefore)
    await waitFor('the managers to settle again', 60_000, () => currentLeader('itetcd6') !== undefined)
    await sleep(2 * ttl * 1000)
    expect(anyone('failover').map((f) => f.m.id)).toEqual([cut.id])
    expect(said(cut, 'failover done')).toEqual([])
    await load.stop()
    await expectConsistent(sandbox!, report.newMaster?.server ?? 'db2', load.acked)
  }, 240_000)

  it('mha apply --etcd of a failover SIGKILLed in the middle: no other plan is applied over it, and the leading manager finishes it from the journal in etcd', async () => {
    const {s, load, holder} = await deadMasterWithHeldReplica('itetcd7', 81)
    sandbox = s
    const dir = mkdtempSync(join(tmpdir(), 'mha-it-etcd-manual-'))
    const plan = join(dir, 'itetcd7', 'failover.json')
    expect((await runMha(['plan', '--config', s.configFile, '-o', plan])).code).toBe(2)
    const etcdFlags = ['--etcd', endpoints, '--etcd-prefix', '/it7', '--etcd-lease-ttl', String(ttl)]
    const child = spawn(process.execPath, [join(root, 'bin/run.js'), 'apply', plan, '--config', s.configFile, ...etcdFlags], {cwd: root, env: {...process.env, NODE_ENV: 'production'}, stdio: 'ignore'})
    const exited = new Promise((resolve) => child.on('close', resolve))
    // db3 is held: the apply is inside wait_relay_log_applied:db3, its master steps done or under way.
    const by = await beganBy('/it7', 'itetcd7', 'wait_relay_log_applied:db3')
    child.kill('SIGKILL')
    await exited
    const record = JSON.parse((await client!.get('/it7/failovers/itetcd7').string())!) as {by: string; finished: boolean; planName: string}
    expect(record).toMatchObject({finished: false, planName: 'failover.json'})
    expect(record.by).toMatch(/^mha apply \(/)
    // Another plan, made now, is not applied over the half-done one (once the dead apply's lease, and its lock, are gone).
    const other = join(dir, 'itetcd7', 'other.json')
    await runMha(['plan', '--config', s.configFile, '-o', other])
    const state = () => Promise.all(['db2', 'db3'].map((h) => s.sql(h, async (c) => JSON.stringify([await c.queryOne('SELECT @@global.read_only+0 AS ro'), (await c.queryOne('SHOW SLAVE STATUS'))?.Master_Host ?? null]))))
    await sleep((ttl + 1) * 1000)
    const before = await state()
    const refused = await runMha(['apply', other, '--config', s.configFile, ...etcdFlags])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/cluster itetcd7: the failover mha apply \(.*\) started at .* \(failover\.json, digest [0-9a-f]+\) is unfinished, and this plan would be applied over it; .*nothing was changed/)
    expect(await state()).toEqual(before)
    // The managers start: the one that leads finishes that plan, from the steps the apply left.
    managers = startManagers(s, '/it7')
    const takeover = await waitForEvent('takeover')
    expect(takeover.line.message).toMatch(/finishing the failover mha apply \(.*\) started at .* \(failover\.json\) from its journal in etcd/)
    await holder.execute('ROLLBACK')
    await holder.close()
    await waitFor(`${takeover.m.id} to finish the failover`, 90_000, () => said(takeover.m, 'failover done').length > 0)
    expect(anyone('plan')).toEqual([])
    expect(anyone('failover')).toEqual([])
    const journal = await journalOf('/it7', 'itetcd7')
    expect(journal.filter((e) => e.by === by).length).toBeGreaterThan(0)
    for (const step of new Set(journal.filter((e) => e.by === by && e.event === 'end').map((e) => e.step))) expect(journal.filter((e) => e.step === step && e.event === 'end').length).toBe(1)
    expect(journal.filter((e) => e.by === takeover.m.id && e.step === 'wait_relay_log_applied:db3').map((e) => e.event)).toContain('end')
    const report = JSON.parse(readFileSync(said(takeover.m, 'failover done')[0]!.report!, 'utf8')) as ApplyReport
    expect(report.status).toBe('applied')
    expect(JSON.parse((await client!.get('/it7/failovers/itetcd7').string())!)).toMatchObject({finished: true, finishedBy: takeover.m.id, planName: 'failover.json'})
    await load.stop()
    await expectConsistent(s, report.newMaster?.server ?? 'db2', load.acked)
  }, 240_000)

  it('mha apply --etcd takes the managers\' lock: refused while it is held or etcd cannot be reached, nothing changed; applied and recorded in etcd once free', async () => {
    sandbox = await startSandbox('itetcd5', 81)
    const plan = join(mkdtempSync(join(tmpdir(), 'mha-it-etcd-apply-')), 'itetcd5', 'switchover.json')
    expect((await runMha(['plan', '--config', sandbox.configFile, '--switchover', '--to', 'db2', '-o', plan])).code).toBe(2)
    const master = () => sandbox!.sql('db1', async (c) => Number((await c.queryOne('SELECT @@global.read_only AS ro'))!.ro))
    // Held by a manager elsewhere (its key, as a watcher's failover writes it).
    await client!.put('/it5/locks/itetcd5').value(JSON.stringify({id: 'w9', purpose: 'mha watch (w9)', since: '2026-12-01T00:00:00Z'})).exec()
    const held = await runMha(['apply', plan, '--config', sandbox.configFile, '--etcd', endpoints, '--etcd-prefix', '/it5'])
    expect(held.code).toBe(1)
    expect(held.stderr).toMatch(/cluster itetcd5 is locked in etcd by w9 \(mha watch \(w9\), since 2026-12-01T00:00:00Z\); wait for it to finish/)
    expect(await master()).toBe(0)
    const away = await runMha(['apply', plan, '--config', sandbox.configFile, '--etcd', 'http://127.0.0.80:2379', '--etcd-prefix', '/it5'])
    expect(away.code).toBe(1)
    expect(away.stderr).toMatch(/etcd \(http:\/\/127\.0\.0\.80:2379\): etcd unreachable or without quorum .*; nothing was changed/)
    expect(await master()).toBe(0)
    await client!.delete().key('/it5/locks/itetcd5').exec()
    const applied = await runMha(['apply', plan, '--config', sandbox.configFile, '--etcd', endpoints, '--etcd-prefix', '/it5'])
    expect(applied.code, applied.stderr).toBe(0)
    expect(await master()).toBe(1)
    const state = JSON.parse((await client!.get('/it5/state/itetcd5').string())!) as {lastFailover: {kind: string; newMaster: string; by: string}}
    expect(state.lastFailover).toMatchObject({kind: 'switchover', newMaster: 'db2', by: 'apply'})
    expect(await client!.get('/it5/locks/itetcd5').string()).toBeNull()
  }, 120_000)
})
