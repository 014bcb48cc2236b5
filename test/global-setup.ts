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
  return () => {
    rmSync(run, {recursive: true, force: true})
    if (previous === undefined) delete process.env.TMPDIR
    else process.env.TMPDIR = previous
  }
}
