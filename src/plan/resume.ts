import {factChanges} from './fingerprint.js'
import type {Fact, Plan, Step} from './types.js'

/** Servers a step acts on or reads from. */
function serversOf(step: Step): string[] {
  const servers = [step.server]
  if (step.type === 'save_relay_diff') servers.push(step.params.diff.source)
  if (step.type === 'catch_up_from') servers.push(step.params.source)
  if (step.type === 'repoint_replica') servers.push(step.params.source)
  return servers
}

/** Step kinds that move a server's replication: once started, its source and read position are the plan's doing. */
const MOVES_REPLICATION = new Set<Step['type']>(['detach_replication', 'catch_up_from', 'repoint_replica', 'replicate_from_copy'])
/** Step kinds of a rebuild that stop, replace and start the server: once started, whether it answers is the plan's doing too. */
const REPLACES_SERVER = new Set<Step['type']>(['stop_server', 'install_backup', 'start_server', 'replicate_from_copy'])

function changedByPlan(step: Step): string[] {
  const facts = REPLACES_SERVER.has(step.type) ? ['sql', 'server_id', 'source', 'read', 'gtid_mode'] : MOVES_REPLICATION.has(step.type) ? ['source', 'read', 'gtid_mode'] : []
  return facts.map((fact) => `${step.server}\u0000${fact}`)
}

/**
 * Staleness when a plan is resumed (an earlier run began it): the plan's facts about the servers that the
 * remaining steps touch, less those the plan's own started steps change. A replica re-pointed by hand, a
 * server replaced (another server_id), a dead master answering again while steps on it remain: each is named.
 */
export function resumeChanges(plan: Plan, started: ReadonlySet<string>, settled: ReadonlySet<string>, now: readonly Fact[]): string[] {
  const remaining = plan.steps.filter((s) => !settled.has(s.id))
  const touched = new Set(remaining.flatMap(serversOf))
  const excused = new Set(plan.steps.filter((s) => started.has(s.id) || settled.has(s.id)).flatMap(changedByPlan))
  const relevant = (f: Fact) => touched.has(f.server) && !excused.has(`${f.server}\u0000${f.fact}`)
  return factChanges(plan.observed.facts.filter(relevant), now.filter(relevant))
}
