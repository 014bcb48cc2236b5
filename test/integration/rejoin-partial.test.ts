import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import {compareCoordinates} from '../../src/binlog/coordinates.js'
import type {BinlogCoordinates} from '../../src/dialect/types.js'
import type {Plan} from '../../src/plan/types.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {adminEndpoint, startHost, startSshd, stopSshd} from '../../src/sandbox/sandbox.js'
import {type ServerConnection, withConnection} from '../../src/inspect/mysql.js'
import {planAndApply, root, runMha, spawnWatch, startSandbox, type TestSandbox} from './harness.js'

let sandbox: TestSandbox | undefined
let plansDir: string | undefined
let stopped: number[] = []
afterEach(async () => {
  // A replica left stopped (SIGSTOP) by a failed test would not stop on SIGTERM.
  for (const pid of stopped.splice(0)) signal(pid, 'SIGCONT')
  const cluster = sandbox?.state.cluster
  // The sandbox's own folder (its data and cluster file) is beside the clusters folder.
  const work = sandbox ? dirname(dirname(sandbox.configFile)) : undefined
  await sandbox?.down()
  sandbox = undefined
  if (work) rmSync(work, {recursive: true, force: true})
  if (plansDir) rmSync(plansDir, {recursive: true, force: true})
  plansDir = undefined
  if (cluster) rmSync(join(root, 'plans', cluster), {recursive: true, force: true})
})

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name)
  } catch {
    // already gone
  }
}

const ROWS = 60_000
const masterStatus = async (s: TestSandbox, host: string): Promise<BinlogCoordinates> =>
  s.sql(host, async (c) => {
    const row = (await c.queryOne('SHOW MASTER STATUS'))!
    return {file: String(row.File), pos: Number(row.Position)}
  })
const readPosition = async (s: TestSandbox, host: string): Promise<BinlogCoordinates & {io: string}> =>
  s.sql(host, async (c) => {
    const row = (await c.queryOne('SHOW SLAVE STATUS'))!
    return {file: String(row.Master_Log_File), pos: Number(row.Read_Master_Log_Pos), io: String(row.Slave_IO_Running)}
  })
const count = (s: TestSandbox, host: string, table: string) => s.sql(host, async (c) => Number((await c.queryOne(`SELECT COUNT(*) AS n FROM mhatest.${table}`))!.n))

/** Every table of mhatest equal (CHECKSUM TABLE) on the three servers, once replication has caught up. */
async function expectAllTablesEqual(s: TestSandbox, master: string): Promise<void> {
  const tables = await s.sql(master, async (c) => (await c.query("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'mhatest' ORDER BY 1")).map((r) => String(r.t)))
  expect(tables).toEqual(['big', 'small'])
  const sums = () => Promise.all(tables.map((t) => Promise.all(['db1', 'db2', 'db3'].map((h) => s.sql(h, async (c) => String((await c.queryOne(`CHECKSUM TABLE mhatest.${t}`))!.Checksum))))))
  await waitFor('every table equal on db1, db2, db3', 30_000, async () => (await sums()).every((x) => x.every((y) => y === x[0])), 200).catch(() => undefined)
  for (const [i, x] of (await sums()).entries()) expect(x.every((y) => y === x[0]), `${tables[i]}: ${x.join(', ')}`).toBe(true)
}

interface Cut {
  /** db1's binlog before the large transaction: where it starts. */
  start: BinlogCoordinates
  /** db1's binlog after it. */
  bigEnd: BinlogCoordinates
  /** db1's binlog end when it was killed (after `later` more transactions). */
  db1End: BinlogCoordinates
  /** Where each replica's IO thread stopped reading. */
  read: BinlogCoordinates[]
}

/**
 * One large transaction on db1 (ROWS rows of 1 KB in one INSERT...SELECT, ~60 MB of binlog). Once the replicas
 * are receiving it, both are stopped (SIGSTOP): their IO threads read no more, db1's dump threads block on full
 * sockets, while db1 commits it (and `later` small transactions after it). db1's mariadbd is then SIGKILLed with
 * its sshd already down, and the replicas resume: they have read only part of the transaction, what the sockets
 * held, and db1 is gone.
 */
async function cutInsideATransaction(s: TestSandbox, later: number): Promise<Cut> {
  await s.sql('db1', async (c) => {
    await c.execute('CREATE TABLE mhatest.big (id INT PRIMARY KEY, pad VARCHAR(1000)) ENGINE=InnoDB')
    await c.execute('CREATE TABLE mhatest.small (id INT PRIMARY KEY) ENGINE=InnoDB')
    await c.execute('INSERT INTO mhatest.small VALUES (1)')
  })
  const start = await masterStatus(s, 'db1')
  await waitFor('the replicas to read all of db1', 20_000, async () => (await Promise.all(['db2', 'db3'].map((h) => readPosition(s, h)))).every((r) => compareCoordinates(r, start) === 0))
  await stopSshd(s.state, 'db1')
  const [db1, db2, db3] = s.state.hosts
  let failed: Error | undefined
  const insert = s.sql('db1', (c) => c.execute(`INSERT INTO mhatest.big SELECT seq, REPEAT('x', 1000) FROM mhatest.seq_1_to_${ROWS}`, 300_000))
  insert.catch((error: unknown) => (failed = error instanceof Error ? error : new Error(String(error))))
  // Both replicas are receiving the transaction (past its start): stop them there. One connection each, polled
  // as fast as they answer: the replicas read the whole transaction within a second.
  await withConnection(adminEndpoint(s.state, db2!), 5000, (c2) =>
    withConnection(adminEndpoint(s.state, db3!), 5000, async (c3) => {
      const read = async (c: ServerConnection) => {
        const row = (await c.queryOne('SHOW SLAVE STATUS'))!
        return {file: String(row.Master_Log_File), pos: Number(row.Read_Master_Log_Pos)}
      }
      await waitFor(
        'the replicas to receive part of the large transaction',
        60_000,
        async () => {
          if (failed) throw failed
          return (await Promise.all([read(c2), read(c3)])).every((r) => compareCoordinates(r, start) > 0)
        },
        0,
      )
      stopped = [db2!.mariadbdPid!, db3!.mariadbdPid!]
      for (const pid of stopped) signal(pid, 'SIGSTOP')
    }),
  )
  let bigEnd: BinlogCoordinates
  let db1End: BinlogCoordinates
  try {
    await insert
    bigEnd = await masterStatus(s, 'db1')
    await s.sql('db1', async (c) => {
      for (let i = 0; i < later; i++) await c.execute(`INSERT INTO mhatest.small VALUES (${100 + i})`)
    })
    db1End = await masterStatus(s, 'db1')
    process.kill(db1!.mariadbdPid!, 'SIGKILL')
    await waitFor('db1 to die', 10_000, () => {
      try {
        process.kill(db1!.mariadbdPid!, 0)
        return /\) Z /.test(readFileSync(`/proc/${db1!.mariadbdPid}/stat`, 'utf8'))
      } catch {
        return true
      }
    })
  } finally {
    for (const pid of stopped.splice(0)) signal(pid, 'SIGCONT')
  }
  await waitFor('the replicas to lose db1', 30_000, async () => (await Promise.all(['db2', 'db3'].map((h) => readPosition(s, h)))).every((r) => r.io !== 'Yes'))
  const read = await Promise.all(['db2', 'db3'].map((h) => readPosition(s, h)))
  return {start, bigEnd, db1End, read: read.map(({file, pos}) => ({file, pos}))}
}

/**
 * The cut (cutInsideATransaction), checked; the failover, planned and applied with db1's host down; db1 and its
 * sshd back, db1 crash-recovered with the cut transaction (and the later ones) committed.
 */
async function cutFailoverAndRestart(name: string, later: number, gtid: boolean): Promise<{s: TestSandbox; plans: string; cut: Cut; nm: string}> {
  sandbox = await startSandbox(name, 26, {gtid})
  const s = sandbox
  plansDir = mkdtempSync(join(tmpdir(), 'mha-it-rejoin-partial-'))
  const cut = await cutInsideATransaction(s, later)
  // The fault is in place: each replica read part of the large transaction, none all of it.
  for (const r of cut.read) {
    expect(r.file).toBe(cut.start.file)
    expect(r.pos).toBeGreaterThan(cut.start.pos)
    expect(r.pos).toBeLessThan(cut.bigEnd.pos)
  }
  expect(cut.bigEnd.file).toBe(cut.start.file)
  expect(cut.db1End.pos - cut.bigEnd.pos > 0).toBe(later > 0)

  const failover = JSON.parse(readFileSync(await planAndApply(s, plansDir, 'failover'), 'utf8')) as Plan
  const nm = failover.decision.newMaster!
  // db1's host was down: the plan states the loss after the latest read position, inside the transaction.
  const latest = cut.read.sort((a, b) => compareCoordinates(b, a))[0]!
  expect(failover.decision.dataLoss.lostAfter).toEqual(latest)
  expect(await count(s, nm, 'big')).toBe(0)

  await startSshd(s.state, 'db1')
  await startHost(s.state, 'db1')
  await s.sql('db1', (c) => c.execute('SET GLOBAL read_only = 1'))
  // db1 crash-recovered with the transaction committed, and the later ones.
  expect(await count(s, 'db1', 'big')).toBe(ROWS)
  expect(await count(s, 'db1', 'small')).toBe(1 + later)
  expect(compareCoordinates(await masterStatus(s, 'db1'), cut.db1End)).toBeGreaterThan(0)
  return {s, plans: plansDir, cut, nm}
}

/**
 * The failover's recorded position lies inside db1's large transaction, which db1 committed (and, with `later`,
 * more after it): the rejoin must count it as extra, refuse without --flashback, and rewind it whole with it.
 */
async function rejoinAfterACutTransaction(name: string, later: number, gtid = false): Promise<void> {
  const {s, plans, cut, nm} = await cutFailoverAndRestart(name, later, gtid)
  const nmIp = s.state.hosts.find((h) => h.name === nm)!.ip
  const transactions = 1 + later
  // GTID mode: db1's GTIDs from the cut transaction's (the one after the new master's last of server 1) to db1's last.
  let gtids: string | null = null
  if (gtid) {
    const seqOf = async (host: string, v: string) => Number(/0-1-(\d+)/.exec(await s.sql(host, async (c) => String((await c.queryOne(`SELECT @@global.${v} AS p`))!.p)))![1])
    const [held, last] = [await seqOf(nm, 'gtid_binlog_state'), await seqOf('db1', 'gtid_binlog_pos')]
    expect(last - held).toBe(transactions)
    gtids = transactions === 1 ? `0-1-${last}` : `0-1-${held + 1}..0-1-${last}`
  }
  const listed = gtids ? gtids.replaceAll('.', '\\.') : `binlog ${cut.start.file.replaceAll('.', '\\.')}:${cut.start.pos} to mysql-bin\\.\\d+:\\d+`
  const refused = await runMha(['plan', '--config', s.configFile, '--plans-dir', plans, '--rejoin', 'db1', '-o', join(plans, 'refused.json')])
  expect(refused.code, refused.stdout + refused.stderr).toBe(1)
  expect(refused.stderr.trim()).toMatch(
    new RegExp(`^mha: db1 has ${transactions} extra transaction\\(s\\) ${nm} lacks \\(${listed}, \\d+ row event\\(s\\)\\); re-pointing it would keep them silently`),
  )
  expect(await s.sql('db1', (c) => c.queryOne('SHOW SLAVE STATUS'))).toBeUndefined()

  const file = await planAndApply(s, plans, 'rejoin', ['--rejoin', 'db1', '--flashback'])
  const plan = JSON.parse(readFileSync(file, 'utf8')) as Plan
  const flashback = plan.steps.find((st) => st.type === 'flashback_binlog')
  // The range to rewind starts where the cut transaction starts, not at the recorded position inside it.
  expect(flashback?.type === 'flashback_binlog' && [flashback.params.from, flashback.params.transactions, flashback.params.gtids]).toEqual([cut.start, transactions, gtids])
  expect(await count(s, 'db1', 'big')).toBe(0)
  expect(await count(s, 'db1', 'small')).toBe(1)
  const status = (await s.sql('db1', (c) => c.queryOne('SHOW SLAVE STATUS')))!
  expect([status.Master_Host, status.Slave_IO_Running, status.Slave_SQL_Running]).toEqual([nmIp, 'Yes', 'Yes'])
  await s.sql(nm, (c) => c.execute('INSERT INTO mhatest.small VALUES (1000)'))
  await waitFor('db1 to receive the new master\'s write', 20_000, async () => (await count(s, 'db1', 'small')) === 2)
  await expectAllTablesEqual(s, nm)
}

describe('mha plan --rejoin (file/position) when the failover\'s position lies inside a transaction', () => {
  it('the cut transaction is db1\'s last: it is listed as extra, refused without --flashback, rewound whole with it', async () => {
    await rejoinAfterACutTransaction('itrejoinpart', 0)
  }, 400_000)

  it('transactions follow the cut one: the range starts at the cut transaction\'s start, not inside it', async () => {
    await rejoinAfterACutTransaction('itrejoinpart2', 3)
  }, 400_000)

  it('GTID: the cut transaction\'s GTID is listed and rewound with those after it', async () => {
    await rejoinAfterACutTransaction('itrejoinpart3', 2, true)
  }, 400_000)

  it('mha watch --auto-rejoin leaves db1 alone with the cut transaction, and says why', async () => {
    const {s, plans, nm} = await cutFailoverAndRestart('itrejoinpart4', 0, false)
    const watch = spawnWatch(['--config-dir', dirname(s.configFile), '--plans-dir', plans, '--auto-rejoin'])
    try {
      await waitFor('watch to look at db1', 60_000, () => watch.lines.some((l) => l.event === 'rejoin refused' || l.event === 'rejoined'))
      expect(watch.lines.filter((l) => l.event === 'rejoined' || l.event === 'rejoin')).toEqual([])
      expect(watch.lines.find((l) => l.event === 'rejoin refused')!.message).toMatch(new RegExp(`^db1 answers again but is not rejoined automatically: db1 has 1 extra transaction\\(s\\) ${nm} lacks `))
    } finally {
      watch.child.kill('SIGTERM')
      await watch.exited
    }
    expect(await s.sql('db1', (c) => c.queryOne('SHOW SLAVE STATUS'))).toBeUndefined()
    expect(await count(s, 'db1', 'big')).toBe(ROWS)
  }, 400_000)
})
