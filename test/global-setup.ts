import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {basename, join} from 'node:path'

const RUN_FOLDER = 'mha-t-'

/**
 * One private temp folder for the whole run: every test, every mha process and sandbox it starts (they inherit
 * TMPDIR) makes its folders inside it, and it goes at the end, so a run leaves no folder behind even where a
 * test file keeps its own (plans, keys, saved binlogs) until the end. Both projects (unit, integration) share
 * the first one made: nested folders would lengthen mariadbd's socket path past its limit of 107 bytes.
 */
export default function setup(): () => void {
  if (basename(tmpdir()).startsWith(RUN_FOLDER)) return () => undefined
  const previous = process.env.TMPDIR
  const run = mkdtempSync(join(tmpdir(), RUN_FOLDER))
  process.env.TMPDIR = run
  // The per-cluster locks too (as root mha keeps them in /run/mha): a watch a test kills with SIGKILL leaves its
  // lock file there, holding nothing, but left behind.
  const previousLocks = process.env.MHA_LOCK_DIR
  process.env.MHA_LOCK_DIR = join(run, 'locks')
  // The code cache of the mha processes (src/util/code-cache.ts) too: shared by the run's processes, gone with it.
  const previousCache = process.env.XDG_CACHE_HOME
  process.env.XDG_CACHE_HOME = join(run, 'cache')
  return () => {
    rmSync(run, {recursive: true, force: true})
    if (previous === undefined) delete process.env.TMPDIR
    else process.env.TMPDIR = previous
    if (previousLocks === undefined) delete process.env.MHA_LOCK_DIR
    else process.env.MHA_LOCK_DIR = previousLocks
    if (previousCache === undefined) delete process.env.XDG_CACHE_HOME
    else process.env.XDG_CACHE_HOME = previousCache
  }
}
