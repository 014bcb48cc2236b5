import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import mysql from 'mysql2/promise'
import {afterAll, afterEach, describe, expect, it} from 'vitest'
import type {ApplyReport} from '../../src/apply/events.js'
import {withConnection} from '../../src/inspect/mysql.js'
import type {Plan} from '../../src/plan/types.js'
import {HaproxyRuntime} from '../../src/routing/haproxy.js'
import {WriteLoad} from '../../src/sandbox/load.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {secretsOf} from '../../src/sandbox/sandbox.js'
import {expectRoles, runMha, startSandbox, tableOfOneRow, watchWriters, type TestSandbox} from './harness.js'

// Online switchovers of a sandbox on 127.0.0.186-188 behind a real haproxy on 127.0.0.189, its clients writing
// only through the proxy's frontend.
let sandbox: TestSandbox | undefined
const plans = mkdtempSync(join(tmpdir(), 'mha-it-swpx-'))
const backend = 'mysql_writer'
const frontend = {host: '127.0.0.189', port: 3306}
const api = () => new HaproxyRuntime({name: 'haproxy1', runtimeApi: {kind: 'tcp', host: '127.0.0.189', port: 9999}, timeoutMs: 3000})
const enabled = async () => (await api().showServersState(backend)).filter((s) => s.enabled).map((s) => s.name)
const throughProxy = (s: TestSandbox) => withConnection({name: 'frontend', ...frontend, user: 'app', password: secretsOf(s.state.dir).app}, 5000, async (c) => Number((await c.queryOne('SELECT @@server_id AS id'))?.id))

/** A haproxy the test stopped (SIGSTOP), continued whatever happens. */
let frozen: number | undefined

afterEach(async () => {
  if (frozen !== undefined) process.kill(frozen, 'SIGCONT')
  frozen = undefined
  await sandbox?.down()
  sandbox = undefined
})
afterAll(() => rmSync(plans, {recursive: true, force: true}))

describe('online switchover through a haproxy', () => {
  it('drains the old master first, sends writes to the new one after its promotion: no acknowledged write lost, never two writers', async () => {
    sandbox = await startSandbox('itswpx', 186, {haproxyAddress: '127.0.0.189'})
    const s = sandbox
    expect(await throughProxy(s)).toBe(1)
    const file = join(plans, 'to-db2.json')
    const planned = await runMha(['plan', '--config', s.configFile, '--switchover', '--to', 'db2', '-o', file])
    expect(planned.code, planned.stderr + planned.stdout).toBe(2)
    const plan = JSON.parse(readFileSync(file, 'utf8')) as Plan
    const ids = plan.steps.map((st) => st.id)
    expect(ids.indexOf('route_drain:haproxy1')).toBeLessThan(ids.indexOf('block_writes:db1'))
    expect(ids.indexOf('route_writer:haproxy1')).toBeGreaterThan(ids.indexOf('enable_writes:db2'))
    expect(plan.rollback!.steps.map((st) => st.id)).toContain('route_writer_back:haproxy1')
    const shown = await runMha(['show', file, '--config', s.configFile])
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.stdout).toContain('route_writer_back:haproxy1 (undoes route_drain:haproxy1)')

    // A proxy that also sends writes to db2 (someone's mistake): the switchover refuses before any change.
    await api().setServerState(backend, 'db2', 'ready')
    const refused = await runMha(['apply', file, '--config', s.configFile, '--json'])
    const refusal = JSON.parse(refused.stdout) as ApplyReport
    expect(refused.code).toBe(1)
    expect(refusal.message).toMatch(/switchover refused: proxy haproxy1 .*backend mysql_writer sends new connections to db1, db2.*; nothing was changed/)
    expect(await enabled()).toEqual(['db1', 'db2'])
    expect(Number(await s.sql('db1', async (c) => (await c.queryOne('SELECT @@global.read_only+0 AS ro'))!.ro))).toBe(0)
    await api().setServerState(backend, 'db2', 'maint')

    await WriteLoad.prepare(s.state, 'db1')
    const load = new WriteLoad(s.state, 10, {through: frontend})
    load.start()
    await waitFor('writes through the proxy', 10_000, () => Promise.resolve(load.acked.length > 20))
    const watcher = watchWriters(api(), backend)
    const started = performance.now()
    const applied = await runMha(['apply', file, '--config', s.configFile, '--json'])
    const ended = performance.now()
    const seen = await watcher.stop()
    const report = JSON.parse(applied.stdout) as ApplyReport
    expect(applied.code, report.message).toBe(0)
    expect(report.status).toBe('applied')
    await waitFor('writes through the proxy again', 10_000, () => Promise.resolve(load.ackedAt.some((at) => at > ended)))
    await load.stop()

    // The runtime API read throughout: never two servers enabled at once.
    expect(seen.reads).toBeGreaterThan(0)
    expect(seen.most).toBeLessThanOrEqual(1)
    expect(await enabled()).toEqual(['db2'])
    expect(await throughProxy(s)).toBe(2)
    await expectRoles(s, 'db2', load.acked)

    // The write block as a client of the proxy saw it: the longest time between two acknowledged writes while apply ran.
    let longest = 0
    for (let i = 1; i < load.ackedAt.length; i++) if (load.ackedAt[i]! >= started && load.ackedAt[i - 1]! <= ended) longest = Math.max(longest, load.ackedAt[i]! - load.ackedAt[i - 1]!)
    console.log(`switchover through haproxy: longest gap between two acknowledged writes through the proxy ${(longest / 1000).toFixed(3)} s (apply took ${((ended - started) / 1000).toFixed(2)} s, ${load.acked.length} writes acknowledged, ${load.errors} failed or refused)`)
  })

  it('rolled back before the promotion: the old master is back in the writer backend and takes writes through the proxy', async () => {
    sandbox = await startSandbox('itswpxr', 186, {haproxyAddress: '127.0.0.189'})
    const s = sandbox
    writeFileSync(s.configFile, readFileSync(s.configFile, 'utf8') + 'failover: {wait_timeout: 2}\n')
    await tableOfOneRow(s)
    const file = join(plans, 'rollback.json')
    const planned = await runMha(['plan', '--config', s.configFile, '--switchover', '--to', 'db2', '-o', file])
    expect(planned.code, planned.stderr + planned.stdout).toBe(2)

    // A transaction on db2 holds the row, so db2's SQL thread cannot apply db1's next update in time.
    const holder = await mysql.createConnection({host: s.state.hosts[1]!.ip, user: 'mha', password: secretsOf(s.state.dir).admin.reveal()})
    await holder.query('BEGIN')
    await holder.query('SELECT * FROM mhatest.t WHERE id = 1 FOR UPDATE')
    await s.sql('db1', (c) => c.execute('UPDATE mhatest.t SET v = 2 WHERE id = 1'))
    const watcher = watchWriters(api(), backend)
    const applied = await runMha(['apply', file, '--config', s.configFile, '--json'])
    const seen = await watcher.stop()
    await holder.query('ROLLBACK')
    await holder.end()
    const report = JSON.parse(applied.stdout) as ApplyReport
    expect(applied.code, report.message).toBe(1)
    expect(report.status).toBe('failed')
    expect(report.message).toMatch(/^wait_caught_up:db2 failed: .*; rolled back \(unblock_writes:db1, route_writer_back:haproxy1\): db1 takes writes again$/)
    expect(seen.most).toBeLessThanOrEqual(1)

    // db1 alone in the writer backend again, and a client of the proxy writes there.
    expect(await enabled()).toEqual(['db1'])
    expect(await throughProxy(s)).toBe(1)
    const app = await mysql.createConnection({...frontend, user: 'app', password: secretsOf(s.state.dir).app.reveal(), database: 'mhatest'})
    try {
      await app.query('UPDATE t SET v = 3 WHERE id = 1')
    } finally {
      await app.end()
    }
    await waitFor('db2 to replicate from db1 again and have the write made through the proxy', 20_000, async () => {
      const r = (await s.sql('db2', (c) => c.queryOne('SHOW SLAVE STATUS')))!
      return r.Master_Host === s.state.hosts[0]!.ip && r.Slave_SQL_Running === 'Yes' && Number((await s.sql('db2', (c) => c.queryOne('SELECT v FROM mhatest.t WHERE id = 1')))!.v) === 3
    })
  })

  it('a proxy that stops answering after the drain: the promotion stands, partial (exit 10), and apply again sends the writes to the new master', async () => {
    sandbox = await startSandbox('itswpxf', 186, {haproxyAddress: '127.0.0.189'})
    const s = sandbox
    // db2 is held back (below) while the test stops the proxy between the drain and the promotion: the lag limit and
    // the wait must outlast that.
    writeFileSync(s.configFile, readFileSync(s.configFile, 'utf8') + 'failover: {wait_timeout: 20}\nswitchover: {max_lag_seconds: 60}\n')
    await WriteLoad.prepare(s.state, 'db1')
    await tableOfOneRow(s)
    const file = join(plans, 'frozen.json')
    const planned = await runMha(['plan', '--config', s.configFile, '--switchover', '--to', 'db2', '-o', file])
    expect(planned.code, planned.stderr + planned.stdout).toBe(2)

    const load = new WriteLoad(s.state, 10, {through: frontend})
    load.start()
    await waitFor('writes through the proxy', 10_000, () => Promise.resolve(load.acked.length > 20))
    const holder = await mysql.createConnection({host: s.state.hosts[1]!.ip, user: 'mha', password: secretsOf(s.state.dir).admin.reveal()})
    let applied: Promise<Awaited<ReturnType<typeof runMha>>> | undefined
    try {
      await holder.query('BEGIN')
      await holder.query('SELECT * FROM mhatest.t WHERE id = 1 FOR UPDATE')
      await s.sql('db1', (c) => c.execute('UPDATE mhatest.t SET v = 2 WHERE id = 1'))
      applied = runMha(['apply', file, '--config', s.configFile, '--json'])
      // The drain done (no server enabled) and its step over (db1's writes blocked, the step after it), db2 still
      // catching up: the proxy stops answering, then db2 is let go. (Frozen as soon as the runtime API showed the drain,
      // the drain's own check could still be asking the proxy, and the switchover failed before the promotion.)
      await waitFor('the drain of db1', 20_000, async () => (await enabled()).length === 0, 5)
      // The block kills every client session of db1, this probe's among them: a look that loses its connection is a "not yet".
      await waitFor('the write block on db1', 20_000, async () => Number((await s.sql('db1', (c) => c.queryOne('SELECT @@global.read_only AS ro')).catch(() => ({ro: 0})))!.ro) === 1, 5)
      frozen = s.state.haproxy!.pid
      process.kill(frozen, 'SIGSTOP')
    } finally {
      await holder.query('ROLLBACK')
      await holder.end()
    }
    const first = await applied
    const report = JSON.parse(first.stdout) as ApplyReport
    expect(first.code, report.message).toBe(10)
    expect(report.status).toBe('partial')
    expect(report.message).toContain('haproxy1')
    const status = (id: string) => report.steps.find((x) => x.id === id)?.status
    expect(status('enable_writes:db2')).toBe('applied')
    expect(status('release_write_block:db1')).toBe('applied')
    expect(status('route_writer:haproxy1')).toBe('failed')
    // The master came first: db2 takes writes, db1 does not.
    expect(Number(await s.sql('db2', async (c) => (await c.queryOne('SELECT @@global.read_only+0 AS ro'))!.ro))).toBe(0)
    expect(Number(await s.sql('db1', async (c) => (await c.queryOne('SELECT @@global.read_only+0 AS ro'))!.ro))).toBe(1)

    process.kill(frozen, 'SIGCONT')
    frozen = undefined
    const watcher = watchWriters(api(), backend)
    // Still drained: nothing was sent anywhere while the proxy did not answer.
    expect(await enabled()).toEqual([])
    const again = await runMha(['apply', file, '--config', s.configFile, '--json'])
    const finished = JSON.parse(again.stdout) as ApplyReport
    expect(again.code, finished.message).toBe(0)
    expect(finished.steps.find((x) => x.id === 'route_writer:haproxy1')?.status).toBe('applied')
    expect(finished.steps.find((x) => x.id === 'enable_writes:db2')?.status).toBe('skipped')
    const ended = performance.now()
    await waitFor('writes through the proxy again', 10_000, () => Promise.resolve(load.ackedAt.some((at) => at > ended)))
    await load.stop()
    const seen = await watcher.stop()
    expect(seen.most).toBeLessThanOrEqual(1)
    expect(await enabled()).toEqual(['db2'])
    expect(await throughProxy(s)).toBe(2)
    await expectRoles(s, 'db2', load.acked)
  })
})
