// What the benches share: running the built CLI, watching for a writable survivor, counting lost and
// twice-applied writes, a flat-out writer, medians.
import {execFile, spawn} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import mysql from 'mysql2/promise'
import type {WriteLoad} from '../src/sandbox/load.js'
import {secretsOf, type SandboxState} from '../src/sandbox/sandbox.js'

/** The project root: bench/ when run from source, dist/bench/ when built. */
export const root = [join(import.meta.dirname, '..'), join(import.meta.dirname, '../..')].find((d) => existsSync(join(d, 'bin/run.js')))!

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`

/** A numeric flag (--name N), or the fallback. */
export const numberFlag = (name: string, fallback: number): number => Number(process.argv[process.argv.indexOf(`--${name}`) + 1] || fallback) || fallback

/** Run the built CLI as a user would; exit code, wall time and output (stderr apart too). */
export function mhaCli(args: string[], env: Record<string, string> = {}): Promise<{code: number; ms: number; stdout: string; stderr: string}> {
  const started = performance.now()
  return new Promise((resolve) => {
    execFile(process.execPath, [join(root, 'bin/run.js'), ...args], {cwd: root, env: {...process.env, NODE_ENV: 'production', ...env}}, (error, stdout, stderr) => {
      resolve({code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, ms: performance.now() - started, stdout: stdout + stderr, stderr})
    })
  })
}

const adminConnection = (state: SandboxState, ip: string, connectTimeout?: number) =>
  mysql.createConnection({host: ip, port: 3306, user: 'mha', password: secretsOf(state.dir).admin.reveal(), ...(connectTimeout ? {connectTimeout} : {})})

/** Milliseconds from `since` until some survivor (not host 1) answers read_only=0, polled every 5 ms (reconnecting on errors). */
export async function watchWritable(state: SandboxState, since: number, stop: AbortSignal): Promise<number | null> {
  const hosts = state.hosts.slice(1)
  const conns = new Map<string, mysql.Connection>()
  try {
    while (!stop.aborted) {
      for (const host of hosts) {
        try {
          let conn = conns.get(host.ip)
          if (!conn) {
            conn = await adminConnection(state, host.ip, 1000)
            conn.on('error', () => undefined)
            conns.set(host.ip, conn)
          }
          const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT @@global.read_only+0 AS ro')
          if (Number(rows[0]?.ro) === 0) return performance.now() - since
        } catch {
          conns.get(host.ip)?.destroy()
          conns.delete(host.ip)
        }
      }
      await new Promise((r) => setTimeout(r, 5))
    }
    return null
  } finally {
    for (const conn of conns.values()) conn.destroy()
  }
}

/** Acknowledged ids missing on the new master, and ids present more than once (in the table without a unique key). */
export async function lostAndDuplicated(state: SandboxState, load: WriteLoad, server: string): Promise<{lost: number; duplicated: number}> {
  const host = state.hosts.find((h) => h.name === server)!
  const conn = await adminConnection(state, host.ip)
  try {
    const [twice] = await conn.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM (SELECT id FROM mhatest.acked_log GROUP BY id HAVING COUNT(*) > 1) t')
    return {lost: (await load.missingOn(server)).length, duplicated: Number(twice[0]?.n)}
  } finally {
    await conn.end()
  }
}

/** One run's count of acknowledged writes lost and applied twice, under the name the bench prints it with. */
export interface WriteCount {
  label: string
  lost: number
  duplicated: number
  acked: number
}

/**
 * The runs that lost or duplicated an acknowledged write, one line each. A bench prints its figures whatever
 * they are, and exits non-zero when this is not empty: a failover that loses or repeats a write is a failure,
 * not a figure.
 */
export function writeProblems(runs: WriteCount[]): string[] {
  return runs.filter((r) => r.lost > 0 || r.duplicated > 0).map((r) => `${r.label}: ${r.lost} of ${r.acked} acknowledged writes lost, ${r.duplicated} applied twice`)
}

/** After the figures are printed: names the runs that lost or duplicated a write and makes the process exit 1. */
export function failOnWriteProblems(runs: WriteCount[]): void {
  const problems = writeProblems(runs)
  if (problems.length === 0) return
  console.error(`\nFAILED: ${problems.length} run(s) lost or duplicated acknowledged writes:\n  ${problems.join('\n  ')}`)
  process.exitCode = 1
}

/** Run statements as the admin user on one sandbox host. */
export async function sql(state: SandboxState, server: string, statements: string[]): Promise<mysql.RowDataPacket[]> {
  const host = state.hosts.find((h) => h.name === server)!
  const conn = await adminConnection(state, host.ip)
  try {
    let last: mysql.RowDataPacket[] = []
    for (const statement of statements) [last] = await conn.query<mysql.RowDataPacket[]>(statement)
    return last
  } finally {
    await conn.end()
  }
}

export interface WatchLine {
  at: string
  cluster: string
  event: string
  message: string
  /** performance.now() when the line reached us. */
  seenAt: number
}

/**
 * `mha watch` spawned from the built CLI with JSON logs; its lines as they arrive, and a stop by pid. `nodeFlags`: for
 * a profile of the watch process itself (--cpu-prof, --heapsnapshot-signal).
 */
export function startWatch(configDir: string, plansDir: string, nodeFlags: string[] = []): {lines: WatchLine[]; pid: number; stderr: () => string; stop: () => Promise<void>} {
  // WATCH_NODE_FLAGS: more flags for the watch process alone (--heap-prof, for one).
  const extra = process.env.WATCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? []
  const child = spawn(process.execPath, [...nodeFlags, ...extra, join(root, 'bin/run.js'), 'watch', '--config-dir', configDir, '--plans-dir', plansDir, '--log-format', 'json'], {env: {...process.env, NODE_ENV: 'production'}})
  const lines: WatchLine[] = []
  let buffer = ''
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString()
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      lines.push({...(JSON.parse(buffer.slice(0, i)) as Omit<WatchLine, 'seenAt'>), seenAt: performance.now()})
      buffer = buffer.slice(i + 1)
    }
  })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)))
  return {lines, pid: child.pid!, stderr: () => `${child.exitCode !== null ? `exited ${child.exitCode}: ` : ''}${stderr.trim()}`, stop: () => new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : (child.once('exit', () => resolve()), child.kill('SIGTERM'))))}
}

export async function until(what: string, timeoutMs: number, probe: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

/**
 * A client writing as fast as it can (one insert at a time into mhatest.w), recording when each write was acknowledged.
 * `through`: connected only through a proxy, as an application is (a write refused there is simply not acknowledged).
 */
export async function fastWriter(state: SandboxState, stop: AbortSignal, firstId: number, through?: {host: string; port: number}): Promise<number[]> {
  const acks: number[] = []
  let conn: mysql.Connection | undefined
  let id = firstId
  while (!stop.aborted) {
    try {
      if (!conn && through) {
        conn = await mysql.createConnection({host: through.host, port: through.port, user: 'app', password: secretsOf(state.dir).app.reveal(), database: 'mhatest', connectTimeout: 500})
        conn.on('error', () => undefined)
      }
      if (!conn) {
        for (const h of state.hosts) {
          const c = await mysql.createConnection({host: h.ip, user: 'app', password: secretsOf(state.dir).app.reveal(), database: 'mhatest', connectTimeout: 500})
          c.on('error', () => undefined)
          const [r] = await c.query<mysql.RowDataPacket[]>('SELECT @@global.read_only+0 AS ro')
          if (Number(r[0]?.ro) === 0) {
            conn = c
            break
          }
          await c.end()
        }
        if (!conn) continue
      }
      await conn.query({sql: 'INSERT INTO w (id) VALUES (?)', values: [id++], timeout: 2000})
      acks.push(performance.now())
    } catch {
      conn?.destroy()
      conn = undefined
      // A proxy with no server to send to closes at once: do not spin on it.
      if (through) await new Promise((r) => setTimeout(r, 1))
    }
  }
  conn?.destroy()
  return acks
}

// The sandbox load reports the same measure (mha sandbox load --through-proxy).
export {longestGap} from '../src/sandbox/load.js'

/** CPU time used so far (user + system, and system alone: from /proc/<pid>/stat at 100 ticks a second) and resident memory now. */
export function cpuAndMemory(pid: number): {cpuMs: number; systemMs: number; rssMb: number} {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  const ticks = Number(stat[11]) + Number(stat[12])
  const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024
  return {cpuMs: (ticks * 1000) / 100, systemMs: (Number(stat[12]) * 1000) / 100, rssMb: rss}
}
