// Several managers on etcd (issues 16 and 23), measured on real parts: a 3-member etcd sandbox, a MariaDB sandbox and
// 10,000 cluster files shared by 3 `mha watch --etcd` processes. Prints how leadership spreads over the watchers,
// the clusters left without a leader, the leases lost, CPU and memory per watcher, etcd's own CPU and load, and the
// failover of one real cluster among the 10,000; then, optionally, one watcher without etcd watching a share of
// the clusters (--plain-clusters N): its CPU, memory and detection time. Figures are printed, never asserted; the
// targets (every cluster led, no lease lost, each watcher at most 50 % of a core) are said met or not.
// Run: npm run bench:etcd [-- --clusters 10000 --watchers 3 --seconds 30 --ttl 5 --filler-ping 5 --filler-nice 10 --plain-clusters 0 --part etcd|plain --keep-logs --cpu-prof DIR]
// (etcd on 127.0.0.234-236, the real cluster's MariaDB sandbox on 127.0.0.237-238, the filler clusters' servers on
// 127.0.0.239, --per-server 300 clusters each, run at nice --filler-nice; the real cluster is pinged every second,
// the fillers every --filler-ping seconds: they are there to load the coordination, not MariaDB)
import {spawn, type ChildProcess} from 'node:child_process'
import {closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Etcd3} from 'etcd3'
import mysql from 'mysql2/promise'
import {parse, stringify} from 'yaml'
import {rendezvousOrder} from '../src/coord/ranking.js'
import {readEtcdState, startEtcdCluster, stopEtcdCluster, etcdEndpoints} from '../src/sandbox/etcd.js'
import {findProgram, run, startDetached, stopOurProcess} from '../src/sandbox/processes.js'
import {sandboxDir, sandboxDown, sandboxUp, secretsOf, type SandboxState} from '../src/sandbox/sandbox.js'
import {cpuAndMemory, numberFlag, root, s, sql} from './common.js'

const clusters = numberFlag('clusters', 10_000)
const watcherCount = numberFlag('watchers', 3)
const seconds = numberFlag('seconds', 30)
const ttl = numberFlag('ttl', 5)
const plainClusters = process.argv.includes('--plain-clusters') ? Number(process.argv[process.argv.indexOf('--plain-clusters') + 1]) : 0
const fillerPing = numberFlag('filler-ping', 5)
const fillerNice = numberFlag('filler-nice', 10)
/** What each watcher may use at most, in % of one core. */
const cpuTarget = 50
const etcdAddresses = ['127.0.0.234', '127.0.0.235', '127.0.0.236']
const firstOctet = 237
const fillerAddress = '127.0.0.239'
const perServer = numberFlag('per-server', 300)
const keepLogs = process.argv.includes('--keep-logs')
const part = process.argv.includes('--part') ? process.argv[process.argv.indexOf('--part') + 1] : undefined
/** --cpu-prof DIR: each watcher writes a V8 CPU profile there when it stops (node --cpu-prof). */
const cpuProfDir = process.argv.includes('--cpu-prof') ? process.argv[process.argv.indexOf('--cpu-prof') + 1] : undefined
const prefix = '/bench'
const real = 'real'

const work = mkdtempSync(join(tmpdir(), 'mha-bench-etcd-'))
const etcdDir = join(work, 'etcd')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const pct = (x: number) => `${x.toFixed(1)} %`
const mb = (x: number) => `${x.toFixed(0)} MB`

const allWatchers: Watcher[] = []
// Everything started is undone in reverse order, on success, failure or Ctrl-C.
const cleanups: {what: string; undo: () => Promise<unknown>}[] = []
async function cleanUp(): Promise<void> {
  // --keep-logs: the watchers' and etcd's logs are kept (in a folder beside the work folder) to look into a run.
  if (keepLogs) {
    mkdirSync(`${work}-logs`, {recursive: true})
    for (const dir of [work, etcdDir].filter((d) => existsSync(d))) for (const f of readdirSync(dir).filter((f) => /\.(log|err)$/.test(f))) cpSync(join(dir, f), join(`${work}-logs`, f))
    for (const tag of ['etcd', 'plain'])
      for (let i = 1; i <= 3; i++) {
        const file = join(sandboxDir(join(work, `data-${tag}`), real), `host${i}`, 'mariadbd.err')
        if (existsSync(file)) cpSync(file, join(`${work}-logs`, `${tag}-db${i}-mariadbd.err`))
      }
    if (existsSync(join(work, 'fillers')))
      for (const d of readdirSync(join(work, 'fillers')).filter((d) => existsSync(join(work, 'fillers', d, 'mariadbd.err')))) cpSync(join(work, 'fillers', d, 'mariadbd.err'), join(`${work}-logs`, `filler-${d}-mariadbd.err`))
  }
  for (let c = cleanups.pop(); c; c = cleanups.pop()) await c.undo().catch((error: unknown) => console.error(`cleanup: ${c.what}: ${String(error)}`))
  rmSync(work, {recursive: true, force: true})
  if (keepLogs) console.log(`logs kept in ${work}-logs`)
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void cleanUp().finally(() => process.exit(130)))

interface LogLine {
  at: string
  cluster: string
  event: string
  message: string
}

/** One `mha watch` process, its JSON log in a file, read as it grows. */
class Watcher {
  readonly lines: LogLine[] = []
  /** Per cluster: has it been found healthy since this watcher last became its leader (or since the start, without etcd)? */
  readonly #healthy = new Map<string, boolean>()
  readonly child: ChildProcess
  readonly logFile: string
  readonly errFile: string
  readonly id: string
  readonly plansDir: string
  #offset = 0
  #rest = ''

  constructor(id: string, plansDir: string, args: string[]) {
    this.id = id
    this.plansDir = plansDir
    this.logFile = join(work, `${id}.log`)
    this.errFile = join(work, `${id}.err`)
    const out = openSync(this.logFile, 'w')
    const err = openSync(this.errFile, 'w')
    const argv = [join(root, 'bin/run.js'), 'watch', '--plans-dir', plansDir, '--log-format', 'json', '--heartbeat', '10', ...args]
    const profile = cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`, `--cpu-prof-name=${id}.cpuprofile`] : []
    this.child = spawn(process.execPath, [...profile, ...argv], {stdio: ['ignore', out, err], env: {...process.env, NODE_ENV: 'production'}})
    closeSync(out)
    closeSync(err)
    cleanups.push({what: `stop watcher ${id}`, undo: () => this.stop()})
    allWatchers.push(this)
  }

  get pid(): number {
    return this.child.pid!
  }

  /** The lines written since the last read. */
  read(): LogLine[] {
    const size = statSync(this.logFile).size
    if (size > this.#offset) {
      const buffer = Buffer.alloc(size - this.#offset)
      const fd = openSync(this.logFile, 'r')
      try {
        readSync(fd, buffer, 0, buffer.length, this.#offset)
      } finally {
        closeSync(fd)
      }
      this.#offset = size
      const text = this.#rest + buffer.toString('utf8')
      const parts = text.split('\n')
      this.#rest = parts.pop()!
      for (const part of parts) {
        let line: LogLine
        try {
          line = JSON.parse(part) as LogLine
        } catch {
          continue // Not a log line (a warning of the CLI framework): not counted.
        }
        this.lines.push(line)
        if (line.event === 'leading') this.#healthy.set(line.cluster, false)
        else if (line.event === 'healthy') this.#healthy.set(line.cluster, true)
      }
    }
    return this.lines
  }

  monitoring(cluster: string): boolean {
    return this.#healthy.get(cluster) === true
  }

  said(event: string, cluster?: string): LogLine[] {
    return this.read().filter((l) => l.event === event && (cluster === undefined || l.cluster === cluster))
  }

  /** Throws with the end of its stderr if the process has exited. */
  alive(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) return
    const err = readFileSync(this.errFile, 'utf8').trim().split('\n').slice(-5).join(' | ')
    throw new Error(`watcher ${this.id} (pid ${this.pid}) exited (${this.child.exitCode ?? this.child.signalCode}): ${err || 'no stderr'}; log in ${this.logFile}`)
  }

  /** SIGTERM (the lease is revoked), SIGKILL after 20 s. */
  async stop(): Promise<void> {
    const child = this.child
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill('SIGTERM')
    if (await Promise.race([exited.then(() => true), sleep(20_000).then(() => false)])) return
    child.kill('SIGKILL')
    await exited
  }
}

class Timeout extends Error {}

/** A wait whose deadline passing is a finding to report, not a failure (a watcher that died still is one). */
const soft = (wait: Promise<number>, ok: () => string, late: () => string): Promise<string> =>
  wait.then(ok, (error: unknown) => {
    if (error instanceof Timeout) return late()
    throw error
  })

async function waitUntil(what: string, timeoutMs: number, watchers: Watcher[], probe: () => boolean | Promise<boolean>, stepMs = 250): Promise<number> {
  const started = Date.now()
  for (;;) {
    for (const w of watchers) w.alive()
    if (await probe()) return Date.now() - started
    if (Date.now() - started > timeoutMs) throw new Timeout(`timed out after ${s(timeoutMs)} waiting for ${what}`)
    await sleep(stepMs)
  }
}

/** The real cluster: a MariaDB sandbox db1 -> db2. */
async function sandbox(tag: string): Promise<SandboxState> {
  const dir = join(work, `data-${tag}`)
  cleanups.push({what: `sandbox ${tag} down`, undo: () => sandboxDown(sandboxDir(dir, real))})
  return await sandboxUp({cluster: real, replicas: 1, gtid: false, semisync: false, dir, configDir: join(work, `sandbox-${tag}`), firstOctet})
}

/**
 * The one server of every filler cluster: standalone mariadbd processes on 127.0.0.239, ports 3306, 3307, ...,
 * each the master of perServer filler clusters, with the sandbox's admin login. Not the sandbox's servers:
 * killing db1 must concern the real cluster only, and every discovery (each cluster's, every 10 s) reads
 * the server's whole processlist, so N clusters on one server cost N^2: with 1000 fillers on one mariadbd
 * (MariaDB 10.11), it stopped answering within seconds of the watcher's start in one trial and died of
 * signal 11 in another.
 */
async function fillerServers(password: string, count: number): Promise<number[]> {
  const ports = Array.from({length: Math.ceil(count / perServer)}, (_, k) => 3306 + k)
  const dir = join(work, 'fillers')
  const template = join(dir, 'template')
  mkdirSync(dir)
  const bootstrap = join(dir, 'bootstrap.sql')
  writeFileSync(bootstrap, ['FLUSH PRIVILEGES;', `CREATE USER 'mha'@'%' IDENTIFIED BY '${password}';`, "GRANT ALL PRIVILEGES ON *.* TO 'mha'@'%' WITH GRANT OPTION;", ''].join('\n'), {mode: 0o600})
  run(findProgram('mariadb-install-db')!, ['--no-defaults', `--datadir=${template}`, '--user=root', '--auth-root-authentication-method=socket', '--skip-test-db', `--extra-file=${bootstrap}`], 'mariadb-install-db')
  for (const port of ports) {
    const home = join(dir, `p${port}`)
    cpSync(template, join(home, 'data'), {recursive: true})
    const cnf = join(home, 'my.cnf')
    const settings = [`datadir=${join(home, 'data')}`, `socket=${join(home, 'mysqld.sock')}`, `pid-file=${join(home, 'mariadbd.pid')}`, `log-error=${join(home, 'mariadbd.err')}`, `tmpdir=${home}`]
    settings.push(`bind-address=${fillerAddress}`, `port=${port}`, `server-id=${port}`, 'log-bin=mysql-bin', 'binlog-format=ROW', 'skip-name-resolve=1', 'innodb-buffer-pool-size=16M', 'performance-schema=0', `max-connections=${perServer * 4 + 100}`)
    // A thread pool: with a thread per connection, hundreds of threads of each server ran at once, and the managers
    // measured waited behind them (the load average passed 300 on this 2-core machine).
    settings.push('thread-handling=pool-of-threads', 'thread-pool-size=1')
    writeFileSync(cnf, ['[mariadbd]', ...settings, ''].join('\n'))
    // Niced: on this small machine they stand in for servers on other hosts, and must not take the CPU from the
    // managers being measured (with 10,000 clusters they kept a manager's event loop seconds late).
    const pid = startDetached(findProgram('nice')!, ['-n', String(fillerNice), findProgram('mariadbd')!, `--defaults-file=${cnf}`, '--user=root'], join(home, 'mariadbd.log'))
    cleanups.push({what: `filler mariadbd on port ${port}`, undo: () => stopOurProcess(pid, cnf, 30_000)})
  }
  for (const port of ports)
    await waitUntil(`mariadbd on ${fillerAddress}:${port}`, 60_000, [], async () => {
      const conn = await mysql.createConnection({host: fillerAddress, port, user: 'mha', password, connectTimeout: 1000}).catch(() => undefined)
      await conn?.end()
      return conn !== undefined
    })
  return ports
}

/** The real cluster and count - 1 fillers (cheap to ping: one server, no kept SSH sessions), perServer on each filler server, in a new folder. */
function clusterFiles(state: SandboxState, ports: number[], tag: string, count: number): string {
  const dir = join(work, `clusters-${tag}`)
  mkdirSync(dir)
  writeFileSync(join(dir, `${real}.yaml`), readFileSync(state.configFile))
  const doc = parse(readFileSync(state.configFile, 'utf8')) as {monitor: Record<string, unknown>}
  const filler = (i: number) => ({...doc, name: `c${i}`, password: {file: fillerPassword}, monitor: {...doc.monitor, ping_interval: fillerPing, keep_ssh_open: false}, servers: [{name: 'f', hostname: fillerAddress, port: ports[Math.floor((i - 1) / perServer)]}]})
  for (let i = 1; i < count; i++) writeFileSync(join(dir, `c${i}.yaml`), stringify(filler(i)))
  return dir
}

/** The filler servers, started once for both parts, with the first sandbox's admin password (kept in its own file). */
const fillerPassword = join(work, 'filler-mha.password')
let fillerPorts: Promise<number[]> | undefined
function fillers(state: SandboxState): Promise<number[]> {
  if (!fillerPorts) {
    cpSync(join(state.dir, 'secrets', 'mha.password'), fillerPassword)
    fillerPorts = fillerServers(secretsOf(state.dir).admin.reveal(), Math.max(part === 'plain' ? 0 : clusters, part === 'etcd' ? 0 : plainClusters) - 1)
  }
  return fillerPorts
}

interface Usage {
  cpu: number
  rss: number
  maxRss: number
}

/** CPU (% of one core) and memory of each pid over `seconds`, RSS sampled every second. */
async function usage(pids: number[], check: () => void): Promise<Usage[]> {
  const before = pids.map((pid) => cpuAndMemory(pid))
  const maxRss = before.map((b) => b.rssMb)
  const started = Date.now()
  while (Date.now() - started < seconds * 1000) {
    await sleep(1000)
    check()
    pids.forEach((pid, i) => (maxRss[i] = Math.max(maxRss[i]!, cpuAndMemory(pid).rssMb)))
  }
  const elapsed = Date.now() - started
  return pids.map((pid, i) => {
    const after = cpuAndMemory(pid)
    return {cpu: ((after.cpuMs - before[i]!.cpuMs) / elapsed) * 100, rss: after.rssMb, maxRss: Math.max(maxRss[i]!, after.rssMb)}
  })
}

/** Counters of every etcd member summed: RPCs handled per method, bytes sent to clients, database size. */
async function etcdMetrics(): Promise<{rpcs: Map<string, number>; sentBytes: number; dbBytes: number}> {
  const rpcs = new Map<string, number>()
  let sentBytes = 0
  let dbBytes = 0
  for (const member of readEtcdState(etcdDir)!.members) {
    const text = await (await fetch(`${member.clientUrl}/metrics`, {signal: AbortSignal.timeout(5000)})).text()
    for (const line of text.split('\n')) {
      const value = Number(line.slice(line.lastIndexOf(' ') + 1))
      const method = /^grpc_server_handled_total\{.*grpc_method="(\w+)"/.exec(line)?.[1]
      if (method) rpcs.set(method, (rpcs.get(method) ?? 0) + value)
      else if (line.startsWith('etcd_network_client_grpc_sent_bytes_total ')) sentBytes += value
      else if (line.startsWith('etcd_mvcc_db_total_size_in_bytes ')) dbBytes = Math.max(dbBytes, value)
    }
  }
  return {rpcs, sentBytes, dbBytes}
}

async function leadersIn(client: Etcd3): Promise<Map<string, string>> {
  const keys = await client.getAll().prefix(`${prefix}/leaders/`).strings()
  return new Map(Object.entries(keys).map(([key, value]) => [key.slice(`${prefix}/leaders/`.length), (JSON.parse(value) as {id: string}).id]))
}

/** The last lines about cluster@watcher, for an error message. */
const events = (which: string | undefined) => {
  const [cluster, id] = (which ?? '@').split('@')
  return allWatchers.find((w) => w.id === id)?.lines.filter((l) => l.cluster === cluster).slice(-4).map((l) => `${l.at} ${l.event}: ${l.message.slice(0, 160)}`).join(' | ') ?? ''
}
const balanceOf = (leaders: Map<string, string>, ids: string[]) => ids.map((id) => [...leaders.values()].filter((l) => l === id).length)

interface Detection {
  killedAt: number
  by: string
  dead: number
  writable: number
  done: number
  status: string
}

/** SIGKILL db1 (the real cluster's master); times until some watcher says dead, db2 is writable, and the failover is done. */
async function killAndTime(state: SandboxState, watchers: Watcher[]): Promise<Detection> {
  const db2 = state.hosts[1]!
  const killedAt = Date.now()
  process.kill(state.hosts[0]!.mariadbdPid!, 'SIGKILL')
  let writable = NaN
  const poll = (async () => {
    while (Number.isNaN(writable) && Date.now() - killedAt < 90_000) {
      try {
        const [row] = await sql(state, db2.name, ['SELECT @@global.read_only+0 AS ro'])
        if (Number(row?.ro) === 0) writable = Date.now() - killedAt
      } catch {
        // Retried until the deadline.
      }
      await sleep(10)
    }
  })()
  const ends = () => watchers.flatMap((w) => [...w.said('failover done', real), ...w.said('failover failed', real)].map((line) => ({w, line})))
  await waitUntil('the failover of the real cluster to end', 90_000, watchers, () => ends().length > 0, 50)
  await poll
  const end = ends()[0]!
  const dead = watchers.flatMap((w) => w.said('dead', real).map((line) => ({w, line})))[0]
  return {killedAt, by: end.w.id, dead: dead ? Date.parse(dead.line.at) - killedAt : NaN, writable, done: Date.parse(end.line.at) - killedAt, status: end.line.event}
}

const failoverPlans = (w: Watcher) => {
  try {
    return readdirSync(join(w.plansDir, real)).filter((f) => f.endsWith('-failover.json')).length
  } catch {
    return 0
  }
}

function table(rows: string[][]): void {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)))
  for (const row of rows) console.log('  ' + row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('   '))
}

interface Figures {
  label: string
  monitoredIn: string
  leads: number[]
  /** Clusters without a leader in etcd: the most seen at once over the window, and at its end (null without etcd). */
  unled: {max: number; end: number} | null
  /** Leases lost per watcher, from the start to the end of the failover (null without etcd). */
  leasesLost: number[] | null
  usage: Usage[]
  /** etcd's members (CPU % of one core, RSS), over the same window. */
  etcd: Usage[]
  detection: Detection
}

/** Clusters without a leader in etcd, counted every second (a count, not a read of every key) until stopped. */
function countUnled(client: Etcd3): {stop: () => Promise<{max: number; end: number}>} {
  let running = true
  let max = 0
  let end = 0
  const loop = (async () => {
    while (running) {
      end = clusters - (await client.getAll().prefix(`${prefix}/leaders/`).count())
      max = Math.max(max, end)
      await sleep(1000)
    }
  })()
  return {
    stop: async () => {
      running = false
      await loop
      return {max, end}
    },
  }
}

async function withEtcd(): Promise<Figures> {
  cleanups.push({what: 'etcd sandbox down', undo: () => stopEtcdCluster(etcdDir)})
  console.log(`etcd: 3 members on ${etcdAddresses.join(', ')}; cluster "${real}": db1 -> db2 on 127.0.0.${firstOctet}-${firstOctet + 1}; ${clusters - 1} filler clusters: one server each, ${perServer} per mariadbd (nice ${fillerNice}) on ${fillerAddress}`)
  await startEtcdCluster({dir: etcdDir, addresses: etcdAddresses})
  const endpoints = etcdEndpoints(etcdDir)
  const client = new Etcd3({hosts: endpoints.split(',')})
  cleanups.push({what: 'etcd client', undo: () => Promise.resolve(client.close())})
  const state = await sandbox('etcd')
  const dir = clusterFiles(state, await fillers(state), 'etcd', clusters)
  const ids = Array.from({length: watcherCount}, (_, i) => `w${i + 1}`)
  const started = Date.now()
  const watchers = ids.map((id) => new Watcher(id, join(work, `plans-${id}`), ['--config-dir', dir, '--etcd', endpoints, '--etcd-prefix', prefix, '--etcd-lease-ttl', String(ttl), '--watcher-id', id]))
  const check = () => watchers.forEach((w) => w.alive())

  let leaders = new Map<string, string>()
  await waitUntil(`every one of ${clusters} clusters to have a leader in etcd`, 300_000, watchers, async () => (leaders = await leadersIn(client)).size >= clusters, 500)
  const allLed = Date.now() - started
  const firstBalance = balanceOf(leaders, ids)
  // Settled: every cluster's leader has found it healthy, and no leader changed for 10 s (hand-overs to the
  // preferred watcher wait until the cluster is idle, so they can come after a quiet moment). Past the deadline
  // the figures are taken as things are, and the report says so.
  let waiting: string[] = []
  let last = ''
  let since = Date.now()
  let nextProgress = 0
  const settledAndMonitoring = async () => {
    watchers.forEach((w) => w.read())
    leaders = await leadersIn(client)
    waiting = [...leaders].filter(([cluster, id]) => !watchers.find((w) => w.id === id)!.monitoring(cluster)).map(([cluster, id]) => `${cluster}@${id}`)
    const now = JSON.stringify([...leaders].sort())
    if (now !== last || leaders.size < clusters || waiting.length > 0) [last, since] = [now, Date.now()]
    if (Date.now() >= nextProgress) {
      nextProgress = Date.now() + 15_000
      console.log(`  ${s(Date.now() - started)}: ${leaders.size - waiting.length} of ${clusters} clusters monitored by their leader; balance ${balanceOf(leaders, ids).join(' / ')}`)
    }
    return Date.now() - since >= 10_000
  }
  const settledIn = await soft(
    // Every 2 s: each look reads every leader key (10,000 of them), a load of its own on etcd.
    waitUntil('leadership to settle, every leader monitoring', 300_000, watchers, settledAndMonitoring, 2000),
    () => `every leader monitoring, and no leader changing, after ${s(since - started)}`,
    () => `NOT settled after ${s(Date.now() - started)}: ${waiting.length} clusters not monitored by their leader (${waiting.slice(0, 3).join(', ')}...; last lines of ${waiting[0]}: ${events(waiting[0])})`,
  )
  const balance = balanceOf(leaders, ids)
  const handovers = watchers.map((w) => w.said('handed over', '*').length)
  console.log(`\n${watcherCount} watchers on etcd, ${clusters} cluster files (lease TTL ${ttl} s; "${real}" pinged every 1 s, the fillers every ${fillerPing} s with keep_ssh_open false):`)
  console.log(`  every cluster led after ${s(allLed)} (balance then ${firstBalance.join(' / ')}); ${settledIn}`)
  const preferred = balanceOf(new Map([...leaders.keys()].map((cluster) => [cluster, rendezvousOrder(cluster, ids)[0]!])), ids)
  console.log(`  settled balance ${balance.join(' / ')}; rendezvous hashing prefers ${preferred.join(' / ')} (even share ${(clusters / watcherCount).toFixed(0)}); hand-overs to the preferred watcher ${handovers.join(' / ')}`)

  const etcdPids = readEtcdState(etcdDir)!.members.map((m) => m.pid!)
  // Every lease after the first was granted because the one before was lost: etcd (or the watcher) too slow for the TTL.
  const grants = (w: Watcher) => w.said('etcd up', '*').filter((l) => l.message.startsWith('lease ')).length
  const grantsBefore = watchers.map(grants)
  const metricsBefore = await etcdMetrics()
  const measuredAt = Date.now()
  const unledCount = countUnled(client)
  const used = await usage([...watchers.map((w) => w.pid), ...etcdPids], check)
  const unled = await unledCount.stop()
  const window = (Date.now() - measuredAt) / 1000
  const metricsAfter = await etcdMetrics()
  const leadersAfter = await leadersIn(client)
  const moved = [...leadersAfter].filter(([cluster, id]) => leaders.get(cluster) !== id).length
  console.log(`\n  over ${window.toFixed(0)} s (leaders that changed meanwhile: ${moved}; clusters without a leader, counted every second: at most ${unled.max}, ${unled.end} at the end):`)
  const heartbeat = (w: Watcher) => /leading \d+, following \d+/.exec(w.said('heartbeat', '*').at(-1)?.message ?? '')?.[0] ?? '-'
  table([
    ['process', 'leads', 'CPU (% of one core)', 'RSS end', 'RSS max', 'leases lost (before, during)', 'its last heartbeat'],
    ...watchers.map((w, i) => [`watcher ${w.id} (pid ${w.pid})`, String(balance[i]), pct(used[i]!.cpu), mb(used[i]!.rss), mb(used[i]!.maxRss), `${grantsBefore[i]! - 1}, ${grants(w) - grantsBefore[i]!}`, heartbeat(w)]),
    ...etcdPids.map((pid, i) => [`etcd m${i + 1} (pid ${pid})`, '', pct(used[watcherCount + i]!.cpu), mb(used[watcherCount + i]!.rss), mb(used[watcherCount + i]!.maxRss), '', '']),
  ])
  const rate = (method: string) => ((metricsAfter.rpcs.get(method) ?? 0) - (metricsBefore.rpcs.get(method) ?? 0)) / window
  const methods = [...metricsAfter.rpcs.keys()].filter((m) => rate(m) > 0).sort((a, b) => rate(b) - rate(a))
  console.log(`  etcd, all members together: ${methods.map((m) => `${m} ${rate(m).toFixed(1)}/s`).join(', ') || 'no RPC'} (of which the bench's count of the leaders, 1 Range/s)`)
  console.log(`  etcd sent to clients ${((metricsAfter.sentBytes - metricsBefore.sentBytes) / window / 1024).toFixed(0)} KB/s; database ${(metricsAfter.dbBytes / 1024 / 1024).toFixed(1)} MB`)

  const leader = leadersAfter.get(real)
  await waitUntil(`the leader of ${real} to monitor it`, 60_000, watchers, () => watchers.some((w) => w.id === leader && (w.read(), w.monitoring(real))))
  await sleep(2000)
  const detection = await killAndTime(state, watchers)
  await sleep(3000)
  const acted = watchers.map((w) => w.said('leader acted', real).length)
  const done = watchers.map((w) => w.said('failover done', real).length)
  console.log(`\n  db1 (master of "${real}", led by ${leader}) SIGKILLed with ${clusters} clusters loaded: ${detection.by} said dead after ${s(detection.dead)}, db2 writable after ${s(detection.writable)}, ${detection.status} after ${s(detection.done)}`)
  console.log(`  "failover done" per watcher ${done.join(' / ')}, failover plans per watcher ${watchers.map(failoverPlans).join(' / ')}, "leader acted" per watcher ${acted.join(' / ')}`)
  // A slow failover is shown step by step (its leader's log, from the kill), to see where the time went.
  if (!(detection.done < 5000)) {
    for (const w of watchers)
      for (const l of w.lines.filter((l) => l.cluster === real && Date.parse(l.at) >= detection.killedAt).slice(0, 60)) console.log(`    ${w.id} +${s(Date.parse(l.at) - detection.killedAt)} ${l.event}: ${l.message.slice(0, 140)}`)
  }
  await Promise.all(watchers.map((w) => w.stop()))
  await sandboxDown(state.dir)
  return {
    label: `${watcherCount} watchers on etcd, ${clusters} clusters`,
    monitoredIn: settledIn.split(':')[0]!,
    leads: balance,
    unled,
    leasesLost: watchers.map((w) => grants(w) - 1),
    usage: used.slice(0, watcherCount),
    etcd: used.slice(watcherCount),
    detection,
  }
}

async function withoutEtcd(count: number): Promise<Figures> {
  const state = await sandbox('plain')
  const dir = clusterFiles(state, await fillers(state), 'plain', count)
  const w = new Watcher('plain', join(work, 'plans-plain'), ['--config-dir', dir])
  const started = Date.now()
  const names = [real, ...Array.from({length: count - 1}, (_, i) => `c${i + 1}`)]
  await waitUntil(`${count} clusters healthy`, 300_000, [w], () => (w.read(), names.every((name) => w.monitoring(name))), 1000)
  const monitoredIn = `every cluster monitored after ${s(Date.now() - started)}`
  console.log(`\n1 watcher without etcd, ${count} cluster files: ${monitoredIn}`)
  const [used] = await usage([w.pid], () => w.alive())
  console.log(`  over ${seconds} s: CPU ${pct(used!.cpu)} of one core, RSS ${mb(used!.rss)} (max ${mb(used!.maxRss)})`)
  await sleep(2000)
  const detection = await killAndTime(state, [w])
  console.log(`  db1 SIGKILLed: dead after ${s(detection.dead)}, db2 writable after ${s(detection.writable)}, ${detection.status} after ${s(detection.done)}`)
  await w.stop()
  await sandboxDown(state.dir)
  return {label: `1 watcher, no etcd, ${count} clusters`, monitoredIn, leads: [count], unled: null, leasesLost: null, usage: [used!], etcd: [], detection}
}

try {
  const figures: Figures[] = []
  if (part !== 'plain') figures.push(await withEtcd())
  if (part !== 'etcd' && plainClusters > 0) figures.push(await withoutEtcd(plainClusters))
  console.log('\nSummary (one run; CPU is per process, % of one core, on a machine shared with other work):')
  const per = (f: Figures, pick: (u: Usage) => string) => f.usage.map(pick).join(' / ')
  table([
    ['', ...figures.map((f) => f.label)],
    ['after the start', ...figures.map((f) => f.monitoredIn)],
    ['clusters led per watcher', ...figures.map((f) => f.leads.join(' / '))],
    ['clusters without a leader (most at once, at the end)', ...figures.map((f) => (f.unled ? `${f.unled.max}, ${f.unled.end}` : '-'))],
    ['leases lost per watcher', ...figures.map((f) => f.leasesLost?.join(' / ') ?? '-')],
    ['CPU per watcher', ...figures.map((f) => per(f, (u) => pct(u.cpu)))],
    ['RSS per watcher', ...figures.map((f) => per(f, (u) => mb(u.rss)))],
    ['etcd CPU per member', ...figures.map((f) => f.etcd.map((u) => pct(u.cpu)).join(' / ') || '-')],
    ['kill -> dead', ...figures.map((f) => s(f.detection.dead))],
    ['kill -> db2 writable', ...figures.map((f) => s(f.detection.writable))],
    ['kill -> failover done', ...figures.map((f) => `${s(f.detection.done)}${f.detection.status === 'failover done' ? '' : ` (${f.detection.status})`}`)],
  ])
  const onEtcd = figures.find((f) => f.unled)
  if (onEtcd) {
    const met = (ok: boolean) => (ok ? 'met' : 'NOT MET')
    const lost = onEtcd.leasesLost!.reduce((a, b) => a + b, 0)
    console.log(`\nTargets: every cluster led: ${met(onEtcd.unled!.max === 0)}; no lease lost: ${met(lost === 0)} (${lost}); each watcher at most ${cpuTarget} % of a core: ${met(onEtcd.usage.every((u) => u.cpu <= cpuTarget))}; the real cluster failed over: ${met(onEtcd.detection.status === 'failover done')}`)
  }
} finally {
  await cleanUp()
}
