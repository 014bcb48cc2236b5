import type {SqlErrorKind} from '../inspect/mysql.js'
import type {SecondOpinion} from './second-opinion.js'

/**
 * The master's answer to one ping (with its retry): ok, or why not. `silence`: no answer came in time (a timeout),
 * as opposed to one that came and said no (a refused or reset connection, an error).
 */
export type MasterAnswer = {ok: true} | {ok: false; kind: SqlErrorKind; message: string; silence?: boolean}

/**
 * A process whose timers fire this late (its event loop's delay while it looked) cannot tell a master's silence
 * from its own: an answer may have waited, unread, behind its other work while the timeout fired. What it saw
 * meanwhile is not counted toward a master's death.
 */
export const overloadedLagMs = 100

/** What one look at a master and its replicas found. Plain data, so the verdict is a pure function. */
export interface Observation {
  master: MasterAnswer
  /** Asked only while the master fails: does each replica still hold a connection to it? */
  replicas: ReplicaObservation[]
  /** SSH to the master's host, when it was tried. */
  sshReachable: boolean | null
  /** Other routes to the master (the replicas' hosts, the secondary_check hook), when they were asked. */
  secondOpinion?: SecondOpinion | null
  /** How late this process's timers fired (ms, the worst) while it pinged and asked the others: see overloadedLagMs. */
  lagMs?: number
}

export interface ReplicaObservation {
  name: string
  reachable: boolean
  ioThread: 'running' | 'stopped' | 'connecting' | null
  lastIoError: string
  /** Its MASTER_HEARTBEAT_PERIOD in seconds (0: off); null or absent when not known. */
  heartbeatPeriodS?: number | null
  /** For how long neither its read position nor its received heartbeats have moved (see ContactClock). */
  silentForS?: number | null
}

/** Silence shorter than this is never taken for a lost master, whatever the heartbeat period. */
export const minSilenceS = 2

/**
 * How long a replica whose IO thread says Yes may hear nothing from its master before it counts as having lost it:
 * three heartbeat periods (a live master sends one each period it has no event to send), and at least
 * minSilenceS. Null when heartbeats are off or their period is not known: silence then says nothing.
 */
export function silenceBoundS(heartbeatPeriodS: number | null | undefined): number | null {
  return heartbeatPeriodS ? Math.max(3 * heartbeatPeriodS, minSilenceS) : null
}

/** An IO thread that says Yes but has heard nothing for longer than the bound: as lost as one reconnecting. */
export function silent(r: ReplicaObservation): boolean {
  const bound = silenceBoundS(r.heartbeatPeriodS)
  return r.ioThread === 'running' && bound !== null && (r.silentForS ?? 0) > bound
}

const seconds = (s: number) => `${Math.round(s * 10) / 10} s`

function lost(r: ReplicaObservation): string {
  if (!silent(r)) return `${r.name} (IO thread ${r.ioThread ?? 'none'})`
  return `${r.name} (IO thread running, but nothing from the master for ${seconds(r.silentForS!)}, over ${seconds(silenceBoundS(r.heartbeatPeriodS)!)}: 3 heartbeat periods of ${seconds(r.heartbeatPeriodS!)})`
}

export type Verdict =
  | {state: 'healthy'}
  | {state: 'refusing'; reason: string}
  | {state: 'suspect'; failures: number; reason: string; overloaded?: true}
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
  // Slowness of this process is not the master's silence: nothing is judged on what was seen while it was late.
  const lag = observation.lagMs ?? 0
  if (lag >= overloadedLagMs)
    return {state: 'suspect', failures, overloaded: true, reason: `${m.message}, but this process was ${Math.round(lag)} ms late (overloaded): a silence may be its own, so it is not counted, and no master is declared dead until it keeps time again`}
  if (failures < failuresBeforeDead) return {state: 'suspect', failures, reason: m.message}
  const reachable = observation.replicas.filter((r) => r.reachable)
  // An IO thread that still says Yes but has heard neither event nor heartbeat for three periods lost the master too.
  const streaming = reachable.filter((r) => r.ioThread === 'running' && !silent(r))
  if (reachable.length === 0) return {state: 'network', reason: `${m.message}, and no replica answers either: mha may be cut off; no failover without a replica to confirm`}
  const second = observation.secondOpinion ?? null
  const hook = second?.hook ?? null
  // The user's secondary_check has the last word when configured, as in MHA: only "down on every route" fails over.
  if (hook && hook.verdict !== 'down') return {state: 'network', reason: `${m.message}, but the secondary_check hook does not confirm it (${hook.detail})`}
  const ssh = observation.sshReachable === null ? '' : observation.sshReachable ? '; its host still answers SSH' : '; its host does not answer SSH either'
  if (streaming.length > 0) {
    // A host gone without a TCP reset (power loss, a cut cable) leaves the replicas' IO threads saying Yes until
    // slave_net_timeout: the other routes decide, with the host's SSH. Any route that still reaches the master means
    // mha alone is cut off.
    const routes = second?.routes ?? []
    const open = routes.filter((r) => r.verdict === 'reachable')
    const unreachable = routes.filter((r) => r.verdict === 'unreachable')
    const noRoute = routes.length > 0 && open.length === 0 && unreachable.length === routes.length
    const names = streaming.map((r) => r.name).join(', ')
    // A host gone answers nothing, SSH included. One that still answers SSH while no route gets a connection to its
    // port in time, its replicas still streaming, is an overloaded (or hung) server: a full accept queue drops new
    // connections as a blackhole does (1000 clusters' connections on one sandbox did; 32 false deaths in one run).
    // Its replicas' silence decides then, as for any server that stops sending (their heartbeats stop).
    if (noRoute && observation.sshReachable === true)
      return {state: 'network', reason: `${m.message}; no route gets a connection to its port in time (${unreachable.map((r) => r.detail).join('; ')}), but its host answers SSH and ${names} still replicate${streaming.length === 1 ? 's' : ''} from it: an overloaded or hung server, not a dead one; it is dead once its replicas hear nothing from it either`}
    if (noRoute) return {state: 'dead', reason: `${m.message} after ${failures} tries; ${names} still show${streaming.length === 1 ? 's' : ''} an IO thread, but no route reaches it: ${unreachable.map((r) => r.detail).join('; ')}${ssh}`}
    const why = open.length > 0 ? `; ${open.map((r) => r.detail).join('; ')}` : routes.some((r) => r.verdict === 'route_down') ? `; a route could not be tried: ${routes.filter((r) => r.verdict === 'route_down').map((r) => r.detail).join('; ')}` : ''
    return {state: 'network', reason: `${m.message}, but ${streaming.map((r) => r.name).join(', ')} still replicate${streaming.length === 1 ? 's' : ''} from it: a network problem between mha and the master, not a dead master${why}`}
  }
  return {
    state: 'dead',
    reason: `${m.message} after ${failures} tries, and ${reachable.map(lost).join(', ')} lost it too${ssh}${hook ? `; ${hook.detail}` : ''}`,
  }
}

/**
 * Consecutive failures after one look: none once the master answers, or refuses (access denied and too many
 * connections mean alive, as in MHA); the same when it was silent while this process was late (`lagMs`, see
 * overloadedLagMs: its own slowness); else one more, or two when a silent ping and the retry started beside it both
 * failed (two failed looks).
 */
export function failuresAfter(previous: number, look: {result: MasterAnswer; retried: boolean}, lagMs = 0): number {
  const m = look.result
  if (m.ok || m.kind === 'auth' || m.kind === 'too_many_connections') return 0
  if (m.silence === true && lagMs >= overloadedLagMs) return previous
  return previous + (look.retried ? 2 : 1)
}

/** Where the second opinions come from: asked only when the failures call for them. */
export interface OpinionSources {
  replicas(): Promise<ReplicaObservation[]>
  /** The master's host answering SSH (null: not asked). */
  ssh(): Promise<boolean | null>
  /** The other routes and the secondary_check hook (null: not asked). */
  routes(): Promise<SecondOpinion | null>
}

/**
 * The observation the verdict is taken on. Below failures_before_dead the master's answer alone (suspect at
 * most); from there the replicas and the master's SSH; the other routes are waited for only when a replica still
 * streams from the master (a host gone without a reset) or the user's secondary_check hook is configured (it
 * always has its say).
 */
export async function observe(master: MasterAnswer, failures: number, failuresBeforeDead: number, secondaryCheck: boolean, sources: OpinionSources): Promise<Observation> {
  const observation: Observation = {master, replicas: [], sshReachable: null}
  if (master.ok || failures < failuresBeforeDead) return observation
  observation.replicas = await sources.replicas()
  observation.sshReachable = await sources.ssh()
  const streaming = observation.replicas.some((r) => r.reachable && r.ioThread === 'running' && !silent(r))
  if (streaming || secondaryCheck) observation.secondOpinion = await sources.routes()
  return observation
}
