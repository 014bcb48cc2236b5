import type {ChildProcess} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {HaproxyRuntime} from '../../src/routing/haproxy.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {validator} from '../../src/schema/validator.js'
import type {WatchStatus} from '../../src/watch/status-api.js'
import {freePort, spawnWatch, startSandbox, type TestSandbox, type WatchLogLine} from './harness.js'

/**
 * mha watch reads the proxies in front of a healthy cluster: writes routed elsewhere than the master are an alarm
 * in its log, its /status and its metrics, and its end is said too. A real sandbox on 127.0.0.176-178 with a real
 * haproxy on 127.0.0.179.
 */
const work = mkdtempSync(join(tmpdir(), 'mha-it-wroute-'))
let sandbox: TestSandbox | undefined
let watch: ChildProcess | undefined
const backend = 'mysql_writer'
const api = () => new HaproxyRuntime({name: 'haproxy1', runtimeApi: {kind: 'tcp', host: '127.0.0.179', port: 9999}, timeoutMs: 3000})

afterAll(async () => {
  watch?.kill('SIGKILL')
  await sandbox?.down()
  rmSync(work, {recursive: true, force: true})
})

describe('mha watch and the proxy in front of the cluster (octets 176-179)', () => {
  it('says when a proxy sends writes to another server than the master, shows it in /status and the metrics, and says when it is right again', async () => {
    sandbox = await startSandbox('itwroute', 176, {haproxyAddress: '127.0.0.179'})
    const port = await freePort()
    const running = spawnWatch(['--config-dir', dirname(sandbox.configFile), '--plans-dir', join(work, 'plans'), '--listen', `127.0.0.1:${port}`, '--heartbeat', '0'])
    watch = running.child
    const lines: WatchLogLine[] = running.lines
    const said = (event: string) => lines.filter((l) => l.event === event)
    const status = async () => ((await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as WatchStatus).clusters[0]!
    const metric = async (name: string) => (await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).split('\n').find((l) => l.startsWith(`${name}{cluster="itwroute",proxy="haproxy1"}`))

    // Healthy: the proxy is looked at and found right; no alarm.
    await waitFor('the watch to look at the proxy', 30_000, async () => (await status().catch(() => undefined))?.routing?.proxies[0]?.writers?.join() === 'db1', 200)
    const right = await status()
    expect(validator('watch-status.schema.json')({format: 1, watch: {pid: 1, startedAt: new Date().toISOString(), listen: 'x', version: 'x'}, generatedAt: new Date().toISOString(), clusters: [right]})).toBe(true)
    expect(right.routing!.proxies[0]).toMatchObject({name: 'haproxy1', backend, reachable: true, writers: ['db1'], problems: []})
    expect(await metric('mha_proxy_routing_ok')).toMatch(/ 1$/)
    expect(said('routing alarm')).toEqual([])

    // Someone moves the writer to db2 behind mha's back (db2 is a read-only replica): an alarm, at once and once.
    await api().setServerState(backend, 'db2', 'ready')
    await api().setServerState(backend, 'db1', 'maint')
    await waitFor(`the watch to raise the alarm (said: ${lines.map((l) => l.event).join(', ')})`, 20_000, () => said('routing alarm').length > 0, 200)
    expect(said('routing alarm')[0]!.message).toMatch(/backend mysql_writer sends writes to db2, not to the master db1/)
    await waitFor('/status to show the problem', 10_000, async () => ((await status()).routing?.proxies[0]?.problems.length ?? 0) > 0, 200)
    expect((await status()).routing!.proxies[0]!.writers).toEqual(['db2'])
    expect(await metric('mha_proxy_routing_ok')).toMatch(/ 0$/)
    // Nothing was changed by watch: the proxy still routes to db2 until someone acts.
    expect((await api().showServersState(backend)).filter((s) => s.enabled).map((s) => s.name)).toEqual(['db2'])

    // Put right: said once, and the metric is 1 again.
    await api().setServerState(backend, 'db1', 'ready')
    await api().setServerState(backend, 'db2', 'maint')
    await waitFor('the watch to say the routing is right again', 20_000, () => said('routing ok').length > 0, 200)
    expect(said('routing ok')[0]!.message).toBe('every proxy sends writes to db1 alone')
    await waitFor('the metric to be 1 again', 10_000, async () => / 1$/.test((await metric('mha_proxy_routing_ok')) ?? ''), 200)
    expect(said('routing alarm')).toHaveLength(1)
    expect(await metric('mha_proxy_up')).toMatch(/ 1$/)
  })
})
