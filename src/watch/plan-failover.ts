import type {ClusterConfig, ServerConfig} from '../config/types.js'
import {inspectCluster, type InspectOptions} from '../inspect/inspect.js'
import type {Snapshot} from '../inspect/types.js'
import {toolVersion} from '../plan/plan-file.js'
import {planFor} from '../plan/planner.js'
import type {Plan} from '../plan/types.js'
import type {SshRunner} from '../remote/session-pool.js'
import type {Observation} from './judge.js'

/** What the judgement found and the plan is made from. */
export interface DeathFinding {
  dead: ServerConfig
  /** The judge's reason, recorded in the plan when it overrides the replicas' word. */
  reason: string
  observation: Observation
  /** When the last ping of the dead master failed (epoch ms): the fence may take it as its own look. */
  lastFailureAt: number
}

/**
 * What the pings and the routes found is not waited for again by the inspection: the dead master's SQL, and its
 * SSH when its host did not answer either (a host gone: each retry would cost a full timeout).
 */
export function knownDown(finding: DeathFinding): NonNullable<InspectOptions['knownDown']> {
  const {dead, observation} = finding
  if (observation.master.ok) return []
  return [
    {
      server: dead.name,
      sql: {reachable: false as const, kind: observation.master.kind, message: observation.master.message, observedAt: finding.lastFailureAt},
      ...(observation.sshReachable === false ? {ssh: {reachable: false as const, kind: 'unreachable', message: `${dead.name}'s host did not answer SSH when watch declared it dead`}} : {}),
    },
  ]
}

/**
 * The failover plan, by the same planner as `mha plan`. When replicas still showed an IO thread, death was
 * judged on the other routes or on their silence: the plan records that as a forced death.
 */
export function failoverPlan(cluster: ClusterConfig, snapshot: Snapshot, finding: DeathFinding, outOfService: string[], createdAt = new Date()): Plan {
  const streaming = finding.observation.replicas.some((r) => r.ioThread === 'running')
  return planFor(cluster, snapshot, {tool: toolVersion(), createdAt: createdAt.toISOString(), configFile: cluster.file}, {
    outOfService,
    ...(streaming ? {forceDead: `mha watch: ${finding.reason}`} : {}),
  })
}

/** The plan phase: one inspection (on the kept SSH sessions, the dead master not waited for again), then the plan. */
export async function planFailover(cluster: ClusterConfig, finding: DeathFinding, outOfService: () => string[], sshRunner: SshRunner): Promise<{plan: Plan; snapshot: Snapshot}> {
  const snapshot = await inspectCluster(cluster, {knownDown: knownDown(finding), sshRunner})
  return {plan: failoverPlan(cluster, snapshot, finding, outOfService()), snapshot}
}
