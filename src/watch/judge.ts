import type {SqlErrorKind} from '../inspect/mysql.js'

/** What one look at a master and its replicas found. Plain data, so the verdict is a pure function. */
export interface Observation {
  master: {ok: true} | {ok: false; kind: SqlErrorKind; message: string}
  /** Asked only while the master fails: does each replica still hold a connection to it? */
  replicas: {name: string; reachable: boolean; ioThread: 'running' | 'stopped' | 'connecting' | null; lastIoError: string}[]
  /** SSH to the master's host, when it was tried. */
  sshReachable: boolean | null
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
  if (streaming.length > 0)
    return {state: 'network', reason: `${m.message}, but ${streaming.map((r) => r.name).join(', ')} still replicate${streaming.length === 1 ? 's' : ''} from it: a network problem between mha and the master, not a dead master`}
  if (reachable.length === 0) return {state: 'network', reason: `${m.message}, and no replica answers either: mha may be cut off; no failover without a replica to confirm`}
  const ssh = observation.sshReachable === null ? '' : observation.sshReachable ? '; its host still answers SSH' : '; its host does not answer SSH either'
  return {
    state: 'dead',
    reason: `${m.message} after ${failures} tries, and ${reachable.map((r) => `${r.name} (IO thread ${r.ioThread ?? 'none'})`).join(', ')} lost it too${ssh}`,
  }
}
