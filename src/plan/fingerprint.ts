import {createHash} from 'node:crypto'
import type {Fact} from './types.js'

/** A stable hash of the facts a plan depends on; apply re-observes them and names any that changed. */
export function fingerprint(facts: readonly Fact[]): string {
  const canonical = JSON.stringify(facts.map((f) => [f.server, f.fact, f.value]))
  return `sha256:${createHash('sha256').update(canonical).digest('hex')}`
}

/** One line per fact that differs, e.g. "db3 read: now mysql-bin.000004:1880, the plan assumed mysql-bin.000004:1294". */
export function factChanges(planned: readonly Fact[], now: readonly Fact[]): string[] {
  const key = (f: Fact) => `${f.server}\u0000${f.fact}`
  const current = new Map(now.map((f) => [key(f), f.value]))
  const before = new Map(planned.map((f) => [key(f), f.value]))
  const changes: string[] = []
  for (const f of planned) {
    const value = current.get(key(f))
    if (value === undefined) changes.push(`${f.server} ${f.fact}: no longer observed; the plan assumed ${f.value}`)
    else if (value !== f.value) changes.push(`${f.server} ${f.fact}: now ${value}; the plan assumed ${f.value}`)
  }
  for (const f of now) if (!before.has(key(f))) changes.push(`${f.server} ${f.fact}: now ${f.value}; the plan did not expect it`)
  return changes
}
