import {mkdtempSync, readdirSync, statSync, truncateSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import type {CheckReport} from '../../src/analysis/check.js'
import type {ApplyReport} from '../../src/apply/events.js'
import type {Plan} from '../../src/plan/types.js'
import {WriteLoad} from '../../src/sandbox/load.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {sandboxAddBinlogServer, setBinlogServerSshd, stopBinlogStream, stopSshd} from '../../src/sandbox/sandbox.js'
import {expectConsistent, leaveNothing, planFailover, runMha, startSandbox, survivors, type TestSandbox} from './harness.js'

// A binlog server (a host of its own running mariadb-binlog --read-from-remote-server --raw --stop-never against
// the master) holds the tail no replica received; the master's host is then gone (mariadbd killed, its sshd
// stopped). The failover saves the tail from the binlog server: every acknowledged row ends on every survivor.

const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-binlogsrv-'))
const BINLOG_SERVER_IP = '127.0.0.210'
let sandbox: TestSandbox | undefined

afterAll(async () => {
  await leaveNothing(undefined, sandbox, [plansDir])
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const plan = (s: TestSandbox, name: string) => planFailover(s, plansDir, name)

/** Applies the plan (status applied), then every acknowledged write is on the new master and on every survivor. */
async function applyAndFindEveryWrite(s: TestSandbox, file: string, p: Plan, load: WriteLoad): Promise<void> {
  const result = await runMha(['apply', file, '--config', s.configFile, '--json'])
  const report = JSON.parse(result.stdout) as ApplyReport
  expect(report.status, report.message).toBe('applied')
  expect(result.code).toBe(0)
  await load.stop()
  await expectConsistent(s, p.decision.newMaster!, load.acked)
  for (const host of survivors(s)) expect(await load.missingOn(host)).toEqual([])
}

/**
 * A sandbox whose binlog server copies db1's binlogs while both replicas stop receiving, so that writes
 * acknowledged after that are on db1 and the binlog server only; then db1's host goes (mariadbd and sshd).
 */
async function tailOnlyOnBinlogServer(name: string, gtid: boolean, beforeFault?: (s: TestSandbox) => Promise<void>): Promise<{s: TestSandbox; load: WriteLoad; missed: number; binlogDir: string}> {
  const s = await startSandbox(name, 207, {gtid})
  sandbox = s
  await WriteLoad.prepare(s.state, 'db1')
  const server = await sandboxAddBinlogServer(s.state, 'binlog1', BINLOG_SERVER_IP, 'db1')
  await beforeFault?.(s)
  const load = new WriteLoad(s.state)
  load.start()
  await sleep(500)
  for (const host of survivors(s)) await s.sql(host, (c) => c.execute('STOP SLAVE IO_THREAD'))
  const before = load.acked.length
  await sleep(1500)
  // The binlog server has everything db1 logged: its copy of db1's current binlog is as long as db1's.
  const {File: file, Position: position} = (await s.sql('db1', (c) => c.queryOne('SHOW MASTER STATUS')))!
  await waitFor('the binlog server to have db1 binlog as far as db1', 10_000, () => {
    try {
      return statSync(join(server.binlogDir, String(file))).size >= Number(position)
    } catch {
      return false
    }
  })
  process.kill(s.state.hosts[0]!.mariadbdPid!, 'SIGKILL')
  await stopSshd(s.state, 'db1')
  const missed = load.acked.length - before
  return {s, load, missed, binlogDir: server.binlogDir}
}

/** Every survivor replicates from the new master with both threads running and holds the same rows. */
async function expectConsistentReplicas(s: TestSandbox, newMaster: string): Promise<void> {
  await s.sql(newMaster, (c) => c.execute('INSERT INTO mhatest.acked (id) VALUES (999999)'))
  for (const host of survivors(s))
    await waitFor(`${host} to receive the new write`, 20_000, async () => Number((await s.sql(host, (c) => c.queryOne('SELECT COUNT(*) AS n FROM mhatest.acked WHERE id = 999999')))!.n) === 1)
  const sums = await Promise.all(survivors(s).map((h) => s.sql(h, async (c) => String((await c.queryOne('CHECKSUM TABLE mhatest.acked'))!.Checksum))))
  expect(new Set(sums).size, sums.join(', ')).toBe(1)
}

describe('binlog servers: the tail of a master whose host is gone', () => {
  it('file/position: the tail no replica received is saved from the binlog server and applied everywhere; unreachable, the loss is stated', async () => {
    // mha check looks at the binlog server too, as MHA does: reachable and holding the master's binlog, nothing to say;
    // its host gone, a warning (a failover goes on without it), and the verdict unchanged.
    const binlogServerFindings = async (s: TestSandbox) => {
      const result = await runMha(['check', '--config', s.configFile, '--json'])
      const report = JSON.parse(result.stdout) as CheckReport
      return {code: result.code, found: report.findings.filter((f) => f.code.startsWith('binlog_server_')).map((f) => [f.severity, f.code, f.server])}
    }
    const {s, load, missed} = await tailOnlyOnBinlogServer('itbinlogsrv1', false, async (s) => {
      const healthy = await binlogServerFindings(s)
      expect(healthy).toEqual({code: 0, found: []})
      await setBinlogServerSshd(s.state, 'binlog1', false)
      expect(await binlogServerFindings(s)).toEqual({code: 0, found: [['warning', 'binlog_server_ssh_failed', 'binlog1']]})
      await setBinlogServerSshd(s.state, 'binlog1', true)
    })
    // The fault is in place: writes were acknowledged that no replica received.
    expect(missed).toBeGreaterThan(10)
    for (const host of survivors(s)) expect((await load.missingOn(host)).length).toBeGreaterThan(10)

    // The binlog server unreachable too: the plan states the loss and why.
    await setBinlogServerSshd(s.state, 'binlog1', false)
    const lost = await plan(s, 'unreachable')
    expect(lost.plan.decision.dataLoss.none).toBe(false)
    expect(lost.plan.decision.dataLoss.statement).toMatch(/in db1's binlog are lost: db1's host cannot be reached over SSH .*; binlog server binlog1 cannot be reached over SSH/)
    expect(lost.plan.steps.some((step) => step.type === 'save_master_binlog')).toBe(false)

    await setBinlogServerSshd(s.state, 'binlog1', true)
    const {file, plan: p} = await plan(s, 'from-binlog-server')
    const save = p.steps.find((step) => step.type === 'save_master_binlog')
    expect(save?.type === 'save_master_binlog' && save.params.binlogServer).toBe('binlog1')
    // The copy is all that can be read of db1's binlog: what lies past its end is stated as lost, never as none.
    expect(p.decision.dataLoss.none, p.decision.dataLoss.statement).toBe(false)
    expect(p.decision.dataLoss.statement).toMatch(/^db1's binlog after \S+ \(\d+ bytes in mysql-bin\.\d+\) is saved over SSH from binlog server binlog1 and applied; db1's host cannot be read, so anything it wrote after \S+, the end of binlog1's copy, is lost$/)

    await applyAndFindEveryWrite(s, file, p, load)
  })

  it('GTID mode: the tail is saved from the binlog server from the new master\'s executed position and every row ends everywhere', async () => {
    await sandbox?.down()
    const {s, load, missed} = await tailOnlyOnBinlogServer('itbinlogsrv2', true)
    expect(missed).toBeGreaterThan(10)
    const {file, plan: p} = await plan(s, 'gtid-from-binlog-server')
    expect(p.decision.replicationMode).toBe('gtid')
    const save = p.steps.find((step) => step.type === 'save_master_binlog')
    expect(save?.type === 'save_master_binlog' && save.params.binlogServer).toBe('binlog1')
    expect(p.decision.dataLoss.none, p.decision.dataLoss.statement).toBe(false)
    await applyAndFindEveryWrite(s, file, p, load)
  })

  it('a copy that ends inside a transaction (it was streaming when the master died): only whole transactions are applied, and the loss is stated', async () => {
    await sandbox?.down()
    const {s, load, binlogDir} = await tailOnlyOnBinlogServer('itbinlogsrv3', false)
    await stopBinlogStream(s.state, 'binlog1')
    // The copy's last 20 bytes go: the final transaction's XID event (31 bytes) is torn, the transaction incomplete.
    const last = readdirSync(binlogDir).filter((f) => /^mysql-bin\.\d+$/.test(f)).sort().at(-1)!
    truncateSync(join(binlogDir, last), statSync(join(binlogDir, last)).size - 20)
    const {file, plan: p} = await plan(s, 'torn-copy')
    expect(p.steps.find((step) => step.type === 'save_master_binlog')).toMatchObject({params: {binlogServer: 'binlog1'}})
    const result = await runMha(['apply', file, '--config', s.configFile, '--json'])
    const report = JSON.parse(result.stdout) as ApplyReport
    expect(report.status, report.message).toBe('applied')
    expect(report.dataLoss).toMatch(/^events after mysql-bin\.\d+:\d+ in db1's binlog are lost: binlog server binlog1's copy ends inside a transaction there \(\d+ bytes of it\)/)
    await load.stop()
    const newMaster = p.decision.newMaster!
    // Caught up with the new master (the load stopped), so each survivor's rows stay still while read.
    await expectConsistentReplicas(s, newMaster)
    // Each write is one transaction of two rows: a row without its partner would be half a transaction.
    for (const host of survivors(s)) {
      const [acked, logged] = await s.sql(host, async (c) => [
        (await c.query('SELECT id FROM mhatest.acked WHERE id <> 999999 ORDER BY id')).map((r) => Number(r.id)),
        (await c.query('SELECT id FROM mhatest.acked_log ORDER BY id')).map((r) => Number(r.id)),
      ])
      expect(logged, `${host}: acked and acked_log differ`).toEqual(acked)
    }
    // At most the torn transaction is missing: every acknowledged write before it is there.
    expect((await load.missingOn(newMaster)).length).toBeLessThanOrEqual(1)
  })
})
