import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {waitFor} from '../../src/sandbox/processes.js'
import {leaveNothing, runMha, spawnWatch, startSandbox, type TestSandbox} from './harness.js'

// Without etcd nothing elects one manager per cluster, so a second mha watch of a cluster on the same host is
// refused (MHA's second masterha_manager exits at once); a watch killed with SIGKILL leaves no lock behind.
let sandbox: TestSandbox
let plansDir: string
let otherPlansDir: string
const watches: ReturnType<typeof spawnWatch>[] = []

const startWatch = async (args: string[]) => {
  const watch = spawnWatch([...args, '--plans-dir', plansDir, '--heartbeat', '0'])
  watches.push(watch)
  await waitFor('the watch to see the master', 30_000, () => watch.lines.some((l) => l.event === 'healthy'))
  return watch
}

beforeAll(async () => {
  sandbox = await startSandbox('itmanager', 147, {replicas: 1})
  plansDir = mkdtempSync(join(tmpdir(), 'mha-it-manager-plans-'))
  otherPlansDir = mkdtempSync(join(tmpdir(), 'mha-it-manager-other-'))
})

afterAll(async () => {
  for (const w of watches) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL')
  await leaveNothing(undefined, sandbox, [plansDir, otherPlansDir])
})

describe('a second mha watch of the same cluster on one host, without etcd', () => {
  it('is refused in one line naming the running one (pid, since when, its cluster file), whichever way the cluster is named', async () => {
    const first = await startWatch(['--config', sandbox.configFile])
    const since = new RegExp(
      `^mha: cluster itmanager is already watched by pid ${first.child.pid} \\(mha watch of ${sandbox.configFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, since \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\); stop that watch first \\(kill ${first.child.pid}\\), or run every manager with --etcd`,
    )
    for (const args of [
      ['--config', sandbox.configFile],
      ['--config-dir', dirname(sandbox.configFile), '--plans-dir', otherPlansDir],
    ]) {
      const second = await runMha(['watch', ...args, '--heartbeat', '0'])
      expect(second.code, second.stdout + second.stderr).toBe(1)
      expect(second.stderr.trim().split('\n')).toHaveLength(1)
      expect(second.stderr.trim()).toMatch(since)
      // It did nothing: no watch line at all.
      expect(second.stdout).toBe('')
    }
    // The first one goes on watching.
    expect(first.child.exitCode).toBeNull()
  })

  it('after the running watch is killed with SIGKILL, a new one starts and watches', async () => {
    const first = watches[0]!
    first.child.kill('SIGKILL')
    await first.exited
    const next = await startWatch(['--config', sandbox.configFile])
    expect(next.child.exitCode).toBeNull()
    // Stopped the ordinary way, it gives the cluster back at once.
    next.child.kill('SIGTERM')
    expect(await next.exited).toBe(0)
    const after = await startWatch(['--config', sandbox.configFile])
    after.child.kill('SIGTERM')
    expect(await after.exited).toBe(0)
  })
})
