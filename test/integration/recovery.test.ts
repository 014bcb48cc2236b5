import {mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, posix} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {binlogBaseName, compareCoordinates, EventType, fileSource, findRelayDiffStart, readBinlogEvents, type BinlogCoordinates} from '../../src/binlog/index.js'
import {loadClusterFile} from '../../src/config/load.js'
import type {ClusterConfig, ServerConfig} from '../../src/config/types.js'
import {endpointOf, sshTargetOf} from '../../src/inspect/inspect.js'
import type {ServerConnection} from '../../src/inspect/mysql.js'
import {remoteSource} from '../../src/inspect/relay-lookup.js'
import {withSsh} from '../../src/remote/ssh.js'
import {applyBinlogs, copyRelayDiff, listRemoteBinlogs, listRemoteRelayLogs, saveBinlogTail} from '../../src/recovery/index.js'
import {portOpen, waitFor} from '../../src/sandbox/processes.js'
import {hostNamed, startHost} from '../../src/sandbox/sandbox.js'
import {startSandbox, type TestSandbox} from './harness.js'

let sandbox: TestSandbox
let cluster: ClusterConfig
const local = mkdtempSync(join(tmpdir(), 'mha-it-recovery-'))
const applyTemp = join(local, 'apply-tmp')
const tailFile = join(local, 'db1-tail.binlog')
const diffFile = join(local, 'db2-relay-diff-for-db3.binlog')

/** Every row db1 acknowledged, in insert order (one connection, AUTO_INCREMENT ids 1, 2, ...). */
const committed: Array<{batch: string; n: number}> = []

const server = (name: string): ServerConfig => cluster.servers.find((s) => s.name === name)!

async function replicaRead(host: string): Promise<BinlogCoordinates> {
  const row = (await sandbox.sql(host, (c) => c.queryOne('SHOW SLAVE STATUS')))!
  return {file: String(row.Master_Log_File), pos: Number(row.Read_Master_Log_Pos)}
}

async function waitForSqlThread(host: string, upTo: BinlogCoordinates): Promise<void> {
  const row = await sandbox.sql(host, (c) => c.queryOne('SELECT MASTER_POS_WAIT(?, ?, 60) AS r', [upTo.file, upTo.pos], 65_000))
  expect(Number(row?.r), `${host} SQL thread reached ${upTo.file}:${upTo.pos}`).toBeGreaterThanOrEqual(0)
}

async function caughtUpWithDb1(hosts: string[]): Promise<void> {
  const status = (await sandbox.sql('db1', (c) => c.queryOne('SHOW MASTER STATUS')))!
  for (const host of hosts) await waitForSqlThread(host, {file: String(status.File), pos: Number(status.Position)})
}

/** Autocommit inserts and multi-statement transactions (BEGIN ... COMMIT), all through one connection. */
async function writeBatch(c: ServerConnection, batch: string, big = false): Promise<void> {
  const insert = async (n: number, pad: string): Promise<void> => {
    await c.query('INSERT INTO mhatest.r (batch, n, pad) VALUES (?, ?, ?)', [batch, n, pad])
  }
  let n = 0
  const rowsThisBatch: number[] = []
  for (let i = 0; i < 15; i++) {
    await insert(++n, `auto ${i}`)
    rowsThisBatch.push(n)
  }
  for (let t = 0; t < 8; t++) {
    await c.execute('BEGIN')
    const inTransaction: number[] = []
    for (let k = 0; k < 3; k++) {
      await insert(++n, t === 3 && big ? 'y'.repeat(1024 * 1024) : `trx ${t}.${k}`)
      inTransaction.push(n)
    }
    await c.execute('COMMIT')
    rowsThisBatch.push(...inTransaction)
  }
  // Rolled back: db1 never acknowledged it, so it must not appear anywhere.
  await c.execute('BEGIN')
  await insert(9999, 'rolled back')
  await c.execute('ROLLBACK')
  committed.push(...rowsThisBatch.map((i) => ({batch, n: i})))
}

async function contents(host: string): Promise<{count: number; checksum: string; rows: Array<{batch: string; n: number}>}> {
  return await sandbox.sql(host, async (c) => {
    const rows = await c.query('SELECT batch, n FROM mhatest.r ORDER BY id')
    const checksum = await c.queryOne('CHECKSUM TABLE mhatest.r')
    return {count: rows.length, checksum: String(checksum?.Checksum), rows: rows.map((r) => ({batch: String(r.batch), n: Number(r.n)}))}
  })
}

const maxAllowedPacket = async (host: string): Promise<string> => String((await sandbox.sql(host, (c) => c.queryOne('SELECT @@global.max_allowed_packet AS v')))?.v)

describe('recovering lagging replicas from a dead master: binlog tail and relay-log diff applied on real servers', () => {
  beforeAll(async () => {
    sandbox = await startSandbox('itrecovery', 51, {replicas: 2})
    cluster = loadClusterFile(sandbox.configFile)
    mkdirSync(applyTemp)
  })
  afterAll(async () => {
    await sandbox?.down()
    rmSync(local, {recursive: true, force: true})
  })

  let db2Read: BinlogCoordinates
  let db3Read: BinlogCoordinates

  it('saves the tail from the dead master over SSH and the diff from the latest replica relay logs', async () => {
    await sandbox.sql('db1', (c) => c.execute('CREATE TABLE mhatest.r (id INT AUTO_INCREMENT PRIMARY KEY, batch VARCHAR(10), n INT, pad MEDIUMTEXT)'))
    await caughtUpWithDb1(['db2', 'db3'])

    // db3 misses batch a and b, db2 misses batch b: only db1's binlog has b.
    await sandbox.sql('db3', (c) => c.execute('STOP SLAVE IO_THREAD'))
    await sandbox.sql('db1', (c) => writeBatch(c, 'a', true))
    await caughtUpWithDb1(['db2'])
    await sandbox.sql('db2', (c) => c.execute('STOP SLAVE IO_THREAD'))
    await sandbox.sql('db1', (c) => writeBatch(c, 'b', true))

    const db1 = sandbox.state.hosts[0]!
    process.kill(db1.mariadbdPid!, 'SIGKILL')
    await waitFor('db1 mariadbd to die', 20_000, async () => !(await portOpen(db1.ip, 3306)))

    db2Read = await replicaRead('db2')
    db3Read = await replicaRead('db3')
    expect(compareCoordinates(db3Read, db2Read)).toBeLessThan(0)

    // (a) The dead master's binlog from db2's read position, over SSH (its sshd is still up).
    const binlogDir = server('db1').masterBinlogDirs[0]!
    const {tail, db1End} = await withSsh(sshTargetOf(cluster, server('db1')), async (session) => {
      const files = await listRemoteBinlogs(session, binlogDir, binlogBaseName(db2Read.file))
      const last = files.at(-1)!
      const size = await session.exec(`stat -c %s ${posix.join(binlogDir, last)}`)
      return {tail: await saveBinlogTail(session, binlogDir, files, db2Read, tailFile), db1End: {file: last, pos: Number(size.stdout.trim())}}
    })
    // Every transaction db1 wrote was complete (SIGKILL after COMMIT returned, sync_binlog=1): nothing trimmed.
    expect(tail).toMatchObject({end: db1End, trimmed: 0})
    const tailEvents = (await readBinlogEvents(fileSource(tailFile))).events
    expect(tailEvents[0]!.type).toBe(EventType.FORMAT_DESCRIPTION)
    expect(tailEvents[1]!.logPos - tailEvents[1]!.size).toBe(db2Read.pos)

    // (b) What db3 lacks and db2 has, from db2's relay logs (listed in its relay log index).
    const relayIndex = await sandbox.sql('db2', async (c) => {
      const row = (await c.queryOne('SELECT @@relay_log_index AS idx, @@datadir AS datadir'))!
      const idx = String(row.idx)
      return idx.startsWith('/') ? idx : posix.join(String(row.datadir), idx)
    })
    const diff = await withSsh(sshTargetOf(cluster, server('db2')), async (session) => {
      const relayLogs = await listRemoteRelayLogs(session, relayIndex)
      const start = await findRelayDiffStart(
        relayLogs.map((f) => remoteSource(session, f)),
        db3Read,
        {replicaServerId: 2},
      )
      if (!start.found) throw new Error(start.message)
      const from = relayLogs.findIndex((f) => posix.basename(f) === start.relayFile)
      return await copyRelayDiff(session, relayLogs.slice(from), start.offset, diffFile)
    })
    expect(diff.torn).toEqual([])
    const diffEvents = (await readBinlogEvents(fileSource(diffFile))).events.filter((e) => e.type !== EventType.FORMAT_DESCRIPTION)
    expect(diffEvents.length).toBe(diff.events)
    // The diff starts where db3 stopped reading and ends where db2 did, where the tail takes over.
    expect(diffEvents[0]!.logPos - diffEvents[0]!.size).toBe(db3Read.pos)
    expect(diffEvents.at(-1)!.logPos).toBe(db2Read.pos)
  })

  it('applies the tail to db2 and diff + tail as one stream to db3: both hold exactly what db1 acknowledged', async () => {
    // As MHA: each replica first executes everything it has received, then its SQL thread stops.
    await waitForSqlThread('db2', db2Read)
    await waitForSqlThread('db3', db3Read)
    for (const host of ['db2', 'db3']) await sandbox.sql(host, (c) => c.execute('STOP SLAVE'))
    const packetBefore = await maxAllowedPacket('db2')
    expect((await contents('db2')).count).toBeLessThan(committed.length)

    const options = {timeoutMs: 120_000, tempDir: applyTemp}
    const toDb2 = await applyBinlogs([tailFile], endpointOf(cluster, server('db2')), options)
    const toDb3 = await applyBinlogs([diffFile, tailFile], endpointOf(cluster, server('db3')), options)
    expect(toDb2.statements).toBeGreaterThan(0)
    expect(toDb3.statements).toBeGreaterThan(toDb2.statements)

    const [db2, db3] = [await contents('db2'), await contents('db3')]
    expect(db2.rows).toEqual(committed)
    expect(db3.rows).toEqual(committed)
    expect(db2.count).toBe(committed.length)
    expect(db3.checksum).toBe(db2.checksum)
    // Settings put back, credentials file gone.
    expect(await maxAllowedPacket('db2')).toBe(packetBefore)
    expect(await maxAllowedPacket('db3')).toBe(packetBefore)
    expect(readdirSync(applyTemp)).toEqual([])
  })

  it('applying the same tail again applies nothing: the target has every transaction of it (exactly once)', async () => {
    const packetBefore = await maxAllowedPacket('db2')
    const gtidBefore = await sandbox.sql('db2', async (c) => String((await c.queryOne('SELECT @@global.gtid_binlog_state AS s'))!.s))
    const second = await applyBinlogs([tailFile], endpointOf(cluster, server('db2')), {timeoutMs: 60_000, tempDir: applyTemp, retry: true})
    expect(second.transactions).toBeGreaterThan(0)
    expect(second).toMatchObject({statements: 0, alreadyApplied: second.transactions, tracked: true})
    expect(await sandbox.sql('db2', async (c) => String((await c.queryOne('SELECT @@global.gtid_binlog_state AS s'))!.s))).toBe(gtidBefore)
    expect(await maxAllowedPacket('db2')).toBe(packetBefore)
    expect(readdirSync(applyTemp)).toEqual([])
    expect((await contents('db2')).rows).toEqual(committed)
  })

  it('a target without a binlog (MariaDB, log_bin off): a stream failing part-way, fixed, applied again, applies only the rest', async () => {
    // db3 comes back with log_bin off: it records no GTID of what a client session applies.
    const db3 = hostNamed(sandbox.state, 'db3')
    process.kill(db3.mariadbdPid!, 'SIGTERM')
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0)
        return true
      } catch {
        return false
      }
    }
    await waitFor('db3 mariadbd to stop', 60_000, () => !alive(db3.mariadbdPid!))
    const cnf = join(db3.dir, 'my.cnf')
    writeFileSync(cnf, readFileSync(cnf, 'utf8').replace('log-bin=mysql-bin\n', 'skip-log-bin\n').replace('log-slave-updates=1\n', ''))
    await startHost(sandbox.state, 'db3')
    expect(Number((await sandbox.sql('db3', (c) => c.queryOne('SELECT @@global.log_bin AS b')))!.b)).toBe(0)
    await sandbox.sql('db3', (c) => c.execute('STOP SLAVE'))

    // db3 lacks batch b again (db1's tail), and holds a row that conflicts with one in the middle of it.
    const bIds = await sandbox.sql('db2', async (c) => (await c.query("SELECT id FROM mhatest.r WHERE batch = 'b' ORDER BY id")).map((r) => Number(r.id)))
    const conflicting = bIds[20]!
    await sandbox.sql('db3', async (c) => {
      await c.execute("DELETE FROM mhatest.r WHERE batch = 'b'")
      await c.query("INSERT INTO mhatest.r (id, batch, n, pad) VALUES (?, 'x', 0, 'in the way')", [conflicting])
    })
    const endpoint = endpointOf(cluster, server('db3'))
    await expect(applyBinlogs([tailFile], endpoint, {timeoutMs: 60_000, tempDir: applyTemp})).rejects.toThrow(/Duplicate entry/)
    const partial = (await contents('db3')).rows.filter((r) => r.batch === 'b').length
    expect(partial, 'the stream committed its first transactions before the conflict').toBeGreaterThan(0)
    expect(partial).toBeLessThan(bIds.length)
    // Each committed transaction left its mark, committed with it: the last one is the last committed.
    const marks = await sandbox.sql('db3', (c) => c.query('SELECT domain_id, server_id, seq_no FROM mysql.mha_applied_gtid'))
    expect(marks).toHaveLength(1)

    await sandbox.sql('db3', (c) => c.query('DELETE FROM mhatest.r WHERE id = ?', [conflicting]))
    const retried = await applyBinlogs([tailFile], endpoint, {timeoutMs: 60_000, tempDir: applyTemp, retry: true})
    expect(retried.tracked).toBe(true)
    expect(retried.alreadyApplied).toBeGreaterThan(0)
    expect(retried.alreadyApplied).toBeLessThan(retried.transactions)
    // Every row once, in db1's order; the same data as db2.
    const [onDb2, onDb3] = [await contents('db2'), await contents('db3')]
    expect(onDb3.rows).toEqual(committed)
    expect(onDb3.checksum).toBe(onDb2.checksum)
    // Once more: everything is there, nothing is applied.
    const third = await applyBinlogs([tailFile], endpoint, {timeoutMs: 60_000, tempDir: applyTemp, retry: true})
    expect(third).toMatchObject({statements: 0, alreadyApplied: third.transactions, tracked: true})
    expect((await contents('db3')).rows).toEqual(committed)
    expect(readdirSync(applyTemp)).toEqual([])
  })
})
