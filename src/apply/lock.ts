import {lstatSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {join} from 'node:path'
import {UserError} from '../util/errors.js'

/**
 * Where the per-cluster locks live: a folder only this user can write (a shared 0777 /tmp folder would let
 * anyone plant or remove a lock). MHA_LOCK_DIR overrides it.
 */
export function lockDirectory(): string {
  if (process.env.MHA_LOCK_DIR) return process.env.MHA_LOCK_DIR
  if (process.getuid?.() === 0) return '/run/mha'
  if (process.env.XDG_RUNTIME_DIR) return join(process.env.XDG_RUNTIME_DIR, 'mha')
  return join(homedir(), '.local', 'state', 'mha', 'locks')
}

function privateDirectory(dir: string): void {
  mkdirSync(dir, {recursive: true, mode: 0o700})
  const stat = lstatSync(dir)
  const uid = process.getuid?.()
  if (!stat.isDirectory()) throw new UserError(`lock folder ${dir} is not a folder; remove it or set MHA_LOCK_DIR`)
  if (uid !== undefined && stat.uid !== uid) throw new UserError(`lock folder ${dir} belongs to uid ${stat.uid}, not to this user (${uid}); fix its owner or set MHA_LOCK_DIR`)
  if ((stat.mode & 0o022) !== 0) throw new UserError(`lock folder ${dir} can be written by other users (mode ${(stat.mode & 0o777).toString(8)}); run chmod 700 ${dir} or set MHA_LOCK_DIR`)
}

/** The kernel's start time of a process (clock ticks since boot): with the pid, it names one process for good. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing parenthesis.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null
  } catch {
    return null
  }
}

interface Holder {
  pid: number
  /** /proc start time of the holder: a pid reused by another program does not hold the lock. */
  started: string | null
  purpose: string
  since: string
}

function holds(holder: Holder): boolean {
  const started = processStartTime(holder.pid)
  return started !== null && started === holder.started
}

/** One apply (or watch action) per cluster on this machine; a lock whose process is gone is taken over. */
export function lockCluster(cluster: string, purpose: string): () => void {
  const dir = lockDirectory()
  privateDirectory(dir)
  const file = join(dir, `${cluster}.lock`)
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const holder: Holder = {pid: process.pid, started: processStartTime(process.pid), purpose, since: new Date().toISOString()}
      writeFileSync(file, JSON.stringify(holder), {flag: 'wx', mode: 0o600})
      return () => rmSync(file, {force: true})
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw new UserError(`cannot write the lock ${file}: ${(error as Error).message}`)
      let holder: Holder | undefined
      try {
        holder = JSON.parse(readFileSync(file, 'utf8')) as Holder
      } catch {
        holder = undefined
      }
      if (holder && holds(holder)) throw new UserError(`cluster ${cluster} is locked by pid ${holder.pid} (${holder.purpose}, since ${holder.since}); wait for it to finish`)
      rmSync(file, {force: true})
    }
  }
  throw new UserError(`cannot take the lock ${file}; remove it if no mha process is running`)
}
