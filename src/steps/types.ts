import type {ClusterConfig, ServerConfig} from '../config/types.js'
import type {Dialect} from '../dialect/types.js'
import type {ServerConnection} from '../inspect/mysql.js'
import type {Plan, Step} from '../plan/types.js'
import type {SshSession} from '../remote/ssh.js'
import type {StateChange, WatchState} from '../store/cluster-state.js'

/** What a step may use: connections opened once per run, earlier steps' outputs, a scratch folder. */
export interface StepContext {
  cluster: ClusterConfig
  plan: Plan
  server(name: string): ServerConfig
  sql(name: string): Promise<ServerConnection>
  /**
   * A connection of its own to a server, opened for a session-scoped effect that must outlive one step (a lock
   * held until a later step). It stays open until releaseSession() or the end of the run, whatever happens.
   */
  holdSession(name: string, purpose: string): Promise<ServerConnection>
  /** The held session, if this run opened it and has not released it. */
  heldSession(name: string, purpose: string): ServerConnection | undefined
  releaseSession(name: string, purpose: string): Promise<void>
  dialect(name: string): Promise<Dialect>
  ssh(name: string): Promise<SshSession>
  /** An output of an earlier step, from this run or the journal. */
  output(fromStep: string, name: string): unknown
  /** Local folder beside the plan for saved binlogs and diffs. */
  workDir: string
  /**
   * Copies workDir where another manager resuming this failover finds it (etcd), now rather than after the step:
   * for a record that must be there before an effect starts. Absent or a no-op without shared storage.
   */
  saveWork?: () => Promise<void>
  /** The cluster's state (servers out of service) in its store: files beside the plans, or etcd. */
  readState(): Promise<WatchState>
  /** One compare-and-swap of the cluster's state, under the lock the plan is applied under. */
  updateState(change: StateChange): Promise<WatchState>
  timeoutMs: number
  /** An earlier run began this step and did not finish it (it failed, or the process died). */
  attempted(stepId: string): boolean
  /** How another step ended: a step that waits only for it to settle (settledAfter) may go on either way. */
  outcome(stepId: string): 'done' | 'failed' | 'pending'
  /**
   * The server's SQL did not answer (no reply, or a timeout) to the caller that planned this run a moment ago
   * (mha watch's last ping): how long ago, and what it saw. Null when not known.
   */
  silentAtPlanning(name: string): {ageMs: number; message: string} | null
  /** The data loss is larger than the plan stated: this replaces the plan's statement in the report. */
  declareLoss(statement: string): void
  note(message: string): void
  /** Work under way in a long step (a copy's bytes so far), told to the reporters at once; not kept in the report. */
  progress(step: Step, message: string): void
  /** How often a long step reports its progress. */
  progressIntervalMs: number
}

/** Every effect is a check (already done?), an action, and a verification. */
export interface StepHandler<S extends Step = Step> {
  /** The step changes nothing (it reads or waits): its begin needs no fsync of its own, there is nothing to undo. */
  readsOnly?: true
  /** A reason when the step's effect is already there (then it is skipped), with outputs if it has any. */
  check(step: S, ctx: StepContext): Promise<{done: false} | {done: true; reason: string; outputs?: Record<string, unknown>}>
  act(step: S, ctx: StepContext): Promise<Record<string, unknown> | undefined>
  verify(step: S, ctx: StepContext, outputs: Record<string, unknown>): Promise<void>
}
