// How long a command takes as a new process, start to exit, on a 3-server sandbox: mha --version and
// mha plan --help (no cluster), mha plan (a noop), mha plan --switchover and mha switchover (plan and apply in
// one process, there and back). The commands take turns, so that a busy moment of the machine falls on all.
// Run: npm run bench:startup [-- --runs 9]   (builds first; uses 127.0.0.236-238, as bench:etcd does: not both at once)
import {execFile} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {sandboxDown, sandboxUp} from '../src/sandbox/sandbox.js'
import {median, mhaCli, numberFlag, s} from './common.js'

const runs = numberFlag('runs', 9)
const work = mkdtempSync(join(tmpdir(), 'mha-bench-startup-'))
const state = await sandboxUp({cluster: 'benchst', replicas: 2, gtid: false, semisync: false, dir: join(work, 'data'), configDir: join(work, 'clusters'), firstOctet: 236})
const cluster = ['--config', state.configFile, '--plans-dir', join(work, 'plans')]

/** Node itself, for scale: what no change to mha can take away. */
const bareNode = (): Promise<{code: number; ms: number}> => {
  const started = performance.now()
  return new Promise((resolve) => execFile(process.execPath, ['-e', '0'], (error) => resolve({code: error ? 1 : 0, ms: performance.now() - started})))
}

const nextSecond = () => new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000)))

interface Case {
  label: string
  expect: number
  run: (i: number) => Promise<{code: number; ms: number; stdout?: string}>
}

const cases: Case[] = [
  {label: 'node -e 0 (Node alone)', expect: 0, run: bareNode},
  {label: 'mha --version', expect: 0, run: () => mhaCli(['--version'])},
  {label: 'mha plan --help', expect: 0, run: () => mhaCli(['plan', '--help'])},
  {label: 'mha plan (noop)', expect: 0, run: () => mhaCli(['plan', ...cluster])},
  {label: 'mha plan --switchover', expect: 2, run: (i) => mhaCli(['plan', ...cluster, '--switchover', '-o', join(work, `switch-${i}.json`)])},
  // There and back: run i moves the master to db2, run i+1 back to db1. Each in a second of its own (not timed):
  // the plan's file is named by the second, and a second switchover in the same one would find the first's.
  {
    label: 'mha switchover --auto-approve',
    expect: 0,
    run: async (i) => {
      await nextSecond()
      return await mhaCli(['switchover', ...cluster, '--to', i % 2 === 0 ? 'db2' : 'db1', '--auto-approve'])
    },
  },
]

const times = new Map<string, number[]>(cases.map((c) => [c.label, []]))
try {
  for (let i = 0; i < runs; i++) {
    for (const c of cases) {
      const result = await c.run(i)
      if (result.code !== c.expect) throw new Error(`${c.label}, run ${i + 1}: exit ${result.code}, expected ${c.expect}: ${(result.stdout ?? '').slice(-600)}`)
      times.get(c.label)!.push(result.ms)
    }
  }
  // An odd number of switchovers leaves db2 the master; the sandbox goes anyway.
} finally {
  await sandboxDown(state.dir)
  if (!process.env.KEEP) rmSync(work, {recursive: true, force: true})
}

console.log(`\nmha as a new process, start to exit, on a 3-server sandbox (${runs} runs each, taking turns)\n`)
console.log('| command | median | fastest | slowest |')
console.log('|---|---|---|---|')
for (const [label, ms] of times) console.log(`| ${label} | ${s(median(ms))} | ${s(Math.min(...ms))} | ${s(Math.max(...ms))} |`)
