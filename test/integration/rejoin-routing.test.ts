import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import type {Plan} from '../../src/plan/types.js'
import {HaproxyRuntime} from '../../src/routing/haproxy.js'
import {WriteLoad} from '../../src/sandbox/load.js'
import {sandboxAddHost, startHost} from '../../src/sandbox/sandbox.js'
import {expectRoles, killMasterAndWait, planAndApply, runMha, startSandbox, type TestSandbox} from './harness.js'

/**
 * A rejoined old master never re-enters the writer backend: after a failover behind a real haproxy, db1 put back
 * in the backend by mistake is taken out again by the rejoin plan before it replicates; so are a server being
 * removed and one being rebuilt. Sandbox on 127.0.0.196-198 (a fourth host on .200), haproxy on 127.0.0.199.
 */
const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-rjpx-'))
let sandbox: TestSandbox | undefined
const backend = 'mysql_writer'
const api = () => new HaproxyRuntime({name: 'haproxy1', runtimeApi: {kind: 'tcp', host: '127.0.0.199', port: 9999}, timeoutMs: 3000})
const writers = async () => (await api().showServersState(backend)).filter((s) => s.enabled).map((s) => s.name)

afterAll(async () => {
  await sandbox?.down()
  rmSync(plansDir, {recursive: true, force: true})
})

describe('rejoin, rebuild and remove behind a proxy (octets 196-200)', () => {
  it('takes the rejoining old master out of the writer backend before it replicates, whoever put it back', async () => {
    sandbox = await startSandbox('itrjpx', 196, {haproxyAddress: '127.0.0.199'})
    const s = sandbox
    await WriteLoad.prepare(s.state, 'db1')
    const load = new WriteLoad(s.state, 20, {through: {host: '127.0.0.199', port: 3306}})
    load.start()
    await new Promise((r) => setTimeout(r, 1000))
    await killMasterAndWait(s)
    await planAndApply(s, plansDir, 'failover')
    expect(await writers()).toEqual(['db2'])

    await startHost(s.state, 'db1')
    // Someone puts db1 back in the backend (and writes through the proxy may now land on two servers).
    await s.sql('db1', (c) => c.execute('SET GLOBAL read_only = 1'))
    await api().setServerState(backend, 'db1', 'ready')
    expect(await writers()).toEqual(['db1', 'db2'])

    const file = await planAndApply(s, plansDir, 'rejoin', ['--rejoin', 'db1'])
    const plan = JSON.parse(readFileSync(file, 'utf8')) as Plan
    expect(plan.steps.map((st) => st.id)).toEqual(['set_read_only:db1', 'route_drain:haproxy1', 'repoint_replica:db1', 'verify_replication:db1'])
    expect(plan.steps.find((st) => st.type === 'repoint_replica')!.after).toContain('route_drain:haproxy1')
    expect(await writers()).toEqual(['db2'])
    // The same plan without its drain is refused, whatever else it would do.
    const edited = join(plansDir, 's', 'no-drain.json')
    mkdirSync(dirname(edited), {recursive: true})
    const steps = plan.steps.filter((st) => st.type !== 'route_drain').map((st) => ({...st, after: st.after.filter((a) => a !== 'route_drain:haproxy1')}))
    writeFileSync(edited, JSON.stringify({...plan, steps}))
    const refused = await runMha(['apply', edited, '--config', s.configFile])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/a rejoin plan must take db1 out of proxy haproxy1's writer backend \(routing\.haproxy of .*\) exactly once/)
    await new Promise((r) => setTimeout(r, 500))
    await load.stop()
    await expectRoles(s, 'db2', load.acked)
  })

  it('takes a server being removed, and one being rebuilt, out of the writer backend first; a new host joins the backend in maint', async () => {
    await sandbox?.down()
    sandbox = await startSandbox('itrbpx', 196, {haproxyAddress: '127.0.0.199'})
    const s = sandbox
    mkdirSync(join(plansDir, s.state.cluster), {recursive: true})
    // db3 sent writes by mistake, beside the master.
    await api().setServerState(backend, 'db3', 'ready')
    expect(await writers()).toEqual(['db1', 'db3'])
    const removal = join(plansDir, s.state.cluster, 'remove-db3.json')
    const planned = await runMha(['plan', '--config', s.configFile, '--remove', 'db3', '-o', removal])
    expect(planned.code, planned.stderr + planned.stdout).toBe(2)
    const plan = JSON.parse(readFileSync(removal, 'utf8')) as Plan
    expect(plan.steps.map((st) => st.id)).toEqual(['route_drain:haproxy1', 'detach_replication:db3', 'mark_out_of_service:db3'])
    const removed = await runMha(['apply', removal, '--config', s.configFile, '--target', 'db3'])
    expect(removed.code, removed.stderr + removed.stdout).toBe(0)
    expect(await writers()).toEqual(['db1'])

    // The new host sits past the proxy's address and joins the writer backend in maint.
    const db4 = await sandboxAddHost(s.state)
    expect([db4.name, db4.ip]).toEqual(['db4', '127.0.0.200'])
    const servers = await api().showServersState(backend)
    expect(servers.find((x) => x.name === 'db4')).toMatchObject({address: '127.0.0.200', maint: true, enabled: false})
    expect(readFileSync(s.state.haproxy!.configFile, 'utf8')).toContain('server db4 127.0.0.200:3306 disabled')
    await api().setServerState(backend, 'db4', 'ready')
    const rebuild = join(plansDir, s.state.cluster, 'rebuild-db4.json')
    const rebuildPlanned = await runMha(['plan', '--config', s.configFile, '--plans-dir', plansDir, '--rebuild', 'db4', '-o', rebuild])
    expect(rebuildPlanned.code, rebuildPlanned.stderr + rebuildPlanned.stdout).toBe(2)
    const rebuildPlan = JSON.parse(readFileSync(rebuild, 'utf8')) as Plan
    expect(rebuildPlan.steps.find((st) => st.id === 'stop_server:db4')!.after).toContain('route_drain:haproxy1')
    // Without its drain the plan is refused, whatever else it would do.
    const edited = join(plansDir, s.state.cluster, 'rebuild-no-drain.json')
    writeFileSync(edited, JSON.stringify({...rebuildPlan, steps: rebuildPlan.steps.filter((st) => st.type !== 'route_drain').map((st) => ({...st, after: st.after.filter((a) => a !== 'route_drain:haproxy1')}))}))
    const refused = await runMha(['apply', edited, '--config', s.configFile, '--target', 'db4'])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/a rebuild plan must take db4 out of proxy haproxy1's writer backend \(routing\.haproxy of .*\) exactly once/)
    expect(await writers()).toEqual(['db1', 'db4'])
    const rebuilt = await runMha(['apply', rebuild, '--config', s.configFile, '--target', 'db4'])
    expect(rebuilt.code, rebuilt.stderr + rebuilt.stdout).toBe(0)
    expect(await writers()).toEqual(['db1'])
    const replica = await s.sql('db4', (c) => c.queryOne('SHOW SLAVE STATUS'))
    expect([replica?.Master_Host, replica?.Slave_SQL_Running]).toEqual(['127.0.0.196', 'Yes'])
  }, 240_000)
})
