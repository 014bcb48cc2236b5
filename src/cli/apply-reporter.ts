import type {ApplyEvent, ApplyListener, ApplyReport} from '../apply/events.js'
import type {Plan} from '../plan/types.js'

/** How long each step took, from its begin event: " (0.12 s)" after its id. */
function stepTimer(): {observe: (event: ApplyEvent) => void; took: (id: string) => string} {
  const began = new Map<string, number>()
  return {
    observe: (event) => {
      if (event.kind === 'begin') began.set(event.step.id, performance.now())
    },
    took: (id) => {
      const start = began.get(id)
      return start === undefined ? '' : ` (${((performance.now() - start) / 1000).toFixed(2)} s)`
    },
  }
}

function describe(event: ApplyEvent, took: (id: string) => string): string {
  switch (event.kind) {
    case 'refused':
      return `refused: ${event.reason}`
    case 'resume':
      return `resuming: ${event.done} of ${event.total} steps were done in an earlier run`
    case 'begin':
      return `begin ${event.step.id}: ${event.step.reason}`
    case 'skip':
      return `skip  ${event.step.id}${took(event.step.id)}: ${event.reason}`
    case 'progress':
      return `...   ${event.step.id}${took(event.step.id)}: ${event.message}`
    case 'end':
      return `done  ${event.step.id}${took(event.step.id)}${Object.keys(event.outputs).length ? ` ${JSON.stringify(event.outputs)}` : ''}`
    case 'fail':
      return `FAIL  ${event.step.id}${took(event.step.id)}: ${event.message}`
    case 'finish':
      return `${event.report.status}: ${event.report.message}${event.report.dataLoss ? `; data loss: ${event.report.dataLoss}` : ''}${event.report.newMaster ? `; ${describeNewMaster(event.report.newMaster)}` : ''}`
  }
}

/** MHA's report line: where the new master took over, and how the old master follows it once repaired. */
export function describeNewMaster(n: NonNullable<ApplyReport['newMaster']>): string {
  const at = `${n.binlog.file}:${n.binlog.pos}${n.gtid ? ` (GTID ${n.gtid})` : ''}`
  return `new master ${n.server} took over at ${at}${n.oldMaster && n.repointOldMaster ? `; to make ${n.oldMaster} its replica once repaired: ${n.repointOldMaster}; START SLAVE (or: mha plan --rejoin ${n.oldMaster})` : ''}`
}

/** Without a TTY: one timestamped line per event, with each step's duration when it ends. */
export function lineReporter(write: (line: string) => void): ApplyListener {
  const timer = stepTimer()
  return (event) => {
    timer.observe(event)
    write(`${new Date().toISOString()} ${describe(event, timer.took)}`)
  }
}

/** How a step's task ends: done (now, or found already done), not run, or failed. */
type Outcome = {state: 'done'; note: string} | {state: 'not_run'; note: string}

interface Deferred {
  promise: Promise<Outcome>
  resolve(outcome: Outcome): void
  reject(error: Error): void
}

function deferred(): Deferred {
  let resolve!: (v: Outcome) => void
  let reject!: (e: Error) => void
  const promise = new Promise<Outcome>((res, rej) => {
    resolve = res
    reject = rej
  })
  return {promise, resolve, reject}
}

/**
 * A terminal that reports no width (a 0x0 pty, `ssh -t` from automation) makes the tree wrap every
 * character onto its own line; there the simple renderer prints one line per state change instead.
 */
export function rendererFor(columns: number | undefined): 'default' | 'simple' {
  return columns !== undefined && columns > 0 ? 'default' : 'simple'
}

/** What the reporter uses of a listr2 task. */
interface TaskView {
  skip(message?: string): void
  title: string
  output: string
}

/** On a TTY: a listr2 tree of the plan's steps that follows the executor's events; it decides nothing. */
/** listr2 loads only when a terminal shows the progress: a command without one starts faster. */
export async function listrReporter(plan: Plan, columns: number | undefined = process.stdout.columns): Promise<{listener: ApplyListener; run: Promise<void>; stop(): void}> {
  const {Listr} = await import('listr2')
  const waits = new Map(plan.steps.map((s) => [s.id, deferred()]))
  const tasks = new Map<string, TaskView>()
  const timer = stepTimer()
  const list = new Listr(
    plan.steps.map((step) => ({
      title: `${step.id}  ${step.reason}`,
      task: async (_ctx: unknown, task: TaskView) => {
        tasks.set(step.id, task)
        const outcome = await waits.get(step.id)!.promise
        // A step whose effect is already there succeeded: shown done, with why, never as a warning.
        if (outcome.state === 'done') task.title = `${step.id}${outcome.note}`
        else task.skip(`${step.id}: ${outcome.note}`)
      },
    })),
    {
      concurrent: true,
      exitOnError: false,
      registerSignalListeners: false,
      renderer: rendererFor(columns),
      rendererOptions: {collapseSubtasks: false, collapseSkips: false, showErrorMessage: true},
    },
  )
  const run = list.run().then(
    () => undefined,
    () => undefined,
  )
  const stop = () => {
    // Steps that never ran are shown as not run when the run ends early.
    for (const wait of waits.values()) wait.resolve({state: 'not_run', note: 'not run'})
  }
  const listener: ApplyListener = (event) => {
    timer.observe(event)
    if (event.kind === 'resume') for (const id of event.doneSteps) waits.get(id)?.resolve({state: 'done', note: ': done in an earlier run'})
    else if (event.kind === 'skip') waits.get(event.step.id)?.resolve({state: 'done', note: `${timer.took(event.step.id)}: already done: ${event.reason}`})
    // Shown under the running step (its output line), one line each with the simple renderer.
    else if (event.kind === 'progress') {
      const task = tasks.get(event.step.id)
      if (task) task.output = `${event.message}${timer.took(event.step.id)}`
    } else if (event.kind === 'end') waits.get(event.step.id)?.resolve({state: 'done', note: timer.took(event.step.id)})
    else if (event.kind === 'fail') waits.get(event.step.id)?.reject(new Error(`${event.message}${timer.took(event.step.id)}`))
    else if (event.kind === 'finish' || event.kind === 'refused') stop()
  }
  return {listener, run, stop}
}
