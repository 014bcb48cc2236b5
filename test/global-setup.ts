import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

/**
 * One private temp folder for the whole run: every test, every mha process and sandbox it starts (they inherit
 * TMPDIR) makes its folders inside it, and it goes at the end, so a run leaves no folder behind even where a
 * test file keeps its own (plans, keys, saved binlogs) until the end.
 */
export default function setup(): () => void {
  const previous = process.env.TMPDIR
  const run = mkdtempSync(join(tmpdir(), 'mha-test-run-'))
  process.env.TMPDIR = run
  return () => {
    rmSync(run, {recursive: true, force: true})
    if (previous === undefined) delete process.env.TMPDIR
    else process.env.TMPDIR = previous
  }
}
