import {existsSync} from 'node:fs'
import {basename, join} from 'node:path'
import {refsOf} from '../plan/validate.js'
import type {OutputRef, Plan, Step} from '../plan/types.js'

/**
 * Work files (the dead master's saved binlog tail, relay diffs) are named, never placed: a step journals the
 * file's name, and whoever reads it looks for that name in its own work folder. Another manager's path means
 * nothing on this host (its disk may be gone with it). Journals written before this journaled absolute paths:
 * their base name is the name.
 */
export function workFileName(recorded: unknown): string | null {
  if (typeof recorded !== 'string' || recorded === '') return null
  const name = basename(recorded)
  return name === '' || name === '.' || name === '..' ? null : name
}

/** The file a step's output names, in this run's work folder. */
export function workFileIn(workDir: string, recorded: unknown): string | null {
  const name = workFileName(recorded)
  return name === null ? null : join(workDir, name)
}

/** The steps that save a work file, under their output `file`. */
export const savingSteps: ReadonlySet<Step['type']> = new Set(['save_master_binlog', 'save_relay_diff'])

/** Does this reference name a file a saving step wrote? */
export function refersToSavedFile(plan: Plan, ref: OutputRef): boolean {
  const from = plan.steps.find((s) => s.id === ref.fromStep)
  return from !== undefined && savingSteps.has(from.type) && ref.output === 'file'
}

/**
 * The steps journaled done whose saved file is not in this work folder (after the copies in the shared store
 * were restored) while a step still to run reads it: they are run again, and their check finds the file
 * missing. `outputsOf` gives a done step's journaled outputs; `exists` is the file system's (a parameter for tests).
 */
export function savesToRepeat(
  plan: Plan,
  done: ReadonlySet<string>,
  outputsOf: (id: string) => Record<string, unknown> | undefined,
  workDir: string,
  exists: (file: string) => boolean = existsSync,
): string[] {
  const repeat = new Set<string>()
  for (const step of plan.steps) {
    if (done.has(step.id)) continue
    for (const ref of refsOf(step)) {
      if (!done.has(ref.fromStep) || !refersToSavedFile(plan, ref)) continue
      const file = workFileIn(workDir, outputsOf(ref.fromStep)?.[ref.output])
      if (file === null || !exists(file)) repeat.add(ref.fromStep)
    }
  }
  return plan.steps.filter((s) => repeat.has(s.id)).map((s) => s.id)
}

/** What a repeated save says when it fails: the file was on the manager that died and could not be saved again. */
export function repeatFailed(step: Step, recorded: unknown, why: string): string {
  const name = workFileName(recorded) ?? 'its file'
  return `${name}, saved by ${step.id} in an earlier run, is not in this manager's work folder nor in the shared store (it was on the manager that saved it, which died; files over the upload limit stay on that manager's disk), and it could not be saved again from ${step.server}: ${why}`
}
