import type {Step} from '../plan/types.js'

/** What the executor tells its reporters; it never prints. */
export type ApplyEvent =
  | {kind: 'refused'; reason: string}
  /** doneSteps: the ids an earlier run finished; they get no other event in this run. */
  | {kind: 'resume'; done: number; total: number; doneSteps: string[]}
  | {kind: 'begin'; step: Step}
  | {kind: 'skip'; step: Step; reason: string}
  | {kind: 'end'; step: Step; outputs: Record<string, unknown>}
  /** A running step's account of its work so far (bytes copied): shown while it runs, not kept in the report. */
  | {kind: 'progress'; step: Step; message: string}
  | {kind: 'fail'; step: Step; message: string}
  | {kind: 'finish'; report: ApplyReport}

/** blocked: not run because a step it depends on failed. */
export type StepStatus = 'applied' | 'skipped' | 'failed' | 'not_run' | 'blocked'

export interface ApplyReport {
  planFile: string
  cluster: string
  kind: string
  /** partial: the new master takes writes, but some replicas were left out (see leftOut). */
  status: 'applied' | 'already_applied' | 'partial' | 'failed' | 'refused'
  message: string
  /**
   * Each step as it ended; startMs and durationMs (from this run's start) for the steps this run checked or
   * ran, null for those it did not (done in an earlier run, blocked, not run): where a slow apply spent its time.
   */
  steps: {id: string; type: string; server: string; status: StepStatus; reason: string | null; outputs: Record<string, unknown>; startMs: number | null; durationMs: number | null}[]
  notes: string[]
  /** sha256 of the plan applied (what `mha apply --expect-digest` checks). */
  digest: string
  /** Replicas whose recovery failed: left stopped, each with the reason and how to retry. */
  leftOut: {server: string; reason: string; retry: string}[]
  /**
   * After a promotion: where the new master's binlog stood when it took over, and the statement (password
   * masked) that makes the old master its replica from there, as MHA's failover report gives it.
   */
  newMaster: {server: string; binlog: {file: string; pos: number}; gtid: string; oldMaster: string | null; repointOldMaster: string | null} | null
  /** A failover's data loss as the plan states it (null for other kinds): what a reviewer compares with the outcome. */
  dataLoss: string | null
  /** What the operator should do next, when something is left to do. */
  nextAction: string | null
  durationMs: number
}

export type ApplyListener = (event: ApplyEvent) => void
