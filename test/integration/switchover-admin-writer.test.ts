import {randomBytes} from 'node:crypto'
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import mysql from 'mysql2/promise'
import {afterEach, describe, expect, it} from 'vitest'
import type {ApplyReport} from '../../src/apply/events.js'
import {WriteLoad} from '../../src/sandbox/load.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {secretsOf} from '../../src/sandbox/sandbox.js'
import {runMha, startSandbox, type TestSandbox} from './harness.js'

// Octet 121 only: other test files and other people's sandboxes use other addresses.
const OCTET = 121
let sandbox: TestSandbox | undefined
const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-switch-admin-'))

afterEach(async () => {
  await sandbox?.down()
  sandbox = undefined
})

/**
 * A client whose account ignores read_only (READ ONLY ADMIN), inserting as fast as it can and recording every
 * acknowledged id. Like an application behind an address that moves only when the switch is over, it goes back
 * to the server it wrote to after an error unless another server is writable (read_only=0).
 */
class AdminWriter {
  readonly acked: number[] = []
  /** The server that acknowledged each id. */
  readonly ackedBy = new Map<number, string>()
  errors = 0
  #stopped = false
  #loop: Promise<void> | undefined
  #host: string
  readonly #hosts: string[]
  readonly password: string

  constructor(hosts: string[], first: string, password: string) {
    this.#hosts = hosts
    this.#host = first
    this.password = password
  }

  start(): void {
    this.#loop = this.run()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    await this.#loop
  }

  private async open(host: string): Promise<mysql.Connection> {
    const conn = await mysql.createConnection({host, user: 'admwriter', password: this.password, database: 'mhatest', connectTimeout: 500})
    conn.on('error', () => undefined)
    return conn
  }

  private async connect(): Promise<mysql.Connection> {
    for (const host of this.#hosts) {
      try {
        const conn = await this.open(host)
        const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT @@global.read_only+0 AS ro')
        if (Number(rows[0]?.ro) === 0) {
          this.#host = host
          return conn
        }
        await conn.end()
      } catch {
        // Not this one.
      }
    }
    return await this.open(this.#host)
  }

  private async run(): Promise<void> {
    let conn: mysql.Connection | undefined
    let next = 1
    while (!this.#stopped) {
      try {
        conn ??= await this.connect()
        const host = this.#host
        await conn.query({sql: 'INSERT INTO adm (id) VALUES (?)', values: [next], timeout: 5000})
        this.acked.push(next)
        this.ackedBy.set(next, host)
      } catch {
        this.errors++
        conn?.destroy()
        conn = undefined
        await new Promise((r) => setTimeout(r, 5))
      }
      next++
    }
    conn?.destroy()
  }
}

/** A sandbox on octet 121 (GTID unless told) with both writers running on db1: the app account and one with READ ONLY ADMIN. */
async function startWithWriters(name: string, gtid = true): Promise<{s: TestSandbox; load: WriteLoad; admin: AdminWriter; ip: (name: string) => string; names: string[]}> {
  sandbox = await startSandbox(name, OCTET, {gtid})
  const s = sandbox
  const ip = (name: string) => s.state.hosts.find((h) => h.name === name)!.ip
  const names = s.state.hosts.map((h) => h.name)
  const password = randomBytes(12).toString('hex')
  await WriteLoad.prepare(s.state, 'db1')
  await s.sql('db1', async (c) => {
    const privileges = (await c.query('SHOW PRIVILEGES')).map((r) => String(r.Privilege))
    // MariaDB 10.11 names it "Read_only admin" in SHOW PRIVILEGES and READ_ONLY ADMIN in GRANT.
    expect(privileges.some((p) => /^read_only admin$/i.test(p)), privileges.join(', ')).toBe(true)
    await c.execute('CREATE TABLE mhatest.adm (id INT PRIMARY KEY)')
    await c.execute('CREATE TABLE mhatest.t (id INT PRIMARY KEY, v INT)')
    await c.execute('INSERT INTO mhatest.t VALUES (1, 1)')
    await c.execute(`CREATE USER 'admwriter'@'%' IDENTIFIED BY '${password}'`)
    await c.execute(`GRANT INSERT, SELECT ON mhatest.* TO 'admwriter'@'%'`)
    await c.execute(`GRANT READ_ONLY ADMIN ON *.* TO 'admwriter'@'%'`)
  })
  await waitFor('the replicas to have the admin writer', 10_000, async () => {
    const n = await Promise.all(names.map((n) => s.sql(n, async (c) => Number((await c.queryOne("SELECT COUNT(*) AS n FROM mysql.user WHERE User = 'admwriter'"))!.n))))
    return n.every((x) => x === 1)
  })
  const load = new WriteLoad(s.state)
  const admin = new AdminWriter(names.map(ip), ip('db1'), password)
  load.start()
  admin.start()
  await new Promise((r) => setTimeout(r, 1000))
  return {s, load, admin, ip, names}
}

/** Both writers' acknowledged ids on `master`, a marker through it everywhere, then the same tables on every server. */
async function expectSameEverywhere(s: TestSandbox, master: string, load: WriteLoad, admin: AdminWriter): Promise<void> {
  const names = s.state.hosts.map((h) => h.name)
  const ids = async (table: string) => new Set(await s.sql(master, async (c) => (await c.query(`SELECT id FROM mhatest.${table}`)).map((r) => Number(r.id))))
  const acked = await ids('acked')
  const adm = await ids('adm')
  expect(load.acked.filter((id) => !acked.has(id))).toEqual([])
  expect(admin.acked.filter((id) => !adm.has(id))).toEqual([])
  await s.sql(master, (c) => c.execute('INSERT INTO mhatest.adm (id) VALUES (999999999)'))
  for (const name of names)
    await waitFor(`${name} to have the marker`, 20_000, async () => Number((await s.sql(name, (c) => c.queryOne('SELECT COUNT(*) AS n FROM mhatest.adm WHERE id = 999999999')))!.n) === 1)
  for (const table of ['acked', 'acked_log', 'adm', 't']) {
    const sums = await Promise.all(names.map((n) => s.sql(n, async (c) => String((await c.queryOne(`CHECKSUM TABLE mhatest.${table}`))!.Checksum))))
    expect(new Set(sums).size, `CHECKSUM TABLE ${table}: ${sums.join(', ')}`).toBe(1)
  }
}

async function plan(s: TestSandbox, name: string): Promise<string> {
  const file = join(plansDir, `${name}.json`)
  const planned = await runMha(['plan', '--config', s.configFile, '--switchover', '--to', 'db2', '-o', file])
  expect(planned.code, planned.stderr + planned.stdout).toBe(2)
  return file
}

async function apply(s: TestSandbox, file: string): Promise<{code: number; report: ApplyReport}> {
  const applied = await runMha(['apply', file, '--config', s.configFile, '--json'])
  return {code: applied.code, report: JSON.parse(applied.stdout) as ApplyReport}
}

/** A transaction on `server` holds the row that db1 updates next, so its SQL thread cannot catch up in time. */
async function holdRowOn(s: TestSandbox, server: string): Promise<mysql.Connection> {
  const host = s.state.hosts.find((h) => h.name === server)!
  const holder = await mysql.createConnection({host: host.ip, user: 'mha', password: secretsOf(s.state.dir).admin.reveal()})
  await holder.query('BEGIN')
  await holder.query('SELECT * FROM mhatest.t WHERE id = 1 FOR UPDATE')
  await s.sql('db1', (c) => c.execute('UPDATE mhatest.t SET v = v + 1 WHERE id = 1'))
  return holder
}

describe('online switchover on MariaDB with a writer that ignores read_only', () => {
  it('loses no acknowledged write of either writer and re-points the old master cleanly, or names the late writes on the old master', async () => {
    const {s, load, admin, ip} = await startWithWriters('itswadm')
    const {report} = await apply(s, await plan(s, 'to-db2'))
    expect(report.steps.find((x) => x.id === 'release_write_block:db1')?.status).toBe('applied')

    await new Promise((r) => setTimeout(r, 1000))
    await load.stop()
    await admin.stop()
    expect(load.acked.length).toBeGreaterThan(20)
    expect(admin.acked.length).toBeGreaterThan(200)
    // It was cut off (killed while blocked) and carried on at db2.
    expect(admin.errors).toBeGreaterThan(0)

    const db1Repoint = report.steps.find((x) => x.id === 'repoint_replica:db1')!
    if (db1Repoint.status === 'failed') {
      // The writer's last look found db2 still read_only (before the promotion) and it went back to db1, where its
      // connection arrived after the release: an account that ignores read_only writes there, and no write block
      // outlives its release (MariaDB has no super_read_only). That happened in one CI run of 20 or so, when the
      // block had become shorter than the writer's reconnection. mha must not bury those writes in a replica: db1 is
      // left out, named, and everything else is on db2.
      console.log('outcome: the admin writer reached db1 after the release; db1 was left out')
      // Refused before CHANGE MASTER when the write came first; when it came between that check and START SLAVE, db1's
      // SQL thread stops on it (an out-of-order GTID of db1's own server id) and the step fails on that.
      expect(db1Repoint.reason).toMatch(/db1 wrote after its write block was released \(.+ -> .+\): an account that ignores read_only wrote there|db1: SQL thread error 1950: .*0-1-\d+/)
      const replicating = await s.sql('db1', (c) => c.queryOne('SHOW SLAVE STATUS'))
      expect(replicating === undefined || replicating.Slave_SQL_Running === 'No').toBe(true)
      await waitFor('db3 to replicate from db2', 20_000, async () => {
        const r = await s.sql('db3', (c) => c.queryOne('SHOW SLAVE STATUS'))
        return r?.Master_Host === ip('db2') && r.Slave_IO_Running === 'Yes' && r.Slave_SQL_Running === 'Yes'
      })
      const ids = async (server: string, table: string) => new Set(await s.sql(server, async (c) => (await c.query(`SELECT id FROM mhatest.${table}`)).map((r) => Number(r.id))))
      const onDb2 = await ids('db2', 'acked')
      expect(load.acked.filter((id) => !onDb2.has(id))).toEqual([])
      // Each admin write missing on db2 is on db1, acknowledged by db1.
      const [admOnDb2, admOnDb1] = [await ids('db2', 'adm'), await ids('db1', 'adm')]
      const missing = admin.acked.filter((id) => !admOnDb2.has(id))
      expect(missing.length).toBeGreaterThan(0)
      expect(missing.filter((id) => !admOnDb1.has(id) || admin.ackedBy.get(id) !== ip('db1'))).toEqual([])
      return
    }
    expect(report.status, report.message).toBe('applied')
    console.log('outcome: clean')
    // The old master replicates from db2 with both threads running and no error.
    for (const name of ['db1', 'db3'])
      await waitFor(`${name} to replicate from db2`, 20_000, async () => {
        const r = await s.sql(name, (c) => c.queryOne('SHOW SLAVE STATUS'))
        return r?.Master_Host === ip('db2') && r.Slave_IO_Running === 'Yes' && r.Slave_SQL_Running === 'Yes'
      })
    const db1 = (await s.sql('db1', (c) => c.queryOne('SHOW SLAVE STATUS')))!
    expect([db1.Last_IO_Errno, db1.Last_SQL_Errno].map(Number)).toEqual([0, 0])
    await expectSameEverywhere(s, 'db2', load, admin)
  })

  it('rolls back before the promotion: the lock goes, db1 takes both writers again, nothing is lost', async () => {
    const {s, load, admin, ip} = await startWithWriters('itswadmr')
    // The held row makes db2 lag under the load from the moment it is taken: the lag limit must not refuse first.
    writeFileSync(s.configFile, readFileSync(s.configFile, 'utf8') + 'failover: {wait_timeout: 2}\nswitchover: {max_lag_seconds: 60}\n')
    const file = await plan(s, 'rollback')
    const holder = await holdRowOn(s, 'db2')
    const {code, report} = await apply(s, file)
    await holder.query('ROLLBACK')
    await holder.end()
    expect(code).toBe(1)
    expect(report.message).toMatch(/^wait_caught_up:db2 failed: .*; rolled back \(unblock_writes:db1\): db1 takes writes again$/)
    expect(report.steps.find((x) => x.id === 'enable_writes:db2')?.status).toBe('not_run')

    // Both writers go on at db1: the lock is gone, not only read_only.
    const before = admin.acked.length
    await waitFor('the admin writer to write at db1 again', 10_000, () => admin.acked.length > before + 50)
    expect(Number((await s.sql('db1', (c) => c.queryOne('SELECT @@global.read_only+0 AS ro')))!.ro)).toBe(0)
    await load.stop()
    await admin.stop()
    for (const name of ['db2', 'db3'])
      await waitFor(`${name} to replicate from db1`, 20_000, async () => {
        const r = await s.sql(name, (c) => c.queryOne('SHOW SLAVE STATUS'))
        return r?.Master_Host === ip('db1') && r.Slave_IO_Running === 'Yes' && r.Slave_SQL_Running === 'Yes'
      })
    await expectSameEverywhere(s, 'db1', load, admin)
  })

  it('after the promotion a failure leaves db2 writable with every write, and apply again finishes', async () => {
    const {s, load, admin, ip} = await startWithWriters('itswadmp')
    writeFileSync(s.configFile, readFileSync(s.configFile, 'utf8') + 'failover: {wait_timeout: 2}\n')
    const file = await plan(s, 'after-promotion')
    // db3, not the target, cannot catch up: the promotion goes ahead, db3's re-pointing cannot.
    const holder = await holdRowOn(s, 'db3')
    const first = await apply(s, file)
    expect(first.code).toBe(1)
    expect(first.report.message).toMatch(/^wait_caught_up:db3 failed: /)
    const status = (id: string) => first.report.steps.find((x) => x.id === id)?.status
    expect([status('enable_writes:db2'), status('release_write_block:db1')]).toEqual(['applied', 'applied'])
    expect(status('repoint_replica:db3')).not.toBe('applied')
    expect(Number((await s.sql('db2', (c) => c.queryOne('SELECT @@global.read_only+0 AS ro')))!.ro)).toBe(0)
    expect(Number((await s.sql('db1', (c) => c.queryOne('SELECT @@global.read_only+0 AS ro')))!.ro)).toBe(1)
    const before = admin.acked.length
    await waitFor('the admin writer to write at db2', 10_000, () => admin.acked.length > before + 50)

    await holder.query('ROLLBACK')
    await holder.end()
    const second = await apply(s, file)
    expect(second.report.status, second.report.message).toBe('applied')
    await load.stop()
    await admin.stop()
    for (const name of ['db1', 'db3'])
      await waitFor(`${name} to replicate from db2`, 20_000, async () => {
        const r = await s.sql(name, (c) => c.queryOne('SHOW SLAVE STATUS'))
        return r?.Master_Host === ip('db2') && r.Slave_IO_Running === 'Yes' && r.Slave_SQL_Running === 'Yes'
      })
    await expectSameEverywhere(s, 'db2', load, admin)
  })

  it('file/position: a write on the old master after the release never stays unnamed on another replica that still read its binlog', async () => {
    const {s, load, admin, ip} = await startWithWriters('itswadmr3', false)
    await admin.stop()
    writeFileSync(s.configFile, readFileSync(s.configFile, 'utf8') + 'failover: {wait_timeout: 20}\n')
    const file = await plan(s, 'late-write-relayed')
    // db3's SQL thread waits on a row held there: its catch-up, after the promotion, ends after the release.
    const holder = await holdRowOn(s, 'db3')
    const applying = apply(s, file)
    await waitFor('db2 to take writes', 20_000, async () => Number((await s.sql('db2', (c) => c.queryOne('SELECT @@global.read_only+0 AS ro')))!.ro) === 0)
    // An account that ignores read_only writes on db1: it waits on mha's lock until the release, then commits there.
    const late = await mysql.createConnection({host: ip('db1'), user: 'admwriter', password: admin.password, database: 'mhatest'})
    await late.query('INSERT INTO adm (id) VALUES (888888888)')
    await late.end()
    // db3's IO thread, still on db1, receives it; then its SQL thread goes on.
    await waitFor('db3 to have received the late write', 10_000, async () => {
      const r = (await s.sql('db3', (c) => c.queryOne('SHOW SLAVE STATUS')))!
      const db1 = (await s.sql('db1', (c) => c.queryOne('SHOW MASTER STATUS')))!
      return r.Master_Log_File === db1.File && Number(r.Read_Master_Log_Pos) === Number(db1.Position)
    })
    await holder.query('ROLLBACK')
    await holder.end()
    const {report} = await applying
    await load.stop()
    const has = async (server: string) => Number((await s.sql(server, (c) => c.queryOne('SELECT COUNT(*) AS n FROM mhatest.adm WHERE id = 888888888')))!.n) === 1
    expect(await has('db2')).toBe(false)
    const status = (id: string) => report.steps.find((x) => x.id === id)!
    // db3 either stopped before that write (re-pointed, without it) or executed it: then it is not re-pointed, and
    // named, by its wait (db1 moved past the final position) or, when the write came after the wait, its re-point.
    if (await has('db3')) {
      expect(status('repoint_replica:db3').status).not.toMatch(/applied|skipped/)
      const named = [status('wait_caught_up:db3'), status('repoint_replica:db3')].find((x) => x.status === 'failed')
      expect(named?.reason).toMatch(
        /db1 wrote after its final position \(.+ -> .+\): an account that ignores read_only wrote there after the write block's release, and db3 still reads its binlog; db3 is not re-pointed|db3 executed what db1 wrote after its write block was released \(final .+, db3 at .+\): an account that ignores read_only wrote on db1, and db2 lacks it; db3 is not re-pointed/,
      )
      expect((await s.sql('db3', (c) => c.queryOne('SHOW SLAVE STATUS')))!.Master_Host).toBe(ip('db1'))
    } else expect(status('repoint_replica:db3').status).toMatch(/applied|skipped/)
    // db2 has every acknowledged write of the load.
    const acked = new Set(await s.sql('db2', async (c) => (await c.query('SELECT id FROM mhatest.acked')).map((r) => Number(r.id))))
    expect(load.acked.filter((id) => !acked.has(id))).toEqual([])
  })

  it('file/position: a write on the old master after the release (an account that ignores read_only) stops its re-pointing instead of staying there alone', async () => {
    const {s, load, admin} = await startWithWriters('itswadml', false)
    await admin.stop()
    writeFileSync(s.configFile, readFileSync(s.configFile, 'utf8') + 'failover: {wait_timeout: 2}\n')
    const file = await plan(s, 'late-write')
    // db3 cannot replicate from db2 for now (db2 admits one session of the replication account, and the test holds
    // it): db3's re-pointing fails after the promotion and the release, and db1's, which comes after it, waits. (A
    // wrong password there would be refused before the first effect, by check_switchover.)
    const repl = secretsOf(s.state.dir).repl.reveal()
    const replSessions = (limit: number) => s.sql('db2', async (c) => {
      await c.execute('SET SESSION sql_log_bin = 0')
      await c.execute(`ALTER USER 'repl'@'%' WITH MAX_USER_CONNECTIONS ${limit}`)
    })
    await replSessions(1)
    const held = await mysql.createConnection({host: s.state.hosts[1]!.ip, user: 'repl', password: repl})
    const first = await apply(s, file)
    expect(first.code, first.report.message).toBe(1)
    const status = (id: string) => first.report.steps.find((x) => x.id === id)?.status
    expect([status('enable_writes:db2'), status('release_write_block:db1'), status('repoint_replica:db3')]).toEqual(['applied', 'applied', 'failed'])
    expect(status('repoint_replica:db1')).not.toBe('applied')

    // The release is over: an account that ignores read_only writes on db1, and is acknowledged.
    const late = await mysql.createConnection({host: s.state.hosts[0]!.ip, user: 'admwriter', password: admin.password, database: 'mhatest'})
    await late.query('INSERT INTO adm (id) VALUES (777777777)')
    await late.end()
    await held.end()
    await replSessions(0)
    const second = await apply(s, file)
    expect(second.code, second.report.message).toBe(1)
    const db1 = second.report.steps.find((x) => x.id === 'repoint_replica:db1')!
    expect(db1.status).toBe('failed')
    expect(db1.reason).toMatch(/db1 wrote after its write block was released \(.+ -> .+\): an account that ignores read_only wrote there, and those transactions are on db1 only; it is not re-pointed: .*--rebuild db1/)
    expect(second.report.steps.find((x) => x.id === 'repoint_replica:db3')?.status).toMatch(/applied|skipped/)
    // db1 replicates from nobody: the write is not buried in a replica; db2 has every write of the load.
    expect(await s.sql('db1', (c) => c.queryOne('SHOW SLAVE STATUS'))).toBeUndefined()
    await load.stop()
    const acked = new Set(await s.sql('db2', async (c) => (await c.query('SELECT id FROM mhatest.acked')).map((r) => Number(r.id))))
    expect(load.acked.filter((id) => !acked.has(id))).toEqual([])
  })
})
