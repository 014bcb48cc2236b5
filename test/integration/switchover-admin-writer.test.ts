import {randomBytes} from 'node:crypto'
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import mysql from 'mysql2/promise'
import {afterEach, describe, expect, it} from 'vitest'
import type {ApplyReport} from '../../src/apply/events.js'
import {WriteLoad} from '../../src/sandbox/load.js'
import {waitFor} from '../../src/sandbox/processes.js'
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
  errors = 0
  #stopped = false
  #loop: Promise<void> | undefined
  #host: string
  readonly #hosts: string[]
  readonly #password: string

  constructor(hosts: string[], first: string, password: string) {
    this.#hosts = hosts
    this.#host = first
    this.#password = password
  }

  start(): void {
    this.#loop = this.run()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    await this.#loop
  }

  private async open(host: string): Promise<mysql.Connection> {
    const conn = await mysql.createConnection({host, user: 'admwriter', password: this.#password, database: 'mhatest', connectTimeout: 500})
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
        await conn.query({sql: 'INSERT INTO adm (id) VALUES (?)', values: [next], timeout: 5000})
        this.acked.push(next)
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

describe('online switchover on MariaDB with a writer that ignores read_only', () => {
  it('loses no acknowledged write of either writer and re-points the old master cleanly', async () => {
    sandbox = await startSandbox('itswadm', OCTET, {gtid: true})
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

    const file = join(plansDir, 'to-db2.json')
    const plan = await runMha(['plan', '--config', s.configFile, '--switchover', '--to', 'db2', '-o', file])
    expect(plan.code, plan.stderr + plan.stdout).toBe(2)
    const applied = await runMha(['apply', file, '--config', s.configFile, '--json'])
    const report = JSON.parse(applied.stdout) as ApplyReport
    expect(report.status, report.message).toBe('applied')
    expect(report.steps.find((x) => x.id === 'release_write_block:db1')?.status).toBe('applied')

    await new Promise((r) => setTimeout(r, 1000))
    await load.stop()
    await admin.stop()
    expect(load.acked.length).toBeGreaterThan(20)
    expect(admin.acked.length).toBeGreaterThan(200)
    // It was cut off (killed while blocked) and carried on at db2.
    expect(admin.errors).toBeGreaterThan(0)

    // The old master replicates from db2 with both threads running and no error.
    for (const name of ['db1', 'db3'])
      await waitFor(`${name} to replicate from db2`, 20_000, async () => {
        const r = await s.sql(name, (c) => c.queryOne('SHOW SLAVE STATUS'))
        return r?.Master_Host === ip('db2') && r.Slave_IO_Running === 'Yes' && r.Slave_SQL_Running === 'Yes'
      })
    const db1 = (await s.sql('db1', (c) => c.queryOne('SHOW SLAVE STATUS')))!
    expect([db1.Last_IO_Errno, db1.Last_SQL_Errno].map(Number)).toEqual([0, 0])

    // Every acknowledged id of both writers is on the new master.
    const ids = async (table: string) => new Set(await s.sql('db2', async (c) => (await c.query(`SELECT id FROM mhatest.${table}`)).map((r) => Number(r.id))))
    const acked = await ids('acked')
    const adm = await ids('adm')
    expect(load.acked.filter((id) => !acked.has(id))).toEqual([])
    expect(admin.acked.filter((id) => !adm.has(id))).toEqual([])

    // A marker through db2 reaches everyone, then the same data everywhere.
    await s.sql('db2', (c) => c.execute('INSERT INTO mhatest.adm (id) VALUES (999999999)'))
    for (const name of names)
      await waitFor(`${name} to have the marker`, 20_000, async () => Number((await s.sql(name, (c) => c.queryOne('SELECT COUNT(*) AS n FROM mhatest.adm WHERE id = 999999999')))!.n) === 1)
    for (const table of ['acked', 'acked_log', 'adm']) {
      const sums = await Promise.all(names.map((n) => s.sql(n, async (c) => String((await c.queryOne(`CHECKSUM TABLE mhatest.${table}`))!.Checksum))))
      expect(new Set(sums).size, `CHECKSUM TABLE ${table}: ${sums.join(', ')}`).toBe(1)
    }
  })
})
