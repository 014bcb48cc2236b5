import {mkdtempSync, rmSync} from 'node:fs'
import {createServer, connect, type Server, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {HaproxyError, HaproxyRuntime, parseServersState} from '../../src/routing/haproxy.js'
import {localHaproxyRunning, startLocalHaproxy, stopLocalHaproxy, type LocalHaproxy} from '../../src/sandbox/haproxy.js'

// A real haproxy on 127.0.0.169 (ports of its own, so a sandbox's proxy on 3306/9999 there is not disturbed), in
// front of two small TCP servers that say who they are.
const address = '127.0.0.169'
let dir: string
let proxy: LocalHaproxy
const backends: Server[] = []
const api = () => new HaproxyRuntime({name: 'px', runtimeApi: {kind: 'tcp', host: address, port: proxy.apiPort}, timeoutMs: 3000})

function whoAmI(name: string, port: number): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer((socket) => {
      socket.on('error', () => undefined)
      socket.write(`${name}\n`)
    })
    server.listen(port, '127.0.0.166', () => resolve(server))
  })
}

/** Connect through the frontend; the first line the backend server says. */
function through(): Promise<{line: string; socket: Socket}> {
  return new Promise((resolve, reject) => {
    const socket = connect({host: address, port: proxy.frontendPort})
    socket.once('data', (chunk: Buffer) => resolve({line: chunk.toString().trim(), socket}))
    socket.once('error', reject)
    socket.once('close', () => reject(new Error('closed before any byte')))
  })
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mha-hx-'))
  backends.push(await whoAmI('one', 23306), await whoAmI('two', 23307))
  proxy = await startLocalHaproxy({
    dir,
    address,
    frontendPort: 23310,
    apiPort: 23399,
    backend: 'writer',
    servers: [
      {name: 'db1', host: '127.0.0.166', port: 23306, enabled: true},
      {name: 'db2', host: '127.0.0.166', port: 23307, enabled: false},
    ],
  })
})

afterAll(async () => {
  if (proxy) await stopLocalHaproxy(proxy)
  for (const b of backends) b.close()
  rmSync(dir, {recursive: true, force: true})
})

describe('HAProxy runtime API against a real haproxy', () => {
  it('reads the writer backend: db1 enabled, db2 (disabled in the configuration) in maint', async () => {
    const servers = await api().showServersState('writer')
    expect(servers.map((s) => [s.name, s.address, s.port, s.enabled, s.maint])).toEqual([
      ['db1', '127.0.0.166', 23306, true, false],
      ['db2', '127.0.0.166', 23307, false, true],
    ])
    expect((await through()).line).toBe('one')
  })

  it('moves the writer: db1 to maint, its sessions shut, db2 ready; new connections reach db2', async () => {
    const old = await through()
    expect(old.line).toBe('one')
    const closed = new Promise<void>((resolve) => old.socket.once('close', () => resolve()))
    const runtime = api()
    await runtime.setServerState('writer', 'db1', 'maint')
    await runtime.shutdownSessions('writer', 'db1')
    // The client connected to db1 through the proxy is cut by the proxy.
    await closed
    await runtime.setServerState('writer', 'db2', 'ready')
    const after = await runtime.showServersState('writer')
    expect(after.map((s) => [s.name, s.enabled, s.maint])).toEqual([
      ['db1', false, true],
      ['db2', true, false],
    ])
    const fresh = await through()
    expect(fresh.line).toBe('two')
    fresh.socket.destroy()
    // Draining is not enabled either.
    await runtime.setServerState('writer', 'db1', 'drain')
    expect((await runtime.showServersState('writer')).find((s) => s.name === 'db1')).toMatchObject({enabled: false, drain: true, maint: false})
    await runtime.setServerState('writer', 'db1', 'maint')
  })

  it("refuses, naming the proxy and what haproxy said, a backend or server it does not have", async () => {
    const runtime = api()
    await expect(runtime.showServersState('nope')).rejects.toThrow(/proxy px .*backend nope: Can't find backend/)
    await expect(runtime.setServerState('writer', 'db9', 'ready')).rejects.toThrow(/set server writer\/db9 state ready" was refused: No such server/)
    await expect(runtime.shutdownSessions('nope', 'db1')).rejects.toMatchObject({kind: 'refused'})
    // A name that is not a haproxy name never reaches the command line.
    await expect(runtime.setServerState('writer', 'db1 state ready\nset server writer/db2', 'maint')).rejects.toBeInstanceOf(HaproxyError)
    expect((await runtime.showServersState('writer')).map((s) => s.enabled)).toEqual([false, true])
  })

  it('says unreachable, naming the proxy and its address, when nothing answers there', async () => {
    const gone = new HaproxyRuntime({name: 'px2', runtimeApi: {kind: 'tcp', host: address, port: 23398}, timeoutMs: 1000})
    const error = await gone.showServersState('writer').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(HaproxyError)
    expect(error).toMatchObject({kind: 'unreachable'})
    expect((error as Error).message).toMatch(/^proxy px2 \(runtime API 127\.0\.0\.169:23398\): cannot connect \(ECONNREFUSED\)/)
  })

  it('is stopped by its pid', async () => {
    expect(localHaproxyRunning(proxy)).toBe(true)
    await stopLocalHaproxy(proxy)
    expect(localHaproxyRunning(proxy)).toBe(false)
    await expect(api().showServersState('writer')).rejects.toMatchObject({kind: 'unreachable'})
  })
})

describe('show servers state parsing', () => {
  it('refuses an answer that is not the state table', () => {
    expect(() => parseServersState('Permission denied\n', 'proxy p')).toThrow('proxy p: Permission denied')
    expect(() => parseServersState('', 'proxy p')).toThrow('proxy p: empty answer')
  })
})
