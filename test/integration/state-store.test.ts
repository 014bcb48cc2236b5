import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'
import {commandCoordinator, type Coordinator} from '../../src/coord/coordinator.js'
import {etcdSettings} from '../../src/coord/settings.js'
import type {Plan} from '../../src/plan/types.js'
import {stopOurProcess} from '../../src/sandbox/processes.js'
import {withFenced, type WatchState} from '../../src/store/cluster-state.js'
import {EtcdStore} from '../../src/store/etcd.js'
import {killMasterAndWait, root, runMha, startOneEtcd, startSandbox, type TestSandbox} from './harness.js'

/**
 * The cluster's state in etcd is one read-modify-write per update, never a copy of one host's file written
 * over it. One etcd member on 127.0.0.92, a sandbox on 127.0.0.225-227.
 */
const address = '127.0.0.92'
const endpoint = `http://${address}:2379`
const prefix = '/itstore'
const dir = mkdtempSync(join(tmpdir(), 'mha-it-store-'))
let etcdPid: number | undefined
let coord: Coordinator | undefined
/** The test's own writer of the cluster's state in etcd, as a manager's store. */
let store: EtcdStore | undefined
let sandbox: TestSandbox | undefined

const etcdctl = (...args: string[]) => execFileSync('etcdctl', ['--endpoints', endpoint, '--command-timeout=5s', ...args], {env: {...process.env, ETCDCTL_API: '3'}, stdio: 'pipe'})
/** The state key's value, byte for byte as etcd holds it. */
const stateBytes = (cluster: string) => etcdctl('get', `${prefix}/state/${cluster}`, '--print-value-only')

beforeAll(async () => {
  etcdPid = await startOneEtcd(address, join(dir, 'data'), 'store')
  coord = await commandCoordinator(etcdSettings({etcd: endpoint, 'etcd-prefix': prefix, 'watcher-id': 'state-store-test'})!, 'the test cannot start')
  store = new EtcdStore(coord, join(dir, 'test-plans'), 'itstore')
}, 60_000)

afterEach(async () => {
  await sandbox?.down()
  sandbox = undefined
})

afterAll(async () => {
  await coord?.stop()
  await stopOurProcess(etcdPid, join(dir, 'data'))
  execFileSync('rm', ['-rf', dir])
})

const unacknowledged = (at: string): WatchState => ({
  lastFailover: {at, plan: 'plans/itstore/earlier.json', report: 'plans/itstore/earlier.report.json', status: 'applied', deadMaster: 'db0', newMaster: 'db1'},
  acknowledged: false,
  outOfService: [{server: 'db0', since: at, reason: 'failed over to db1', plan: 'plans/itstore/earlier.json'}],
})

describe('one state, every update a compare-and-swap', () => {
  it('mha apply --etcd of a refused plan, from an empty plans folder, leaves the state in etcd byte for byte', async () => {
    sandbox = await startSandbox('itstore', 225)
    const s = sandbox
    await store!.updateState(() => unacknowledged('2026-12-01T10:00:00.000Z'))
    const before = stateBytes('itstore')
    expect(JSON.parse(before.toString()).outOfService).toHaveLength(1)
    await killMasterAndWait(s)
    const plans = mkdtempSync(join(dir, 'plans-'))
    const file = join(plans, 'failover.json')
    expect((await runMha(['plan', '--config', s.configFile, '-o', file])).code).toBe(2)
    // Tampered: refused before any change.
    const plan = JSON.parse(readFileSync(file, 'utf8')) as Plan
    const repoint = plan.steps.find((x) => x.id === 'repoint_replica:db3')! as {params: {host: string}}
    repoint.params.host = '127.0.0.250'
    writeFileSync(file, JSON.stringify(plan))
    const refused = await runMha(['apply', file, '--config', s.configFile, '--etcd', endpoint, '--etcd-prefix', prefix, '--watcher-id', 'operator'])
    expect(refused.code, refused.stderr).toBe(1)
    expect(refused.stderr).toMatch(/the plan disagrees with/)
    expect(stateBytes('itstore').equals(before), `etcd state now: ${stateBytes('itstore').toString()}`).toBe(true)
  })

  it('an mha ack racing updates of the same state (fence records): neither is lost, round after round', async () => {
    // ack needs only the cluster's name from its file.
    const clusterFile = join(dir, 'itstore.yaml')
    writeFileSync(clusterFile, readFileSync(join(root, 'test/golden/mariadb-file-lagging/cluster.yaml'), 'utf8').replace(/^name: app1$/m, 'name: itstore'))
    for (let round = 0; round < 5; round++) {
      const at = `2026-12-01T10:00:0${round}.000Z`
      await store!.updateState(() => unacknowledged(at))
      let acking = true
      const acked = runMha(['ack', '--config', clusterFile, '--plans-dir', mkdtempSync(join(dir, 'ack-')), '--etcd', endpoint, '--etcd-prefix', prefix, '--watcher-id', 'operator']).finally(() => (acking = false))
      // Fence records written one after another for as long as the ack runs, each a change of what etcd holds then.
      const fences: string[] = []
      const fenced = (async () => {
        for (let i = 0; acking && i < 2000; i++) {
          const f = {server: `r${round}-db${i}`, master: 'db1', at, reason: 'came back writable'}
          await store!.updateState(withFenced(f))
          fences.push(f.server)
        }
      })()
      const [ack] = await Promise.all([acked, fenced])
      expect(fences.length).toBeGreaterThan(10)
      expect(ack.code, ack.stderr).toBe(0)
      const after = JSON.parse(stateBytes('itstore').toString()) as WatchState
      expect(after.acknowledged, `round ${round}`).toBe(true)
      expect(after.lastFailover?.at).toBe(at)
      expect((after.fenced ?? []).map((f) => f.server).filter((name) => name.startsWith(`r${round}-`)).sort(), `round ${round}`).toEqual([...fences].sort())
      expect(after.outOfService?.map((o) => o.server)).toEqual(['db0'])
    }
  })
})
