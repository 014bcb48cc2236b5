// The write-block window of an online switchover, as a client sees it: the longest time between two
// acknowledged writes while the master moves, medians of several runs, there and back.
// Run: npm run bench:switchover [-- --runs 5]   (uses 127.0.0.141-143)
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import mysql from 'mysql2/promise'
import type {ApplyReport} from '../src/apply/events.js'
import {sandboxDown, sandboxUp, secretsOf} from '../src/sandbox/sandbox.js'
import {fastWriter, longestGap, median, mhaCli, numberFlag} from './common.js'

const runs = numberFlag('runs', 5)
const mha = async (args: string[]) => (await mhaCli(args)).code
const work = mkdtempSync(join(tmpdir(), 'mha-bench-switch-'))
const state = await sandboxUp({cluster: 'benchs', replicas: 2, gtid: false, semisync: false, dir: join(work, 'data'), configDir: join(work, 'clusters'), firstOctet: 141})
const windows: number[] = []
try {
  const admin = await mysql.createConnection({host: state.hosts[0]!.ip, user: 'mha', password: secretsOf(state.dir).admin.reveal()})
  await admin.query('CREATE TABLE mhatest.w (id INT PRIMARY KEY)')
  await admin.end()
  for (let run = 1; run <= runs; run++) {
    const to = run % 2 === 1 ? 'db2' : 'db1'
    const plan = join(work, `switch-${run}.json`)
    if ((await mha(['plan', '--config', state.configFile, '--switchover', '--to', to, '-o', plan])) !== 2) throw new Error(`run ${run}: plan failed`)
    const stop = new AbortController()
    const acks = fastWriter(state, stop.signal, run * 1_000_000)
    await new Promise((r) => setTimeout(r, 1000))
    const started = performance.now()
    const applied = await mhaCli(['apply', plan, '--config', state.configFile, '--json'], {MHA_PHASES: '1'})
    if (applied.code !== 0) throw new Error(`run ${run}: apply failed (exit ${applied.code}): ${applied.stdout.slice(-600)}`)
    // Where the block's time went: each step from block_writes to enable_writes, from the report's own timings.
    const steps = (JSON.parse(applied.stdout.slice(0, applied.stdout.length - applied.stderr.length)) as ApplyReport).steps
    const first = steps.findIndex((x) => x.type === 'block_writes')
    const last = steps.findIndex((x) => x.type === 'enable_writes')
    const inBlock = steps.slice(first, last + 1).filter((x) => x.startMs !== null)
    const base = inBlock[0]?.startMs ?? 0
    const blockSteps = inBlock.map((x) => `${x.type} +${x.startMs! - base} ms (${x.durationMs} ms)`).join(', ')
    // Finer, from MHA_PHASES: from read_only=ON on the old master to the new master's promotion.
    const phases = [...applied.stderr.matchAll(/^phase ([\d.]+) (.+)$/gm)].map((m) => ({ms: Number(m[1]), name: m[2]!}))
    const from = phases.find((p) => p.name.endsWith(': read_only on'))
    const promoted = phases.find((p) => /^enable_writes:\S+ acted$/.test(p.name))
    const blockPhases = from && promoted ? phases.filter((p) => p.ms >= from.ms && p.ms <= promoted.ms).map((p) => `${(p.ms - from.ms).toFixed(1)} ${p.name}`) : []
    await new Promise((r) => setTimeout(r, 1000))
    stop.abort()
    const times = (await acks).filter((t) => t > started - 200)
    if (times.length < 100) throw new Error(`run ${run}: only ${times.length} writes acknowledged around the switchover`)
    const gap = longestGap(times)
    windows.push(gap)
    console.log(`run ${run} (to ${to}): writes blocked for ${(gap / 1000).toFixed(3)} s; steps: ${blockSteps}`)
    if (blockPhases.length > 0) console.log(`  in the block (ms from read_only=ON): ${blockPhases.join(' | ')}`)
  }
} finally {
  await sandboxDown(state.dir)
  // Plans, journals and the cluster file of these runs: nothing is left under the temp folder.
  if (!process.env.KEEP) rmSync(work, {recursive: true, force: true})
}
console.log(`\nmha online switchover, write-block window seen by a client (median of ${runs}): ${(median(windows) / 1000).toFixed(3)} s`)
console.log('MHA 0.58 with the same writer in the same run: npm run bench:vs-mha -- --only switchover.')
