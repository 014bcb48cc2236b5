import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {afterAll, afterEach, describe, expect, it} from 'vitest'
import type {ApplyReport} from '../../src/apply/events.js'
import {parseMariadbGtidPos} from '../../src/gtid/mariadb.js'
import {ServerConnection} from '../../src/inspect/mysql.js'
import {readPlan} from '../../src/plan/plan-file.js'
import type {Plan} from '../../src/plan/types.js'
import {WriteLoad} from '../../src/sandbox/load.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {adminEndpoint, hostNamed} from '../../src/sandbox/sandbox.js'
import {expectConsistent, killMasterAndWait, replicateInParallel, root, runMha, startSandbox, type TestSandbox} from './harness.js'

// MariaDB GTID with two replication domains on parallel replicas: a row lock on the candidate holds one domain
// back across the master's kill while the other domain commits on. The failover must wait for the held domain
// (not only for the furthest commit), apply what is missing exactly once, and say "none" only when it is so.

let sandbox: TestSandbox | undefined
const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-domains-'))
const OCTET = 35
const CLUSTER = 'itdomains1'

afterEach(async () => {
  await sandbox?.down()
  // The test's folder (the sandbox's data, the cluster file's folder) too.
  if (sandbox) rmSync(dirname(dirname(sandbox.state.configFile)), {recursive: true, force: true})
  sandbox = undefined
})

afterAll(() => {
  rmSync(plansDir, {recursive: true, force: true})
  // The failover record apply keeps for the cluster, beside the project's plans.
  rmSync(join(root, 'plans', CLUSTER), {recursive: true, force: true})
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * The second writer: on db1, in gtid_domain_id 1 (the admin user: the app user may not set the domain), each
 * transaction an acked and an acked_log row with a negative id (disjoint from WriteLoad's) and an update of the
 * one row of mhatest.hot, which a session on the candidate can lock. Stops at the master's death.
 */
class DomainOneWriter {
  readonly acked: number[] = []
  #stopped = false
  #loop: Promise<void> | undefined

  readonly s: TestSandbox

  constructor(s: TestSandbox) {
    this.s = s
  }

  start(): void {
    this.#loop = this.#run()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    await this.#loop
  }

  async #run(): Promise<void> {
    const conn = await ServerConnection.open(adminEndpoint(this.s.state, hostNamed(this.s.state, 'db1')), 5000)
    try {
      await conn.execute('SET SESSION gtid_domain_id = 1')
      for (let id = -1; !this.#stopped; id--) {
        await conn.execute('BEGIN')
        await conn.query('INSERT INTO mhatest.acked (id) VALUES (?)', [id])
        await conn.query('INSERT INTO mhatest.acked_log (id) VALUES (?)', [id])
        await conn.execute('UPDATE mhatest.hot SET v = v + 1 WHERE id = 1')
        await conn.execute('COMMIT')
        this.acked.push(id)
        await sleep(15)
      }
    } catch {
      // The master died: what was acknowledged is recorded.
    } finally {
      await conn.close().catch(() => undefined)
    }
  }
}

/** Per domain, the seq number of a MariaDB GTID position. */
function perDomain(pos: string): Map<number, bigint> {
  return new Map(parseMariadbGtidPos(pos).map((g) => [g.domain, g.seq]))
}

describe('MariaDB GTID, two domains, parallel replication', () => {
  it('a domain held back on the candidate across the kill: every acknowledged write of both domains on the new master, none twice', async () => {
    sandbox = await startSandbox(CLUSTER, OCTET, {gtid: true})
    const s = sandbox
    // A held domain may not take every worker: the other domain keeps committing.
    await replicateInParallel(s, 4, 'optimistic', 2)
    await WriteLoad.prepare(s.state, 'db1')
    await s.sql('db1', async (c) => {
      await c.execute('CREATE TABLE mhatest.hot (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB')
      await c.execute('INSERT INTO mhatest.hot VALUES (1, 0)')
    })
    await waitFor('db2 to have the hot row', 20_000, async () => Number((await s.sql('db2', (c) => c.queryOne("SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'mhatest' AND TABLE_NAME = 'hot'")))!.n) === 1)
    const load = new WriteLoad(s.state)
    load.start()
    await waitFor('the domain-0 writer to write', 20_000, () => Promise.resolve(load.acked.length > 0))
    const domainOne = new DomainOneWriter(s)
    domainOne.start()
    await sleep(1000)

    // A client on the candidate, not logged, locks the row every domain-1 transaction updates.
    const holder = await ServerConnection.open(adminEndpoint(s.state, hostNamed(s.state, 'db2')), 5000)
    try {
      await holder.execute('SET SESSION sql_log_bin = 0')
      await holder.execute('SET SESSION innodb_lock_wait_timeout = 600')
      await holder.execute('BEGIN')
      await holder.query('SELECT v FROM mhatest.hot WHERE id = 1 FOR UPDATE')
      await sleep(1500)
      // Domain 1 ends first and domain 0 writes on: the furthest commit on db2 is then domain 0's, at the end of
      // its relay log, while domain 1's held transactions lie before it.
      await domainOne.stop()
      await sleep(1000)
      await killMasterAndWait(s)

      // The fault is in place at the kill: a worker waits on the lock, and db2 has received domain-1
      // transactions it has not executed, while domain 0 went on committing.
      const waiting = await s.sql('db2', (c) => c.query("SELECT trx_id FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'"))
      expect(waiting.length, 'a replication worker waits for the row lock on db2').toBeGreaterThan(0)
      const status = (await s.sql('db2', (c) => c.queryOne('SHOW SLAVE STATUS')))!
      const slavePos = perDomain(String((await s.sql('db2', (c) => c.queryOne('SELECT @@global.gtid_slave_pos AS p')))!.p))
      const ioPos = perDomain(String(status.Gtid_IO_Pos))
      console.log(`db2 at the kill: gtid_slave_pos ${[...slavePos].map(([d, q]) => `${d}:${q}`).join(' ')}, Gtid_IO_Pos ${String(status.Gtid_IO_Pos)}, executed ${String(status.Relay_Master_Log_File)}:${String(status.Exec_Master_Log_Pos)}, read ${String(status.Master_Log_File)}:${String(status.Read_Master_Log_Pos)}`)
      expect(ioPos.get(1), 'db2 received domain 1').toBeDefined()
      expect(slavePos.get(1) ?? 0n, 'db2 is behind in domain 1').toBeLessThan(ioPos.get(1)!)
      const heldBack = Number(ioPos.get(1)! - (slavePos.get(1) ?? 0n))
      expect(heldBack, 'several domain-1 transactions are held back').toBeGreaterThan(10)
      expect(slavePos.get(0), 'domain 0 committed all it received').toBe(ioPos.get(0))
      console.log(`domain 1: ${heldBack} transactions held back on db2; ${domainOne.acked.length} acknowledged in domain 1, ${load.acked.length} in domain 0`)

      const file = join(plansDir, 'domains.json')
      const planned = await runMha(['plan', '--config', s.configFile, '-o', file])
      expect(planned.code, planned.stderr + planned.stdout).toBe(2)
      const plan: Plan = readPlan(file)
      expect(plan.decision.newMaster).toBe('db2')

      const applying = runMha(['apply', file, '--config', s.configFile, '--json'])
      await sleep(2500)
      await holder.execute('ROLLBACK')
      const result = await applying
      const report = JSON.parse(result.stdout) as ApplyReport

      await load.stop()
      const acked = [...load.acked, ...domainOne.acked]
      const present = new Set((await s.sql('db2', (c) => c.query('SELECT id FROM mhatest.acked'))).map((r) => Number(r.id)))
      const missing = acked.filter((id) => !present.has(id))
      console.log(`on the new master: ${missing.length} of ${acked.length} acknowledged ids missing (${missing.filter((id) => id < 0).length} of domain 1); report: ${report.status}, data loss ${report.dataLoss}`)
      // What the report says of the loss is checked against the rows: none missing, so "none" is true.
      expect(missing, `acknowledged ids missing on db2 while the report says "${report.dataLoss}"`).toEqual([])
      expect(report.status, report.message).toBe('applied')
      expect(plan.decision.dataLoss.none, plan.decision.dataLoss.statement).toBe(true)
      expect(report.dataLoss).toBe(plan.decision.dataLoss.statement)
      await expectConsistent(s, 'db2', acked)
      // The plan says that db2's executed position is past the held domain, and that the wait executes it.
      expect(plan.decision.notes.join('\n')).toMatch(/db2 has received transactions it has not executed in domain 1 \(seq \d+\.\.\d+\).*not a low-water mark/)
    } finally {
      await holder.close().catch(() => undefined)
      await domainOne.stop()
      await load.stop()
    }
  })
})
