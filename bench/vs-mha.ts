// MHA 0.58 (Debian's packages, unpacked and patched in a scratch directory by bench/mha-reference/install.sh)
// and mha on the same scenarios, one after the other in one run, each run on a fresh 3-host sandbox under
// a 50 transactions/s write load. Per scenario: dead / writable / done medians, the longest gap between a
// client's acknowledged writes, lost and twice-applied writes, and the ratios MHA/mha.
// The proxy-* scenarios put Debian's haproxy in front (127.0.0.234) and connect the clients only through it: mha
// moves the writer with its routing steps, MHA with master_ip_failover / master_ip_online_change scripts
// (bench/mha-reference/haproxy_writer.pl) making the same runtime-API calls.
// Run: npm run bench:vs-mha [-- --runs 3] [--only crash|lagging-candidate|both-lagging|gtid|blackhole|switchover|proxy-crash|proxy-switchover]
//      [--tools mha,stock,patched]     (uses 127.0.0.231-234; needs root: apt-get, nftables)
// mha never calls MHA; only this bench does.
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {WriteLoad} from '../src/sandbox/load.js'
import {sandboxDown, sandboxUp, secretsOf, type SandboxState} from '../src/sandbox/sandbox.js'
import {fastWriter, longestGap, lostAndDuplicated, median, mhaCli, numberFlag, root, s, sql, startWatch, until, watchWritable} from './common.js'

const runs = numberFlag('runs', 3)
const flag = (name: string) => (process.argv.includes(`--${name}`) ? process.argv[process.argv.indexOf(`--${name}`) + 1] : undefined)
const only = flag('only')
const referenceDir = process.env.MHA_REFERENCE_DIR ?? '/var/tmp/mha-0.58-reference'
const firstOctet = 231
const proxyAddress = '127.0.0.234'
const proxyScript = (backend: string) => `${join(root, 'bench/mha-reference/haproxy_writer.pl')} --api=${proxyAddress}:9999 --backend=${backend}`
const pingIntervalS = 1

type Tool = 'mha' | 'MHA 0.58' | 'MHA 0.58 patched'
const toolsByFlag: Record<string, Tool> = {mha: 'mha', stock: 'MHA 0.58', patched: 'MHA 0.58 patched'}
const tools: Tool[] = (flag('tools') ?? 'stock,patched,mha').split(',').map((t) => {
  const tool = toolsByFlag[t.trim()]
  if (!tool) throw new Error(`--tools: unknown tool "${t}"; use mha, stock, patched (comma-separated)`)
  return tool
})

// Every process and firewall table this bench starts is stopped here, also on errors and Ctrl-C.
const cleanups = new Set<() => Promise<void> | void>()
async function runCleanups(): Promise<void> {
  for (const cleanup of [...cleanups].reverse()) {
    cleanups.delete(cleanup)
    try {
      await cleanup()
    } catch (error) {
      console.error(`cleanup failed: ${String(error)}`)
    }
  }
}
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    console.error(`\n${signal}: stopping what the bench started`)
    void runCleanups().finally(() => process.exit(130))
  })

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** The first and last lines of a command's output, for a one-line failure report. */
const excerpt = (output: string) => {
  const lines = output.trim().split('\n')
  return (lines.length > 6 ? [...lines.slice(0, 2), '...', ...lines.slice(-4)] : lines).join(' | ')
}

interface Scenario {
  key: string
  name: string
  gtid: boolean
  switchover?: true
  /** Clients connect only through a haproxy in front of the sandbox; each tool moves its writer. */
  proxy?: true
  /** Under load, with the tool watching, just before the fault. */
  beforeFault?: (state: SandboxState) => Promise<void>
  /** The fault itself (default: SIGKILL of the master's mariadbd); returns how to undo it. */
  fault?: (state: SandboxState) => () => void
  note?: string
}

const kill = (state: SandboxState) => {
  process.kill(state.hosts[0]!.mariadbdPid!, 'SIGKILL')
  return () => undefined
}

const scenarios: Scenario[] = [
  {key: 'crash', name: 'crash under load (SIGKILL of the master mariadbd, its sshd up)', gtid: false},
  {
    key: 'lagging-candidate',
    name: "lagging candidate: db2's IO thread stopped 1.5 s before the kill (relay diff from db3)",
    gtid: false,
    beforeFault: async (state) => {
      await sql(state, 'db2', ['STOP SLAVE IO_THREAD'])
      await sleep(1500)
    },
  },
  {
    key: 'both-lagging',
    name: "both replicas lagging: IO threads stopped 1 s before the kill (tail only in the dead master's binlog, sshd up)",
    gtid: false,
    beforeFault: async (state) => {
      await Promise.all(['db2', 'db3'].map((h) => sql(state, h, ['STOP SLAVE IO_THREAD'])))
      await sleep(1000)
    },
  },
  {
    key: 'gtid',
    name: 'MariaDB GTID replicas, crash under load',
    gtid: true,
    note: 'MHA 0.58 does not know MariaDB GTID: it fails over by file/position (see "replicas left using GTID").',
  },
  {
    key: 'blackhole',
    name: "host blackholed: every packet to and from the master's address dropped (nftables)",
    gtid: false,
    fault: (state) => {
      const table = `mha_vs_blackhole_${process.pid}`
      const master = state.hosts[0]!.ip
      nft(['add', 'table', 'inet', table])
      const remove = () => nft(['delete', 'table', 'inet', table])
      cleanups.add(remove)
      nft(['add', 'chain', 'inet', table, 'out', '{ type filter hook output priority 0 ; }'])
      nft(['add', 'rule', 'inet', table, 'out', 'ip', 'daddr', master, 'drop'])
      nft(['add', 'rule', 'inet', table, 'out', 'ip', 'saddr', master, 'drop'])
      return () => {
        cleanups.delete(remove)
        remove()
      }
    },
    note: "Writes acknowledged by the cut-off master but not yet received by a replica exist nowhere else: losing those is not a tool's fault.",
  },
  {key: 'switchover', name: 'online switchover to db2 under load (timed from the command)', gtid: false, switchover: true},
  {
    key: 'proxy-crash',
    name: 'crash under load, the client connected only through haproxy (gap: as that client saw it)',
    gtid: false,
    proxy: true,
    note: "mha: its plan's route_drain / route_writer steps. MHA: master_ip_failover_script (stop: the dead master in maint, its sessions shut; start: the others in maint, the new master ready).",
  },
  {
    key: 'proxy-switchover',
    name: 'online switchover to db2, the client connected only through haproxy (gap: as that client saw it)',
    gtid: false,
    switchover: true,
    proxy: true,
    note: 'mha: route_drain before its write block, route_writer after the promotion. MHA: master_ip_online_change_script (stop before its write block, start after the promotion), the same calls.',
  },
]

function nft(args: string[]): void {
  const result = spawnSync('nft', args, {encoding: 'utf8'})
  if (result.status !== 0) throw new Error(`nft ${args.join(' ')}: ${(result.stderr || String(result.error)).trim()}`)
}

/** Lines of a file as they are written, each with the time we first saw it (polled every 10 ms). */
class LogTail {
  readonly lines: {seenAt: number; text: string}[] = []
  #offset = 0
  #partial = ''
  readonly #timer: NodeJS.Timeout
  readonly #file: string

  constructor(file: string) {
    this.#file = file
    this.#timer = setInterval(() => this.#read(), 10)
  }

  #read(): void {
    let fd: number
    try {
      fd = openSync(this.#file, 'r')
    } catch {
      return
    }
    try {
      const buffer = Buffer.alloc(65536)
      for (let n = readSync(fd, buffer, 0, buffer.length, this.#offset); n > 0; n = readSync(fd, buffer, 0, buffer.length, this.#offset)) {
        this.#offset += n
        this.#partial += buffer.subarray(0, n).toString()
      }
    } finally {
      closeSync(fd)
    }
    const now = performance.now()
    const parts = this.#partial.split('\n')
    this.#partial = parts.pop()!
    for (const text of parts) this.lines.push({seenAt: now, text})
  }

  find(pattern: RegExp): {seenAt: number; text: string} | undefined {
    this.#read()
    return this.lines.find((l) => pattern.test(l.text))
  }

  stop(): void {
    clearInterval(this.#timer)
  }
}

/** Secrets out of anything printed: MHA echoes its command lines, passwords included. */
function redact(state: SandboxState, text: string): string {
  const secrets = secretsOf(state.dir)
  let out = text
  for (const secret of [secrets.admin, secrets.repl, secrets.app]) out = out.split(secret.reveal()).join('***')
  return out
}

const variantDir = (tool: Tool) => join(referenceDir, tool === 'MHA 0.58 patched' ? 'patched' : 'stock')

function installReference(): void {
  const result = spawnSync('sh', [join(root, 'bench/mha-reference/install.sh'), referenceDir], {stdio: 'inherit'})
  if (result.status !== 0) throw new Error(`bench/mha-reference/install.sh ${referenceDir} failed (exit ${result.status})`)
}

/**
 * MHA's side of a sandbox: its SSH sessions get the scratch node tools through a forced command on the
 * sandbox key (this bench's own sandbox only), and app1.cnf with the sandbox secrets (mode 0600, removed
 * with the work dir).
 */
function prepareMha(state: SandboxState, work: string, proxy: boolean): string {
  const keys = join(state.dir, 'authorized_keys')
  writeFileSync(keys, `command="${join(referenceDir, 'remote-env')}",no-pty,no-agent-forwarding,no-X11-forwarding ${readFileSync(keys, 'utf8')}`)
  const secrets = secretsOf(state.dir)
  const conf = join(work, 'app1.cnf')
  const lines = [
    '[server default]',
    `manager_workdir=${join(work, 'mha-manager')}`,
    `manager_log=${join(work, 'mha-manager', 'manager.log')}`,
    `remote_workdir=${join(work, 'mha-remote')}`,
    'user=mha',
    `password=${secrets.admin.reveal()}`,
    'repl_user=repl',
    `repl_password=${secrets.repl.reveal()}`,
    'ssh_user=root',
    `ssh_options=-i ${join(state.dir, 'id_ed25519')} -o UserKnownHostsFile=${join(state.dir, 'known_hosts')} -o IdentitiesOnly=yes`,
    `ping_interval=${pingIntervalS}`,
    'ping_type=SELECT',
    ...(proxy && state.haproxy ? [`master_ip_failover_script=${proxyScript(state.haproxy.backend)}`, `master_ip_online_change_script=${proxyScript(state.haproxy.backend)}`] : []),
    ...state.hosts.flatMap((h) => [`[server${h.index}]`, `hostname=${h.ip}`, 'port=3306', `master_binlog_dir=${h.datadir}`, ...(h.index === 2 ? ['candidate_master=1'] : [])]),
  ]
  mkdirSync(join(work, 'mha-manager'), {recursive: true})
  writeFileSync(conf, lines.join('\n') + '\n', {mode: 0o600})
  return conf
}

/** One of MHA's programs from the scratch directory, output to a file; stopped by pid. */
function startMha(tool: Tool, program: string, args: string[], output: string): {child: ChildProcess; exited: Promise<{code: number | null; at: number}>; stop: () => Promise<void>} {
  const dir = variantDir(tool)
  const out = openSync(output, 'a')
  const child = spawn(join(dir, 'usr/bin', program), args, {
    stdio: ['ignore', out, out],
    env: {...process.env, PATH: `${join(referenceDir, 'wrap')}:${join(dir, 'usr/bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`, PERL5LIB: join(dir, 'usr/share/perl5')},
  })
  closeSync(out)
  const exited = new Promise<{code: number | null; at: number}>((resolve) => child.once('exit', (code) => resolve({code, at: performance.now()})))
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const gone = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)])
    if (!gone) child.kill('SIGKILL')
  }
  return {child, exited, stop}
}

interface Run {
  dead: number
  writable: number
  done: number
  gap: number
  lost: number
  duplicated: number
  acked: number
  /** For GTID: how many surviving replicas still replicate with MASTER_USE_GTID. */
  gtidReplicas?: number
}

async function survivingMaster(state: SandboxState): Promise<string> {
  for (const host of state.hosts.slice(1)) {
    const [row] = await sql(state, host.name, ['SELECT @@global.read_only+0 AS ro'])
    if (Number(row?.ro) === 0) return host.name
  }
  throw new Error('no survivor is writable')
}

async function runOnce(scenario: Scenario, tool: Tool, run: number): Promise<Run> {
  const work = mkdtempSync(join(tmpdir(), 'mha-vs-'))
  const removeWork = () => rmSync(work, {recursive: true, force: true})
  if (!process.env.KEEP) cleanups.add(removeWork)
  const state = await sandboxUp({cluster: 'vsmha', replicas: 2, gtid: scenario.gtid, semisync: false, dir: join(work, 'data'), configDir: join(work, 'clusters'), firstOctet, ...(scenario.proxy ? {haproxyAddress: proxyAddress} : {})})
  const down = () => sandboxDown(state.dir).then(() => undefined)
  cleanups.add(down)
  const stopAll: (() => Promise<void> | void)[] = []
  try {
    await WriteLoad.prepare(state, 'db1')
    if (scenario.switchover) await sql(state, 'db1', ['CREATE TABLE mhatest.w (id INT PRIMARY KEY)'])
    const isMha = tool !== 'mha'
    const conf = isMha ? prepareMha(state, work, scenario.proxy === true) : ''
    const managerLog = join(work, 'mha-manager', 'manager.log')

    // The tool watching (crash scenarios); masterha_master_switch wants no manager running.
    let manager: ReturnType<typeof startMha> | undefined
    let watch: ReturnType<typeof startWatch> | undefined
    let tail: LogTail | undefined
    if (!scenario.switchover && isMha) {
      tail = new LogTail(managerLog)
      stopAll.push(() => tail!.stop())
      manager = startMha(tool, 'masterha_manager', [`--conf=${conf}`, '--ignore_last_failover'], join(work, 'mha-manager', 'stdout.log'))
      cleanups.add(manager.stop)
      stopAll.push(async () => {
        cleanups.delete(manager!.stop)
        await manager!.stop()
      })
      await Promise.race([
        until('MHA to start monitoring', 60_000, () => tail!.find(/waiting until MySQL doesn't respond/) !== undefined),
        manager.exited.then(({code}) => {
          throw new Error(`masterha_manager exited ${code} before monitoring: ${tail!.lines.slice(-8).map((l) => l.text).join(' | ')}`)
        }),
      ])
    } else if (!scenario.switchover) {
      watch = startWatch(join(work, 'clusters'), join(work, 'plans'))
      cleanups.add(watch.stop)
      stopAll.push(async () => {
        cleanups.delete(watch!.stop)
        await watch!.stop()
      })
      await until('mha watch to see db1 healthy', 30_000, () => watch!.lines.some((l) => l.event === 'healthy')).catch((error: Error) => {
        throw new Error(`${error.message}; its last lines: ${watch!.lines.slice(-3).map((l) => `${l.event}: ${l.message}`).join(' | ') || 'none'}; stderr: ${excerpt(watch!.stderr()) || 'none'}`)
      })
    }

    const through = scenario.proxy && state.haproxy ? {host: state.haproxy.address, port: state.haproxy.frontendPort} : undefined
    const load = new WriteLoad(state, 20, through ? {through} : {})
    load.start()
    stopAll.push(() => load.stop())
    const writerStop = new AbortController()
    const fast = scenario.switchover ? fastWriter(state, writerStop.signal, 1, through) : undefined
    stopAll.push(() => writerStop.abort())
    await sleep(2000)
    await scenario.beforeFault?.(state)

    const stopPolling = new AbortController()
    stopAll.push(() => stopPolling.abort())
    const t0 = performance.now()
    let dead = NaN
    let done: number
    const writable = watchWritable(state, t0, stopPolling.signal)
    if (scenario.switchover) {
      if (isMha) {
        const switched = startMha(tool, 'masterha_master_switch', [`--conf=${conf}`, '--master_state=alive', `--new_master_host=${state.hosts[1]!.ip}`, '--new_master_port=3306', '--orig_master_is_new_slave', '--interactive=0'], join(work, 'switch.log'))
        cleanups.add(switched.stop)
        const {code, at} = await Promise.race([switched.exited, sleep(120_000).then(() => ({code: -1, at: NaN}))])
        cleanups.delete(switched.stop)
        await switched.stop()
        if (code !== 0) throw new Error(`masterha_master_switch exited ${code}: ${excerpt(readFileSync(join(work, 'switch.log'), 'utf8'))}`)
        done = at - t0
      } else {
        // One process that shows the plan, archives it and applies it, as masterha_master_switch --interactive=0 does.
        const switched = await mhaCli(['switchover', '--config', state.configFile, '--plans-dir', join(work, 'plans'), '--to', 'db2', '--auto-approve'])
        if (switched.code !== 0) throw new Error(`mha switchover exited ${switched.code}: ${excerpt(switched.stdout)}`)
        done = performance.now() - t0
      }
    } else {
      const undo = (scenario.fault ?? kill)(state)
      stopAll.push(undo)
      if (manager && tail) {
        const exited = await Promise.race([manager.exited, sleep(120_000).then(() => ({code: -1, at: NaN}))])
        const last = tail.lines.slice(-6).map((l) => l.text).join(' | ')
        dead = (tail.find(/\[info\] Master is down!/)?.seenAt ?? NaN) - t0
        const completed = tail.find(/Master failover to .* completed successfully/)
        if (exited.code !== 0 || !completed) throw new Error(`masterha_manager exited ${exited.code} without completing: ${last}`)
        done = completed.seenAt - t0
      } else {
        await until('mha watch to finish the failover', 120_000, () => watch!.lines.some((l) => l.event.startsWith('failover ')))
        const finished = watch!.lines.find((l) => l.event.startsWith('failover '))!
        if (finished.event === 'failover failed') throw new Error(`mha watch: ${finished.message}`)
        dead = (watch!.lines.find((l) => l.event === 'dead')?.seenAt ?? NaN) - t0
        done = finished.seenAt - t0
      }
    }
    const writableMs = await Promise.race([writable, sleep(2000).then(() => null)])
    stopPolling.abort()
    await sleep(1000)
    writerStop.abort()
    await load.stop()
    const fastAcks = (await fast) ?? []
    const newMaster = await survivingMaster(state)
    if (through) {
      const routedTo = await load.currentMaster()
      if (routedTo !== newMaster) throw new Error(`a connection through the proxy reaches ${routedTo ?? 'no server'}, not the new master ${newMaster}`)
    }
    const {lost, duplicated} = await lostAndDuplicated(state, load, newMaster)
    // The gap a client sees from the fault (or the command) on, the last acknowledgement before it included: a stall
    // of the client before it (this machine busy elsewhere) is not the tool's. As bench:switchover counts.
    const acks = (scenario.switchover ? fastAcks : load.ackedAt).filter((at) => at > t0 - 200)
    const gap = longestGap(acks)
    // Where it began, from the fault or command: in the write block, or a stall of the client at another moment.
    const gapAt = (acks.find((at, i) => i + 1 < acks.length && acks[i + 1]! - at === gap) ?? NaN) - t0
    const result: Run = {dead, writable: writableMs ?? NaN, done, gap, lost, duplicated, acked: load.acked.length}
    if (scenario.gtid) {
      const replicas = state.hosts.slice(1).filter((h) => h.name !== newMaster)
      result.gtidReplicas = 0
      for (const h of replicas) {
        const [status] = await sql(state, h.name, ['SHOW SLAVE STATUS'])
        if (status && String(status.Using_Gtid) !== 'No') result.gtidReplicas++
      }
    }
    console.log(
      `  ${tool}, run ${run}: dead ${Number.isNaN(dead) ? '-' : s(dead)}, writable ${s(result.writable)}, done ${s(done)}, longest gap ${gapCell(result.gap)} (from ${gapAt >= 0 ? '+' : ''}${s(gapAt)}), new master ${newMaster}, lost ${lost}/${result.acked}, twice ${duplicated}` +
        (result.gtidReplicas === undefined ? '' : `, replicas left using GTID ${result.gtidReplicas}/1`),
    )
    return result
  } catch (error) {
    throw new Error(redact(state, error instanceof Error ? error.message : String(error)))
  } finally {
    for (const stop of stopAll.reverse()) {
      try {
        await stop()
      } catch {
        // Best effort: the sandbox goes next anyway.
      }
    }
    cleanups.delete(down)
    await down()
    if (!process.env.KEEP) {
      cleanups.delete(removeWork)
      removeWork()
    }
  }
}

const med = (runs: Run[], pick: (r: Run) => number) => {
  const values = runs.map(pick).filter((v) => !Number.isNaN(v))
  return values.length ? median(values) : NaN
}
const cell = (ms: number) => (Number.isNaN(ms) ? '-' : s(ms))
/** A gap to the millisecond: a switchover's is a few hundredths of a second. */
const gapCell = (ms: number) => (Number.isNaN(ms) ? '-' : `${(ms / 1000).toFixed(3)} s`)
const ratio = (a: number, b: number) => (Number.isNaN(a) || Number.isNaN(b) || b === 0 ? '-' : `${(a / b).toFixed(2)}x`)

if (tools.some((t) => t !== 'mha')) installReference()
const report: string[] = []
try {
  for (const scenario of scenarios.filter((x) => !only || x.key === only)) {
    console.log(`\n${scenario.name}`)
    const results = new Map<Tool, {ok: Run[]; failed: number}>()
    for (let run = 1; run <= runs; run++)
      for (const tool of tools) {
        const entry = results.get(tool) ?? {ok: [], failed: 0}
        results.set(tool, entry)
        try {
          entry.ok.push(await runOnce(scenario, tool, run))
        } catch (error) {
          entry.failed++
          console.log(`  ${tool}, run ${run}: FAILED: ${error instanceof Error ? error.message : String(error)}`)
        }
      }
    const lines = [`\n${scenario.name}${scenario.note ? `\n${scenario.note}` : ''}`, '| tool | dead | writable | done | longest gap between acked writes | lost | twice | failed runs |', '|---|---|---|---|---|---|---|---|']
    for (const [tool, {ok, failed}] of results) {
      const gtid = ok.some((r) => r.gtidReplicas !== undefined) ? ` (replicas left using GTID: ${ok.map((r) => r.gtidReplicas).join(', ')})` : ''
      lines.push(
        `| ${tool} | ${cell(med(ok, (r) => r.dead))} | ${cell(med(ok, (r) => r.writable))} | ${cell(med(ok, (r) => r.done))} | ${gapCell(med(ok, (r) => r.gap))} | ${ok.map((r) => `${r.lost}/${r.acked}`).join(', ') || '-'} | ${ok.map((r) => r.duplicated).join(', ') || '-'} | ${failed}/${runs}${gtid} |`,
      )
    }
    const ours = results.get('mha')?.ok ?? []
    for (const [tool, {ok}] of results) {
      if (tool === 'mha' || ours.length === 0) continue
      const r = (pick: (x: Run) => number) => ratio(med(ok, pick), med(ours, pick))
      lines.push(`${tool} / mha: dead ${r((x) => x.dead)}, writable ${r((x) => x.writable)}, done ${r((x) => x.done)}, longest gap ${r((x) => x.gap)}`)
    }
    if (ours.some((x) => x.lost > 0 || x.duplicated > 0) && scenario.key !== 'blackhole') lines.push('WARNING: mha lost or twice-applied acknowledged writes whose data existed on a reachable host')
    for (const line of lines) console.log(line)
    report.push(...lines)
  }
} finally {
  await runCleanups()
}
console.log(`\n=== mha and MHA 0.58 side by side: medians of ${runs} runs per tool, seconds from the fault (switchover: from the command) ===`)
console.log(`Both tools ping every ${pingIntervalS} s (MHA ping_interval=${pingIntervalS}, ping_type=SELECT; the sandbox cluster file's monitor.ping_interval: ${pingIntervalS}). "MHA 0.58" is Debian's 0.58-1.1 with only the MariaDB compatibility patches; "MHA 0.58 patched" also has Parallel::ForkManager's 1 s child polling removed (a local patch, not upstream).`)
console.log('Longest gap: between two acknowledgements of the 50 transactions/s client (switchover: of a flat-out single-row writer), from 0.2 s before the fault or command. Lost/twice: acknowledged writes missing on, or applied twice to, the new master, per run.')
for (const line of report) console.log(line)
// A client library may still hold an idle socket; everything the bench started is stopped by now.
process.exit(0)
