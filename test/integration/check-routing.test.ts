import {readFileSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parse, stringify} from 'yaml'
import type {CheckReport} from '../../src/analysis/check.js'
import {HaproxyRuntime} from '../../src/routing/haproxy.js'
import {validator} from '../../src/schema/validator.js'
import {runMha, startSandbox, type TestSandbox} from './harness.js'

// A real sandbox on 127.0.0.166-168 with a real haproxy on 127.0.0.169 in front of it.
let sandbox: TestSandbox
const api = () => new HaproxyRuntime({name: 'haproxy1', runtimeApi: {kind: 'tcp', host: '127.0.0.169', port: 9999}, timeoutMs: 3000})
const backend = 'mysql_writer'

async function check(configFile = sandbox.configFile): Promise<{code: number; report: CheckReport; stderr: string}> {
  const result = await runMha(['check', '--config', configFile, '--json'])
  const report = JSON.parse(result.stdout) as CheckReport
  const validate = validator('check-report.schema.json')
  expect(validate(report), JSON.stringify(validate.errors)).toBe(true)
  return {code: result.code, report, stderr: result.stderr}
}

/** A copy of the sandbox's cluster file with the proxy's entry changed. */
function variant(name: string, change: (proxy: Record<string, unknown>) => void): string {
  const doc = parse(readFileSync(sandbox.configFile, 'utf8')) as {routing: {haproxy: Record<string, unknown>[]}}
  change(doc.routing.haproxy[0]!)
  const file = join(dirname(sandbox.configFile), `${name}.yaml`)
  writeFileSync(file, stringify(doc))
  return file
}

const proxyFindings = (report: CheckReport) => report.findings.filter((f) => f.code.startsWith('proxy_')).map((f) => [f.severity, f.code, f.server])

describe('mha check with a haproxy in front of the cluster', () => {
  beforeAll(async () => {
    sandbox = await startSandbox('itchkpx', 166, {haproxyAddress: '127.0.0.169'})
  })
  afterAll(async () => {
    await sandbox?.down()
  })

  it('says the proxy is reachable, its backend has every server, and db1, the master, is the one writer', async () => {
    const {code, report} = await check()
    expect(code).toBe(0)
    expect(report.proxies).toEqual([{name: 'haproxy1', runtimeApi: '127.0.0.169:9999', backend, reachable: true, missing: [], writers: ['db1']}])
    expect(proxyFindings(report)).toEqual([])
    const human = await runMha(['check', '--config', sandbox.configFile])
    expect(human.stdout).toMatch(/^haproxy1\s+127\.0\.0\.169:9999\s+mysql_writer\s+yes\s+all\s+db1\s*$/m)
  })

  it('names two enabled writers, and a writer that is not the master (exit 2)', async () => {
    await api().setServerState(backend, 'db2', 'ready')
    try {
      const two = await check()
      expect(two.code).toBe(2)
      expect(two.report.proxies[0]!.writers).toEqual(['db1', 'db2'])
      expect(proxyFindings(two.report)).toEqual([['error', 'proxy_two_writers', null]])
      expect(two.report.findings.find((f) => f.code === 'proxy_two_writers')!.message).toMatch(/backend mysql_writer sends new connections to db1, db2.*keep only db1 enabled/)

      await api().setServerState(backend, 'db1', 'maint')
      const wrong = await check()
      expect(wrong.code).toBe(2)
      expect(proxyFindings(wrong.report)).toEqual([['error', 'proxy_wrong_writer', 'db2']])

      await api().setServerState(backend, 'db2', 'maint')
      const none = await check()
      expect(none.code).toBe(2)
      expect(proxyFindings(none.report)).toEqual([['error', 'proxy_no_writer', 'db1']])
    } finally {
      await api().setServerState(backend, 'db2', 'maint')
      await api().setServerState(backend, 'db1', 'ready')
    }
    expect((await check()).code).toBe(0)
  })

  it('names a server of the cluster file that the backend lacks, and a backend the proxy does not have', async () => {
    const missing = await check(variant('missing', (p) => (p.servers = {db3: 'mysql3'})))
    expect(missing.code).toBe(2)
    expect(missing.report.proxies[0]!.missing).toEqual(['db3'])
    expect(proxyFindings(missing.report)).toEqual([['error', 'proxy_server_missing', 'db3']])
    expect(missing.report.findings.find((f) => f.code === 'proxy_server_missing')!.message).toMatch(/backend mysql_writer has no server "mysql3" for db3/)

    const nope = await check(variant('nope', (p) => (p.writer_backend = 'nope')))
    expect(nope.code).toBe(2)
    expect(nope.report.proxies[0]).toMatchObject({reachable: true, missing: null, writers: null})
    expect(proxyFindings(nope.report)).toEqual([['error', 'proxy_backend_unreadable', null]])
    expect(nope.report.findings.find((f) => f.code === 'proxy_backend_unreadable')!.message).toMatch(/backend nope: Can't find backend/)
  })

  it('warns of a proxy it cannot reach, without calling a failover impossible', async () => {
    const {code, report} = await check(variant('gone', (p) => (p.runtime_api = '127.0.0.169:9998')))
    expect(code).toBe(0)
    expect(report.proxies[0]).toMatchObject({reachable: false, writers: null})
    expect(proxyFindings(report)).toEqual([['warning', 'proxy_unreachable', null]])
    expect(report.findings.find((f) => f.code === 'proxy_unreachable')!.message).toMatch(/^proxy haproxy1 \(runtime API 127\.0\.0\.169:9998\): cannot connect \(ECONNREFUSED\): a failover still promotes/)
  })

  it('reads the runtime API as a unix socket on the proxy host over SSH', async () => {
    const socket = join(sandbox.state.dir, 'haproxy', 'admin.sock')
    const file = variant('socket', (p) => {
      delete p.runtime_api
      p.runtime_socket = {path: socket, ssh_host: '127.0.0.166'}
    })
    const {code, report} = await check(file)
    expect(code).toBe(0)
    expect(report.proxies).toEqual([{name: 'haproxy1', runtimeApi: `${socket} on root@127.0.0.166:22 over SSH`, backend, reachable: true, missing: [], writers: ['db1']}])
  })
})
