import {existsSync, mkdtempSync, readdirSync, readFileSync} from 'node:fs'
import {connect} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {readState, sandboxDir} from '../../src/sandbox/sandbox.js'
import {validator} from '../../src/schema/validator.js'
import {isOurProcess, waitFor} from '../../src/sandbox/processes.js'
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
    await waitFor("db2's sshd to fork a handler for the idle connection", 10_000, () => handlersOf(state.hosts[1]!.sshdPid!).length > 0)
    const handlers = handlersOf(state.hosts[1]!.sshdPid!)
    const down = await runMha(['sandbox', 'down', ...common])
    expect(down.code).toBe(0)
    expect(pids.some((pid) => isOurProcess(pid, state.dir))).toBe(false)
    // Killed by sandbox down (not left for sshd's LoginGraceTime): gone once pid 1 has reaped them.
    // The client still holds its end, as a client behind a dropped route would.
    await waitFor(`the handlers ${handlers.join(', ')} to be gone`, 5_000, () => handlers.every((pid) => !existsSync(`/proc/${pid}`))).finally(() => idle.destroy())
    expect(existsSync(state.dir)).toBe(false)
    expect(existsSync(join(work, 'clusters', 'itsandbox.yaml'))).toBe(false)
  })
})

/** The processes whose parent is `pid` now (an sshd's connection handlers). */
function handlersOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        const stat = readFileSync(`/proc/${e}/stat`, 'utf8')
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid
      } catch {
        return false
      }
    })
    .map(Number)
}
