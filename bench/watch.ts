// mha watch, measured on real sandboxes: (1) kill -> detection, new master writable, replicas re-pointed,
// medians of several runs under write load; (2) CPU and memory while monitoring 100 and 1000 clusters.
// Run: npm run bench:failover (part 1, after the plan/apply figures) and npm run bench:watch (part 2),
// or node dist/bench/watch.js [--part failover|scale] [--runs 3] [--seconds 30]   (uses 127.0.0.121-123);
// node dist/bench/watch.js --part overload [--count 1000] [--seconds 120]: no live master may be declared dead.
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import mysql from 'mysql2/promise'
import {WriteLoad} from '../src/sandbox/load.js'
import {sandboxDown, sandboxUp, secretsOf, type SandboxState} from '../src/sandbox/sandbox.js'
import {writeWatchState} from '../src/store/files.js'
import {cpuAndMemory, failOnWriteProblems, lostAndDuplicated, median, numberFlag, s, startWatch, until, type WriteCount} from './common.js'

const runs = numberFlag('runs', 3)
const seconds = numberFlag('seconds', 30)
const profileDir = process.argv.includes('--profile') ? process.argv[process.argv.indexOf('--profile') + 1] : undefined

/** The sandbox, or its folder removed when it does not come up (an address still taken by the previous run). */
async function up(work: string): Promise<SandboxState> {
  try {
    return await sandboxUp({cluster: 'benchw', replicas: 2, gtid: false, semisync: false, dir: join(work, 'data'), configDir: join(work, 'clusters'), firstOctet: 121})
  } catch (error) {
    rmSync(work, {recursive: true, force: true})
    throw error
  }
}

async function failoverRuns(): Promise<void> {
  const rows: {detect: number; writable: number; repointed: number; lost: string}[] = []
  const counts: WriteCount[] = []
  for (let run = 1; run <= runs; run++) {
    const work = mkdtempSync(join(tmpdir(), 'mha-benchw-'))
    const state = await up(work)
    const watch = startWatch(dirname(state.configFile), join(work, 'plans'))
    try {
      await WriteLoad.prepare(state, 'db1')
      const load = new WriteLoad(state, 20)
      load.start()
      await until('watch to see db1', 20_000, () => watch.lines.some((l) => l.event === 'healthy'))
      await new Promise((r) => setTimeout(r, 2000))
      const admin = await Promise.all(state.hosts.slice(1).map((h) => mysql.createConnection({host: h.ip, user: 'mha', password: secretsOf(state.dir).admin.reveal()})))
      const killedAt = Date.now()
      process.kill(state.hosts[0]!.mariadbdPid!, 'SIGKILL')
      let writable = NaN
      await until('a writable survivor', 60_000, async () => {
        for (const conn of admin) {
          const [r] = await conn.query<mysql.RowDataPacket[]>('SELECT @@global.read_only+0 AS ro')
          if (Number(r[0]?.ro) === 0) writable = Date.now() - killedAt
        }
        return !Number.isNaN(writable)
      })
      await until('the failover to finish', 60_000, () => watch.lines.some((l) => l.event === 'failover done' || l.event === 'failover failed'))
      for (const c of admin) c.destroy()
      const at = (event: string, match = '') => Date.parse(watch.lines.filter((l) => l.event === event && l.message.includes(match)).at(-1)!.at) - killedAt
      await new Promise((r) => setTimeout(r, 500))
      await load.stop()
      const {lost, duplicated} = await lostAndDuplicated(state, load, 'db2')
      counts.push({label: `watch failover, run ${run}`, lost, duplicated, acked: load.acked.length})
      // SHOW=1: where the time goes, line by line after the kill.
      if (process.env.SHOW) for (const l of watch.lines) console.log(`  ${((Date.parse(l.at) - killedAt) / 1000).toFixed(3)} ${l.event}: ${l.message.slice(0, 140)}`)
      rows.push({detect: at('dead'), writable, repointed: at('step end', 'repoint_replica'), lost: `${lost}/${load.acked.length}`})
      console.log(`run ${run}: detected ${s(rows.at(-1)!.detect)}, writable ${s(writable)}, replicas re-pointed ${s(rows.at(-1)!.repointed)}, lost ${rows.at(-1)!.lost}, twice ${duplicated}`)
    } finally {
      await watch.stop()
      await sandboxDown(state.dir)
      rmSync(work, {recursive: true, force: true})
    }
  }
  console.log(`\nmha watch, crash under load (ping_interval 1 s, failures_before_dead 2), medians of ${runs} runs after SIGKILL of the master:`)
  console.log(`  detected dead            ${s(median(rows.map((r) => r.detect)))}   (MHA 0.58 here: 4.55 s; published 9-12 s)`)
  console.log(`  new master writable      ${s(median(rows.map((r) => r.writable)))}   (MHA 0.58 here: 7.50 s, 4.69 s patched)`)
  console.log(`  all replicas re-pointed  ${s(median(rows.map((r) => r.repointed)))}   (MHA 0.58 here: 8.48 s, 4.74 s patched; published total 10-30 s)`)
  console.log(`  acknowledged writes lost ${rows.map((r) => r.lost).join(', ')}`)
  console.log(`  applied twice            ${counts.map((c) => c.duplicated).join(', ')}`)
  // Any write lost or applied twice fails the bench (the figures above are still printed).
  failOnWriteProblems(counts)
}

async function scale(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'mha-benchw-scale-'))
  const state = await up(work)
  const rss: {count: number; mb: number}[] = []
  try {
    for (const count of (process.env.COUNTS ?? "100,1000").split(",").map(Number)) {
      const dir = join(work, `clusters-${count}`)
      mkdirSync(dir)
      const template = readFileSync(state.configFile, 'utf8')
      // Every cluster here points at the same three hosts: kept SSH sessions would mean 3 x count sshd children on
      // them, which no real deployment has (a host belongs to one cluster). Real fleets of this size set it too.
      const noKeptSsh = template.replace(/^monitor:\n/m, 'monitor:\n  keep_ssh_open: false\n')
      if (noKeptSsh === template) throw new Error('the sandbox cluster file has no monitor section to add keep_ssh_open to')
      for (let i = 0; i < count; i++) writeFileSync(join(dir, `c${i}.yaml`), noKeptSsh.replace(/^name: benchw$/m, `name: c${i}`))
      // --profile DIR: the watch process writes a CPU profile (at its exit) and a heap snapshot (at the window's end) there.
      const profile = profileDir ? [`--cpu-prof`, `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=watch-${count}.cpuprofile`, `--heapsnapshot-signal=SIGUSR2`, `--diagnostic-dir=${profileDir}`] : []
      const watch = startWatch(dir, join(work, `plans-${count}`), profile)
      const launchedAt = Date.now()
      try {
        await until(`${count} clusters healthy`, 300_000, () => watch.lines.filter((l) => l.event === 'healthy').length >= count)
        console.log(`${count} clusters healthy ${((Date.now() - launchedAt) / 1000).toFixed(1)} s after watch started`)
        const servers = state.hosts.map((h) => h.mariadbdPid!)
        const serversBefore = servers.map((pid) => cpuAndMemory(pid).cpuMs)
        const before = cpuAndMemory(watch.pid)
        const startedAt = Date.now()
        // The resident size every 5 s of the window: bounded, or growing?
        const series: number[] = []
        while (Date.now() - startedAt < seconds * 1000) {
          await new Promise((r) => setTimeout(r, Math.min(5000, seconds * 1000 - (Date.now() - startedAt))))
          series.push(cpuAndMemory(watch.pid).rssMb)
        }
        const after = cpuAndMemory(watch.pid)
        const cpu = ((after.cpuMs - before.cpuMs) / (Date.now() - startedAt)) * 100
        const system = ((after.systemMs - before.systemMs) / (Date.now() - startedAt)) * 100
        // The three servers every cluster points at: when they saturate, pings slow down whatever watch does.
        const serversCpu = servers.map((pid, i) => ((cpuAndMemory(pid).cpuMs - serversBefore[i]!) / (Date.now() - startedAt)) * 100)
        const notHealthy = watch.lines.filter((l) => ['suspect', 'dead', 'network', 'failover'].includes(l.event)).length
        console.log(
          `watch monitoring ${count} clusters (ping_interval 1 s, keep_ssh_open false, ${seconds} s): CPU ${cpu.toFixed(1)} % of one core (system ${system.toFixed(1)} %), RSS ${after.rssMb.toFixed(0)} MB ` +
            `(${((after.rssMb * 1024) / count).toFixed(0)} KB per cluster; every 5 s from ${before.rssMb.toFixed(0)} MB: ${series.map((m) => m.toFixed(0)).join(' ')}); ${notHealthy} suspect/dead/network/failover lines; the 3 mariadbd: ${serversCpu.map((c) => c.toFixed(0)).join(' + ')} % of a core`,
        )
        rss.push({count, mb: after.rssMb})
        if (profileDir) process.kill(watch.pid, 'SIGUSR2')
        if (profileDir) await new Promise((r) => setTimeout(r, 20_000))
      } finally {
        // Stopped whatever happened: a watch left running would ping the next sandbox at these addresses.
        await watch.stop()
      }
    }
    // What one more cluster costs: the RSS between the smallest and the largest count, per cluster added.
    if (rss.length >= 2) console.log(`memory per cluster added (${rss[0]!.count} -> ${rss.at(-1)!.count} clusters): ${(((rss.at(-1)!.mb - rss[0]!.mb) * 1024) / (rss.at(-1)!.count - rss[0]!.count)).toFixed(0)} KB`)
  } finally {
    await sandboxDown(state.dir)
    rmSync(work, {recursive: true, force: true})
  }
}

/**
 * --part overload: many clusters on one 3-server sandbox (1 s heartbeats) that nothing kills, watched from the
 * start (the start is the heaviest load): every "dead" line is a live master declared dead. Each cluster's state
 * holds an unacknowledged failover, so a false "dead" is said and blocked, never applied to the shared servers.
 */
async function overload(): Promise<void> {
  const count = numberFlag('count', 1000)
  const work = mkdtempSync(join(tmpdir(), 'mha-benchw-overload-'))
  const state = await up(work)
  try {
    const dir = join(work, 'clusters-overload')
    const plansDir = join(work, 'plans-overload')
    mkdirSync(dir)
    const template = readFileSync(state.configFile, 'utf8').replace(/^monitor:\n/m, 'monitor:\n  keep_ssh_open: false\n')
    const blocked = {lastFailover: {at: new Date().toISOString(), plan: 'seeded.json', report: 'seeded.report.json', status: 'applied', deadMaster: null, newMaster: null}, acknowledged: false}
    for (let i = 0; i < count; i++) {
      writeFileSync(join(dir, `c${i}.yaml`), template.replace(/^name: benchw$/m, `name: c${i}`))
      writeWatchState(plansDir, `c${i}`, blocked)
    }
    const watch = startWatch(dir, plansDir)
    const startedAt = Date.now()
    let cpu: ReturnType<typeof cpuAndMemory>
    try {
      await new Promise((r) => setTimeout(r, seconds * 1000))
      cpu = cpuAndMemory(watch.pid)
    } finally {
      await watch.stop()
    }
    const by = (event: string) => watch.lines.filter((l) => l.event === event)
    const dead = by('dead')
    const healthy = new Set(by('healthy').map((l) => l.cluster)).size
    console.log(`watch of ${count} clusters on one live sandbox, ${seconds} s from its start: ${healthy} seen healthy; lines: ${dead.length} dead, ${by('network').length} network, ${by('suspect').length} suspect, ${by('overloaded').length} overloaded, ${by('error').length} error; CPU ${((cpu.cpuMs / (Date.now() - startedAt)) * 100).toFixed(0)} % of a core, RSS ${cpu.rssMb.toFixed(0)} MB`)
    for (const l of dead.slice(0, 5)) console.log(`  dead (${((Date.parse(l.at) - startedAt) / 1000).toFixed(1)} s): ${l.message}`)
    // Why the others were not healthy, by kind of reason (names and figures taken out): which rule is near a false death.
    for (const event of ['network', 'suspect']) {
      const kinds = new Map<string, number>()
      for (const l of by(event)) {
        const kind = l.message.replace(/\d+(\.\d+)?/g, 'N').replace(/db\d/g, 'dbN')
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
      }
      for (const [kind, n] of [...kinds].sort((a, b) => b[1] - a[1]).slice(0, 4)) console.log(`  ${n} x ${event}: ${kind}`)
    }
    for (const l of by('overloaded').slice(0, 3)) console.log(`  overloaded (${((Date.parse(l.at) - startedAt) / 1000).toFixed(1)} s): ${l.message}`)
    if (dead.length > 0) process.exitCode = 1
  } finally {
    await sandboxDown(state.dir)
    rmSync(work, {recursive: true, force: true})
  }
}

const part = process.argv[process.argv.indexOf('--part') + 1]
if (part === 'overload') await overload()
else {
  if (part !== 'scale') await failoverRuns()
  if (part !== 'failover') await scale()
}
