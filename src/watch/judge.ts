import type {SqlErrorKind} from '../inspect/mysql.js'
import type {SecondOpinion} from './second-opinion.js'

/** What one look at a master and its replicas found. Plain data, so the verdict is a pure function. */
export interface Observation {
  master: {ok: true} | {ok: false; kind: SqlErrorKind; message: string}
  /** Asked only while the master fails: does each replica still hold a connection to it? */
  replicas: {name: string; reachable: boolean; ioThread: 'running' | 'stopped' | 'connecting' | null; lastIoError: string}[]
  /** SSH to the master's host, when it was tried. */
  sshReachable: boolean | null
  /** Other routes to the master (the replicas' hosts, the secondary_check hook), when they were asked. */
  secondOpinion?: SecondOpinion | null
}

export type Verdict =
  | {state: 'healthy'}
  | {state: 'refusing'; reason: string}
  | {state: 'suspect'; failures: number; reason: string}
  | {state: 'network'; reason: string}
  | {state: 'dead'; reason: string}

/**
 * MHA's rule (consecutive failed pings; access denied and too many connections mean alive) joined with
 * orchestrator's (the replicas must agree): a master is dead only when mha cannot reach it AND no
 * replica still replicates from it. A master the replicas still stream from is a network problem.
 */
export function judge(observation: Observation, failures: number, failuresBeforeDead: number): Verdict {
  const m = observation.master
  if (m.ok) return {state: 'healthy'}
  if (m.kind === 'auth' || m.kind === 'too_many_connections') return {state: 'refusing', reason: `${m.message}: it answers, so it is alive`}
  if (failures < failuresBeforeDead) return {state: 'suspect', failures, reason: m.message}
  const reachable = observation.replicas.filter((r) => r.reachable)
  const streaming = reachable.filter((r) => r.ioThread === 'running')
  if (reachable.length === 0) return {state: 'network', reason: `${m.message}, and no replica answers either: mha may be cut off; no failover without a replica to confirm`}
  const second = observation.secondOpinion ?? null
  const hook = second?.hook ?? null
  // The user's secondary_check has the last word when configured, as in MHA: only "down on every route" fails over.
  if (hook && hook.verdict !== 'down') return {state: 'network', reason: `${m.message}, but the secondary_check hook does not confirm it (${hook.detail})`}
  const ssh = observation.sshReachable === null ? '' : observation.sshReachable ? '; its host still answers SSH' : '; its host does not answer SSH either'
  if (streaming.length > 0) {
    // A host gone without a TCP reset (power loss, a cut cable) leaves the replicas' IO threads saying Yes until
    // slave_net_timeout: the other routes decide. Any route that still reaches the master means mha alone is cut off.
    const routes = second?.routes ?? []
    const open = routes.filter((r) => r.verdict === 'reachable')
    const unreachable = routes.filter((r) => r.verdict === 'unreachable')
    if (routes.length > 0 && open.length === 0 && unreachable.length === routes.length)
      return {state: 'dead', reason: `${m.message} after ${failures} tries; ${streaming.map((r) => r.name).join(', ')} still show${streaming.length === 1 ? 's' : ''} an IO thread, but no route reaches it: ${unreachable.map((r) => r.detail).join('; ')}${ssh}`}
    const why = open.length > 0 ? `; ${open.map((r) => r.detail).join('; ')}` : routes.some((r) => r.verdict === 'route_down') ? `; a route could not be tried: ${routes.filter((r) => r.verdict === 'route_down').map((r) => r.detail).join('; ')}` : ''
    return {state: 'network', reason: `${m.message}, but ${streaming.map((r) => r.name).join(', ')} still replicate${streaming.length === 1 ? 's' : ''} from it: a network problem between mha and the master, not a dead master${why}`}
  }
  return {
    state: 'dead',
    reason: `${m.message} after ${failures} tries, and ${reachable.map((r) => `${r.name} (IO thread ${r.ioThread ?? 'none'})`).join(', ')} lost it too${ssh}${hook ? `; ${hook.detail}` : ''}`,
  }
}
