// How long a command takes as a new process, start to exit, on a 3-server sandbox: mha --version and
// mha plan --help (no cluster), mha plan --cluster benchst (a noop), mha plan --switchover and mha switchover
// (plan and apply in one process, there and back). The commands take turns, so that a busy moment of the
// machine falls on all. The noop plan also runs with MHA_PHASES=1 (its cost: a few array pushes and one write at
// exit), and its phases are printed as medians: where its time goes. mha's code cache is one of the bench's own,
// filled by a first noop plan (timed apart) before the runs.
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
const byName = ['--cluster', 'benchst', '--config-dir', join(work, 'clusters'), '--plans-dir', join(work, 'plans')]
const noopLabel = 'mha plan --cluster benchst (noop)'
const env = {XDG_CACHE_HOME: join(work, 'cache')}
const mha = (args: string[], more: Record<string, string> = {}) => mhaCli(args, {...env, ...more})

/** Node itself, for scale: what no change to mha can take away. */
const bareNode = (): Promise<{code: number; ms: number}> => {
  const started = performance.now()
  return new Promise((resolve) => execFile(process.execPath, ['-e', '0'], (error) => resolve({code: error ? 1 : 0, ms: performance.now() - started})))
}

const nextSecond = () => new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000)))

interface Case {
  label: string
  expect: number
  run: (i: number) => Promise<{code: number; ms: number; stdout?: string; stderr?: string}>
}

const cases: Case[] = [
  {label: 'node -e 0 (Node alone)', expect: 0, run: bareNode},
  {label: 'mha --version', expect: 0, run: () => mha(['--version'])},
  {label: 'mha plan --help', expect: 0, run: () => mha(['plan', '--help'])},
  {label: noopLabel, expect: 0, run: () => mha(['plan', ...byName], {MHA_PHASES: '1'})},
  {label: `${noopLabel}, MHA_CODE_CACHE=0`, expect: 0, run: () => mha(['plan', ...byName], {MHA_CODE_CACHE: '0'})},
  {label: 'mha plan --switchover', expect: 2, run: (i) => mha(['plan', ...cluster, '--switchover', '-o', join(work, `switch-${i}.json`)])},
  // There and back: run i moves the master to db2, run i+1 back to db1. Each in a second of its own (not timed):
  // the plan's file is named by the second, and a second switchover in the same one would find the first's.
  {
    label: 'mha switchover --auto-approve',
    expect: 0,
    run: async (i) => {
      await nextSecond()
      return await mha(['switchover', ...cluster, '--to', i % 2 === 0 ? 'db2' : 'db1', '--auto-approve'])
    },
  },
]

/**
 * A run's phases (MHA_PHASES lines on stderr), ms since its process started; a phase passed once per server or
 * host ("sql db2 read") counts when the last one passed it ("sql * read").
 */
function phasesOf(stderr: string): Map<string, number> {
  const phases = new Map<string, number>()
  for (const [, ms, name] of stderr.matchAll(/^phase (\S+) (.+)$/gm)) {
    const key = name!.replace(/^(sql|ssh) \S+ /, '$1 * ')
    phases.set(key, Math.max(phases.get(key) ?? 0, Number(ms)))
  }
  return phases
}

const times = new Map<string, number[]>(cases.map((c) => [c.label, []]))
const phases = new Map<string, number[]>()
let firstRun = 0
try {
  const first = await mha(['plan', ...byName])
  if (first.code !== 0) throw new Error(`first ${noopLabel}: exit ${first.code}: ${first.stdout.slice(-600)}`)
  firstRun = first.ms
  for (let i = 0; i < runs; i++) {
    for (const c of cases) {
      const result = await c.run(i)
      if (result.code !== c.expect) throw new Error(`${c.label}, run ${i + 1}: exit ${result.code}, expected ${c.expect}: ${(result.stdout ?? '').slice(-600)}`)
      times.get(c.label)!.push(result.ms)
      if (c.label === noopLabel) for (const [name, ms] of phasesOf(result.stderr ?? '')) phases.set(name, [...(phases.get(name) ?? []), ms])
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

console.log(`\nThe first ${noopLabel}, with an empty code cache (filled as it exits): ${s(firstRun)}`)
console.log(`\nWhere ${noopLabel} spends its time: each phase's median, ms since the process started (sql/ssh *: the last server)\n`)
console.log('| phase | median |')
console.log('|---|---|')
for (const [name, ms] of [...phases].sort((a, b) => median(a[1]) - median(b[1]))) console.log(`| ${name} | ${median(ms).toFixed(0)} ms |`)
