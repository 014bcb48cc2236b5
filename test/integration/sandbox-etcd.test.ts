import {spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {etcdEndpoints, readEtcdState, startEtcdMember, stopEtcdCluster, stopEtcdMember, waitEtcdHealthy} from '../../src/sandbox/etcd.js'
import {isOurProcess} from '../../src/sandbox/processes.js'
import {validator} from '../../src/schema/validator.js'
import {runMha} from './harness.js'

const work = mkdtempSync(join(tmpdir(), 'mha-it-etcd-'))
const dir = join(work, 'etcd')

/** etcdctl (API v3) against the sandbox's endpoints, giving up after 2 s. */
function etcdctl(...args: string[]): {code: number | null; out: string; ms: number} {
  const started = Date.now()
  const result = spawnSync('etcdctl', [`--endpoints=${etcdEndpoints(dir)}`, '--command-timeout=2s', ...args], {encoding: 'utf8', env: {...process.env, ETCDCTL_API: '3'}, timeout: 20_000})
  return {code: result.status, out: (result.stdout + result.stderr).trim(), ms: Date.now() - started}
}

/** The member that leads now (endpoint status, simple format: endpoint, id, version, db size, is leader, ...). */
function leader(): string {
  const line = etcdctl('endpoint', 'status', '-w', 'simple')
    .out.split('\n')
    .find((l) => l.split(', ')[4] === 'true')
  return readEtcdState(dir)!.members.find((m) => line?.startsWith(m.clientUrl))!.name
}

type StatusDoc = {members: {name: string; running: boolean; healthy: boolean; pid: number | null}[]}
async function status(): Promise<StatusDoc> {
  const result = await runMha(['sandbox', 'etcd', 'status', '--dir', dir, '--json'])
  expect(result.code, result.stderr).toBe(0)
  const doc = JSON.parse(result.stdout) as StatusDoc
  expect(validator('sandbox-etcd-status.schema.json')(doc)).toBe(true)
  return doc
}

describe('mha sandbox etcd', () => {
  afterAll(async () => {
    await stopEtcdCluster(dir)
    rmSync(work, {recursive: true, force: true})
  })

  it('starts 3 members, keeps a quorum with one down, loses it with two, and stops only what it started', async () => {
    const up = await runMha(['sandbox', 'etcd', 'up', '--dir', dir, '--addresses', '127.0.0.244,127.0.0.245,127.0.0.246'])
    expect(up.code, up.stderr).toBe(0)
    expect(up.stdout).toContain('--etcd http://127.0.0.244:2379,http://127.0.0.245:2379,http://127.0.0.246:2379')
    const state = readEtcdState(dir)!
    expect(state.members.every((m) => isOurProcess(m.pid, m.dataDir))).toBe(true)

    const again = await runMha(['sandbox', 'etcd', 'up', '--dir', dir, '--addresses', '127.0.0.244,127.0.0.245,127.0.0.246'])
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/already running/)

    expect(etcdctl('put', 'k', 'v1').code).toBe(0)
    expect(etcdctl('get', 'k', '--print-value-only').out).toBe('v1')

    // The leader crashed: the two others are a quorum once they have elected a new leader.
    const first = leader()
    const crashed = await stopEtcdMember(dir, first, 'SIGKILL')
    expect(isOurProcess(crashed.pid, crashed.dataDir)).toBe(false)
    await waitEtcdHealthy(dir)
    const withTwo = etcdctl('put', 'k', 'v2')
    expect(withTwo.code, withTwo.out).toBe(0)

    // A second one stopped: no quorum, a put fails within the command timeout.
    const second = leader()
    await stopEtcdMember(dir, second)
    const withOne = etcdctl('put', 'lost?', 'v3')
    expect(withOne.code, withOne.out).not.toBe(0)
    expect(withOne.ms).toBeLessThan(10_000)
    expect((await status()).members.map((m) => [m.name, m.running, m.healthy])).toEqual(
      ['m1', 'm2', 'm3'].map((name) => (name === first || name === second ? [name, false, false] : [name, true, false])),
    )

    // Both back from their data: the quorum returns, with what was written while one was down.
    await Promise.all([startEtcdMember(dir, first), startEtcdMember(dir, second)])
    expect((await status()).members.every((m) => m.running && m.healthy)).toBe(true)
    expect(etcdctl('get', 'k', '--print-value-only').out).toBe('v2')
    // A put that timed out is of unknown outcome, not failed: the member left may have logged it, and then it
    // commits once the quorum is back (seen in runs of this test). Fencing must not count on such a write being lost.
    expect(['', 'v3']).toContain(etcdctl('get', 'lost?', '--print-value-only').out)
    expect(etcdctl('put', 'k', 'v4').code).toBe(0)
    expect(etcdctl('get', 'k', '--print-value-only').out).toBe('v4')

    // Every etcd this test saw: the first three and the two started again.
    const seen = [...state.members, ...readEtcdState(dir)!.members]
    const down = await runMha(['sandbox', 'etcd', 'down', '--dir', dir])
    expect(down.code, down.stderr).toBe(0)
    expect(seen.some((m) => isOurProcess(m.pid, m.dataDir))).toBe(false)
    expect(existsSync(dir)).toBe(false)
  })
})
