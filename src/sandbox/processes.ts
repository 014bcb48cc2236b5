import {spawn, spawnSync} from 'node:child_process'
import {closeSync, openSync, readdirSync, readFileSync} from 'node:fs'
import {connect} from 'node:net'
import {procStat, processStartTime} from '../util/proc.js'

/** Start a long-running program detached from us, its output to a log file; returns its pid. */
export function startDetached(program: string, args: string[], logFile: string): number {
  const log = openSync(logFile, 'a')
  const child = spawn(program, args, {detached: true, stdio: ['ignore', log, log]})
  // The child has its own copy; ours would leak one descriptor per start (a bench starts hundreds).
  closeSync(log)
  child.unref()
  if (child.pid === undefined) throw new Error(`could not start ${program}`)
  return child.pid
}

/** True when pid is alive and its command line contains marker (so a recycled pid is never ours). */
export function isOurProcess(pid: number | undefined, marker: string): boolean {
  if (!pid) return false
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // A zombie (state Z) is dead for our purposes.
    if (/\) Z /.test(stat)) return false
    return cmdline.includes(marker)
  } catch {
    return false
  }
}

export function signalOurProcess(pid: number | undefined, marker: string, signal: NodeJS.Signals): boolean {
  if (!pid || !isOurProcess(pid, marker)) return false
  try {
    process.kill(pid, signal)
    return true
  } catch {
    return false
  }
}

export async function stopOurProcess(pid: number | undefined, marker: string, graceMs = 10_000): Promise<void> {
  if (!signalOurProcess(pid, marker, 'SIGTERM')) return
  const deadline = Date.now() + graceMs
  while (Date.now() < deadline) {
    if (!isOurProcess(pid, marker)) return
    await sleep(50)
  }
  signalOurProcess(pid, marker, 'SIGKILL')
  while (isOurProcess(pid, marker)) await sleep(20)
}

/** Every process below `pid` now, each with its start time (so that a pid reused later is never taken for it). */
export function descendantsOf(pid: number): {pid: number; started: string}[] {
  const children = new Map<number, {pid: number; started: string}[]>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const fields = procStat(Number(entry))
    if (!fields) continue
    const parent = Number(fields[1])
    children.set(parent, [...(children.get(parent) ?? []), {pid: Number(entry), started: fields[19] ?? ''}])
  }
  const below = (p: number): {pid: number; started: string}[] => (children.get(p) ?? []).flatMap((c) => [c, ...below(c.pid)])
  return below(pid)
}

/**
 * Stops our process as stopOurProcess does, and then the processes it had started (an sshd's connection
 * handlers, which it leaves running when it stops, and which a connection arriving at the stop would keep alive).
 */
export async function stopOurProcessAndChildren(pid: number | undefined, marker: string, graceMs = 10_000): Promise<void> {
  const children = pid && isOurProcess(pid, marker) ? descendantsOf(pid) : []
  await stopOurProcess(pid, marker, graceMs)
  for (const child of children)
    if (processStartTime(child.pid) === child.started) {
      try {
        process.kill(child.pid, 'SIGKILL')
      } catch {
        // Gone meanwhile.
      }
    }
}

export async function waitFor(what: string, timeoutMs: number, probe: () => Promise<boolean> | boolean, stepMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await probe()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(stepMs)
  }
}

export function portOpen(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({host, port})
    const done = (open: boolean) => {
      socket.destroy()
      resolve(open)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Absolute path of a program on PATH or in the sbin directories, or undefined. */
export function findProgram(name: string): string | undefined {
  const result = spawnSync('sh', ['-c', `PATH="$PATH:/usr/sbin:/sbin:/usr/local/sbin" command -v ${name}`], {encoding: 'utf8'})
  const path = result.stdout.trim()
  return result.status === 0 && path !== '' ? path : undefined
}

export function run(program: string, args: string[], what: string): string {
  const result = spawnSync(program, args, {encoding: 'utf8'})
  if (result.status !== 0) throw new Error(`${what} failed: ${(result.stderr || result.stdout || String(result.error)).trim().split('\n').slice(-3).join(' ')}`)
  return result.stdout
}
