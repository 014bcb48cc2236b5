import {randomBytes} from 'node:crypto'
import {closeSync, fstatSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, unlinkSync} from 'node:fs'
import {homedir} from 'node:os'
import {dirname, join} from 'node:path'
import {fsyncDirectory, writeNewFileSynced} from '../util/durable.js'
import {UserError} from '../util/errors.js'
import {processStartTime, procStat} from '../util/proc.js'

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

// Re-exported: the lock's callers and tests name a holder by pid and start time.
export {processStartTime} from '../util/proc.js'

interface Holder {
  pid: number
  /** /proc start time of the holder: a pid reused by another program does not hold the lock. */
  started: string | null
  purpose: string
  since: string
}

function holds(holder: Holder): boolean {
  const stat = procStat(holder.pid)
  // A zombie (killed, not yet reaped by its parent) holds nothing: it will never act again.
  return stat !== null && stat[0] !== 'Z' && stat[19] === holder.started
}

/** Sleeps without giving up the thread: the lock is taken synchronously. */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

/** This process's holder record in a file of its own (synced), ready to be linked or renamed into place. */
function ownRecord(path: string, purpose: string): string {
  const own = `${path}.${process.pid}.${randomBytes(6).toString('hex')}`
  const holder: Holder = {pid: process.pid, started: processStartTime(process.pid), purpose, since: new Date().toISOString()}
  writeNewFileSynced(own, JSON.stringify(holder))
  return own
}

/** The file at `path` now: its inode and its holder (undefined when unreadable: not a live holder's). */
function current(path: string): {ino: number; holder: Holder | undefined} | null {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw error
  }
  try {
    const ino = fstatSync(fd).ino
    try {
      return {ino, holder: JSON.parse(readFileSync(fd, 'utf8')) as Holder}
    } catch {
      return {ino, holder: undefined}
    }
  } finally {
    closeSync(fd)
  }
}

type Claim = {held: true; ino: number} | {held: false; holder: Holder; busy: boolean}

/**
 * Makes `path` this process's: created whole by link() (never seen empty), or, when its holder is dead, replaced
 * by rename() under a guard named after the dead file's inode. Only one process creates that guard, and it
 * replaces the file only if it is still that inode with a dead holder: two contenders never both win, and a
 * live holder's file is never removed. A guard left by a process that died holding it is itself taken over the
 * same way (its own guard, one level down). busy: another live process is taking a dead holder's place.
 */
function claim(path: string, purpose: string, depth = 0): Claim {
  const own = ownRecord(path, purpose)
  try {
    for (;;) {
      try {
        linkSync(own, path)
        fsyncDirectory(dirname(path))
        return {held: true, ino: lstatSync(path).ino}
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      }
      const seen = current(path)
      if (!seen) continue
      if (seen.holder && holds(seen.holder)) return {held: false, holder: seen.holder, busy: depth > 0}
      if (depth >= 8) throw new UserError(`cannot take the lock ${path}: too many dead processes' takeover files beside it; remove ${path}.* if no mha process is running`)
      const guard = `${path}.takeover-${seen.ino}`
      const taking = claim(guard, purpose, depth + 1)
      if (!taking.held) return {held: false, holder: taking.holder, busy: true}
      try {
        // Under the guard, on the file as it is now: still the dead holder's (the same inode, no live holder)?
        const now = current(path)
        if (!now || now.ino !== seen.ino || (now.holder && holds(now.holder))) continue
        renameSync(own, path)
        fsyncDirectory(dirname(path))
        return {held: true, ino: lstatSync(path).ino}
      } finally {
        release(guard, taking.ino)
      }
    }
  } finally {
    rmSync(own, {force: true})
  }
}

/** Removes `path` if it is still the file this process made (by inode): never another holder's. */
function release(path: string, ino: number): void {
  try {
    if (lstatSync(path).ino === ino) unlinkSync(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
}

/**
 * One apply (or watch action) per cluster on this machine; a lock whose process is gone is taken over, and two
 * processes never both hold it (see claim).
 */
export function lockCluster(cluster: string, purpose: string): () => void {
  return lockInFolder(`${cluster}.lock`, purpose, (holder) => `cluster ${cluster} is locked by pid ${holder.pid} (${holder.purpose}, since ${holder.since}); wait for it to finish`)
}

/**
 * One manager (mha watch) per cluster on this machine when there is no etcd to elect one, held while it runs:
 * two would both fail over the same dead master. As every lock here, it is a live process's (pid and start time),
 * so a watch killed with SIGKILL leaves nothing to remove: the next one takes it over.
 */
export function lockManager(cluster: string, purpose: string): () => void {
  return lockInFolder(
    `${cluster}.manager.lock`,
    purpose,
    (holder) =>
      `cluster ${cluster} is already watched by pid ${holder.pid} (${holder.purpose}, since ${holder.since}); stop that watch first (kill ${holder.pid}), or run every manager with --etcd so that they elect one`,
  )
}

function lockInFolder(name: string, purpose: string, heldBy: (holder: Holder) => string): () => void {
  const dir = lockDirectory()
  privateDirectory(dir)
  const file = join(dir, name)
  // A takeover by another live process lasts a few file operations: it is waited for, briefly.
  for (let attempt = 0; attempt < 200; attempt++) {
    let outcome: Claim
    try {
      outcome = claim(file, purpose)
    } catch (error) {
      if (error instanceof UserError) throw error
      throw new UserError(`cannot write the lock ${file}: ${(error as Error).message}`)
    }
    if (outcome.held) {
      const ino = outcome.ino
      return () => release(file, ino)
    }
    if (!outcome.busy) throw new UserError(heldBy(outcome.holder))
    pause(5)
  }
  throw new UserError(`cannot take the lock ${file}; remove it if no mha process is running`)
}

/**
 * Holds the lock file `path` for a short critical section (a state file's read-modify-write), waiting up to
 * `waitMs` while a live process holds it. A dead holder's lock is taken over as the cluster lock's is (see
 * claim): two processes never both hold it, and a live holder, however slow or stopped, is never displaced.
 */
export function holdLockFile(path: string, purpose: string, waitMs: number): () => void {
  const deadline = Date.now() + waitMs
  for (;;) {
    const outcome = claim(path, purpose)
    if (outcome.held) {
      const ino = outcome.ino
      return () => release(path, ino)
    }
    if (Date.now() > deadline)
      throw new UserError(`${path} is held by pid ${outcome.holder.pid} (${outcome.holder.purpose}, since ${outcome.holder.since}) for more than ${Math.round(waitMs / 1000)} s; wait for it to finish, or remove ${path} if that process is not an mha process`)
    pause(5)
  }
}
