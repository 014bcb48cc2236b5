import {existsSync, mkdtempSync, rmSync} from 'node:fs'
import {connect} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {loadClusterFile} from '../../src/config/load.js'
import {withConnection} from '../../src/inspect/mysql.js'
import {HaproxyRuntime} from '../../src/routing/haproxy.js'
import {readState, sandboxDir, secretsOf} from '../../src/sandbox/sandbox.js'
import {validator} from '../../src/schema/validator.js'
import {descendantsOf, isOurProcess, waitFor} from '../../src/sandbox/processes.js'
import {runMha} from './harness.js'

describe('mha sandbox', () => {
  it('starts a cluster, kills its master, and stops only what it started', async () => {
    const work = mkdtempSync(join(tmpdir(), 'mha-it-sandbox-'))
    const common = ['--cluster', 'itsandbox', '--dir', join(work, 'data')]
    const up = await runMha(['sandbox', 'up', ...common, '--config-dir', join(work, 'clusters'), '--replicas', '1', '--gtid', '--first-address', '127.0.0.31'])
    expect(up.code, up.stderr).toBe(0)
    expect(up.stdout).toMatch(/sandbox itsandbox is up in [\d.]+ s \(GTID replication\)/)
    expect(existsSync(join(work, 'clusters', 'itsandbox.yaml'))).toBe(true)
    const state = readState(sandboxDir(join(work, 'data'), 'itsandbox'))!
    const pids = state.hosts.flatMap((h) => [h.mariadbdPid!, h.sshdPid!])
    expect(pids.every((pid) => isOurProcess(pid, state.dir))).toBe(true)

    const again = await runMha(['sandbox', 'up', ...common, '--config-dir', join(work, 'clusters'), '--replicas', '1', '--first-address', '127.0.0.31'])
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/already running/)

    const status = await runMha(['sandbox', 'status', ...common])
    expect(status.stdout).toMatch(/db1\s+127\.0\.0\.31\s+pid \d+\s+pid \d+\s+master/)
    expect(status.stdout).toMatch(/db2\s+127\.0\.0\.32\s+pid \d+\s+pid \d+\s+replica\s+127\.0\.0\.31:3306/)
    const statusJson = await runMha(['sandbox', 'status', ...common, '--json'])
    const doc = JSON.parse(statusJson.stdout) as {hosts: {name: string; role: string; source: string | null; mariadbd: {running: boolean; pid: number | null}}[]}
    expect(validator('sandbox-status.schema.json')(doc)).toBe(true)
    expect(doc.hosts.map((h) => [h.name, h.role, h.source, h.mariadbd.running])).toEqual([
      ['db1', 'master', null, true],
      ['db2', 'replica', '127.0.0.31:3306', true],
    ])

    const kill = await runMha(['sandbox', 'kill-master', ...common])
    expect(kill.stdout).toMatch(/killed mariadbd of db1/)
    expect(isOurProcess(state.hosts[0]!.mariadbdPid, state.dir)).toBe(false)
    expect(isOurProcess(state.hosts[0]!.sshdPid, state.dir)).toBe(true)

    // A connection that reaches db2's sshd and says nothing: sshd forks a handler for it, which outlives its
    // listener when the listener alone is stopped (seen after a CI run: "sshd: [accepted]" under pid 1).
    const idle = connect({host: '127.0.0.32', port: 22})
    await waitFor("db2's sshd to fork a handler for the idle connection", 10_000, () => descendantsOf(state.hosts[1]!.sshdPid!).length > 0)
    const handlers = descendantsOf(state.hosts[1]!.sshdPid!).map((d) => d.pid)
    const down = await runMha(['sandbox', 'down', ...common])
    expect(down.code).toBe(0)
    expect(pids.some((pid) => isOurProcess(pid, state.dir))).toBe(false)
    // Killed by sandbox down (not left for sshd's LoginGraceTime): gone once pid 1 has reaped them.
    // The client still holds its end, as a client behind a dropped route would.
    await waitFor(`the handlers ${handlers.join(', ')} to be gone`, 5_000, () => handlers.every((pid) => !existsSync(`/proc/${pid}`))).finally(() => idle.destroy())
    expect(existsSync(state.dir)).toBe(false)
    expect(existsSync(join(work, 'clusters', 'itsandbox.yaml'))).toBe(false)
  })

  it('with --haproxy: a haproxy in front (writes to db1), its routing section in the cluster file, stopped by pid at down', async () => {
    const work = mkdtempSync(join(tmpdir(), 'mha-it-sbhx-'))
    const common = ['--cluster', 'itsbhx', '--dir', join(work, 'data')]
    try {
      const up = await runMha(['sandbox', 'up', ...common, '--config-dir', join(work, 'clusters'), '--first-address', '127.0.0.166', '--haproxy'])
      expect(up.code, up.stderr).toBe(0)
      expect(up.stdout).toMatch(/haproxy\s+127\.0\.0\.169:3306 -> mysql_writer \(db1\), runtime API 127\.0\.0\.169:9999/)
      const state = readState(sandboxDir(join(work, 'data'), 'itsbhx'))!
      const proxyPid = state.haproxy!.pid
      expect(isOurProcess(proxyPid, state.haproxy!.configFile)).toBe(true)

      const cluster = loadClusterFile(state.configFile)
      expect(cluster.proxies).toHaveLength(1)
      const proxy = cluster.proxies[0]!
      expect(proxy).toMatchObject({name: 'haproxy1', runtimeApi: {kind: 'tcp', host: '127.0.0.169', port: 9999}, writerBackend: 'mysql_writer', frontend: {host: '127.0.0.169', port: 3306}})
      expect(proxy.servers).toEqual({db1: 'db1', db2: 'db2', db3: 'db3'})

      // Over TCP and as the unix socket on the proxy's host over SSH (db1's sshd: the same machine), the same state.
      const viaSsh = new HaproxyRuntime({...proxy, runtimeApi: {kind: 'socket', path: state.haproxy!.socket, sshHost: '127.0.0.166', sshPort: 22, sshUser: 'root', ssh: cluster.ssh}})
      for (const api of [new HaproxyRuntime(proxy), viaSsh]) {
        const servers = await api.showServersState('mysql_writer')
        expect(servers.map((s) => [s.name, s.address, s.enabled])).toEqual([
          ['db1', '127.0.0.166', true],
          ['db2', '127.0.0.167', false],
          ['db3', '127.0.0.168', false],
        ])
      }
      await expect(viaSsh.setServerState('mysql_writer', 'nope', 'ready')).rejects.toThrow(/No such server/)
      // A client through the frontend lands on the master.
      const serverId = await withConnection({name: 'frontend', host: '127.0.0.169', port: 3306, user: 'app', password: secretsOf(state.dir).app}, 5000, async (conn) => (await conn.queryOne('SELECT @@server_id AS id'))?.id)
      expect(Number(serverId)).toBe(1)

      const status = await runMha(['sandbox', 'status', ...common])
      expect(status.stdout).toMatch(new RegExp(`haproxy\\s+127\\.0\\.0\\.169:3306 -> backend mysql_writer, runtime API 127\\.0\\.0\\.169:9999: pid ${proxyPid}`))
      const statusJson = JSON.parse((await runMha(['sandbox', 'status', ...common, '--json'])).stdout) as {haproxy: {process: {running: boolean; pid: number}}}
      expect(validator('sandbox-status.schema.json')(statusJson)).toBe(true)
      expect(statusJson.haproxy.process).toEqual({running: true, pid: proxyPid})

      const down = await runMha(['sandbox', 'down', ...common])
      expect(down.code).toBe(0)
      expect(isOurProcess(proxyPid, state.haproxy!.configFile)).toBe(false)
      expect(existsSync(state.dir)).toBe(false)
    } finally {
      await runMha(['sandbox', 'down', ...common])
      rmSync(work, {recursive: true, force: true})
    }
  })
})

