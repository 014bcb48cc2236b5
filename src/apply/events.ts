import type {Step} from '../plan/types.js'

/** What the executor tells its reporters; it never prints. */
export type ApplyEvent =
  | {kind: 'refused'; reason: string}
  | {kind: 'resume'; done: number; total: number}
  | {kind: 'begin'; step: Step}
  | {kind: 'skip'; step: Step; reason: string}
  | {kind: 'end'; step: Step; outputs: Record<string, unknown>}
  | {kind: 'fail'; step: Step; message: string}
  | {kind: 'finish'; report: ApplyReport}

export type StepStatus = 'applied' | 'skipped' | 'failed' | 'not_run'

export interface ApplyReport {
  planFile: string
  cluster: string
  kind: string
  status: 'applied' | 'already_applied' | 'failed' | 'refused'
  message: string
  steps: {id: string; type: string; server: string; status: StepStatus; reason: string | null; outputs: Record<string, unknown>}[]
  notes: string[]
  /** A failover's data loss as the plan states it (null for other kinds): what a reviewer compares with the outcome. */
  dataLoss: string | null
  /** What the operator should do next, when something is left to do. */
  nextAction: string | null
  durationMs: number
}

export type ApplyListener = (event: ApplyEvent) => void
