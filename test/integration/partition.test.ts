import {execFileSync, spawn, type ChildProcess} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {sandboxDown, sandboxDir} from '../../src/sandbox/sandbox.js'
import {waitFor} from '../../src/sandbox/processes.js'
import {root} from './harness.js'

// Everything runs in a network namespace this test creates, so its nftables rule touches nothing else.
const ns = `mha-it-part-${process.pid}`
const work = mkdtempSync(join(tmpdir(), 'mha-it-partition-'))
const inNs = (args: string[]) => ['netns', 'exec', ns, process.execPath, join(root, 'bin/run.js'), ...args]
let watch: ChildProcess | undefined
const lines: {event: string; message: string}[] = []

afterAll(async () => {
  if (watch && watch.exitCode === null) watch.kill('SIGKILL')
  await sandboxDown(sandboxDir(join(work, 'data'), 'itpart'))
  execFileSync('ip', ['netns', 'del', ns])
})

describe('mha watch and a network partition', () => {
  it('does not fail over when only the path from mha to the master is cut, and says why', async () => {
    execFileSync('ip', ['netns', 'add', ns])
    execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up'])
    execFileSync('ip', inNs(['sandbox', 'up', '--cluster', 'itpart', '--first-address', '127.0.0.111', '--dir', join(work, 'data'), '--config-dir', join(work, 'clusters')]), {env: {...process.env, NODE_ENV: 'production'}})
    // The watcher leaves from its own address, so a rule can cut it off from the master alone.
    mkdirSync(join(work, 'watched'))
    writeFileSync(join(work, 'watched', 'itpart.yaml'), readFileSync(join(work, 'clusters', 'itpart.yaml'), 'utf8') + 'source_address: 127.0.0.200\n')
    watch = spawn('ip', inNs(['watch', '--config-dir', join(work, 'watched'), '--plans-dir', join(work, 'plans'), '--log-format', 'json']), {env: {...process.env, NODE_ENV: 'production'}})
    let buffer = ''
    watch.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString()
      for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
        lines.push(JSON.parse(buffer.slice(0, i)) as {event: string; message: string})
        buffer = buffer.slice(i + 1)
      }
    })
    await waitFor('watch to see db1 healthy', 20_000, () => lines.some((l) => l.event === 'healthy'))

    const nft = (rule: string) => execFileSync('ip', ['netns', 'exec', ns, 'nft', ...rule.split(' ')])
    nft('add table inet mhapart')
    nft('add chain inet mhapart out { type filter hook output priority 0 ; }')
    nft('add rule inet mhapart out ip saddr 127.0.0.200 ip daddr 127.0.0.111 drop')

    await waitFor(`watch to report a network problem (got ${lines.map((l) => l.event).join(', ')})`, 40_000, () => lines.some((l) => l.event === 'network'))
    expect(lines.find((l) => l.event === 'network')!.message).toMatch(/db1 \(127\.0\.0\.111:3306\): .*but db2, db3 still replicate from it: a network problem between mha and the master, not a dead master/)
    // The other routes were asked, and said so: from each replica's host the master's port still answers.
    expect(lines.find((l) => l.event === 'network')!.message).toMatch(/not a dead master; db2 connects to 127\.0\.0\.111:3306; db3 connects to 127\.0\.0\.111:3306$/)
    await new Promise((r) => setTimeout(r, 3000))
    expect(lines.some((l) => ['dead', 'failover', 'failover done'].includes(l.event))).toBe(false)
    // No plan was written (the plans folder holds at most watch's presence file).
    expect(existsSync(join(work, 'plans', 'itpart')) ? readdirSync(join(work, 'plans', 'itpart')).filter((f) => f.endsWith('.json') && f !== 'watch-state.json') : []).toEqual([])

    const check = JSON.parse(execFileSync('ip', inNs(['check', '--config', join(work, 'clusters', 'itpart.yaml'), '--json']), {env: {...process.env, NODE_ENV: 'production'}}).toString()) as {master: string; failoverPossible: boolean}
    expect(check).toMatchObject({master: 'db1', failoverPossible: true})
  })
})
